"""nbgrader's execute step, hardened for hostile notebooks.

``GuardedExecute`` replaces nbgrader's ``Execute`` in the autograde pipeline. On top of it:

- the kernel runs in the sandbox (``grading.sandbox.SandboxKernelManager``);
- every cell has a wall-time limit and the whole notebook has one: a cell that would run past
  the notebook's deadline is interrupted at the deadline, and the cells after it are not run;
- a kernel that dies (``os._exit``, a crash, killed for memory) or stops responding does not
  stop grading: the cell that killed it gets an error, the cells after it are marked as not
  run (so their tests score 0), and the notebook is still scored and saved;
- output is capped per cell and per notebook while it arrives (a 200 MB print never reaches
  the stored notebook), and the kernel's own stdout/stderr never reach the grader's terminal;
- what happened is written to ``nb.metadata["day6_grading"]["events"]`` for the report.

Replay: the batch harness (``python -m grading grade``) runs each student in parallel in a
private copy of the course, then hands the executed notebooks to one ordinary ``nbgrader
autograde`` in the real course with ``--GuardedExecute.replay_dir=DIR``: there, instead of
starting a kernel, the outputs the worker recorded are copied in (after checking that the
notebook's cells are the same), so the real gradebook is written by nbgrader itself, by
one process, in order.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode, read
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode, default

from grading.sandbox import SandboxKernelManager
from helpers.checks._core import RECORD_MIMETYPE  # noqa: F401  (one definition, re-exported)

META = "day6_grading"
NOTEBOOK_TIMEOUT = 900   # seconds per notebook unless configured (GuardedExecute.notebook_timeout)


def grading_meta(nb):
    """The harness's record in the notebook metadata (created on first use)."""
    if not isinstance(nb.metadata.get(META), dict):
        nb.metadata[META] = {}
    meta = nb.metadata[META]
    meta.setdefault("events", [])
    meta.setdefault("flags", [])
    return meta


def add_event(nb, kind, detail, cell=None):
    entry = {"kind": kind, "detail": detail}
    if cell is not None:
        entry["cell"] = cell
    grading_meta(nb)["events"].append(entry)


def cell_name(cell, index):
    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return gid or f"cell {index}"


def error_output(ename, evalue):
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


def _size(msg):
    content = msg.get("content", {})
    if msg.get("msg_type") == "stream":
        return len(content.get("text", ""))
    if msg.get("msg_type") == "error":
        return sum(len(t) for t in content.get("traceback", [])) + len(content.get("evalue", ""))
    data = content.get("data", {}) or {}
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in data.values())


class GuardedExecute(Execute):
    """nbgrader's Execute with a sandboxed kernel, time and output limits and fault handling."""

    notebook_timeout = Integer(
        NOTEBOOK_TIMEOUT, help="Wall-time limit for the whole notebook, seconds.").tag(config=True)
    max_cell_output = Integer(
        1_000_000, help="Characters of text output kept per cell.").tag(config=True)
    max_notebook_output = Integer(
        10_000_000, help="Characters of text output kept per notebook.").tag(config=True)
    max_record_output = Integer(
        64_000_000, help="Characters of recorded check answers kept per notebook.").tag(config=True)
    replay_dir = Unicode(
        "", help="Folder of notebooks already executed by grading workers "
        "(<student>/<notebook>.ipynb): copy their outputs instead of running a kernel. "
        "Used by `python -m grading grade`.").tag(config=True)

    @default("kernel_manager_class")
    def _km_default(self):
        return SandboxKernelManager

    @default("iopub_timeout")
    def _iopub_default(self):
        return 15

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ notebook
    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.notebook_timeout
        self._stopped = None          # why the remaining cells are not run
        self._nb_chars = 0
        self._record_chars = 0
        self._cell_chars = 0
        self._cell_truncated = False
        self._sandbox_state = None
        self._sandbox_uid = None
        meta = grading_meta(nb)
        if self.replay_dir:
            return self._replay(nb, resources)
        if self.timeout_func is None:
            self.timeout_func = self._cell_timeout
        started = time.monotonic()
        try:
            nb, resources = super().preprocess(nb, resources, km=km)
        except Exception as exc:  # the kernel never started, or died between cells
            reason = self._stopped or f"the kernel failed: {type(exc).__name__}: {exc}"
            self.log.error("Grading kernel failed: %s", reason)
            if not self._stopped:
                add_event(nb, "kernel-failed", reason)
            self._stopped = reason
            self._mark_not_run(nb, from_index=0, only_unexecuted=True)
        km_state = getattr(self, "_sandbox_state", None)
        meta["sandbox"] = km_state or "unknown"
        meta["sandbox_uid"] = getattr(self, "_sandbox_uid", None)
        meta["execution_seconds"] = round(time.monotonic() - started, 2)
        return nb, resources

    def _cell_timeout(self, cell):
        remaining = self._deadline - time.monotonic()
        return max(1, int(min(self.timeout or remaining, remaining)))

    async def async_start_new_kernel(self, **kwargs):
        await super().async_start_new_kernel(**kwargs)
        self._sandbox_state = getattr(self.km, "sandbox_state", "unprotected: plain kernel")
        self._sandbox_uid = getattr(self.km, "_box_uid", None)
        if not str(self._sandbox_state).startswith("sandboxed"):
            self.log.warning("Kernel for this notebook runs %s", self._sandbox_state)

    start_new_kernel = run_sync(async_start_new_kernel)

    def _mark_not_run(self, nb, from_index, only_unexecuted=False):
        for cell in nb.cells[from_index:]:
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            if only_unexecuted and cell.get("execution_count") is not None:
                continue
            if only_unexecuted and cell.get("outputs"):
                continue
            cell.outputs = [error_output("NotRun", f"not run: {self._stopped}")]

    # ------------------------------------------------------------------ cells
    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell
        name = cell_name(cell, cell_index)
        if self._stopped is None and time.monotonic() >= self._deadline:
            self._stopped = f"the notebook time limit ({self.notebook_timeout} s) was reached"
            add_event(self.nb, "notebook-timeout", self._stopped, name)
        if self._stopped is not None:
            cell.outputs = [error_output("NotRun", f"not run: {self._stopped}")]
            return cell
        self._cell_chars = 0
        self._cell_truncated = False
        started = time.monotonic()
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        except DeadKernelError:
            self._stopped = f"the kernel died while running {name}"
            add_event(self.nb, "kernel-died", f"the kernel died (exited, crashed or was killed "
                      f"for memory) while running {name}", name)
            cell.outputs.append(error_output("DeadKernelError", "the kernel died while "
                                             "running this cell (os._exit, a crash, or "
                                             "killed for using too much memory)"))
            return cell
        except CellTimeoutError as exc:
            # The interrupt did not bring the kernel back: stop it and grade what we have.
            self._stopped = f"the kernel stopped responding in {name}"
            add_event(self.nb, "kernel-unresponsive", f"{name} timed out and the kernel did "
                      f"not respond to an interrupt ({exc.__class__.__name__})", name)
            cell.outputs.append(error_output("CellTimeoutError", "this cell ran past its time "
                                             "limit and the kernel stopped responding"))
            try:
                await self.km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001 - already dead is fine
                pass
            return cell
        elapsed = time.monotonic() - started
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            reaped = self._reap()
            if reaped:
                add_event(self.nb, "stray-processes", f"{name} left {reaped} process(es) "
                          "behind (a fork bomb?): killed", name)
        if any(o.get("ename") == "MemoryError" for o in errors):
            await self._release_memory()
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            ename = out.get("ename", "")
            if ename == "CellTimeoutError" or (ename == "KeyboardInterrupt"
                                                and elapsed >= self._cell_timeout(cell) - 1):
                add_event(self.nb, "cell-timeout", f"{name} ran past its time limit "
                          f"({elapsed:.0f} s) and was interrupted", name)
                break
            if ename == "MemoryError":
                add_event(self.nb, "memory-limit", f"{name} ran out of memory (limit "
                          f"{getattr(self.km, 'memory_mb', '?')} MiB)", name)
            elif "Resource temporarily unavailable" in str(out.get("evalue", "")) or \
                    ename == "BlockingIOError":
                add_event(self.nb, "process-limit", f"{name} hit the process limit", name)
        if self._cell_truncated:
            add_event(self.nb, "output-truncated", f"{name} printed more than the output "
                      "limit; the rest was dropped", name)
        return cell

    execute_cell = run_sync(async_execute_cell)

    def _reap(self):
        reap = getattr(self.km, "reap_strays", None)
        try:
            return reap() if reap else 0
        except Exception:  # noqa: BLE001 - best effort
            return 0

    async def _release_memory(self):
        """After a MemoryError, IPython keeps the traceback (and every frame's locals, e.g. the
        list that filled the memory) alive, and the next cells fail too. Drop it."""
        code = ("import sys as _s, gc as _g\n"
                "_s.last_type = _s.last_value = _s.last_traceback = None\n"
                "_s.last_exc = None\n"
                "_ip = get_ipython()\n"
                "_ip.last_execution_result = None\n"
                "for _tb in (getattr(_ip, 'InteractiveTB', None), getattr(_ip, 'SyntaxTB', None)):\n"
                "    try:\n        _tb.tb = None\n    except Exception:\n        pass\n"
                "del _ip, _tb\n"
                "_g.collect()\n")
        try:
            msg_id = self.kc.execute(code, silent=True, store_history=False)
            await self.async_wait_for_reply(msg_id)
        except Exception:  # noqa: BLE001 - best effort
            pass

    # ------------------------------------------------------------------ output caps
    def output(self, outs, msg, display_id, cell_index):
        size = _size(msg)
        content = msg.get("content", {})
        if RECORD_MIMETYPE in (content.get("data") or {}):
            self._record_chars += size
            if self._record_chars <= self.max_record_output:
                return super().output(outs, msg, display_id, cell_index)
            return self._truncated(outs)
        room = min(self.max_cell_output - self._cell_chars,
                   self.max_notebook_output - self._nb_chars)
        if size <= room:
            self._cell_chars += size
            self._nb_chars += size
            return super().output(outs, msg, display_id, cell_index)
        if msg.get("msg_type") == "stream" and room > 0:  # keep the head of the text
            msg = {**msg, "content": {**content, "text": content.get("text", "")[:room]}}
            self._cell_chars += room
            self._nb_chars += room
            super().output(outs, msg, display_id, cell_index)
        return self._truncated(outs)

    def _truncated(self, outs):
        if not self._cell_truncated:
            self._cell_truncated = True
            outs.append(NotebookNode(output_type="stream", name="stdout",
                                     text="\n[output truncated by the grader: this cell "
                                     "printed more than the output limit]\n"))
        return None

    # ------------------------------------------------------------------ replay
    def _replay(self, nb, resources):
        student = resources.get("nbgrader", {}).get("student")
        notebook = resources.get("nbgrader", {}).get("notebook")
        path = Path(self.replay_dir) / str(student) / f"{notebook}.ipynb"
        meta = grading_meta(nb)
        if not path.exists():
            self._stopped = "the grading worker produced no result for this notebook"
            add_event(nb, "worker-failed", self._stopped)
            self._mark_not_run(nb, 0)
            return nb, resources
        done = read(str(path), as_version=4)

        def shape(notebook):
            return [(c.cell_type, c.source,
                     c.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
                    for c in notebook.cells]

        if shape(done) != shape(nb):
            self._stopped = "the worker's notebook does not match the submission"
            add_event(nb, "worker-mismatch", self._stopped)
            self._mark_not_run(nb, 0)
            return nb, resources
        for cell, executed in zip(nb.cells, done.cells):
            if cell.cell_type == "code":
                cell.outputs = executed.get("outputs", [])
                cell.execution_count = executed.get("execution_count")
            if "day6" in executed.get("metadata", {}):
                cell.metadata["day6"] = executed.metadata["day6"]
        worker_meta = done.metadata.get(META, {})
        for key, value in worker_meta.items():
            meta[key] = value
        resources["day6_replayed"] = True
        return nb, resources

