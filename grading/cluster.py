"""Grade on a Dask cluster when one machine is not enough:
``python -m grading grade --assignment A --submissions PATH --scheduler tcp://HOST:8786``.

Only the execution moves (phase 5 of ``grading.harness``); everything else stays on the
instructor's machine, and the gradebook is still written by one nbgrader process there (the
replay, ``harness._record``). Imported only when ``--scheduler`` is given: without it the
harness never imports Dask.

- **No shared filesystem.** Each student is one Dask task that carries what the worker needs
  as bytes: the student's submitted files; and, scattered once to every worker, a snapshot
  of the gradebook and the assignment's ``solutions/`` folder. The task (``remote_grade``)
  writes them into a temporary folder on the worker and runs there exactly what runs
  locally (``harness._worker``: ``nbgrader autograde`` in a private course, kernels in the
  sandbox, the worker's own checkout of ``grading/nbgrader_config.py``); it returns the
  executed notebooks (events and flags are in their metadata) and the log, as bytes. Here
  they go into the replay folder, and ``_record`` records them.
- **Same environment on every worker** (``check_workers``, before anything is graded): each
  worker reports its Python, package versions and a hash of its ``grading/`` and
  ``helpers/`` code (the worker judges the test cells, and the replay trusts it); any
  difference from this machine refuses the run (exit 3), naming the worker. Then the
  canary (the instructor's source notebook, which must get every point) runs on every
  worker, pinned to it; one that fails refuses the run the same way. A worker's verdict is
  remembered for its exact environment (``canary.json``), like the local canary. Students
  then run only on the workers that passed: a worker that joins later is not used.
- **A lost worker costs only its students.** The scheduler reruns the tasks of a worker
  that dies on another worker; with ``allowed-failures: 1`` (start the scheduler with
  ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1``) a student is retried once, then
  ``KilledWorker`` lists them under "needs a human" with the fault ``worker-lost`` (scored
  0 by the replay, like a local worker that failed, and regraded by the next run). A task
  that raises is retried once (``retries=1``), then ``worker-failed``. When no checked
  worker is left, or the scheduler is gone, the students not yet back are ``worker-lost``.

docs/grading-cluster.md says how to start the scheduler and the workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

from grading.autograde_worker import Worker
from grading.harness import (
    CANARY,
    GRADING,
    REPO,
    Course,
    GradingRefused,
    _canary_failures,
    _canary_submission,
    _env,
    _now_text,
    _progress,
    _refusal,
    _snapshot,
    _source_notebooks,
    _worker,
    diagnose,
)

# What must be the same on every worker as here (a worker judges the test cells itself).
PACKAGES = ("day6-helpers", "nbgrader", "nbclient", "nbconvert", "nbformat", "jupyter_client",
            "ipykernel", "numpy", "scipy", "scikit-learn", "torch", "matplotlib", "dask",
            "distributed")
GONE_GRACE = 30      # seconds without any checked worker (or scheduler) before giving up
POLL = 0.5


# --------------------------------------------------------------------------- connecting

def connect(address, timeout=30):
    """A ``distributed.Client`` for ``address`` (``tcp://host:port`` or a scheduler file)
    with at least one worker; ``GradingRefused`` (exit 3) when there is none."""
    from distributed import Client

    is_file = "://" not in str(address) and Path(address).is_file()
    try:
        client = (Client(scheduler_file=str(address), timeout=timeout, set_as_default=False)
                  if is_file else Client(address, timeout=timeout, set_as_default=False))
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, a bad address ...
        raise GradingRefused(f"REFUSING TO GRADE: cannot reach the Dask scheduler {address} "
                             f"({type(exc).__name__}: {exc}). Nothing was graded.") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except Exception:  # noqa: BLE001 - TimeoutError (asyncio's or the builtin)
        close(client)
        raise GradingRefused(f"REFUSING TO GRADE: the Dask scheduler {address} has no worker "
                             f"after {timeout} s. Nothing was graded.") from None
    return client


def close(client):
    """Close the client; a scheduler that is gone must not turn a finished run into a crash."""
    try:
        client.close(timeout=10)
    except Exception as exc:  # noqa: BLE001 - TimeoutError, OSError ...
        print(f"note: closing the Dask client: {type(exc).__name__}: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------- environment

def _code_hash():
    """The grading and helpers code of this checkout (relative names: checkouts in other
    folders with the same code hash the same)."""
    h = hashlib.sha256()
    files = sorted(GRADING.glob("*.py")) + sorted((REPO / "helpers").rglob("*.py"))
    for p in files:
        h.update(str(p.relative_to(REPO)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def describe():
    """This process's grading environment (run here and, by ``client.run``, on each worker)."""
    from grading.sandbox import bwrap_status

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    usable, why = bwrap_status()
    return {"host": socket.gethostname(), "python": sys.version.split()[0],
            "executable": sys.executable, "checkout": str(REPO), "code": _code_hash(),
            "packages": packages, "sandboxed": usable, "sandbox": why,
            "causes": diagnose(None)}


def _differences(here, there):
    out = []
    if there["python"] != here["python"]:
        out.append(f"Python {there['python']} (here {here['python']})")
    out += [f"{name} {there['packages'].get(name)} (here {version})"
            for name, version in here["packages"].items()
            if there["packages"].get(name) != version]
    if there["code"] != here["code"]:
        out.append(f"its grading/ or helpers/ code ({there['checkout']}) is not this "
                   f"checkout's: check out the same commit on every node")
    return out


def _allowed_failures(dask_scheduler=None):
    return dask_scheduler.allowed_failures


def check_workers(client, course: Course, assignment, work: Path, logs: Path, extra, limit):
    """Refuse the run (``GradingRefused``, exit 3, naming the worker) unless every worker
    has this machine's environment and its canary gets every point. Returns (canary note,
    sandbox note, the addresses of the checked workers)."""
    workers = sorted(client.nthreads())
    here = describe()
    found = client.run(describe, on_error="return")
    (logs / "cluster-workers.json").write_text(json.dumps(
        {"here": here, "workers": {a: d if isinstance(d, dict) else repr(d)
                                   for a, d in found.items()}}, indent=1, default=str))
    problems = []
    for addr in workers:
        d = found.get(addr)
        if not isinstance(d, dict):
            problems.append(f"worker {addr} cannot run the grading code ({d!r}): start it "
                            f"from a checkout of the course with its environment (`make "
                            f"venv`) and the checkout on PYTHONPATH (docs/grading-cluster.md)")
            continue
        problems += [f"worker {addr} ({d['host']}): {x}" for x in _differences(here, d)]
        problems += [f"worker {addr} ({d['host']}): {c}" for c in d["causes"]]
    if problems:
        raise GradingRefused(
            f"REFUSING TO GRADE {assignment}: not every Dask worker has this machine's "
            f"grading environment, so students would not all be graded alike. Nothing was "
            f"graded; the gradebook is untouched.\n" + "\n".join(f"  - {p}" for p in problems))
    try:
        allowed = client.run_on_scheduler(_allowed_failures)
    except Exception:  # noqa: BLE001 - a scheduler that does not allow it: say nothing
        allowed = None
    if allowed not in (None, 1):
        print(f"note: this Dask scheduler retries a student whose worker dies {allowed} "
              f"times (allowed-failures); the course's setting is once: start it with "
              f"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1", file=sys.stderr)

    note = _canaries(client, course, assignment, work, logs, extra, limit, workers, found)
    unprotected = {a: found[a]["sandbox"] for a in workers if not found[a]["sandboxed"]}
    if unprotected:
        from grading.sandbox import warn_unprotected

        why = "; ".join(f"{a}: {w}" for a, w in unprotected.items())
        warn_unprotected(f"on Dask worker(s) {why}")
        sandbox = f"UNPROTECTED on {len(unprotected)} of {len(workers)} Dask worker(s): {why}"
    else:
        sandbox = f"{found[workers[0]]['sandbox']} on {len(workers)} Dask worker(s)"
    return note, sandbox, workers


def _canaries(client, course, assignment, work, logs, extra, limit, workers, found):
    from distributed import KilledWorker

    cache = course.work / "harness" / "canary.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    cached = known.setdefault("@cluster", {})
    h = hashlib.sha256(json.dumps([assignment, list(extra)]).encode())
    for p in _source_notebooks(course, assignment):
        h.update(p.read_bytes())
    keys = {a: hashlib.sha256((h.hexdigest() + json.dumps(
        {k: v for k, v in found[a].items() if k != "causes"}, sort_keys=True)).encode())
        .hexdigest() for a in workers}
    todo = [a for a in workers if keys[a] not in cached]
    started = time.monotonic()
    if todo:
        box = work / "cluster-canary"
        files = _read_tree(_canary_submission(course, assignment, box / "in"))
        _snapshot(course, box / "snapshot.db")
        [blob] = client.scatter([_blob(course, assignment, box / "snapshot.db")],
                                workers=todo, broadcast=True, hash=False)
        token = f"{time.time_ns()}"
        futures = {a: client.submit(remote_grade, CANARY, files, assignment, blob, list(extra),
                                    limit, True, key=f"day6-canary-{token}-{a}",
                                    workers=[a], allow_other_workers=False, pure=False)
                   for a in todo}
        deadline = time.monotonic() + limit + 120
        while time.monotonic() < deadline and not all(f.done() for f in futures.values()):
            gone = set(todo) - set(client.nthreads())
            if gone and all(futures[a].done() for a in set(todo) - gone):
                break  # the rest can never finish: their workers left
            time.sleep(POLL)
        failures = {}
        for addr, fut in futures.items():
            try:
                out = fut.result(timeout=60) if fut.status == "finished" else None
            except Exception as exc:  # noqa: BLE001 - the result was lost with its worker
                out, failed = None, [f"its result was lost ({type(exc).__name__}: {exc})"]
            if out is not None:
                where = box / "workers" / _safe(addr)
                replay = where / "replay"
                (replay / CANARY).mkdir(parents=True)
                for name, data in out["notebooks"].items():
                    (replay / CANARY / name).write_bytes(data)
                kept = where / "graded.db"
                if out["kept"] is not None:
                    kept.write_bytes(out["kept"])
                (logs / f"canary-{_safe(addr)}.log").write_text(out["log"])
                failed = _canary_failures(assignment, out["problem"], kept, replay)
            elif fut.status == "finished":
                pass  # failed says why
            elif fut.status == "error":
                exc = fut.exception()
                failed = [f"the worker died while grading the canary ({exc})"
                          if isinstance(exc, KilledWorker) else
                          f"the canary task failed: {type(exc).__name__}: {exc}"]
                if "deserializ" in str(exc):  # distributed unpickles tasks on the scheduler
                    failed.append("the scheduler must import grading.cluster too: start it "
                                  "from the course checkout with PYTHONPATH=<checkout>, like "
                                  "the workers (docs/grading-cluster.md)")
            else:
                failed = [f"no result within {limit + 120:.0f} s (the worker may have left "
                          f"the cluster)"]
            fut.cancel()
            if failed:
                failures[addr] = failed
        client.cancel([blob])
        if failures:
            lines = [f"worker {a} ({found[a]['host']}): {f}"
                     for a, fs in failures.items() for f in fs]
            raise GradingRefused(_refusal(course, assignment, lines, logs,
                                          where=", on each Dask worker", causes=[]))
        for a in todo:
            cached[keys[a]] = {"worker": a, "host": found[a]["host"], "when": _now_text()}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=1))
    seconds = time.monotonic() - started
    reused = len(workers) - len(todo)
    return (f"canary passed on {len(workers)} Dask worker(s)"
            + (f" ({seconds:.0f} s)" if todo else "")
            + (f", {reused} cached (same environment)" if reused else ""))


# --------------------------------------------------------------------------- executing

def _safe(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def _read_tree(folder: Path):
    """{relative posix path: bytes} of every file under ``folder``."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()
            and not {"__pycache__", ".ipynb_checkpoints"} & set(p.relative_to(folder).parts)}


def _write_tree(dest: Path, files):
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"refusing to write {name!r} outside {dest}")
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    return dest


def _blob(course: Course, assignment, snapshot: Path):
    """What every task of a run needs besides the student's files (scattered once)."""
    return {"snapshot": snapshot.read_bytes(),
            "solutions": _read_tree(course.root / "solutions" / assignment)}


_KEPT = threading.local()


def _kept_worker():
    """This Dask worker thread's long-lived nbgrader (``grading.autograde_worker.Worker``),
    kept from task to task like the local harness keeps one per core: its start-up and its
    warm kernels' imports (grading/warm.py) are paid once per worker thread, not once per
    student. It ends with the Dask worker (its stdin closes), or after 40 students."""
    worker = getattr(_KEPT, "worker", None)
    if worker is None:
        worker = _KEPT.worker = Worker(_env(), REPO)
    return worker


def remote_grade(student, files, assignment, blob, extra, timeout, keep=False):
    """Runs on a Dask worker: the local harness's execution (``harness._worker``) of one
    student in a temporary course built from bytes. Returns the executed notebooks, the
    log and the problem (None when it produced every notebook), as plain data."""
    import shutil

    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = None
    tmp = Path(tempfile.mkdtemp(prefix="day6-cluster-"))
    try:
        root = tmp / "course"
        _write_tree(root / "solutions" / assignment, blob["solutions"])
        snapshot = tmp / "snapshot.db"
        snapshot.write_bytes(blob["snapshot"])
        folder = _write_tree(tmp / "in" / student, files)
        replay, logs = tmp / "replay", tmp / "logs"
        replay.mkdir()
        logs.mkdir()
        kept = tmp / "graded.db" if keep else None
        (_, seconds, problem), = _worker([(student, folder)], assignment,
                                         Course(root, db_url=f"sqlite:///{snapshot}"),
                                         snapshot, replay, logs, list(extra), timeout,
                                         keep=kept, worker=_kept_worker())
        done = replay / student
        return {"student": student, "seconds": seconds, "problem": problem,
                "notebooks": {p.name: p.read_bytes() for p in sorted(done.glob("*.ipynb"))}
                if done.exists() else {},
                "log": "".join(p.read_text(errors="replace") for p in sorted(logs.iterdir())),
                "logs": str(logs), "worker": worker, "host": socket.gethostname(),
                "kept": kept.read_bytes() if keep and kept.exists() else None}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def failure(fut, student):
    """The fault of a student whose task did not finish: ``worker-lost`` when the workers
    running it died (``KilledWorker``: the scheduler already retried it on another one) or
    the cluster dropped it; ``worker-failed`` when it raised, on both tries."""
    from distributed import KilledWorker

    exc = fut.exception() if fut.status == "error" else None
    again = f"not graded. Grade again (--student {student}) or by hand"
    if isinstance(exc, KilledWorker):
        last = getattr(exc.last_worker, "address", exc.last_worker)
        return {"kind": "worker-lost", "cell": None, "detail":
                f"the Dask worker grading this student died or left the cluster, on every "
                f"try ({exc.allowed_failures + 1}; the last on {last}): {again}"}
    if exc is not None:
        return {"kind": "worker-failed", "cell": None, "detail":
                f"the grading task failed on the cluster, on every try "
                f"({type(exc).__name__}: {str(exc)[:500]}): {again}"}
    return {"kind": "worker-lost", "cell": None,
            "detail": f"the cluster dropped this student's task ({fut.status}): {again}"}


def execute(client, course: Course, assignment, gradeable, results, work: Path, logs: Path,
            extra, limit, progress, run_id, workers):
    """Every student of ``gradeable`` as one task on the checked ``workers``; their executed
    notebooks land in ``work/replay`` (returned) for ``harness._record``."""
    replay = work / "replay"
    replay.mkdir()
    if not gradeable:
        return replay
    _snapshot(course, work / "snapshot.db")
    payload = _blob(course, assignment, work / "snapshot.db")

    def scatter():
        alive = [a for a in workers if a in client.nthreads()]
        return client.scatter([payload], workers=alive or workers, broadcast=True,
                              hash=False)[0]

    def submit(student, blob, attempt=""):
        fut = client.submit(remote_grade, student, _read_tree(gradeable[student]), assignment,
                            blob, list(extra), limit, False,
                            key=f"day6-grade-{run_id}-{student}{attempt}",
                            workers=list(workers), allow_other_workers=False, retries=1,
                            pure=False)
        futures[fut] = student
        return fut

    blobs = [scatter()]
    futures = {}
    for student in gradeable:
        submit(student, blobs[0])
    # A student whose task the cluster cancelled because the course's data went with a dead
    # worker (Dask's memory manager keeps one copy of scattered data where no task waits
    # for it: a class of one, or the last students) is sent again, once, with the data
    # scattered again: the scheduler's own retry cannot recompute scattered data.
    resent = set()
    bar = _progress(len(futures), progress, f"grading {assignment} on the cluster")
    placed = {}
    threads = max(1, sum(n for a, n in client.nthreads().items() if a in workers))
    allowed = 2 * limit * (math.ceil(len(futures) / threads) + 1)
    deadline = time.monotonic() + allowed
    pending = set(futures)
    gone_since = None

    def lost(fut, detail):
        student = futures[fut]
        results[student].graded = False
        results[student].faults.append({"kind": "worker-lost", "cell": None, "detail": detail})

    while pending:
        for fut in [f for f in pending if f.done()]:
            pending.discard(fut)
            student = futures[fut]
            if fut.status == "cancelled" and student not in resent:
                resent.add(student)
                try:
                    if blobs[-1].status != "finished":
                        blobs.append(scatter())
                    pending.add(submit(student, blobs[-1], "-again"))
                    continue
                except Exception:  # noqa: BLE001 - no worker or scheduler left: lost below
                    pass
            bar.update(1)
            res = results[student]
            if fut.status == "finished":
                try:  # the result lives on the worker until fetched: it may die meanwhile
                    out = fut.result(timeout=limit + 60)
                except Exception as exc:  # noqa: BLE001 - lost with its worker, cancelled
                    res.graded = False
                    res.faults.append({"kind": "worker-lost", "cell": None, "detail":
                                       f"its result was lost with its Dask worker "
                                       f"({type(exc).__name__}: {exc}): not graded. Grade "
                                       f"again (--student {student}) or by hand"})
                    continue
                placed[student] = {"worker": out["worker"], "host": out["host"],
                                   "seconds": round(out["seconds"], 2)}
                (replay / student).mkdir(parents=True, exist_ok=True)
                for name, data in out["notebooks"].items():
                    (replay / student / name).write_bytes(data)
                log = logs / f"{student}.log"
                log.write_text(f"graded on Dask worker {out['worker']} ({out['host']})\n"
                               + out["log"])
                res.seconds = round(out["seconds"], 2)
                res.graded = out["problem"] is None
                if out["problem"]:
                    res.faults.append({"kind": "worker-failed", "cell": None, "detail":
                                       out["problem"].replace(out["logs"], str(logs))})
                continue
            res.graded = False
            fault = failure(fut, student)
            if student in resent:
                fault["detail"] += (" (sent twice: the course's data was lost with a worker, "
                                    "scattered again, and the second task did not finish either)")
            res.faults.append(fault)
        if not pending:
            break
        try:
            here = set(client.nthreads()) & set(workers)
        except Exception:  # noqa: BLE001 - the scheduler is gone (or not answering)
            here = set()
        gone_since = None if here else (gone_since or time.monotonic())
        now = time.monotonic()
        why = ("no worker that passed the canary is left in the cluster"
               if gone_since and now - gone_since > GONE_GRACE else
               f"the cluster did not finish it within {allowed:.0f} s"
               if now > deadline else None)
        if why:
            for fut in list(pending):
                lost(fut, f"{why}: not graded. Grade again (--student {futures[fut]}) or by "
                          f"hand")
                bar.update(1)
            pending.clear()
            break
        time.sleep(POLL)
    bar.close()
    client.cancel([*blobs, *futures])
    (logs / "cluster.json").write_text(json.dumps(
        {"workers": workers, "students": placed,
         "lost": sorted(s for s, r in results.items()
                        if any(f["kind"] == "worker-lost" for f in r.faults))}, indent=1))
    return replay
