"""A messy class, graded for real: an LMS zip with every layout the harness promises to read,
graded by ``grading.harness.grade`` (real nbgrader, real sandbox), then a late student, a
re-run, one student regraded, a written answer graded by hand, and a broken environment.

The class is graded once, in one test (``test_a_messy_lms_class``), and each thing asserted on
it is a subtest: every uploaded file is graded or listed by name with its reason, runs are
cumulative, exports are honest. (As module fixtures shared by several tests, pytest-xdist
spread the tests over both workers and each worker graded its own copy of the class.) The
canary refusing a broken environment before it touches the gradebook is a test of its own.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

UNIT = "01-kmeans"
NB = "kmeans"
FULL = 12.0       # every autograded point of 01-kmeans
MAX = 14.0        # with the written answer (2 points, graded by hand)
DUE = "2026-11-30 17:00:00 UTC"
LIMITS = ["--GuardedExecute.timeout=60", "--GuardedExecute.notebook_timeout=240"]
# Feedback pages are not what this class tests (what a student gets back, hidden tests kept
# out, is checked on the hostile class in tests/test_grading_hostile.py, whose students crash,
# flood and tamper): leaving them out here saves nbgrader's conversion of every student.
FEEDBACK = False


def _text(nb):
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
def lms(module_course):
    """A course, the zip of a messy class, and what each upload must become."""
    course = module_course
    root = course.root / "uploads"
    root.mkdir()
    course.add_unit(UNIT)
    course.nbgrader("generate_assignment", UNIT, "--force")
    source = nbformat.read(REPO / "solutions" / UNIT / f"{NB}.ipynb", as_version=4)
    release = nbformat.read(course.release_path(UNIT), as_version=4)
    sources = course.solution_sources(source)
    for cell in source.cells:  # the written answer too (it is graded by hand)
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "markdown":
            sources[meta["grade_id"]] = "K-Means assumes round clusters of similar size."
    honest = course.fill_in(release, sources)
    wrong = course.fill_in(release, {**sources,
                                     "farthest_first": course.units[UNIT]["wrong"]
                                     ["farthest_first"][0]})
    crash = course.fill_in(release, sources)
    setup = next(c for c in crash.cells if c.cell_type == "code")
    setup.source = "import seaborn as sns  # not installed\n" + setup.source
    dbscan = (REPO / "notebooks" / "02-dbscan" / "dbscan.ipynb").read_bytes()
    predicted = course.fill_in(release, sources)  # alice committed a prediction (Predict)
    first = next(c for c in predicted.cells if c.cell_type == "code")
    first.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.day6.predictions+json": {"predictions": [{
            "qid": "01.elbow", "question": "Where will the elbow be?",
            "options": ["k = 2", "k = 3", "k = 5"], "choice": "k = 2", "answer": "k = 3"}]}})]

    archive = root / "download.zip"
    uploads = {   # upload name -> (student it must be graded as, or None when listed)
        "alice_1001_kmeans.ipynb": ("alice", _text(predicted)),
        "smithjohn_LATE_12345_67890_kmeans.ipynb": ("smithjohn", _text(honest)),
        "Quentin Jones_5554_assignsubmission_file_/kmeans.ipynb": ("quentin-jones",
                                                                   _text(wrong)),
        "müller_2002_kmeans.ipynb": ("muller", _text(release)),
        "john_smith_1003_kmeans.ipynb": ("john_smith", _text(honest)),
        "john_doe_1004_kmeans.ipynb": ("john_doe", _text(honest)),
        "carol_1005_kmeans.ipynb": ("carol", _text(crash)),
        "dave/kmeans-1.ipynb": ("dave", _text(honest)),
        "erin/kmeans.ipynb": (None, _text(honest)),        # two uploads claim erin's
        "erin/kmeans (2).ipynb": (None, _text(wrong)),    # notebook: both listed
        "frank_1006_dbscan.ipynb": (None, dbscan),        # another unit's notebook
        "readme.txt": (None, b"our LMS export"),
        "__MACOSX/._alice_1001_kmeans.ipynb": ("ignored", b"\0"),
    }
    with zipfile.ZipFile(archive, "w") as z:
        for name, (_, data) in uploads.items():
            z.writestr(name, data)
    hcourse = _hcourse(course)
    return {"course": course, "hcourse": hcourse, "archive": archive, "uploads": uploads,
            "release": release, "sources": sources, "root": root, "honest": honest}


def _hcourse(course):
    from grading.harness import Course as HCourse

    return HCourse(course.root, db_url=f"sqlite:///{course.db}")


def _first_run(lms):
    from grading.harness import grade

    return grade(UNIT, lms["archive"], course=lms["hcourse"], jobs=2, extra_args=LIMITS,
                 progress=False, duedate=DUE, feedback=FEEDBACK)


def _late_run(lms):
    """A student who handed in late, graded on their own, after the class."""
    from grading.harness import grade

    late = lms["root"] / "late"
    path = late / "gina" / UNIT / f"{NB}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_bytes(_text(lms["honest"]))
    (path.parent / "timestamp.txt").write_text("2026-12-02 09:00:00 UTC")  # 2 days late
    return grade(UNIT, late, course=lms["hcourse"], jobs=2, extra_args=LIMITS,
                 progress=False, feedback=FEEDBACK)


def _uploads_in_report(report):
    return {item["file"]: item for item in report["needs_human"] if "file" in item}


# --------------------------------------------------------------------------- the class

def test_a_messy_lms_class(lms, subtests, capsys):
    """Grade the zip; check it; a late student; check the class is kept; re-run and regrade
    one student; a written answer graded by hand reaches the export."""
    first = _first_run(lms)
    with subtests.test("every uploaded file is graded or listed by name"):
        _check_every_uploaded_file_is_graded_or_listed_by_name(lms, first)
    with subtests.test("scores"):
        _check_scores_of_the_lms_class(first)
    with subtests.test("flags that mean look at this"):
        _check_flags_that_mean_look_at_this(first)
    with subtests.test("honest exports"):
        _check_honest_exports(first)
    late = _late_run(lms)
    with subtests.test("a late run keeps the class report"):
        _check_a_late_run_keeps_the_class_report(first, late)
    with subtests.test("a re-run skips the unchanged and regrades one student"):
        _check_rerun_skips_unchanged_and_regrades_one_student(lms, late, capsys)
    with subtests.test("a written answer graded by hand reaches the export"):
        _check_written_answer_graded_by_hand_reaches_the_export(lms, late)


def _check_every_uploaded_file_is_graded_or_listed_by_name(lms, first_run):
    files = {f.upload.split("!", 1)[1]: f for f in first_run.files}
    assert set(files) == set(lms["uploads"]), "every file of the zip is accounted for"
    listed = _uploads_in_report(first_run.report)
    for name, (student, _) in lms["uploads"].items():
        entry = files[name]
        if student == "ignored":
            assert entry.status == "ignored"
        elif student is None:
            assert entry.status == "listed" and entry.reason, name
            assert entry.upload in listed, f"{name} is not under needs a human"
        else:
            assert entry.status == "graded" and entry.student == student, (name, entry)
    assert "name clash" in files["erin/kmeans.ipynb"].reason
    assert "erin/kmeans (2).ipynb" in files["erin/kmeans.ipynb"].reason
    assert "belongs to 02-dbscan" in files["frank_1006_dbscan.ipynb"].reason
    assert "not a notebook" in files["readme.txt"].reason
    # the collection log is kept with the report
    log = first_run.logs / "collect.json"
    assert {Path(f["upload"].split("!", 1)[1]).as_posix()
            for f in json.loads(log.read_text())["files"]} == set(lms["uploads"])


def _check_scores_of_the_lms_class(first_run):
    students = first_run.report["students"]
    expected = {"alice": FULL, "john_smith": FULL, "john_doe": FULL, "dave": FULL,
                "quentin-jones": 10.0, "muller": 0.0, "smithjohn": FULL * 0.9,
                "frank": 0.0}  # uploaded only another unit's notebook: 0, and listed
    got = {s: students[s]["score"] for s in expected}
    assert got == pytest.approx(expected)
    assert "erin" not in students, "a clash is not graded until a human picks a file"
    assert students["smithjohn"]["late_penalty"] == pytest.approx(FULL * 0.1), \
        "Canvas's LATE tag with a due date costs one day (10 %)"


def _check_flags_that_mean_look_at_this(first_run):
    problems = {s: {p["kind"] for p in e["problems"]}
                for s, e in first_run.report["students"].items()}
    assert "setup-crash" in problems["carol"]
    crash = next(p for p in first_run.report["students"]["carol"]["problems"]
                 if p["kind"] == "setup-crash")
    assert "seaborn" in crash["detail"]
    assert "renamed" in problems["dave"]
    assert {"wrong-assignment", "missing-notebook"} <= problems["frank"], problems["frank"]
    for clean in ("alice", "john_doe", "quentin-jones", "muller"):
        assert not problems[clean], f"{clean} flagged for nothing: {problems[clean]}"
    needs = {item.get("student") for item in first_run.report["needs_human"]}
    assert {"carol", "dave", "erin", "frank"} <= needs


def _check_honest_exports(first_run):
    rows = {r["student_id"]: r for r in csv.DictReader(first_run.grades_csv.open())}
    assert set(rows) == set(first_run.report["students"]), \
        "one row per student who submitted this assignment"
    alice = rows["alice"]
    assert float(alice["score"]) == FULL and float(alice["max_score"]) == MAX
    assert alice["manual_pending"] == "1" and alice["complete"] == "no"
    assert alice["test_assign_clusters"] == "2"
    written = [c["grade_id"] for c in first_run.report["cells"] if not c["auto"]]
    assert written and alice[written[0]] == "", "a pending manual grade is empty, not 0"
    assert float(rows["smithjohn"]["late_penalty"]) == pytest.approx(1.2)
    total_png = first_run.out / "scores_total.png"
    assert total_png.read_bytes()[:4] == b"\x89PNG"
    html = (first_run.out / "report.html").read_text()
    assert "pending" in html and "download.zip!readme.txt" in html
    # How the class predicted (never graded), from what the students submitted.
    elbow = first_run.report["predictions"]["01.elbow"]
    assert elbow["counts"] == {"k = 2": 1, "k = 3": 0, "k = 5": 0}
    assert elbow["answer"] == "k = 3"
    assert (first_run.out / "predictions.png").read_bytes()[:4] == b"\x89PNG"
    assert "How the class predicted" in html and "Where will the elbow be?" in html


def test_plain_nbgrader_zip_collect_reads_underscored_notebook_names(course, tmp_path):
    """nbgrader's own zip_collect with this course's config: case_study_cnns.ipynb keeps
    its name (the old regexp allowed no `_` and read it as cnns.ipynb)."""
    dl = tmp_path / "downloaded" / "06-case-study-cnns" / "archive"
    dl.mkdir(parents=True)
    (dl / "alice_1001_case_study_cnns.ipynb").write_text("{}")
    (dl / "bob_kmeans_attempt_case_study_cnns.ipynb").write_text("{}")
    course.nbgrader("zip_collect", "06-case-study-cnns", "--force")
    sub = tmp_path / "grading" / "work" / "submitted"
    got = sorted(p.relative_to(sub).as_posix() for p in sub.rglob("*.ipynb"))
    assert got == ["alice/06-case-study-cnns/case_study_cnns.ipynb",
                   "bob/06-case-study-cnns/case_study_cnns.ipynb"]


# --------------------------------------------------------------------------- later runs

def _check_a_late_run_keeps_the_class_report(first_run, late_run):
    before = first_run.report
    after = late_run.report
    assert set(after["students"]) == set(before["students"]) | {"gina"}
    assert late_run.students["gina"].graded and after["graded_this_run"] == ["gina"]
    kept = {s: {p["kind"] for p in e["problems"]} for s, e in after["students"].items()}
    assert "setup-crash" in kept["carol"] and "renamed" in kept["dave"]
    assert set(_uploads_in_report(before)) <= set(_uploads_in_report(after)), \
        "files listed by an earlier run stay listed"
    assert (first_run.logs / "collect.json").exists(), "each run keeps its own logs"
    assert late_run.logs != first_run.logs and (late_run.logs / "collect.json").exists()
    # two started days late at 10 % a day (grading/late.py)
    assert after["students"]["gina"]["late_penalty"] == pytest.approx(FULL * 0.2)
    assert after["students"]["gina"]["score"] == pytest.approx(FULL * 0.8)


def _check_rerun_skips_unchanged_and_regrades_one_student(lms, late_run, capsys):
    from grading.harness import grade

    course = lms["hcourse"]
    again = grade(UNIT, lms["archive"], course=course, jobs=2, extra_args=LIMITS,
                  progress=False, feedback=FEEDBACK)
    skipped = {s for s, r in again.students.items() if r.skipped}
    assert not any(r.graded for r in again.students.values())
    assert skipped == {"alice", "smithjohn", "quentin-jones", "muller", "john_smith",
                       "john_doe", "carol", "dave"}
    assert "cached" in again.canary, "the canary is not paid again for the same environment"
    assert again.report["submissions"] == late_run.report["submissions"]

    capsys.readouterr()
    one = grade(UNIT, lms["archive"], course=course, jobs=2, extra_args=LIMITS,
                progress=True, students=["quentin-jones"], force=True, feedback=FEEDBACK)
    assert [s for s, r in one.students.items() if r.graded] == ["quentin-jones"]
    bar = capsys.readouterr().err  # tqdm's bar counts the one student selected
    assert f"grading {UNIT}" in bar and "1/1" in bar, bar[-500:]
    assert one.report["students"]["quentin-jones"]["score"] == 10.0
    attic = course.attic / "quentin-jones" / UNIT
    assert attic.is_dir() and list(attic.glob("*/kmeans.ipynb")), \
        "the earlier submission is kept in the attic, not deleted"


def _check_written_answer_graded_by_hand_reaches_the_export(lms, late_run):
    """What formgrader does when a TA types a score: set manual_score through nbgrader's
    API; then `python -m grading report` rebuilds grades.csv from the gradebook."""
    from nbgrader.api import Gradebook

    course = lms["hcourse"]
    written = [c["grade_id"] for c in late_run.report["cells"] if not c["auto"]]
    with Gradebook(course.db_url) as gb:
        grade = gb.find_grade(written[0], NB, UNIT, "alice")
        assert grade.needs_manual_grade
        grade.manual_score = 2
        gb.db.commit()
    out = lms["root"] / "report-after-manual"
    proc = subprocess.run([sys.executable, "-m", "grading", "report", "--assignment", UNIT,
                           "--root", str(course.root), "--db", course.db_url, "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["student_id"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert float(rows["alice"]["score"]) == MAX
    assert rows["alice"]["manual_pending"] == "0" and rows["alice"]["complete"] == "yes"
    assert rows["alice"][written[0]] == "2"
    assert rows["john_doe"]["complete"] == "no"


# --------------------------------------------------------------------------- broken environments

def test_canary_refuses_an_environment_that_cannot_grade(course, tmp_path):
    """Kernels that cannot even import numpy (a memory limit far too small) would give the
    whole class zeros: the canary stops the run first, with exit status 3, the failing cells
    and their errors, and the gradebook untouched."""
    course.add_unit(UNIT)
    course.nbgrader("generate_assignment", UNIT, "--force")
    subs = tmp_path / "subs" / "alice" / UNIT
    subs.mkdir(parents=True)
    source = nbformat.read(REPO / "solutions" / UNIT / f"{NB}.ipynb", as_version=4)
    release = nbformat.read(course.release_path(UNIT), as_version=4)
    nbformat.write(course.fill_in(release, course.solution_sources(source)),
                   subs / f"{NB}.ipynb")
    proc = subprocess.run([sys.executable, "-m", "grading", "grade", "--assignment", UNIT,
                           "--submissions", str(tmp_path / "subs"), "--root", str(course.root),
                           "--db", f"sqlite:///{course.db}", "--quiet",
                           "--cell-timeout", "60",
                           "--nbgrader-arg=--SandboxKernelManager.memory_mb=60"],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 3, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "REFUSING TO GRADE 01-kmeans" in proc.stderr
    assert "test_assign_clusters" in proc.stderr and "MemoryError" in proc.stderr or \
        "Error" in proc.stderr, proc.stderr[-3000:]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course.db}") as gb:
        assert gb.assignment_submissions(UNIT) == [], "nothing was graded"
    assert not (course.root / "grading" / "work" / "submitted").exists()


def test_diagnose_names_a_kernel_that_imports_another_checkout(monkeypatch):
    from grading import harness, sandbox

    monkeypatch.setattr(sandbox, "kernel_helpers", lambda python=None: "/other/checkout/helpers")
    causes = harness.diagnose()
    assert len(causes) == 1
    assert "/other/checkout/helpers" in causes[0] and str(REPO / "helpers") in causes[0]
    assert "pip" in causes[0] and "install -e" in causes[0]
    monkeypatch.setattr(sandbox, "kernel_helpers", lambda python=None: None)
    assert "cannot import helpers" in harness.diagnose()[0]
    monkeypatch.setattr(sandbox, "kernel_helpers",
                        lambda python=None: str((REPO / "helpers").resolve()))
    assert harness.diagnose() == []
