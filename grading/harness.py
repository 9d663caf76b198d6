"""Grade a whole class with one command: ``python -m grading grade --assignment A
--submissions PATH`` (or ``make grade ASSIGNMENT=A SUBMISSIONS=PATH``).

1. **Collect**: ``PATH/<student>/<assignment>/<notebook>.ipynb`` folders, or an LMS download
   (a ``.zip`` file, or a folder of ``.zip`` / ``<student>_..._<notebook>.ipynb`` files) that
   nbgrader's ``zip_collect`` sorts into that layout.
2. **Check** each submission before grading: a missing or unreadable notebook scores 0 for
   its cells and goes on the needs-a-human list; it never reaches a kernel.
3. **Execute in parallel**: one worker per core, each running ``nbgrader autograde`` for one
   student in a private copy of the course (its own folder and a snapshot of the gradebook),
   with the sandbox and limits from ``grading/nbgrader_config.py``. A worker that fails or
   hangs costs only that student.
4. **Record serially**: one ordinary ``nbgrader autograde`` in the real course replays the
   workers' executed notebooks (``GuardedExecute.replay_dir``), so the real gradebook is only
   ever written by nbgrader itself, by one process: it stays consistent, and students graded
   before are left alone.
5. **Feedback** (``nbgrader generate_feedback``, hidden tests removed), **grades.csv**
   (``nbgrader export``) and the **report** (``grading.report``: score distributions per
   exercise as PNG + HTML, and the submissions that need a human).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

GRADING = Path(__file__).resolve().parent
REPO = GRADING.parent
VENV_BIN = Path(sys.executable).parent


@dataclass
class Course:
    """Where the course lives (defaults: this repository and its git-ignored work folder)."""

    root: Path = REPO
    db_url: str | None = None

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        if self.db_url is None:
            self.db_url = f"sqlite:///{self.root / 'grading' / 'work' / 'gradebook.db'}"

    @property
    def db_path(self):
        return Path(self.db_url.removeprefix("sqlite:///"))

    @property
    def submitted(self):
        return self.root / "grading" / "work" / "submitted"

    @property
    def autograded(self):
        return self.root / "grading" / "work" / "autograded"

    @property
    def feedback(self):
        return self.root / "grading" / "work" / "feedback"


def _env():
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # nbgrader runs `alembic`
    env.pop("NBGRADER_EXECUTION", None)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def nbgrader(args, course: Course, *, timeout=None, log=None):
    """Run the nbgrader CLI from grading/ (so grading/nbgrader_config.py applies)."""
    cmd = [str(VENV_BIN / "nbgrader"), *args, f"--CourseDirectory.root={course.root}",
           f"--CourseDirectory.db_url={course.db_url}"]
    try:
        proc = subprocess.run(cmd, cwd=GRADING, env=_env(), capture_output=True, text=True,
                              timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        if log is not None:
            Path(log).write_text(f"timed out after {timeout} s\n{exc.stdout or ''}"
                                 f"{exc.stderr or ''}"[-200_000:])
        raise
    if log is not None:
        Path(log).write_text((proc.stdout + proc.stderr)[-200_000:])
    return proc


# --------------------------------------------------------------------------- results

@dataclass
class StudentResult:
    student: str
    faults: list = field(default_factory=list)       # harness-level problems
    seconds: float = 0.0
    graded: bool = False


@dataclass
class GradeRun:
    assignment: str
    course: Course
    out: Path
    students: dict
    seconds: float = 0.0
    sandbox: str = ""
    report: dict | None = None

    @property
    def grades_csv(self):
        return self.out / "grades.csv"


# --------------------------------------------------------------------------- collect

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
    course.db_path.parent.mkdir(parents=True, exist_ok=True)
    if notebook_names(course, assignment):
        return
    release = work / "release"
    proc = nbgrader(["generate_assignment", assignment, "--force",
                     f"--CourseDirectory.release_directory={release}"], course, timeout=600)
    if proc.returncode != 0 or not notebook_names(course, assignment):
        raise SystemExit(f"could not register {assignment} in the gradebook:\n"
                         f"{proc.stderr[-3000:]}")


def _safe_id(name):
    return bool(name) and not name.startswith((".", "_")) and "/" not in name


def collect(submissions: Path, assignment, course: Course, work: Path):
    """{student: folder holding that student's files for ``assignment``}."""
    submissions = Path(submissions).resolve()
    if submissions.is_dir():
        folders = {p.name: p / assignment for p in sorted(submissions.iterdir())
                   if p.is_dir() and _safe_id(p.name) and (p / assignment).is_dir()}
        loose = [p for p in submissions.iterdir()
                 if p.is_file() and p.suffix in (".zip", ".ipynb")]
        if folders or not loose:
            return folders
    return _zip_collect(submissions, assignment, course, work)


def _zip_collect(path: Path, assignment, course: Course, work: Path):
    """LMS layout through nbgrader's zip_collect, in a private staging course."""
    stage = Course(work / "lms", db_url=f"sqlite:///{work / 'lms.db'}")
    shutil.copy(course.db_path, stage.db_path)
    archive = stage.root / "downloaded" / assignment / "archive"
    archive.mkdir(parents=True)
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    for f in files:
        if f.suffix == ".zip" and not zipfile.is_zipfile(f):
            continue
        shutil.copy(f, archive / f.name)
    proc = nbgrader(["zip_collect", assignment, "--force"], stage, timeout=600,
                    log=work / "zip_collect.log")
    if proc.returncode != 0:
        raise SystemExit(f"zip_collect failed:\n{proc.stderr[-3000:]}")
    sub = stage.submitted
    return {p.name: p / assignment for p in sorted(sub.iterdir())
            if p.is_dir() and (p / assignment).is_dir()} if sub.exists() else {}


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


# --------------------------------------------------------------------------- workers

def _snapshot_db(src: Path, dest: Path):
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)


def _worker(batch, assignment, course: Course, snapshot: Path, replay: Path, logs: Path,
            extra, timeout):
    """Execute a few students in one private course with one nbgrader process (its start-up
    is a good part of the cost of a student). Returns [(student, seconds, problem)]."""
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="day6-grade-"))
    students = [s for s, _ in batch]
    try:
        box = Course(tmp, db_url=f"sqlite:///{tmp / 'gradebook.db'}")
        shutil.copy(snapshot, box.db_path)
        (tmp / "solutions").symlink_to(course.root / "solutions")
        for student, files in batch:
            shutil.copytree(files, box.submitted / student / assignment)
        log = logs / (f"{students[0]}.log" if len(students) == 1 else
                      f"batch-{students[0]}-{len(students)}.log")
        problem = None
        try:
            proc = nbgrader(["autograde", assignment, "--force", *extra], box,
                            timeout=timeout, log=log)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc, problem = None, f"the grading process ran past {timeout} s"
        results = []
        per = (time.monotonic() - started) / len(students)
        for student in students:
            out = box.autograded / student / assignment
            produced = sorted(out.glob("*.ipynb")) if out.exists() else []
            if not produced:
                results.append((student, per, problem or f"nbgrader produced no graded "
                                f"notebook (exit {rc}; see logs/{log.name})"))
                continue
            (replay / student).mkdir(parents=True, exist_ok=True)
            for nb in produced:
                shutil.copy(nb, replay / student / nb.name)
            results.append((student, per, None))
        return results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _batches(items, jobs, most=4):
    """Deal the students into batches: a few per nbgrader process, enough batches to keep
    every core busy to the end."""
    size = max(1, min(most, len(items) // (2 * jobs) or 1))
    return [items[i:i + size] for i in range(0, len(items), size)]


def default_jobs():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- main entry

def grade(assignment, submissions, *, course: Course | None = None, out=None, jobs=None,
          cell_timeout=None, notebook_timeout=None, extra_args=(), feedback=True,
          progress=True) -> GradeRun:
    """Grade every submission of ``assignment`` in ``submissions`` (see module docs)."""
    from grading import report as report_mod
    from grading.sandbox import bwrap_status, warn_unprotected

    course = course or Course()
    started = time.monotonic()
    if str(VENV_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
        # nbgrader's Gradebook shells out to the venv's `alembic`, in this process too
        os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    out = Path(out) if out else course.root / "grading" / "work" / "reports" / assignment
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="day6-grading-"))
    logs = out / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    usable, why = bwrap_status()
    sandbox = why if usable else f"UNPROTECTED: {why}"
    if not usable:
        warn_unprotected(why)
    try:
        ensure_assignment(course, assignment, work)
        names = notebook_names(course, assignment)
        found = collect(submissions, assignment, course, work)
        results = {s: StudentResult(s) for s in found}

        # Check the files, then put every submission where nbgrader expects it.
        gradeable = {}
        for student, folder in found.items():
            res = results[student]
            res.faults = inspect_files(folder, names)
            dest = course.submitted / student / assignment
            if folder.resolve() != dest.resolve():
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(folder, dest)
            for fault in res.faults:  # keep the evidence, out of nbgrader's way
                bad = dest / f"{fault['cell']}.ipynb"
                if bad.exists():
                    bad.rename(bad.with_suffix(".ipynb.unreadable"))
            if not any(f["kind"] in ("missing-notebook", "unreadable-notebook")
                       for f in res.faults) or len(res.faults) < len(names):
                gradeable[student] = dest

        extra = list(extra_args)
        if cell_timeout:
            extra.append(f"--GuardedExecute.timeout={int(cell_timeout)}")
        if notebook_timeout:
            extra.append(f"--GuardedExecute.notebook_timeout={int(notebook_timeout)}")
        limit = (notebook_timeout or 900) * max(1, len(names)) + 180

        # Register every student first (serially), so that the snapshot knows them all.
        _register(course, found)
        snapshot = work / "snapshot.db"
        _snapshot_db(course.db_path, snapshot)
        replay = work / "replay"
        replay.mkdir()
        jobs = jobs or default_jobs()
        bar = _progress(len(gradeable), progress, f"grading {assignment}")
        batches = _batches(list(gradeable.items()), jobs)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_worker, b, assignment, course, snapshot, replay, logs,
                                   extra, limit * len(b)) for b in batches]
            for fut in as_completed(futures):
                for student, seconds, problem in fut.result():
                    res = results[student]
                    res.seconds = round(seconds, 2)
                    res.graded = problem is None
                    if problem:
                        res.faults.append({"kind": "worker-failed", "cell": None,
                                           "detail": problem})
                    bar.update(1)
        bar.close()

        # One nbgrader, one writer: record the executed notebooks in the real gradebook.
        others = _other_students(course, assignment, set(gradeable))
        if gradeable:
            merge = ["autograde", assignment, "--force",
                     f"--GuardedExecute.replay_dir={replay}", *extra]
            if others:
                merge.append(f"--CourseDirectory.student_id_exclude={','.join(sorted(others))}")
            proc = nbgrader(merge, course, timeout=600 + 30 * len(gradeable),
                            log=logs / "_record.log")
            if proc.returncode != 0:
                print(f"warning: recording the grades reported errors (see {logs}/_record.log)",
                      file=sys.stderr)
        _zero_missing(course, assignment, results, names, gradeable)

        if feedback and gradeable:
            fb = ["generate_feedback", assignment, "--force"]
            if others:
                fb.append(f"--CourseDirectory.student_id_exclude={','.join(sorted(others))}")
            nbgrader(fb, course, timeout=600, log=logs / "_feedback.log")
        nbgrader(["export", f"--to={out / 'grades.csv'}", f"--ExportPlugin.assignment=['{assignment}']"],
                 course, timeout=300, log=logs / "_export.log")

        run = GradeRun(assignment, course, out, results, sandbox=sandbox)
        run.seconds = round(time.monotonic() - started, 2)
        run.report = report_mod.write(run)
        return run
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _register(course: Course, students):
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        for s in students:
            gb.update_or_create_student(s)


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
    return (f"graded {len(run.students)} submission(s) of {run.assignment} in {run.seconds:.0f} s "
            f"[{run.sandbox}]; {len(rep.get('needs_human', []))} need a human. "
            f"Report: {run.out / 'report.html'}  Grades: {run.grades_csv}")


def dump(run: GradeRun):
    return json.dumps(run.report, indent=1, default=str)
