"""Warm grading kernels: one pre-imported Python per grading process, forked per student.

A graded 01-kmeans notebook costs ~5 CPU-seconds, and more than half of that is the same for
every student: starting Python and ipykernel (~0.6 s) and importing numpy, matplotlib,
scikit-learn (scipy.stats alone ~1 s), torch (~2.5 s) and ``helpers``. A *zygote* does that
once: a Python process inside one long-lived bubblewrap sandbox that imports the modules the
assignment's notebook imports and then, for each kernel, forks a child that becomes the
student's kernel. The child pays only ipykernel's start-up.

What stays the same as a fresh sandbox per kernel (``grading/sandbox.py``): a read-only
system and environment, no network, own PID/IPC/UTS namespaces, a fresh unprivileged user id
per kernel (so ``RLIMIT_NPROC`` counts only that kernel's processes, and the kernel cannot
signal, trace or read anything of another), its rlimits (set in the child before it drops
root), no capabilities, ``no_new_privs``, ``--die-with-parent``, no gradebook, no other
submission, no ``solutions/``.

What the students of one grading process now share, and how they are kept apart:

- the sandbox's ``/tmp``, ``/dev/shm``, SysV IPC and loopback network: after each kernel, a
  cleaner running as that kernel's user id kills every process of it (so nothing it left
  running survives into the next student) and deletes its files in ``/tmp`` and
  ``/dev/shm`` and its SysV IPC objects;
- the kernel's folder: each kernel gets its own box, ``<zygote>/boxes/<random>`` (mode 0700,
  owned by the kernel's user id; ``boxes/`` itself cannot be listed), holding the kernel's
  sockets, its ``$HOME`` and a read-only *copy* of the student's notebook folder as its
  working directory (a fresh sandbox binds the folder itself, read-only);
- the zygote's memory at the fork: only imported modules, nothing of any student.

A notebook folder larger than ``SandboxKernelManager.warm_copy_mb`` (a student who shipped a
data set), a machine where the grader is not root (no user id per kernel), and any failure
to start the zygote fall back to a fresh sandbox for that kernel, and the log says why.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# Modules a zygote may import for an assignment: only these packages (and their submodules),
# and only as named by the notebook's own import statements.
PRELOAD_PACKAGES = ("numpy", "scipy", "sklearn", "matplotlib", "torch", "helpers",
                    "ipywidgets", "pandas")
# Never before a kernel exists: they bind themselves to the running IPython shell (inline
# figures, ipympl's canvas) or choose pyplot's backend at import.
PRELOAD_NEVER = ("matplotlib_inline", "ipympl", "matplotlib.backends")
# What every kernel imports anyway.
PRELOAD_ALWAYS = ("IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell",
                  "jupyter_client.session", "zmq", "numpy", "matplotlib", "matplotlib.pyplot")

_FROM = re.compile(r"^\s*from\s+([A-Za-z_][\w.]*)\s+import\s+\(?\s*([\w\s,]*)")
_IMPORT = re.compile(r"^\s*import\s+([A-Za-z_][\w.]*(?:\s+as\s+\w+)?"
                     r"(?:\s*,\s*[A-Za-z_][\w.]*(?:\s+as\s+\w+)?)*)\s*(?:#.*)?$")

READY_TIMEOUT = 180  # seconds for the zygote's imports (torch on a loaded machine)
PING_TIMEOUT = 10    # seconds for a zygote's loop to answer before it is replaced

# --------------------------------------------------------------------------- in the sandbox
# The zygote: imports, then serves "fork a kernel" requests on a Unix socket that only the
# grader (root outside, in a 0700 folder) can reach. Single-threaded: it refuses to serve
# if an import started a thread (fork would copy held locks).
_ZYGOTE = r"""
import ctypes, importlib, json, os, resource, select, shutil, signal, socket, sys, time
cfg = json.loads(sys.argv[1])
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
failed = []
for name in cfg["preload"]:
    parent, _, attr = name.partition("|")
    try:
        module = importlib.import_module(parent)
        if attr and not hasattr(module, attr):  # "from X import y" where y is a submodule
            try:
                importlib.import_module(f"{parent}.{attr}")
            except ModuleNotFoundError:
                pass
    except BaseException as exc:  # a module that cannot import is imported by the kernel
        failed.append(f"{name}: {type(exc).__name__}")
threads = len(os.listdir("/proc/self/task"))
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(cfg["socket"])
srv.listen(16)
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *a: None)
print(json.dumps({"ready": True, "threads": threads, "failed": failed}), flush=True)
if threads != 1:
    sys.exit(3)
os.dup2(os.open("/dev/null", os.O_RDWR), 1)

libc = ctypes.CDLL(None, use_errno=True)

def live(uid):
    me = str(os.getpid())  # the cleaner itself runs as that user
    for name in os.listdir("/proc"):
        if not name.isdigit() or name == me:
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in "ZX":
                    return True
        except (OSError, IndexError):
            continue
    return False

def clean(uid):
    # As the kernel's user: kill all its processes, then remove its files and IPC objects.
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            for _ in range(400):  # until no live process of this user is left
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break
                if not live(uid):
                    break
                time.sleep(0.005)
            for top in ("/tmp", "/dev/shm"):
                for entry in os.scandir(top):
                    try:
                        if entry.stat(follow_symlinks=False).st_uid != uid:
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.unlink(entry.path)
                    except OSError:
                        pass
            # /proc/sysvipc/<kind>: the id is column 1, the owner's uid column 7 (sem: 4)
            for kind, ctl, uid_col in (("shm", libc.shmctl, 7), ("sem", libc.semctl, 4),
                                       ("msg", libc.msgctl, 7)):
                try:
                    lines = open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]
                except OSError:
                    continue
                for line in lines:
                    f = line.split()
                    try:
                        if int(f[uid_col]) == uid:
                            args = [int(f[1]), 0] if kind == "sem" else [int(f[1])]
                            ctl(*args, 0, None)  # IPC_RMID
                    except (ValueError, IndexError):
                        pass
        finally:
            os._exit(0)
    while True:
        try:
            os.waitpid(pid, 0)
            break
        except ChildProcessError:
            break
        except InterruptedError:
            continue

def become_kernel(req, conn):
    # Runs in the forked child: never returns.
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh Python
        for fd in (srv.fileno(), wake_r, wake_w, conn.fileno(), *[c.fileno() for c in conns]):
            try:
                os.close(fd)
            except OSError:
                pass
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.setsid()
        for name, value in req["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        uid = req["uid"]
        if not isinstance(uid, int) or uid < 1000:
            raise ValueError(f"refusing to run a kernel as user {uid!r}")
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        os.umask(0o022)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        os.makedirs(os.environ["MPLCONFIGDIR"], exist_ok=True)
        if "numpy.random" in sys.modules:  # a forked child must not share the global stream
            sys.modules["numpy.random"].seed()
        import importlib.util
        sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, *req["args"]]
        from ipykernel import kernelapp
        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        os._exit(code)

# Each round ends kernels before it starts one: a student's clean-up is complete before the
# next kernel of this process exists.
conns = {}      # socket -> (kernel pid, uid)
by_pid = {}     # kernel pid -> socket
while True:
    try:
        ready, _, _ = select.select([srv, wake_r, *conns], [], [])
    except InterruptedError:
        continue
    if wake_r in ready:
        try:
            os.read(wake_r, 512)
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = by_pid.pop(pid, None)
            if conn is None:
                continue
            _, uid = conns.pop(conn)
            clean(uid)
            try:
                conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
            except OSError:
                pass
            conn.close()
    for conn in [c for c in ready if c in conns]:
        try:
            gone = not conn.recv(64)
        except OSError:
            gone = True
        if gone:  # the grader let go of this kernel: end it
            pid, uid = conns.pop(conn)
            by_pid.pop(pid, None)
            clean(uid)
            conn.close()
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    if srv in ready:
        conn, _ = srv.accept()
        conn.settimeout(10)
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            req = json.loads(data)
        except (OSError, ValueError):
            conn.close()
            continue
        if req.get("ping"):  # the grader checks that this loop still answers
            try:
                conn.sendall(b"pong\n")
            except OSError:
                pass
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            become_kernel(req, conn)
        conns[conn] = (pid, req["uid"])
        by_pid[pid] = conn
        conn.sendall(f"pid {pid}\n".encode())
"""

# The kernel process jupyter_client sees: asks the zygote for a kernel, lives as long as it
# does and exits with its code. Killing it (the manager's kill, SIGTERM) ends the kernel.
_PROXY = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
code = 1
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
    for line in buf.split(b"\n")[:-1]:
        if line.startswith(b"exit "):
            code = int(line.split()[1])
    buf = buf.rsplit(b"\n", 1)[-1]
sys.exit(code if code >= 0 else 128 - code)
"""


# --------------------------------------------------------------------------- on the host


def preload_modules(folder, limit=8 << 20):
    """The modules the notebooks in ``folder`` import, as far as a zygote may import them
    (``PRELOAD_PACKAGES`` less ``PRELOAD_NEVER``), plus ``PRELOAD_ALWAYS``. The notebooks
    are only parsed, never run."""
    names = list(PRELOAD_ALWAYS)
    for path in sorted(Path(folder).glob("*.ipynb")):
        try:
            if path.stat().st_size > limit:
                continue
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        for cell in cells if isinstance(cells, list) else []:
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else str(src)
            for line in src.splitlines():
                m = _FROM.match(line)
                if m:  # "from X import y": y may be a submodule ("X|y": imported if it is)
                    names.append(m.group(1))
                    names += [f"{m.group(1)}|{part.split()[0]}"
                              for part in m.group(2).split(",") if part.split()]
                    continue
                m = _IMPORT.match(line)
                if m:
                    names += [part.split()[0] for part in m.group(1).split(",") if part.strip()]
    names += _helpers_lazy_imports(names)
    out = []
    for name in names:
        full = name.replace("|", ".")
        if full.split(".")[0] not in PRELOAD_PACKAGES and name not in PRELOAD_ALWAYS:
            continue
        if any(full == n or full.startswith(n + ".") for n in PRELOAD_NEVER):
            continue
        if name not in out:
            out.append(name)
    return out


# Packages whose modules helpers imports inside functions are preloaded even when the
# notebook does not name the package itself: the numpy stack every unit uses. A lazily
# imported torch is preloaded only for a notebook that imports torch (2.5 s a zygote).
LAZY_ALWAYS = ("scipy", "sklearn")


def _helpers_lazy_imports(names):
    """What the ``helpers`` modules in ``names`` (and the helpers modules they import) import
    inside functions, e.g. ``helpers.checks.kmeans``'s ``from sklearn.cluster import KMeans``
    in ``check_lloyd``: 1.2 s in every graded 01 kernel, once a zygote for all of them. Read
    from helpers' own source files (the course's code, not the student's), never run."""
    import ast
    from importlib.util import find_spec

    try:
        spec = find_spec("helpers")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0])
    tops = {n.replace("|", ".").split(".")[0] for n in names}
    allowed = {p for p in PRELOAD_PACKAGES if p in LAZY_ALWAYS or p in tops} - {"helpers"}

    def source(module):   # helpers.a.b -> helpers/a/b.py or helpers/a/b/__init__.py
        rel = Path(*module.split(".")[1:])
        for path in ((root / rel).with_suffix(".py") if rel.parts else None,
                     root / rel / "__init__.py"):
            if path is not None and path.is_file():
                return path
        return None

    todo = []
    for name in names:
        full = name.replace("|", ".")
        if full.split(".")[0] == "helpers":
            todo.append(full if source(full) else name.split("|")[0])
    seen, found = set(), []
    while todo:
        module = todo.pop()
        path = source(module) if module not in seen else None
        seen.add(module)
        if path is None:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            lazy = id(node) not in top_level
            if targets[0].split(".")[0] in allowed and lazy:
                found.append(targets[0])
            todo += [t for t in targets if t.split(".")[0] == "helpers" and source(t)]
    return list(dict.fromkeys(found))


def folder_size(path, limit):
    """Bytes in ``path`` (not following links), or None once past ``limit``."""
    total = 0
    for root, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            if total > limit:
                return None
    return total


def copy_readonly(src, dest):
    """Copy a notebook folder for a kernel to read: regular files and links only (never
    open a FIFO or a device a submission may hold), root-owned, not writable by it."""
    src = Path(src)
    for root, dirs, files in os.walk(src, followlinks=False):
        out = Path(dest) / Path(root).relative_to(src)
        out.mkdir(mode=0o755)
        os.chmod(out, 0o755)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = os.path.join(root, name)
            if os.path.islink(path):
                os.symlink(os.readlink(path), out / name)
            elif stat.S_ISREG(os.lstat(path).st_mode):
                shutil.copyfile(path, out / name, follow_symlinks=False)
                os.chmod(out / name, 0o644)


class Zygote:
    """One warm sandbox: its bwrap process, its control socket and its boxes folder."""

    def __init__(self, args, preload, log):
        self.dir = Path(tempfile.mkdtemp(prefix="day6-zygote-"))
        os.chmod(self.dir, 0o711)
        (self.dir / "ctl").mkdir(mode=0o700)
        (self.dir / "boxes").mkdir(mode=0o711)
        (self.dir / "home").mkdir(mode=0o755)
        self.socket = str(self.dir / "ctl" / "zygote.sock")
        self.log = log
        self.proc = None
        self.error = None
        cfg = {"preload": preload, "socket": self.socket}
        try:
            self.proc = subprocess.Popen([*args(self.dir), "-I", "-c", _ZYGOTE,
                                          json.dumps(cfg)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
                                         cwd=str(self.dir))
        except OSError as exc:
            self.error = f"could not start: {exc}"
            return
        line = _readline(self.proc.stdout, READY_TIMEOUT)
        try:
            info = json.loads(line) if line else None
        except ValueError:
            info = None
        if not info or not info.get("ready"):
            self.error = "did not become ready"
        elif info["threads"] != 1:
            self.error = f"an import started threads ({info['threads']}): forking is unsafe"
        elif info["failed"]:
            log.info("warm kernels: not preloaded (the kernel imports them): %s",
                     ", ".join(info["failed"]))
        if self.error:
            self.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def answers(self, timeout=None):
        """True when the zygote's loop answers a ping within ``timeout`` s (a stopped or
        wedged zygote would leave every later kernel of this process waiting to start)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout or PING_TIMEOUT)
                s.connect(self.socket)
                s.sendall(b'{"ping": true}\n')
                return s.recv(16).startswith(b"pong")
        except OSError:
            return False

    def new_box(self, uid):
        box = self.dir / "boxes" / secrets.token_hex(8)
        box.mkdir(mode=0o700)
        for sub in ("run", "home"):
            (box / sub).mkdir(mode=0o700)
            os.chown(box / sub, uid, uid)
        os.chown(box, uid, uid)
        return box

    def kernel_command(self, request):
        return [sys.executable, "-I", "-S", "-c", _PROXY, self.socket, json.dumps(request)]

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _readline(stream, timeout):
    """One line from a pipe, or '' after ``timeout`` seconds (the zygote hung)."""
    out = []
    t = threading.Thread(target=lambda: out.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return out[0].decode(errors="replace") if out else ""


_ZYGOTES: dict = {}
_LOCK = threading.Lock()


def zygote_for(key, args, preload, log):
    """The live zygote for this sandbox configuration, started on first use (with the
    first notebook's imports). None when it cannot run: the caller starts a fresh sandbox."""
    with _LOCK:
        z = _ZYGOTES.get(key)
        if z is not None and z.alive() and z.answers():
            return z
        if z is not None:
            if z.error is None:
                log.warning("warm kernels: the zygote %s; starting another",
                            "does not answer" if z.alive() else
                            f"exited (code {z.proc.poll() if z.proc else None})")
            z.close()
            if z.error is not None:
                return None  # it could not start: do not retry for every student
        z = Zygote(args, preload, log)
        _ZYGOTES[key] = z
        if z.error is not None:
            log.warning("warm kernels unavailable (%s): each kernel gets a fresh sandbox",
                        z.error)
            return None
        return z


def close_all():
    with _LOCK:
        for z in _ZYGOTES.values():
            z.close()
        _ZYGOTES.clear()


import atexit  # noqa: E402

atexit.register(close_all)
