"""A long-lived ``nbgrader autograde``: one process per grading thread, student after student.

The harness used to start one ``nbgrader`` process per batch of students. Each start costs
its imports (nbgrader, Jupyter, and in the re-judge scikit-learn and the checkers: about 2-3
CPU-seconds), a good part of a 01 student's ~6. A ``Worker`` starts this process once, then
sends it one student at a time; each request runs nbgrader's own ``AutogradeApp`` (a fresh
instance, configured from ``grading/nbgrader_config.py`` as the command line is) in the
worker's private course. Isolation is unchanged: student code runs in the sandboxed kernel
that nbgrader starts for each notebook, never in this process, and each student's verdict
comes from that student's executed notebook. What stays warm is only trusted code: imports
and the checkers' caches.

Protocol: one JSON request per line on stdin (``{"args": [...], "log": path}``); one JSON
reply per line on a private pipe (file descriptor given on the command line, closed to
kernels), so nothing a kernel writes to a standard stream can pose as a reply. A request
that runs past its time limit, or a worker that dies, costs only the student it was grading:
the harness kills the process group and starts a fresh worker for the next one.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import traceback
from pathlib import Path

GRADING = Path(__file__).resolve().parent

# What every nbgrader process the harness starts runs first: nbformat ->
# jsonschema[format-nongpl] imports `rfc3987_syntax`, which builds IRI grammars at import
# (~1 s of every process) for string formats no nbgrader schema uses; kept out, jsonschema
# simply does not check those formats.
PRELUDE = "import sys; sys.modules.setdefault('rfc3987_syntax', None); "
# -P: grading/ (the working folder) is not put on sys.path. sys.argv: reply fd, a folder for
# sys.path (the course root), "module:function" to serve.
_BOOT = (PRELUDE + "import importlib; sys.path.insert(0, sys.argv[2]); "
         "m, f = sys.argv[3].split(':'); getattr(importlib.import_module(m), f)(int(sys.argv[1]))")


# --------------------------------------------------------------------------- worker side

def serve(reply_fd):
    """The worker's loop (runs in the child, cwd grading/)."""
    os.set_inheritable(reply_fd, False)
    replies = os.fdopen(reply_fd, "w", buffering=1)
    from nbgrader.apps.autogradeapp import AutogradeApp

    for line in sys.stdin:
        request = json.loads(line)
        started = time.monotonic()
        rc = _autograde(AutogradeApp, request["args"], request["log"])
        replies.write(json.dumps({"rc": rc, "seconds": time.monotonic() - started}) + "\n")


def _autograde(app_class, args, log_path):
    saved = sys.stdout, sys.stderr
    with open(log_path, "a", buffering=1) as log:
        sys.stdout = sys.stderr = log  # the app's log handler is bound to sys.stderr as made
        app = None
        try:
            app = app_class()
            app.initialize(list(args))
            app.start()
            rc = 0
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - reported in the student's log, worker goes on
            traceback.print_exc(file=log)
            rc = 1
        finally:
            sys.stdout, sys.stderr = saved
            if app is not None:
                try:
                    app.reset()  # nbgrader's: closes the log handlers it added
                except Exception:  # noqa: BLE001 - a half-made app; the next one is fresh
                    pass
            app_class.clear_instance()
    return rc


# --------------------------------------------------------------------------- harness side

class WorkerDied(RuntimeError):
    pass


class Worker:
    """A handle on one worker process; ``autograde`` it student after student, then
    ``close``. Not thread-safe: one per grading thread."""

    #: students one process grades before a fresh one takes over: its memory grows ~2 MB a
    #: student (nbgrader's and Jupyter's leftovers), so a 300-student class would add 0.5 GB
    max_requests = 40

    def __init__(self, env, repo, target="grading.autograde_worker:serve", max_requests=None):
        self._env, self._repo, self._target = env, repo, target
        self.max_requests = max_requests or self.max_requests
        self.proc = None
        self._served = 0

    def _start(self):
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-c", _BOOT, str(write_fd), str(self._repo), self._target],
            cwd=GRADING, env=self._env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, pass_fds=(write_fd,), text=True,
            start_new_session=True)
        os.close(write_fd)
        self._replies = os.fdopen(read_fd, "r")
        self._buffer = ""

    def autograde(self, args, log, timeout):
        """Run ``nbgrader autograde ARGS`` in the worker; returns its exit status. Raises
        ``subprocess.TimeoutExpired`` past ``timeout`` s and ``WorkerDied`` if the process
        ends; either way the process is gone and the next call starts a fresh one."""
        if self.proc is not None and self._served >= self.max_requests:
            self.close()
        if self.proc is None or self.proc.poll() is not None:
            self._start()
            self._served = 0
        self._served += 1
        try:
            self.proc.stdin.write(json.dumps({"args": list(args), "log": str(log)}) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            self.kill()
            raise WorkerDied(f"the grading worker could not be reached ({exc})") from exc
        deadline = time.monotonic() + timeout
        while "\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise subprocess.TimeoutExpired(["autograde", *args], timeout)
            ready, _, _ = select.select([self._replies], [], [], min(left, 5))
            if not ready:
                continue
            chunk = os.read(self._replies.fileno(), 65536).decode()
            if not chunk:
                rc = self.proc.wait()
                self.kill()
                raise WorkerDied(f"the grading worker ended (exit {rc})")
            self._buffer += chunk
        line, self._buffer = self._buffer.split("\n", 1)
        return json.loads(line)["rc"]

    def kill(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self._replies.close()
        self.proc = None

    def close(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
