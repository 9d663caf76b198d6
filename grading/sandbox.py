"""Run each grading kernel in a bubblewrap sandbox.

``SandboxKernelManager`` is a jupyter_client kernel manager that nbgrader's execute step uses
(see ``grading/nbgrader_config.py``). It wraps the kernel command in ``bwrap`` so that the
student's code:

- sees a read-only system (``/usr``, ``/etc``), the read-only Python environment and
  ``helpers``, its own notebook folder (read-only), a small private ``/tmp`` and nothing else:
  no gradebook, no other submissions, no ``solutions/``, no ``/root``;
- has no network (``--unshare-net``: only an empty loopback), its own PID, IPC and UTS
  namespaces, and dies with the grader (``--die-with-parent``);
- runs as an unprivileged user id of its own (a fresh one per kernel, so that the process
  limit counts only this kernel's processes: ``RLIMIT_NPROC`` does not bind root), with no
  capabilities and ``no_new_privs``;
- is limited in address space (memory), processes, open files, file size and CPU time.

The kernel talks to nbgrader over the ``ipc`` transport: its sockets and connection file
live in a private folder that is the only writable path shared with the host.

Two traps from the feasibility notes are avoided: ipykernel's parent poller is never
started (the environment is cleared, so ``JPY_PARENT_PID`` is unset and the kernel is not
mistaken for an orphan under ``--unshare-pid``), and the interpreter the virtual environment
links to (under ``/root/.pyenv``) is bound on its own, without the rest of ``/root``.

By default (``warm``) the kernel is not a fresh Python in a fresh sandbox but a fork of the
grading process's zygote, a pre-imported Python in one long-lived sandbox with the same
walls; each kernel still gets its own user id, rlimits and box, and is cleaned up after
(``grading/warm.py`` says what the students of one process share and how they are kept
apart). ``warm = False`` gives every kernel a fresh sandbox.

Where bubblewrap is missing or cannot start (a laptop, a container without namespaces),
the kernel runs unprotected and every notebook graded that way says so, loudly.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from functools import lru_cache
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer, List, Unicode

from grading import warm

MiB = 1 << 20

# Runs inside the sandbox, as root with only CAP_SETUID/CAP_SETGID (bwrap dropped the rest):
# set the limits, become the unprivileged user, prepare $HOME, then become the kernel.
_LAUNCHER = r"""
import json, os, resource, shutil, signal, sys
cfg = json.loads(sys.argv[1])
for name, value in cfg["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
uid = cfg["uid"]
if uid is not None and os.getuid() == 0:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
if cfg["seed_files"]:
    os.makedirs(os.environ["MPLCONFIGDIR"], exist_ok=True)
for src in cfg["seed_files"]:
    try:
        shutil.copy(src, os.environ["MPLCONFIGDIR"])
    except OSError:
        pass
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[2], sys.argv[2:])
"""

# Only these variables of the grader's environment reach the kernel (no tokens, no paths).
PASSTHROUGH = ("NBGRADER_EXECUTION", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE",
               "OPENBLAS_L2_SIZE", "MPLBACKEND")


@lru_cache(maxsize=1)
def bwrap_status():
    """(usable, reason): can this process start bubblewrap sandboxes?"""
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bubblewrap (bwrap) is not installed: run `make sandbox` (as root)"
    args = [exe, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent"]
    if os.geteuid() != 0:
        args.append("--unshare-user")
    try:
        proc = subprocess.run([*args, "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap could not start: {exc}"
    if proc.returncode != 0:
        return False, f"bwrap could not start: {proc.stderr.strip()[:300]}"
    if os.geteuid() != 0:
        return True, "sandboxed without a separate user id (not root): no process limit"
    return True, "sandboxed"


def warn_unprotected(reason, log=None):
    msg = ("\n" + "!" * 78 + "\n!! GRADING UNPROTECTED: student code runs with your rights, "
           "can read the gradebook\n!! and other submissions and use the network.\n!! "
           f"Reason: {reason}\n" + "!" * 78)
    if log is not None:
        log.warning(msg)
    else:
        warnings.warn(msg, stacklevel=2)


def _mount_parents(paths):
    """bwrap creates missing parent folders with mode 0700, which an unprivileged kernel
    cannot traverse: create every parent explicitly with mode 0755 first."""
    parents = set()
    for p in paths:
        for parent in Path(p).parents:
            if str(parent) != "/":
                parents.add(str(parent))
    args = []
    for parent in sorted(parents, key=lambda s: (s.count("/"), s)):
        args += ["--perms", "0755", "--dir", parent]
    return args


def _system_binds():
    """Read-only binds for the system: /usr, /etc and the top-level links into /usr."""
    args = []
    for top in ("usr", "etc", "opt"):
        if os.path.isdir(f"/{top}"):
            args += ["--ro-bind", f"/{top}", f"/{top}"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{top}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


@lru_cache(maxsize=4)
def kernel_helpers(python=None):
    """Where a kernel started from this environment imports ``helpers`` from: the package
    folder, or None when it cannot import it. Asked of a fresh interpreter in a neutral
    folder, because the grader's own ``sys.path`` (nbgrader_config.py puts the course root
    first) may find another copy than the kernel will."""
    python = python or sys.executable
    code = ("import importlib.util as u\ns = u.find_spec('helpers')\n"
            "print(s.submodule_search_locations[0] if s and s.submodule_search_locations "
            "else '')")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        proc = subprocess.run([python, "-c", code], cwd="/", env=env, capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = proc.stdout.strip()
    return str(Path(out).resolve()) if proc.returncode == 0 and out else None


def environment_paths():
    """What the kernel must read: the virtual environment, the interpreter it links to and
    the ``helpers`` package the kernel will import (an editable install points into a
    repository, of which only ``helpers/`` and ``data/`` are bound)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(os.path.realpath(sys.executable)).parent.parent)}
    locations = [kernel_helpers()]
    spec = importlib.util.find_spec("helpers")
    if spec is not None and spec.submodule_search_locations:
        locations += list(spec.submodule_search_locations)
    for loc in filter(None, locations):
        paths.add(str(Path(loc).resolve()))
        data = Path(loc).resolve().parent / "data"
        if data.is_dir():
            paths.add(str(data))
    system = ("/usr", "/etc", "/opt")
    out = []
    for p in sorted(paths):
        if p.startswith(system) or not os.path.isdir(p):
            continue
        if any(p.startswith(q.rstrip("/") + "/") for q in out):
            continue
        out.append(p)
    return out


@lru_cache(maxsize=1)
def matplotlib_cache_files():
    """The grader's matplotlib font cache, copied into each kernel's $HOME so that every
    kernel does not spend seconds rebuilding it."""
    try:
        import matplotlib
        from matplotlib import font_manager  # noqa: F401  (builds the cache if missing)
    except Exception:  # pragma: no cover - matplotlib is a dependency
        return ()
    cache = Path(matplotlib.get_cachedir())
    return tuple(str(p) for p in cache.glob("fontlist-*.json"))


class SandboxKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels run inside bubblewrap (see module docs)."""

    sandbox = Bool(True, help="Run kernels in bubblewrap (when it is available).").tag(config=True)
    require_sandbox = Bool(
        False, help="Refuse to start a kernel when the sandbox is unavailable "
        "(instead of running it unprotected with a loud warning).").tag(config=True)
    memory_mb = Integer(6144, help="Address-space limit of each kernel process "
                        "(RLIMIT_AS), MiB.").tag(config=True)
    max_processes = Integer(128, help="Processes and threads of one kernel (RLIMIT_NPROC, "
                            "for the kernel's own user id).").tag(config=True)
    max_file_mb = Integer(64, help="Largest file the kernel may write, MiB.").tag(config=True)
    tmp_mb = Integer(256, help="Size of the kernel's private /tmp (tmpfs), MiB.").tag(config=True)
    cpu_seconds = Integer(1800, help="CPU seconds per kernel process (a backstop; wall "
                          "time is limited by the execute step).").tag(config=True)
    extra_ro_paths = List(Unicode(), help="More folders the kernel may read.").tag(config=True)
    threads = Integer(1, help="BLAS/OpenMP/torch threads inside the kernel (grading runs "
                      "one kernel per core).").tag(config=True)
    warm = Bool(True, help="Fork each kernel from a pre-imported Python in one long-lived "
                "sandbox per grading process (grading/warm.py), with a user id, a box and a "
                "clean-up of its own per kernel. False: a fresh sandbox per kernel.").tag(config=True)
    warm_copy_mb = Integer(64, help="A warm kernel reads a copy of its notebook folder; a "
                           "larger folder gets a fresh sandbox instead, MiB.").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._box_dir = None
        self._box_uid = None
        self._warm_zygote = None
        self.sandbox_state = "unprotected"

    # ------------------------------------------------------------------ launch
    async def _async_pre_start_kernel(self, **kw):
        usable, reason = bwrap_status() if self.sandbox else (False, "sandbox disabled")
        if not usable:
            if self.require_sandbox:
                raise RuntimeError(f"the grading sandbox is required but unavailable: {reason}")
            self.sandbox_state = f"unprotected: {reason}"
            warn_unprotected(reason, self.log)
            cmd, kw = await super()._async_pre_start_kernel(**kw)
            # No isolation, but the limits still apply (memory, file size, CPU time).
            cfg = {"uid": None, "rlimits": self._rlimits(nproc=False), "seed_files": []}
            return [cmd[0], "-I", "-c", _LAUNCHER, json.dumps(cfg), *cmd], kw

        self._box_uid = 1_000_000 + secrets.randbelow(1_000_000_000) if os.geteuid() == 0 else None
        cwd = os.path.realpath(kw.get("cwd") or os.getcwd())
        zygote = self._zygote(cwd)
        started = await self._start_warm(zygote, cwd, reason, kw) if zygote else None
        if started is not None:
            return started
        box = Path(tempfile.mkdtemp(prefix="day6-kernel-"))
        self._box_dir = box
        (box / "run").mkdir()
        self.transport = "ipc"
        self.ip = str(box / "run" / "ipc")
        self.connection_file = str(box / "run" / "kernel.json")
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        if self._box_uid is not None:
            for path in (box, box / "run", Path(self.connection_file)):
                os.chown(path, self._box_uid, self._box_uid)
        cwd = os.path.realpath(kw.pop("cwd", None) or os.getcwd())
        kw["cwd"] = str(box)
        kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        kw["stdout"] = subprocess.DEVNULL  # the kernel's own fds never reach our terminal
        kw["stderr"] = subprocess.DEVNULL
        self.sandbox_state = f"sandboxed: {reason}" if reason != "sandboxed" else "sandboxed"
        return self._wrap(cmd, cwd), kw

    # ------------------------------------------------------------------ warm kernels
    def _zygote(self, cwd):
        """The zygote to fork this kernel from, or None for a fresh sandbox."""
        if not self.warm or self._box_uid is None:
            return None
        if warm.folder_size(cwd, self.warm_copy_mb * MiB) is None:
            self.log.info("warm kernels: %s is over %d MiB; a fresh sandbox", cwd,
                          self.warm_copy_mb)
            return None
        argv = self.kernel_spec.argv if self.kernel_spec else [sys.executable]
        if argv[1:3] != ["-m", "ipykernel_launcher"]:
            return None  # a zygote becomes ipykernel only
        python = argv[0]
        if python in ("python", f"python{sys.version_info[0]}",
                      f"python{sys.version_info[0]}.{sys.version_info[1]}"):
            python = sys.executable  # as jupyter_client's format_kernel_cmd does
        key = (python, self.tmp_mb, self.threads, tuple(self.extra_ro_paths),
               tuple(sorted(self._env("").items())))

        def args(zdir):
            home = str(zdir / "home")
            mpl = Path(home) / ".matplotlib"
            mpl.mkdir(exist_ok=True)
            for f in matplotlib_cache_files():
                shutil.copy(f, mpl)
            return [*self._bwrap([], [str(zdir)], str(zdir), self._env(home)), python]

        try:
            return warm.zygote_for(key, args, warm.preload_modules(cwd), self.log)
        except OSError as exc:
            self.log.warning("warm kernels unavailable (%s): a fresh sandbox", exc)
            return None

    async def _start_warm(self, zygote, cwd, reason, kw):
        """(command, kwargs) for a kernel forked from ``zygote``; None (and nothing left
        behind) when its box cannot be made: the caller starts a fresh sandbox."""
        box = None
        try:
            box = zygote.new_box(self._box_uid)
            warm.copy_readonly(cwd, box / "work")
        except OSError as exc:
            self.log.warning("warm kernel: could not prepare its box (%s): a fresh sandbox",
                             exc)
            if box is not None:
                shutil.rmtree(box, ignore_errors=True)
            return None
        self._box_dir = box
        self.transport = "ipc"
        self.ip = str(box / "run" / "ipc")
        self.connection_file = str(box / "run" / "kernel.json")
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        os.chown(self.connection_file, self._box_uid, self._box_uid)
        request = {"uid": self._box_uid, "cwd": str(box / "work"),
                   "env": self._env(str(box / "home")),
                   "rlimits": self._rlimits(nproc=True),
                   "args": cmd[3:]}
        kw.pop("cwd", None)
        kw["cwd"] = str(box.parent.parent)
        kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        kw["stdout"] = subprocess.DEVNULL
        kw["stderr"] = subprocess.DEVNULL
        self._warm_zygote = zygote
        self.sandbox_state = f"sandboxed: {reason}" if reason != "sandboxed" else "sandboxed"
        return zygote.kernel_command(request), kw

    def _env(self, home):
        """The kernel's whole environment (bwrap clears the grader's)."""
        env = {"HOME": home, "MPLCONFIGDIR": f"{home}/.matplotlib",
               "USER": "student", "LOGNAME": "student", "SHELL": "/bin/false",
               "PATH": f"{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
               "PYDEVD_DISABLE_FILE_VALIDATION": "1",
               "OMP_NUM_THREADS": str(self.threads), "OPENBLAS_NUM_THREADS": str(self.threads),
               "MKL_NUM_THREADS": str(self.threads), "TORCH_NUM_THREADS": str(self.threads)}
        for name in PASSTHROUGH:
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def _bwrap(self, ro_binds, rw_binds, chdir, env, seeds=()):
        """bwrap's arguments up to ``--``: the system and ``ro_binds`` read-only,
        ``rw_binds`` writable, fresh /proc, /dev, /tmp and /dev/shm, no network."""
        ro = environment_paths() + [p for p in self.extra_ro_paths if os.path.exists(p)]
        args = [shutil.which("bwrap"),
                "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--hostname", "grading-sandbox",
                "--die-with-parent"]
        if self._box_uid is not None:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user"]
        args += _system_binds()
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "01777", "--size", str(self.tmp_mb * MiB), "--tmpfs", "/tmp",
                 "--perms", "01777", "--size", str(64 * MiB), "--tmpfs", "/dev/shm"]
        args += _mount_parents([*ro_binds, *rw_binds, *ro, *(dest for _, dest in seeds)])
        for p in ro:
            args += ["--ro-bind", p, p]
        for p in ro_binds:
            args += ["--ro-bind", p, p]
        for p in rw_binds:
            args += ["--bind", p, p]
        for src, dest in seeds:
            args += ["--ro-bind", src, dest]
        args += ["--clearenv"]
        for k, v in env.items():
            args += ["--setenv", k, v]
        return [*args, "--chdir", chdir, "--"]

    def _wrap(self, cmd, cwd):
        box = self._box_dir
        seeds = [(f, f"/run/day6-seed/{i}-{os.path.basename(f)}")
                 for i, f in enumerate(matplotlib_cache_files())]
        args = self._bwrap([cwd], [str(box / "run")], cwd, self._env("/tmp/home"), seeds)
        # Not root: NPROC would count all of the user's processes, so it is left alone.
        cfg = {"uid": self._box_uid, "rlimits": self._rlimits(self._box_uid is not None),
               "seed_files": [dest for _, dest in seeds]}
        python = cmd[0]
        return [*args, python, "-I", "-c", _LAUNCHER, json.dumps(cfg), *cmd]

    def _rlimits(self, nproc):
        limits = {"RLIMIT_AS": self.memory_mb * MiB, "RLIMIT_FSIZE": self.max_file_mb * MiB,
                  "RLIMIT_NOFILE": 1024, "RLIMIT_CORE": 0, "RLIMIT_CPU": self.cpu_seconds}
        if nproc:
            limits["RLIMIT_NPROC"] = self.max_processes
        return limits

    # ------------------------------------------------------------------ signals
    def _sandbox_pids(self):
        """Processes of this kernel's sandbox user (the kernel and all it started)."""
        if self._box_uid is None:
            return []
        pids = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if os.stat(entry.path).st_uid == self._box_uid:
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def reap_strays(self):
        """Kill the kernel's leftover processes (a fork bomb's children, forgotten
        subprocesses), keeping the kernel itself. Returns how many were killed."""
        pids = self._sandbox_pids()
        if len(pids) <= 1:
            return 0
        mine = set(pids)
        keep = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid not in mine:
                keep.append(pid)  # the kernel: its parent is bwrap's init (root)
        killed = 0
        for pid in pids:
            if pid in keep:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        return killed

    async def _async_interrupt_kernel(self):
        # SIGINT to the process group would also reach bwrap's monitor process, which dies
        # of it (and takes the kernel along): interrupt the sandboxed processes only.
        if self._box_uid is not None and self.has_kernel:
            for pid in self._sandbox_pids():
                try:
                    os.kill(pid, signal.SIGINT)
                except OSError:
                    pass
            return
        await super()._async_interrupt_kernel()

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        if self._box_dir is not None and not restart:
            if self._warm_zygote is not None:
                # The zygote's clean-up runs as this kernel's user: wait for it to finish
                # (so the next kernel starts after it), then end whatever is left.
                deadline = time.monotonic() + 10
                while self._sandbox_pids() and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                for pid in self._sandbox_pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            shutil.rmtree(self._box_dir, ignore_errors=True)
            self._box_dir = None

    cleanup_resources = _async_cleanup_resources
