"""A gradebook several teaching assistants share: PostgreSQL instead of the default SQLite file.

The test starts its own PostgreSQL server (Debian's ``postgresql``: ``initdb`` and ``pg_ctl``,
in a temporary folder, listening on 127.0.0.1 and a socket in that folder; as an
unprivileged user when the tests run as root, which PostgreSQL requires), grades a small class
of 01-kmeans into it with ``python -m grading grade --db postgresql+psycopg://...``, lets two
"teaching assistants" type manual scores at the same time (two gradebook sessions, two
threads, as two formgrader servers would), and checks ``python -m grading report`` exports
both. Skipped, with the reason, where the PostgreSQL server is not installed (``make
postgres`` installs it, as root).
"""

from __future__ import annotations

import csv
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
UNIT = "01-kmeans"
NB = "kmeans"
FULL = 12.0       # every autograded point of 01-kmeans
LIMITS = ["--nbgrader-arg=--GuardedExecute.timeout=60",
          "--nbgrader-arg=--GuardedExecute.notebook_timeout=240"]
HOW = "`make postgres` installs Debian's postgresql (as root)"


def _server_binaries():
    """(initdb, pg_ctl) of one PostgreSQL installation: PATH first, then Debian's
    /usr/lib/postgresql/<version>/bin (newest first), where its server programs live."""
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "pg_ctl").exists():
        return str(Path(found).resolve()), str(Path(found).resolve().parent / "pg_ctl")
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: [int(p) for p in Path(d).parent.name.split(".") if p.isdigit()],
                  reverse=True)
    for d in dirs:
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return str(Path(d) / "initdb"), str(Path(d) / "pg_ctl")
    return None


def _unprivileged_user():
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (made by Debian's
    package) or `nobody`; otherwise as ourselves (None)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("running as root and neither a `postgres` nor a `nobody` user exists to run "
                "the PostgreSQL server as (it refuses to run as root)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server; yields the SQLAlchemy URL of an empty database."""
    binaries = _server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL server not installed (no initdb/pg_ctl on PATH or in "
                    f"/usr/lib/postgresql/*/bin): {HOW}")
    psycopg = pytest.importorskip(
        "psycopg", reason="psycopg missing: pip install -e '.[dev]' (or make venv)")
    initdb, pg_ctl = binaries
    user = _unprivileged_user()
    as_user = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid,
                                       "extra_groups": []}
    # Not tmp_path: pytest's folder for root is 0700, out of the server user's reach. A short
    # path too: a Unix socket's path is limited to about 100 characters.
    top = Path(tempfile.mkdtemp(prefix="day6-pg-"))
    if user is not None:
        os.chown(top, user.pw_uid, user.pw_gid)
    data, log = top / "data", top / "server.log"
    port = _free_port()

    def run(*args, timeout=60):
        proc = subprocess.run(args, cwd=top, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C"}, **as_user)
        assert proc.returncode == 0, (f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n"
                                      f"{proc.stderr}\n{log.read_text() if log.exists() else ''}")
        return proc

    pid = None
    try:
        run(initdb, "-D", data, "-U", "grader", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(pg_ctl, "-D", data, "-l", log, "-w", "-t", "30",
            "-o", f"-h 127.0.0.1 -p {port} -k {top}", "start")
        pid = int((data / "postmaster.pid").read_text().split()[0])
        with psycopg.connect(f"host=127.0.0.1 port={port} user=grader dbname=postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE DATABASE gradebook")
        yield f"postgresql+psycopg://grader@127.0.0.1:{port}/gradebook"
    finally:
        if pid is not None:
            try:
                subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "-w", "-t", "30",
                                "stop"], cwd=top, capture_output=True, timeout=60, **as_user)
            except subprocess.TimeoutExpired:
                pass
            if (data / "postmaster.pid").exists():  # the server did not go: kill it (its
                try:                                # pid file says it is still ours)
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(top, ignore_errors=True)


def _env():
    # nbgrader shells out to the venv's `alembic` when it creates a gradebook's schema
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            "MPLBACKEND": "Agg"}


def _grading(*args):
    proc = subprocess.run([sys.executable, "-m", "grading", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _rows(path):
    return {r["student_id"]: r for r in csv.DictReader(Path(path).open())}


def test_a_postgresql_gradebook_shared_by_two_teaching_assistants(postgres, course, tmp_path):
    from nbgrader.api import Gradebook

    url = postgres
    course.add_unit(UNIT)
    release = nbformat.read(REPO / "notebooks" / UNIT / f"{NB}.ipynb", as_version=4)
    sources = course.solution_sources(
        nbformat.read(REPO / "solutions" / UNIT / f"{NB}.ipynb", as_version=4))
    for cell in release.cells:  # the written answer too (graded by hand)
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "markdown":
            sources[meta["grade_id"]] = "K-Means assumes round clusters of similar size."
    wrong = course.units[UNIT]["wrong"]["farthest_first"][0]
    subs = tmp_path / "subs"
    for student, nb in {"alice": course.fill_in(release, sources),
                        "bob": course.fill_in(release, {**sources, "farthest_first": wrong})
                        }.items():
        (subs / student / UNIT).mkdir(parents=True)
        nbformat.write(nb, subs / student / UNIT / f"{NB}.ipynb")

    # 1. The harness grades the class into PostgreSQL (canary, parallel workers on SQLite
    #    snapshots of it, the serial replay into it, report; feedback is left out: it is not
    #    about the database, and tests/test_grading_class.py covers it).
    out = tmp_path / "report"
    started = time.monotonic()
    _grading("grade", "--assignment", UNIT, "--submissions", str(subs), "--root",
             str(course.root), "--db", url, "--out", str(out), "--jobs", "2", "--quiet",
             "--no-feedback", *LIMITS)
    seconds = time.monotonic() - started
    rows = _rows(out / "grades.csv")
    assert {s: float(r["score"]) for s, r in rows.items()} == {"alice": FULL, "bob": 10.0}
    assert rows["alice"]["manual_pending"] == "1" and rows["bob"]["manual_pending"] == "1"
    assert not (course.root / "grading" / "work" / "gradebook.db").exists(), \
        "nothing went to the default SQLite gradebook"

    with Gradebook(url) as gb:  # the grades are in PostgreSQL itself
        assert gb.db.get_bind().dialect.name == "postgresql"
        assert sorted(s.student.id for s in gb.assignment_submissions(UNIT)) == ["alice", "bob"]
        assert gb.find_submission(UNIT, "bob").score == pytest.approx(10.0)
        written = [g.name for g in gb.find_submission_notebook(NB, UNIT, "alice").grades
                   if g.needs_manual_grade]
    assert len(written) == 1, written

    # 2. Two teaching assistants grade the written answer at the same time, each in their own
    #    session (what formgrader does when a score is typed), both transactions open at once.
    both_open = threading.Barrier(2, timeout=60)
    errors = []

    def ta(student, score):
        try:
            with Gradebook(url) as gb:
                grade = gb.find_grade(written[0], NB, UNIT, student)
                grade.manual_score = score
                gb.db.flush()
                both_open.wait()
                gb.db.commit()
        except Exception as exc:  # noqa: BLE001 - reported below, with the TA's student
            errors.append(f"{student}: {type(exc).__name__}: {exc}")
            both_open.abort()

    tas = [threading.Thread(target=ta, args=a) for a in (("alice", 2), ("bob", 1))]
    for t in tas:
        t.start()
    for t in tas:
        t.join(90)
    assert not errors, errors

    # 3. The export, rebuilt from PostgreSQL, has both.
    again = tmp_path / "report-after-tas"
    _grading("report", "--assignment", UNIT, "--root", str(course.root), "--db", url,
             "--out", str(again))
    rows = _rows(again / "grades.csv")
    assert {s: float(r["score"]) for s, r in rows.items()} == {"alice": FULL + 2,
                                                              "bob": 10.0 + 1}
    assert [rows[s][written[0]] for s in ("alice", "bob")] == ["2", "1"]
    assert all(r["manual_pending"] == "0" and r["complete"] == "yes" for r in rows.values())
    print(f"graded 2 students into PostgreSQL in {seconds:.0f} s")
