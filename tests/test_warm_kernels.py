"""Warm grading kernels (grading/warm.py): forked from one pre-imported Python per grading
process, and still kept apart from each other as fresh sandboxes are.

Real bubblewrap, real kernels (jupyter_client with ``SandboxKernelManager``). Each test
starts two students' kernels one after the other from the same process, as a grading worker
does, and checks what the second can see of the first.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap

import nbformat
import pytest

from grading import warm
from grading.sandbox import SandboxKernelManager, bwrap_status

pytestmark = pytest.mark.skipif(
    not bwrap_status()[0] or os.geteuid() != 0,
    reason="warm kernels need bubblewrap and root (a user id per kernel): `make sandbox`")

NOTEBOOK_IMPORTS = ["import numpy as np", "from sklearn.cluster import KMeans",
                    "from helpers import clustering", "import ipympl"]


def _folder(tmp_path, name, extra_bytes=0):
    folder = tmp_path / name
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("\n".join(NOTEBOOK_IMPORTS))]
    nbformat.write(nb, folder / "student.ipynb")
    (folder / "shipped.txt").write_text(f"{name}'s file")
    if extra_bytes:
        (folder / "big.bin").write_bytes(b"x" * extra_bytes)
    return folder


def _run(folder, code, **traits):
    """Start a sandboxed kernel in ``folder``, run ``code``, return its stdout, the kernel's
    user id and whether it was warm (the kernel is shut down before returning)."""
    return asyncio.run(_arun(folder, textwrap.dedent(code), traits))


async def _arun(folder, code, traits):
    km = SandboxKernelManager(kernel_name="python3", **traits)
    await km.start_kernel(cwd=str(folder))
    kc = km.client()
    kc.start_channels()
    out = []
    try:
        await kc.wait_for_ready(timeout=120)
        reply = await kc.execute_interactive(
            code, timeout=60,
            output_hook=lambda m: out.append(m["content"].get("text", ""))
            if m["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        uid, warm_kernel = km._box_uid, km._warm_zygote is not None
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
    return "".join(out), uid, warm_kernel


PROBE = """
import json, os, resource, sys
print(json.dumps({
    "uid": os.getuid(), "ppid": os.getppid(), "cwd": os.getcwd(),
    "shipped": open("shipped.txt").read(),
    "preloaded": "sklearn.cluster" in sys.modules, "ipympl": "ipympl" in sys.modules,
    "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0],
    "as": resource.getrlimit(resource.RLIMIT_AS)[0],
    "tmp": sorted(os.listdir("/tmp")), "shm": sorted(os.listdir("/dev/shm")),
    "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "sysv_shm": open("/proc/sysvipc/shm").read().splitlines()[1:],
    "rng": float(__import__("numpy").random.random()),
}))
"""

LEAVE_TRACES = """
import ctypes, os, subprocess
open("/tmp/secret-of-a", "w").write("answers")
os.mkdir("/tmp/dir-of-a"); open("/tmp/dir-of-a/x", "w").write("x")
open("/dev/shm/shm-of-a", "w").write("x")
libc = ctypes.CDLL(None)
assert libc.shmget(0x5EC7E7, 4096, 0o1666) >= 0   # IPC_CREAT | 0666: for anyone to read
subprocess.Popen(["sleep", "600"], start_new_session=True)   # outlives its kernel
try:
    open("shipped.txt", "w").write("changed")
    print("WROTE ITS FOLDER")
except OSError as exc:
    print("folder read-only:", type(exc).__name__)
"""


def _probe(folder, **traits):
    text, uid, warm_kernel = _run(folder, PROBE, **traits)
    return json.loads(text.strip().splitlines()[-1]), uid, warm_kernel


def test_a_warm_kernel_is_forked_preloaded_and_limited(tmp_path):
    folder = _folder(tmp_path, "a")
    os.mkfifo(folder / "a-fifo")  # copying the folder must not open it (it would block)
    a, uid_a, warm_a = _probe(folder)
    b, uid_b, warm_b = _probe(_folder(tmp_path, "b"))
    assert warm_a and warm_b
    # forked from the same zygote, which imported what the notebook imports, but not ipympl
    assert a["ppid"] == b["ppid"]
    assert a["preloaded"] and b["preloaded"] and not a["ipympl"] and not b["ipympl"]
    # each its own user id, its own copy of its own folder, its limits
    assert a["uid"] == uid_a != uid_b == b["uid"]
    assert (a["shipped"], b["shipped"]) == ("a's file", "b's file")
    assert a["cwd"] != b["cwd"] and not a["cwd"].startswith(str(tmp_path))
    assert a["nproc"] == SandboxKernelManager().max_processes
    assert a["as"] == SandboxKernelManager().memory_mb << 20
    # forked children do not share numpy's global random stream
    assert a["rng"] != b["rng"]


def test_the_next_student_finds_nothing_of_the_last(tmp_path):
    folder_a = _folder(tmp_path, "a")
    text, uid_a, warm_a = _run(folder_a, LEAVE_TRACES)
    assert warm_a and "folder read-only: PermissionError" in text, text
    b, uid_b, _ = _probe(_folder(tmp_path, "b"))
    assert not [n for n in b["tmp"] if "of-a" in n], b["tmp"]
    assert "shm-of-a" not in b["shm"]
    assert not [line for line in b["sysv_shm"] if str(uid_a) in line.split()], b["sysv_shm"]
    # only the zygote's sandbox init, the zygote and b's own kernel are left
    assert len(b["procs"]) <= 3, b["procs"]
    # and nothing of a runs on the host either
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                assert os.stat(entry.path).st_uid != uid_a, f"a's process {entry.name} survived"
            except FileNotFoundError:
                pass
    # a's box is gone; b cannot list the other boxes
    text, _, _ = _run(_folder(tmp_path, "c"), """
        import os
        boxes = os.path.dirname(os.path.dirname(os.getcwd()))
        try:
            print("LISTED", os.listdir(boxes))
        except OSError as exc:
            print("boxes unlisted:", type(exc).__name__)
        """)
    assert "boxes unlisted: PermissionError" in text, text


def test_a_large_folder_or_warm_false_gets_a_fresh_sandbox(tmp_path):
    big, _, warm_big = _probe(_folder(tmp_path, "big", extra_bytes=2 << 20), warm_copy_mb=1)
    assert not warm_big and big["cwd"] == str(tmp_path / "big") and not big["preloaded"]
    cold, _, warm_cold = _probe(_folder(tmp_path, "cold"), warm=False)
    assert not warm_cold and cold["cwd"] == str(tmp_path / "cold")


def test_preload_names_only_the_course_packages(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os, numpy as np\nfrom helpers.checks import kmeans as check\n"
        "import evil_module\nfrom matplotlib_inline import backend_inline\n"
        "from helpers.models import (LENET5_LAYERS,\n    ALEXNET_LAYERS)\nimport ipympl")]
    nbformat.write(nb, tmp_path / "n.ipynb")
    names = warm.preload_modules(tmp_path)
    assert "numpy" in names and "helpers.checks|kmeans" in names
    assert "helpers.models|LENET5_LAYERS" in names
    assert not [n for n in names if n.startswith(("os", "evil", "matplotlib_inline", "ipympl"))]
    # What helpers imports inside its functions comes too (check_lloyd's sklearn.cluster:
    # 1.2 s in every kernel otherwise), read from helpers' source ...
    assert "sklearn.cluster" in names
    # ... but a lazily imported torch only for a notebook that imports torch itself.
    nb.cells = [nbformat.v4.new_code_cell("from helpers.conv import conv2d")]
    nbformat.write(nb, tmp_path / "n.ipynb")
    names = warm.preload_modules(tmp_path)
    assert "helpers.conv|conv2d" in names and not [n for n in names if n.startswith("torch")]
    nb.cells = [nbformat.v4.new_code_cell("import torch\nfrom helpers.conv import conv2d")]
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert "torch.nn.functional" in warm.preload_modules(tmp_path)


def test_a_zygote_that_stops_answering_is_replaced(tmp_path, monkeypatch):
    import psutil

    monkeypatch.setattr(warm, "PING_TIMEOUT", 1)
    _, _, was_warm = _probe(_folder(tmp_path, "a"))
    assert was_warm
    (old,) = [z for z in warm._ZYGOTES.values() if z.alive()]
    python = [p for p in psutil.Process(old.proc.pid).children(recursive=True)
              if p.uids().real == 0 and p.name().startswith("python")]
    assert len(python) == 1, python
    python[0].suspend()   # wedged: alive, but its loop never answers
    b, _, b_warm = _probe(_folder(tmp_path, "b"))
    assert b_warm and b["shipped"] == "b's file"
    (new,) = [z for z in warm._ZYGOTES.values() if z.alive()]
    assert new is not old and old.proc.poll() is not None
