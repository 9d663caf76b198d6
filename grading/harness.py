"""Grade a whole class with one command: ``python -m grading grade --assignment A
--submissions PATH`` (or ``make grade ASSIGNMENT=A SUBMISSIONS=PATH``).

A run loses nobody and nothing. Its phases, each a function below:

1. **Canary** (``canary``): the instructor's own source notebook is graded first, through the
   same sandbox, limits and nbgrader configuration. If it does not get every autograded
   point the run stops before the gradebook is touched (exit status 3) and says which cells
   failed and why (``diagnose`` names the usual causes: a kernel that imports another
   checkout's ``helpers``, a missing package). The result is remembered for the exact
   environment (``grading/work/harness/canary.json``), so grading one late student does not
   pay for it again.
2. **Collect** (``grading.collect``): every file of the upload (folders, LMS zips: Canvas,
   Moodle, Blackboard, nbgrader names) is either placed under a student id or listed by name
   with the reason. The collection log is kept in ``logs/<run>/``.
3. **Select**: ``--student`` limits a run to some students; a student whose files have not
   changed since they were last graded is skipped unless ``--force``.
4. **Place**: each submission goes where nbgrader expects it (an earlier submission of the
   same student is moved to ``grading/work/attic/<student>/<assignment>/<time>/``, never
   deleted), with nbgrader's ``timestamp.txt`` where the LMS gave a time (or a ``LATE`` tag).
5. **Execute in parallel**: one worker per core, each a long-lived ``nbgrader autograde``
   (``grading.autograde_worker``) that takes students from a shared queue, one at a time,
   in a private copy of the course (its own folder and a snapshot of the gradebook). A
   student past the time limit, or a worker that dies, costs only that student, who is
   listed; the next student gets a fresh worker. With ``--scheduler``
   the same execution runs on a Dask cluster's workers instead, one task per student, with
   everything it needs shipped as bytes (``grading.cluster``; the canary then runs on
   every worker).
6. **Record serially**: one ordinary ``nbgrader autograde`` in the real course replays the
   workers' executed notebooks (``GuardedExecute.replay_dir``), so the real gradebook is only
   ever written by nbgrader itself, by one process.
7. **Report** (``grading.report``): feedback, ``grades.csv`` and the report are built from the
   gradebook for EVERY student of the assignment and the harness's state file, so a late run
   adds rows and keeps everyone else's problems.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import nbformat

from grading.autograde_worker import PRELUDE, Worker, WorkerDied
from grading.execute import NOTEBOOK_TIMEOUT
from grading.gradebook_schema import install as _fast_schema_revision

GRADING = Path(__file__).resolve().parent
REPO = GRADING.parent
_fast_schema_revision()  # this process creates gradebooks too (nbgrader is imported already)
VENV_BIN = Path(sys.executable).parent
CANARY = "_canary"
EXIT_REFUSED = 3   # the environment cannot grade correctly: nothing was graded


class GradingRefused(SystemExit):
    """The run stopped before touching the gradebook; ``str()`` says why."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message
        self.code = EXIT_REFUSED

    def __str__(self):
        return self.message


@dataclass
class Course:
    """Where the course lives (defaults: this repository and its git-ignored work folder)."""

    root: Path = REPO
    db_url: str | None = None

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        if self.db_url is None:
            self.db_url = f"sqlite:///{self.work / 'gradebook.db'}"

    @property
    def work(self):
        return self.root / "grading" / "work"

    @property
    def db_path(self):
        return Path(self.db_url.removeprefix("sqlite:///"))

    @property
    def is_sqlite(self):
        return self.db_url.startswith("sqlite:///")

    @property
    def submitted(self):
        return self.work / "submitted"

    @property
    def autograded(self):
        return self.work / "autograded"

    @property
    def feedback(self):
        return self.work / "feedback"

    @property
    def attic(self):
        return self.work / "attic"

    def state_path(self, assignment):
        return self.work / "harness" / f"{assignment}.json"


def _env():
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # nbgrader runs `alembic`
    env.pop("NBGRADER_EXECUTION", None)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONWARNINGS"] = "ignore"
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")  # one grading process per core: no thread pools besides
    return env


# The `nbgrader` command as the harness starts it: the same main(), less one slow import
# (grading.autograde_worker.PRELUDE); -P keeps grading/ (the working folder) off sys.path.
NBGRADER_CMD = [sys.executable, "-P", "-c",
                PRELUDE + "from nbgrader.apps.nbgraderapp import main; sys.exit(main())"]


def nbgrader(args, course: Course, *, timeout=None, log=None):
    """Run the nbgrader CLI from grading/ (so grading/nbgrader_config.py applies)."""
    cmd = [*NBGRADER_CMD, *args, f"--CourseDirectory.root={course.root}",
           f"--CourseDirectory.db_url={course.db_url}"]
    proc = subprocess.Popen(cmd, cwd=GRADING, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []

    def pump():
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        reader.join(5)
        if log is not None:
            Path(log).write_text(f"timed out after {timeout} s\n" + "".join(lines)[-200_000:])
        raise
    reader.join(30)
    text = "".join(lines)
    if log is not None:
        Path(log).write_text(text[-200_000:])
    return subprocess.CompletedProcess(cmd, proc.returncode, text, text)


# --------------------------------------------------------------------------- results

@dataclass
class StudentResult:
    student: str
    faults: list = field(default_factory=list)       # harness-level problems
    seconds: float = 0.0
    graded: bool = False
    skipped: str | None = None                       # why this run did not grade them


@dataclass
class GradeRun:
    assignment: str
    course: Course
    out: Path
    students: dict
    seconds: float = 0.0
    sandbox: str = ""
    report: dict | None = None
    run_id: str = ""
    files: list = field(default_factory=list)        # every uploaded file, with its fate
    canary: str = ""

    @property
    def grades_csv(self):
        return self.out / "grades.csv"

    @property
    def logs(self):
        return self.out / "logs" / self.run_id


# --------------------------------------------------------------------------- gradebook

def notebook_names(course: Course, assignment):
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url) as gb:
        try:
            return [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            return None


def ensure_assignment(course: Course, assignment, work: Path):
    """The assignment must be in the gradebook (cells, points, checksums); register it from
    the source notebook if it is not, without touching the committed release."""
    if course.is_sqlite:
        course.db_path.parent.mkdir(parents=True, exist_ok=True)
    if not (course.root / "solutions" / assignment).is_dir():
        known = sorted(p.name for p in (course.root / "solutions").glob("[0-9][0-9]-*"))
        raise GradingRefused(f"--assignment {assignment!r}: there is no solutions/{assignment}"
                             f" in {course.root} (assignments: {', '.join(known)})")
    if notebook_names(course, assignment):
        return
    release = work / "release"
    proc = nbgrader(["generate_assignment", assignment, "--force",
                     f"--CourseDirectory.release_directory={release}"], course, timeout=600)
    if proc.returncode != 0 or not notebook_names(course, assignment):
        raise GradingRefused(f"could not register {assignment} in the gradebook:\n"
                             f"{proc.stderr[-3000:]}")


def set_duedate(course: Course, assignment, duedate):
    """Record the due date (nbgrader's ``Assignment.duedate``, UTC) for late penalties."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    when = parse_utc(duedate) if isinstance(duedate, str) else duedate
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_assignment(assignment, duedate=when)
    return when


def _duedate(course: Course, assignment):
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        return gb.find_assignment(assignment).duedate


def inspect_files(folder: Path, names):
    """Faults of a submission folder before grading: missing or unreadable notebooks."""
    faults = []
    for name in names:
        path = folder / f"{name}.ipynb"
        if not path.exists():
            others = sorted(p.name for p in folder.glob("*.ipynb"))
            hint = f" (found: {', '.join(others)})" if others else ""
            faults.append({"kind": "missing-notebook", "cell": name,
                           "detail": f"{name}.ipynb was not submitted{hint}: scored 0"})
            continue
        try:
            nb = nbformat.read(str(path), as_version=4)
            nbformat.validate(nb)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same fault
            faults.append({"kind": "unreadable-notebook", "cell": name,
                           "detail": f"{name}.ipynb cannot be read as a notebook "
                           f"({type(exc).__name__}: {str(exc)[:200]}): scored 0"})
    return faults


def _snapshot_db(src: Path, dest: Path):
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)


def _copy_to_sqlite(url, dest: Path):
    """Any SQLAlchemy gradebook (PostgreSQL, MySQL ...) copied row by row into a new SQLite
    file: nbgrader's tables (parents first) and its alembic version."""
    from nbgrader.api import Base
    from sqlalchemy import MetaData, Table, create_engine

    src, out = create_engine(url), create_engine(f"sqlite:///{dest}")
    try:
        Base.metadata.create_all(out)
        with src.connect() as a, out.begin() as b:
            version = Table("alembic_version", MetaData(), autoload_with=a)
            version.create(b)
            for table in [*Base.metadata.sorted_tables, version]:
                rows = [dict(r._mapping) for r in a.execute(table.select())]
                if rows:
                    b.execute(table.insert(), rows)
    finally:
        src.dispose()
        out.dispose()


def _snapshot(course: Course, dest: Path):
    """A private SQLite copy of the gradebook for the workers, whatever database the real
    one is in (their copies are thrown away: results reach it through the serial replay)."""
    if course.is_sqlite:
        _snapshot_db(course.db_path, dest)
    else:
        _copy_to_sqlite(course.db_url, dest)


# --------------------------------------------------------------------------- workers

def _worker(batch, assignment, course: Course, snapshot: Path, replay: Path, logs: Path,
            extra, timeout, on_student=None, keep=None, worker=None):
    """Execute students in one private course (its own folder and a copy of the gradebook
    ``snapshot``) with one long-lived nbgrader (``grading.autograde_worker``: its start-up is
    paid once, not per student). ``batch``: (student, folder) pairs, any iterable (the
    parallel phase hands each thread a shared queue). ``timeout``: seconds per student.
    Returns [(student, seconds, problem)]; ``on_student(student)`` is called as each one
    finishes; ``keep``: a folder to copy the private course's gradebook to (the canary reads
    its scores); ``worker``: a ``Worker`` to use and leave running (a Dask worker keeps one
    from task to task), else one is started and closed here."""
    tmp = Path(tempfile.mkdtemp(prefix="day6-grade-"))
    results = []
    try:
        box = Course(tmp, db_url=f"sqlite:///{tmp / 'gradebook.db'}")
        shutil.copy(snapshot, box.db_path)
        (tmp / "solutions").symlink_to(course.root / "solutions")
        with contextlib.nullcontext(worker) if worker else Worker(_env(), REPO) as worker:
            for student, files in batch:
                started = time.monotonic()
                shutil.copytree(files, box.submitted / student / assignment)
                log = logs / f"{student}.log"
                problem = rc = None
                try:
                    rc = worker.autograde(
                        [assignment, "--force", f"--CourseDirectory.student_id={student}",
                         *extra, f"--CourseDirectory.root={box.root}",
                         f"--CourseDirectory.db_url={box.db_url}"], log, timeout)
                except subprocess.TimeoutExpired:
                    problem = f"grading this student ran past {timeout} s"
                except WorkerDied as exc:
                    problem = f"{exc} while grading this student (see {log})"
                if rc not in (0, None):  # nbgrader failed on this one: whatever state that
                    worker.kill()        # left in the process, the next student starts afresh
                out = box.autograded / student / assignment
                produced = sorted(out.glob("*.ipynb")) if out.exists() else []
                seconds = time.monotonic() - started
                if problem or not produced:
                    results.append((student, seconds, problem or f"nbgrader produced no "
                                    f"graded notebook (exit {rc}; see {log})"))
                else:
                    (replay / student).mkdir(parents=True, exist_ok=True)
                    for nb in produced:
                        shutil.copy(nb, replay / student / nb.name)
                    results.append((student, seconds, None))
                if on_student is not None:
                    on_student(student)
        if keep is not None:
            shutil.copy(box.db_path, keep)
        return results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Queue:
    """Students that several worker threads drain together; ``stop`` empties it (each
    worker finishes the student it has and takes no more)."""

    def __init__(self, items):
        self._items = list(items)
        self._lock = threading.Lock()

    def take(self):
        while True:
            with self._lock:
                if not self._items:
                    return
                item = self._items.pop(0)
            yield item

    def stop(self):
        with self._lock:
            self._items.clear()


def default_jobs():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- canary

def _source_notebooks(course: Course, assignment):
    return sorted((course.root / "solutions" / assignment).glob("*.ipynb"))


def course_notebooks(course: Course):
    """{notebook name: assignment} over every unit of the course (and of this repository)."""
    found = {}
    for root in (REPO, course.root):
        for p in sorted((root / "solutions").glob("*/*.ipynb")):
            found[p.stem] = p.parent.name
    return found


def _fingerprint(course: Course, assignment, extra):
    """What the canary's verdict depends on: the source notebooks, the helpers and grading
    code, the interpreter, the kernel's helpers, the sandbox and the options."""
    from grading.sandbox import bwrap_status, kernel_helpers

    h = hashlib.sha256()
    for p in _source_notebooks(course, assignment):
        h.update(p.read_bytes())
    kernel = kernel_helpers()
    roots = [GRADING] + ([Path(kernel)] if kernel else [])
    for root in roots:
        for p in sorted(Path(root).rglob("*.py")):
            h.update(str(p).encode())
            h.update(p.read_bytes())
    h.update(json.dumps([sys.executable, str(kernel), bwrap_status(), list(extra),
                         course.db_url]).encode())
    return h.hexdigest()


def diagnose(course: Course | None = None):
    """Known causes of a broken grading environment, as sentences (empty when none)."""
    from grading.sandbox import kernel_helpers

    causes = []
    kernel = kernel_helpers()
    here = str((REPO / "helpers").resolve())
    if kernel is None:
        causes.append(f"the grading kernel cannot import helpers: the environment "
                      f"{sys.prefix} has no helpers package; install it with "
                      f"`{VENV_BIN / 'pip'} install -e {REPO}` (or `make venv`)")
    elif kernel != here:
        causes.append(f"the grading kernel imports helpers from {kernel}, but this grading "
                      f"code and its checks are the course root's {here}: the venv's helpers "
                      f"is installed from another checkout. Reinstall it from this one: "
                      f"`{VENV_BIN / 'pip'} install -e {REPO}`")
    return causes


def canary(course: Course, assignment, names, work: Path, logs: Path, extra, timeout):
    """Grade the source notebook as a student would be graded; raise ``GradingRefused`` with
    the failing cells and the likely cause unless it gets every autograded point. Returns a
    one-line summary."""
    cache = course.work / "harness" / "canary.json"
    key = _fingerprint(course, assignment, extra)
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if known.get(assignment, {}).get("fingerprint") == key:
        return f"canary passed (cached {known[assignment]['when']}, same environment)"
    box = work / "canary"
    folder = _canary_submission(course, assignment, box / "in")
    snapshot = box / "snapshot.db"
    _snapshot(course, snapshot)
    replay = box / "replay"
    replay.mkdir()
    kept = box / "graded.db"
    started = time.monotonic()
    (student, _, problem), = _worker([(CANARY, folder)], assignment, course, snapshot, replay,
                                     logs, extra, timeout, keep=kept)
    failed = _canary_failures(assignment, problem, kept, replay)
    seconds = time.monotonic() - started
    if failed:
        raise GradingRefused(_refusal(course, assignment, failed, logs))
    known[assignment] = {"fingerprint": key, "when": _now_text()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(known, indent=1))
    return f"canary passed ({seconds:.0f} s)"


def _canary_submission(course: Course, assignment, folder: Path):
    """The instructor's source notebooks with the solutions as a student would have typed
    them, written into ``folder`` (returned)."""
    folder.mkdir(parents=True)
    for src in _source_notebooks(course, assignment):
        nb = nbformat.read(str(src), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
                cell.source = "\n".join(ln for ln in cell.source.splitlines()
                                        if "### BEGIN SOLUTION" not in ln
                                        and "### END SOLUTION" not in ln)
        nbformat.write(nb, folder / src.name)
    return folder


def _canary_failures(assignment, problem, kept: Path, replay: Path):
    """What the canary lost: one line per autograded cell short of its points (with the
    error it showed), or the worker's problem. Empty when it got every point. ``kept``:
    the gradebook it was graded into; ``replay``: its executed notebooks."""
    from nbgrader.api import Gradebook

    failed = []
    if problem is None:
        with Gradebook(f"sqlite:///{kept}") as gb:
            sub = gb.find_submission(assignment, CANARY)
            for nb in sub.notebooks:
                executed = nbformat.read(str(replay / CANARY / f"{nb.name}.ipynb"), as_version=4)
                errors = {}
                for cell in executed.cells:
                    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                    errs = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                    if gid and errs:
                        errors[gid] = f"{errs[0].get('ename')}: {str(errs[0].get('evalue'))[:300]}"
                first_error = next((f"{o.get('ename')}: {str(o.get('evalue'))[:300]}"
                                    for c in executed.cells for o in c.get("outputs", [])
                                    if o.get("output_type") == "error"), None)
                for grade in nb.grades:
                    if grade.auto_score is None or grade.max_score == 0:
                        continue
                    if grade.auto_score < grade.max_score:
                        why = errors.get(grade.name) or first_error or "no error shown"
                        failed.append(f"{nb.name}.ipynb {grade.name}: {grade.auto_score:g}/"
                                      f"{grade.max_score:g} ({why})")
    else:
        failed.append(problem)
    return failed


def _refusal(course: Course, assignment, failed, logs, where="", causes=None):
    """The message of a refused run: what failed, and the likely cause or the logs."""
    causes = diagnose(course) if causes is None else causes
    lines = [f"REFUSING TO GRADE {assignment}: the canary (the instructor's own source "
             f"notebook, graded through the same sandbox, limits and configuration{where}) "
             f"did not get every autograded point, so students would get wrong scores. "
             f"Nothing was graded; the gradebook is untouched.", "Failing:"]
    lines += [f"  - {f}" for f in failed]
    lines += ["Likely cause:"] + [f"  - {c}" for c in causes] if causes else \
        [f"Logs: {logs}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- state

def _now_text():
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def load_state(course: Course, assignment):
    try:
        state = json.loads(course.state_path(assignment).read_text())
    except (OSError, ValueError):
        state = {}
    state.setdefault("students", {})
    state.setdefault("files", {})
    state.setdefault("runs", [])
    return state


def save_state(course: Course, assignment, state):
    path = course.state_path(assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, default=str))
    tmp.replace(path)


# --------------------------------------------------------------------------- placing

def _place(course: Course, assignment, student, folder: Path, stamp: str | None,
           run_id: str):
    """Put a submission where nbgrader expects it; an earlier one goes to the attic."""
    dest = course.submitted / student / assignment
    if folder.resolve() == dest.resolve():
        return dest
    if dest.exists():
        attic = course.attic / student / assignment / run_id
        attic.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(dest), str(attic))
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("timestamp.txt"))
    if stamp:
        (dest / "timestamp.txt").write_text(stamp)
    return dest


def _timestamp(collected, student, duedate):
    """nbgrader's timestamp for a student: the LMS's time, or for a ``LATE`` tag without
    a time, one second after the due date (late by the smallest step)."""
    stamp = collected.timestamps.get(student)
    if stamp:
        return stamp
    if student in collected.late and duedate is not None:
        return (duedate + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    return None


# --------------------------------------------------------------------------- main entry

def grade(assignment, submissions, *, course: Course | None = None, out=None, jobs=None,
          cell_timeout=None, notebook_timeout=None, extra_args=(), feedback=True,
          progress=True, roster=None, students=None, force=False, duedate=None,
          scheduler=None) -> GradeRun:
    """Grade every submission of ``assignment`` in ``submissions`` (see module docs).

    ``roster``: CSV mapping LMS ids/names/e-mails to student ids; ``students``: grade only
    these ids; ``force``: regrade unchanged submissions too; ``duedate``: set the
    assignment's due date (late penalties: ``grading.late``); ``scheduler``: a Dask
    scheduler's address (``tcp://host:8786``) or scheduler file: every student is executed
    on the cluster's workers instead of here (``grading.cluster``; Dask is imported only
    then)."""
    from grading import collect as collect_mod
    from grading import report as report_mod
    from grading.sandbox import bwrap_status, warn_unprotected

    course = course or Course()
    started = time.monotonic()
    if str(VENV_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
        # nbgrader's Gradebook shells out to the venv's `alembic`, in this process too
        os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    out = Path(out) if out else course.work / "reports" / assignment
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    logs = out / "logs" / run_id
    logs.mkdir(parents=True, exist_ok=True)
    course.work.mkdir(parents=True, exist_ok=True)
    roster = collect_mod.Roster.read(roster) if not isinstance(roster, collect_mod.Roster) \
        else roster
    cluster = client = None
    if scheduler:  # before anything is touched: an unreachable cluster refuses the run
        from grading import cluster

        client = cluster.connect(scheduler)
    else:
        usable, why = bwrap_status()
        sandbox = why if usable else f"UNPROTECTED: {why}"
        if not usable:
            warn_unprotected(why)
    work = Path(tempfile.mkdtemp(prefix="day6-grading-"))
    pending = execution = None
    try:
        ensure_assignment(course, assignment, work)
        if duedate is not None:
            set_duedate(course, assignment, duedate)
        names = notebook_names(course, assignment)
        extra = _extra(extra_args, cell_timeout, notebook_timeout)
        limit = (notebook_timeout or NOTEBOOK_TIMEOUT) * max(1, len(names)) + 180
        if cluster is not None:  # the same canary on every worker, and the same code
            canary_note, sandbox, checked = cluster.check_workers(
                client, course, assignment, work, logs, extra, limit)
        else:  # runs beside collection and execution; nothing is placed or recorded before
            # it has passed (it takes one core; the class would otherwise wait for it)
            background = ThreadPoolExecutor(max_workers=1)
            pending = background.submit(canary, course, assignment, names, work, logs, extra,
                                        limit)
            background.shutdown(wait=False)

        collected = collect_mod.collect(submissions, assignment, names, work / "collected",
                                        roster=roster, others=course_notebooks(course))
        _write_collection_log(logs, submissions, collected)
        state = load_state(course, assignment)
        chosen, results = _select(collected, state, names, students, force)
        duedate_now = _duedate(course, assignment)
        sources = {}  # what the workers execute: a copy, placed only after the canary
        for student, folder in chosen.items():
            res = results[student]
            res.faults = inspect_files(folder, names) + collected.flags.get(student, [])
            if student in collected.late and duedate_now is None:
                res.faults.append({"kind": "late-no-duedate", "cell": None, "detail":
                                   "the LMS marked this LATE but the assignment has no due "
                                   "date: no penalty applied (grade with --duedate)"})
            missing = {f["cell"] for f in res.faults
                       if f["kind"] in ("missing-notebook", "unreadable-notebook")}
            if len(missing) < len(names):
                sources[student] = _unreadable_aside(folder, work / "execute" / student,
                                                     res.faults)
        if pending is not None:
            execution = _Execution(course, assignment, sources, work, logs, extra, limit,
                                   jobs, progress)
            canary_note = pending.result()  # GradingRefused: nothing placed, nothing recorded
        gradeable = {}
        for student, folder in chosen.items():
            dest = _place(course, assignment, student, folder,
                          _timestamp(collected, student, duedate_now), run_id)
            _unreadable_aside(dest, None, results[student].faults)
            if student in sources:
                gradeable[student] = dest

        _register(course, chosen, roster, collected.names)
        if cluster is not None:
            replay = cluster.execute(client, course, assignment, gradeable, results, work,
                                     logs, extra, limit, progress, run_id, checked)
        else:
            replay = execution.wait(results)
        _record(course, assignment, gradeable, replay, logs, extra)
        _zero_missing(course, assignment, results, names, gradeable)
        if feedback and gradeable:
            _feedback(course, assignment, gradeable, logs, jobs)

        _update_state(state, collected, results, run_id, chosen)
        state["runs"].append({"run": run_id, "when": _now_text(), "submissions": str(submissions),
                              "graded": sorted(s for s, r in results.items() if r.graded),
                              "skipped": {s: r.skipped for s, r in results.items() if r.skipped},
                              "canary": canary_note})
        save_state(course, assignment, state)
        run = GradeRun(assignment, course, out, results, sandbox=sandbox, run_id=run_id,
                       files=collected.files, canary=canary_note)
        run.seconds = round(time.monotonic() - started, 2)
        run.report = report_mod.write(run)
        return run
    finally:
        if execution is not None:
            execution.cancel()  # after wait(): nothing left to stop
        if pending is not None:
            wait_for([pending])  # the canary's folders are under work/
        if client is not None:
            cluster.close(client)
        shutil.rmtree(work, ignore_errors=True)


def _unreadable_aside(folder: Path, copy_to: Path | None, faults):
    """Rename the submission's unreadable notebooks ``*.ipynb.unreadable`` (kept as evidence,
    out of nbgrader's way), in ``folder`` itself or in a copy made at ``copy_to``."""
    if copy_to is not None:
        shutil.copytree(folder, copy_to, ignore=shutil.ignore_patterns("timestamp.txt"))
        folder = copy_to
    for fault in faults:
        if fault["kind"] == "unreadable-notebook":
            bad = folder / f"{fault['cell']}.ipynb"
            if bad.exists():
                bad.rename(bad.with_suffix(".ipynb.unreadable"))
    return folder


def _extra(extra_args, cell_timeout, notebook_timeout):
    extra = list(extra_args)
    if cell_timeout:
        extra.append(f"--GuardedExecute.timeout={int(cell_timeout)}")
    if notebook_timeout:
        extra.append(f"--GuardedExecute.notebook_timeout={int(notebook_timeout)}")
    return extra


def _write_collection_log(logs: Path, submissions, collected):
    entries = [f.as_dict() for f in collected.files]
    (logs / "collect.json").write_text(json.dumps(
        {"submissions": str(submissions), "files": entries,
         "flags": collected.flags}, indent=1))
    lines = [f"{e['status']:8} {e['upload']}  ->  {e['reason']}" for e in entries]
    (logs / "collect.log").write_text("\n".join(lines) + "\n")


def _select(collected, state, names, only, force):
    """The students this run grades, and a result for every student it saw."""
    results, chosen = {}, {}
    only = set(only or ())
    from grading.collect import digest

    for student, folder in collected.students.items():
        res = results[student] = StudentResult(student)
        if only and student not in only:
            res.skipped = "not selected (--student)"
            continue
        before = state["students"].get(student, {})
        if not force and before.get("digest") == digest(folder) and before.get("graded"):
            res.skipped = "unchanged since it was graded (--force regrades)"
            continue
        chosen[student] = folder
    for student in only - set(collected.students):
        res = results[student] = StudentResult(student)
        res.skipped = "--student named it, but the upload has no submission for it"
    return chosen, results


class _Execution:
    """The parallel phase, started in the background: one worker thread (and one long-lived
    nbgrader) per job, all taking students from one queue. ``sources``: student -> folder to
    execute. ``wait(results)`` fills in the results and returns the replay folder;
    ``cancel()`` stops taking students (a refused canary)."""

    def __init__(self, course, assignment, sources, work, logs, extra, limit, jobs,
                 progress):
        self.snapshot = work / "snapshot.db"
        _snapshot(course, self.snapshot)
        self.replay = work / "replay"
        self.replay.mkdir()
        self._bar = _progress(len(sources), progress, f"grading {assignment}")
        lock = threading.Lock()

        def tick(_student):
            with lock:
                self._bar.update(1)

        self._queue = _Queue(sources.items())
        threads = max(1, min(jobs or default_jobs(), len(sources)))
        self._pool = ThreadPoolExecutor(max_workers=threads)
        self._futures = [self._pool.submit(_worker, self._queue.take(), assignment, course,
                                           self.snapshot, self.replay, logs, extra, limit, tick)
                         for _ in range(threads if sources else 0)]

    def wait(self, results):
        try:
            for fut in as_completed(self._futures):
                for student, seconds, problem in fut.result():
                    res = results[student]
                    res.seconds = round(seconds, 2)
                    res.graded = problem is None
                    if problem:
                        res.faults.append({"kind": "worker-failed", "cell": None,
                                           "detail": problem})
        finally:
            self._pool.shutdown(wait=True)
            self._bar.close()
        return self.replay

    def cancel(self):
        self._queue.stop()
        self._pool.shutdown(wait=True)
        self._bar.close()


def _record(course, assignment, gradeable, replay, logs, extra):
    """One nbgrader, one writer: record the executed notebooks in the real gradebook."""
    if not gradeable:
        return
    others = _other_students(course, assignment, set(gradeable))
    merge = ["autograde", assignment, "--force",
             f"--GuardedExecute.replay_dir={replay}", *extra]
    if others:
        merge.append(f"--CourseDirectory.student_id_exclude={','.join(sorted(others))}")
    proc = nbgrader(merge, course, timeout=600 + 30 * len(gradeable), log=logs / "_record.log")
    if proc.returncode != 0:
        print(f"warning: recording the grades reported errors (see {logs}/_record.log)",
              file=sys.stderr)


def _feedback(course, assignment, gradeable, logs, jobs=None):
    """nbgrader's feedback for the graded students, in ``jobs`` parallel processes (it only
    reads the gradebook; each process writes its own students' folders)."""
    students = sorted(gradeable)
    jobs = max(1, min(jobs or default_jobs(), len(students) // 4 or 1))
    everyone = _other_students(course, assignment, set()) | set(students)
    groups = [students[i::jobs] for i in range(jobs)]

    def run(i, group):
        fb = ["generate_feedback", assignment, "--force"]
        others = everyone - set(group)
        if others:
            fb.append(f"--CourseDirectory.student_id_exclude={','.join(sorted(others))}")
        name = "_feedback.log" if jobs == 1 else f"_feedback-{i}.log"
        nbgrader(fb, course, timeout=600, log=logs / name)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for fut in [pool.submit(run, i, g) for i, g in enumerate(groups)]:
            fut.result()


def _update_state(state, collected, results, run_id, chosen):
    from grading.collect import digest

    for student, res in results.items():
        if res.skipped:
            continue
        state["students"][student] = {
            "faults": res.faults, "graded": res.graded, "seconds": res.seconds,
            "run": run_id, "digest": digest(chosen[student]) if student in chosen else None,
            "name": collected.names.get(student)}
    for entry in collected.files:
        state["files"][entry.upload] = {**entry.as_dict(), "run": run_id}


def _register(course: Course, students, roster, names):
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        for s in students:
            person = roster.people.get(s, {}) if roster else {}
            full = (person.get("name") or names.get(s) or "").strip()
            first, _, last = full.partition(" ")
            kw = {"first_name": first or None, "last_name": last or None}
            if person.get("email"):
                kw["email"] = person["email"]
            gb.update_or_create_student(s, **{k: v for k, v in kw.items() if v})


def _other_students(course: Course, assignment, batch):
    root = course.submitted
    if not root.exists():
        return set()
    return {p.name for p in root.iterdir() if p.is_dir() and p.name not in batch}


def _zero_missing(course: Course, assignment, results, names, gradeable):
    """Students without a gradeable notebook: 0 for every cell of the missing ones (what
    nbgrader does for a missing notebook), no manual grading pending."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        for student, res in results.items():
            if res.skipped:
                continue
            missing = {f["cell"] for f in res.faults
                       if f["kind"] in ("missing-notebook", "unreadable-notebook")}
            if not missing:
                continue
            gb.update_or_create_submission(assignment, student)
            for name in missing:
                sub = gb.find_submission_notebook(name, assignment, student)
                for grade in sub.grades:
                    grade.auto_score = 0
                    grade.manual_score = None
                    grade.needs_manual_grade = False
            gb.db.commit()


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total, enabled, desc):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="submission", file=sys.stderr)


def summary_line(run: GradeRun):
    rep = run.report or {}
    graded = sum(1 for r in run.students.values() if r.graded)
    skipped = sum(1 for r in run.students.values() if r.skipped)
    listed = sum(1 for f in run.files if f.status == "listed")
    return (f"graded {graded} submission(s) of {run.assignment} in {run.seconds:.0f} s "
            f"[{run.sandbox}; {run.canary}]; {skipped} skipped; {listed} uploaded file(s) not "
            f"graded; the class now has {rep.get('submissions', 0)} submission(s), "
            f"{len(rep.get('needs_human', []))} need a human. "
            f"Report: {run.out / 'report.html'}  Grades: {run.grades_csv}")


def dump(run: GradeRun):
    return json.dumps(run.report, indent=1, default=str)



def collect(submissions, assignment, course: Course, work: Path, roster=None):
    """{student: folder holding that student's notebooks for ``assignment``} (the collection
    step alone; ``grading.collect.collect`` also accounts for every file)."""
    from grading.collect import collect as _collect

    names = notebook_names(course, assignment) or [
        p.stem for p in _source_notebooks(course, assignment)] or \
        [p.stem for p in (REPO / "solutions" / assignment).glob("*.ipynb")]
    return _collect(submissions, assignment, names, Path(work) / "collected",
                    roster=roster, others=course_notebooks(course)).students
