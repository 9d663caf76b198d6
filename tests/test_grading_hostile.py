"""A class of hostile and broken submissions, built from the real release notebook and graded
by the real nbgrader: once through the batch harness (``grading.harness.grade``, parallel,
sandboxed) and once through a plain ``nbgrader autograde`` from grading/ (the protections
live in grading/nbgrader_config.py, so they must hold there too).

Each student is the reference solution with ONE thing changed; the expected score says what
that change must cost (12 = every autograded point of 01-kmeans; the markdown answer is
graded by hand and not counted here). Each batch is one test, so the whole class is graded in
one run (xdist spreads the two batches over the two cores).
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

UNIT = "01-kmeans"
NB = "kmeans"
FULL = 12.0
CELL_TIMEOUT = 8
LIMITS = [f"--GuardedExecute.timeout={CELL_TIMEOUT}", "--GuardedExecute.notebook_timeout=150",
          "--GuardedExecute.iopub_timeout=4", "--SandboxKernelManager.memory_mb=2048"]

# A cell-level helper every attack below appends to a solution cell.
SWALLOW_ERRORS = """
ip = get_ipython()
_run_cell = ip.run_cell
def _quiet_run_cell(raw_cell, *args, **kwargs):
    body = "\\n".join("    " + line for line in raw_cell.splitlines()) or "    pass"
    return _run_cell("try:\\n" + body + "\\nexcept BaseException:\\n    pass", *args, **kwargs)
ip.run_cell = _quiet_run_cell
ip.showtraceback = lambda *a, **k: None
import sys
sys.excepthook = lambda *a: None
"""

RECORD_WITHOUT_JUDGING = """
from helpers.checks import _core
def _call(self, fn, **params):
    params = {k: _core._jsonable(v) for k, v in params.items()}
    answers = [fn(*case.args) for case in self.cases(**params)]
    _core._record(self.name, params, answers)
_core.Check.__call__ = _call
"""

SKIP_JUDGING_BUILTINS = """
import builtins, sys
_zip = builtins.zip
def _zip_unless_judging(*args):
    # judging loops in helpers/checks/_core.py see nothing to compare
    caller = sys._getframe(1).f_code.co_filename
    return iter(()) if caller.endswith("_core.py") else _zip(*args)
builtins.zip = _zip_unless_judging
"""


def _students(course, sources, release, course_root, port):
    """{student: (notebook or None or bytes, expected score, problem kinds that must be
    reported)}. ``None`` = the notebook is missing; bytes = written as is."""
    def nb(**changes):
        return course.fill_in(release, {**sources, **changes})

    s = sources
    wrong = course.units[UNIT]["wrong"]
    l1_assign = ("def assign_clusters(X, centers):\n"
                 "    # mistake: L1 distances (right on the tiny example, wrong elsewhere)\n"
                 "    d = np.abs(X[:, None, :] - centers[None, :, :]).sum(axis=2)\n"
                 "    return np.argmin(d, axis=1)\n")
    lloyd_two = s["lloyd"].replace("for _ in range(max_iter):", "for _ in range(2):")
    assert lloyd_two != s["lloyd"]
    gradebook = course_root / "gradebook.db"
    other = course_root / "grading" / "work" / "submitted" / "honest" / UNIT / f"{NB}.ipynb"

    out = {
        "honest": (nb(), FULL, set()),
        "blank": (release, 0.0, set()),
        "wrong_farthest": (nb(farthest_first=wrong["farthest_first"][0]), 10.0, set()),
        "partly_wrong": (nb(compute_inertia=wrong["compute_inertia"][0]), 11.0, set()),
        # --- verdicts the kernel cannot flip
        "allclose": (nb(elbow=s["elbow"].replace("return ks, inertias, best_k",
                                                 "return ks, [1.01 * v for v in inertias], best_k")
                        + "\nnp.allclose = lambda *a, **k: True\n"), 10.0, {"tamper"}),
        "patch_checks": (nb(compute_inertia=wrong["compute_inertia"][0]
                            + "\nimport helpers.checks.kmeans as km\n"
                            "km.expect_close = lambda *a, **k: None\n"
                            "np.isclose = lambda *a, **k: True\n"), 11.0, {"tamper"}),
        "patch_check_class": (nb(lloyd=lloyd_two + RECORD_WITHOUT_JUDGING), 9.0, {"tamper"}),
        "hooks": (nb(farthest_first=wrong["farthest_first"][0] + SWALLOW_ERRORS), 10.0,
                  {"tamper"}),
        "builtins": (nb(assign_clusters=l1_assign + SKIP_JUDGING_BUILTINS), 7.0, {"tamper"}),
        "reference_call": (nb(assign_clusters="from helpers.clustering import assign_clusters "
                              "as _ac\n\ndef assign_clusters(X, centers):\n"
                              "    return _ac(X, centers)\n"), FULL, {"reference"}),
        # --- isolation
        "intruder": (nb(assign_clusters=s["assign_clusters"] + f"""
import os, socket, sqlite3
try:
    db = sqlite3.connect({str(gradebook)!r})
    db.execute("UPDATE grade SET extra_credit = 1000")
    db.commit()
    print("GRADEBOOK WRITTEN")
except Exception as exc:
    print("gradebook blocked:", type(exc).__name__)
for path in ({str(other)!r}, {str(gradebook)!r}, {str(course_root / "solutions")!r}):
    try:
        print("SNOOPED", path, len(open(path).read()) if os.path.isfile(path) else os.listdir(path))
    except OSError as exc:
        print("snoop blocked:", path, type(exc).__name__)
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"LEAK")
    print("NETWORK REACHED")
except OSError as exc:
    print("network blocked:", type(exc).__name__)
""",
                     # and prints 20 times the output limit (1,000,000 characters a cell) in
                     # another cell: 200 MB took past the 8 s cell limit on a loaded machine,
                     # which is a time-out, not this test
                     update_centers=s["update_centers"] + "\nprint('x' * 20_000_000)\n"),
                     FULL, {"suspicious", "output-truncated"}),
        # --- faults
        "loop": (nb(compute_inertia="def compute_inertia(X, centers, labels):\n"
                    "    while True:\n        pass\n"), 11.0, {"cell-timeout"}),
        "loop_no_interrupt": (nb(elbow="import signal\n"
                                 "def elbow(X, max_k=8, seed=0):\n"
                                 "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                 "    while True:\n        pass\n"), 10.0,
                              {"kernel-unresponsive"}),
        "exit": (nb(lloyd="import os\ndef lloyd(X, initial_centers, max_iter=100):\n"
                    "    os._exit(1)\n"), 6.0, {"kernel-died"}),
        "membomb": (nb(farthest_first="def farthest_first(X, k, first=0):\n"
                       "    hog = []\n    while True:\n"
                       "        hog.append(b'x' * 50_000_000)\n"), 10.0, {"memory-limit"}),
        "forkbomb": (nb(elbow="import os\ndef elbow(X, max_k=8, seed=0):\n"
                        "    while True:\n        os.fork()\n"), 10.0,
                     {"suspicious", ("stray-processes", "kernel-unresponsive", "cell-timeout")}),
        "warning": (nb(update_centers=s["update_centers"].replace(
            "    return", "    import sys, warnings\n"
            "    warnings.warn('this is only a warning', UserWarning)\n"
            "    print('a note on stderr', file=sys.stderr)\n    return")), FULL, set()),
        "corrupt": (b'{"cells": [ not json', 0.0, {"unreadable-notebook"}),
        "missing": (None, 0.0, {"missing-notebook"}),
        # four edits of the instructor's cells in one notebook, each in its own cell: a test
        # deleted (put back), a test's points raised (restored), a test duplicated (dropped),
        # and a test emptied to pass a wrong answer (restored: the mistake costs its points)
        "edited_cells": (_edit_test(_duplicate(_points(_without(
            nb(farthest_first=wrong["farthest_first"][0]), "test_update_centers"),
            "test_lloyd", 100), "test_assign_clusters"), "test_farthest_first",
            "pass  # all good"), 10.0,
            {"deleted-cell", "edited-points", "duplicate-id", "edited-cell"}),
    }
    return out


def _cells_by_id(nb):
    return {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(nb.cells)}


def _without(nb, grade_id):
    del nb.cells[_cells_by_id(nb)[grade_id]]
    return nb


def _edit_test(nb, grade_id, source):
    nb.cells[_cells_by_id(nb)[grade_id]].source = source
    return nb


def _points(nb, grade_id, points):
    nb.cells[_cells_by_id(nb)[grade_id]].metadata.nbgrader["points"] = points
    return nb


def _duplicate(nb, grade_id):
    i = _cells_by_id(nb)[grade_id]
    nb.cells.insert(i + 1, nbformat.from_dict(json.loads(json.dumps(nb.cells[i]))))
    nb.cells[i + 1].pop("id", None)
    nb.cells[i + 1]["id"] = "duplicated-cell"
    return nb


# --------------------------------------------------------------------------- helpers


class _Listener:
    """A TCP server on the host's loopback: the sandboxed kernels must not reach it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def close(self):
        self._stop = True
        self.thread.join(timeout=2)
        self.sock.close()


def _build(course, port):
    from grading.sandbox import bwrap_status

    course.add_unit(UNIT)
    course.nbgrader("generate_assignment", UNIT, "--force")
    source = nbformat.read(course.repo / "solutions" / UNIT / f"{NB}.ipynb", as_version=4)
    release = nbformat.read(course.release_path(UNIT), as_version=4)
    students = _students(course, course.solution_sources(source), release, course.root, port)
    if not bwrap_status()[0]:  # no sandbox (a laptop): never fork-bomb the developer's machine
        for name in ("forkbomb", "membomb"):
            students.pop(name)
    return students


def _write(folder: Path, nb):
    folder.mkdir(parents=True, exist_ok=True)
    if nb is None:
        (folder / "notes.txt").write_text("forgot the notebook")
    elif isinstance(nb, bytes):
        (folder / f"{NB}.ipynb").write_bytes(nb)
    else:
        nbformat.write(nb, folder / f"{NB}.ipynb")


def _unreported(kinds, reported):
    """Required report entries that are missing; a tuple means any one of them (a fork bomb
    ends as a time-out or as a kernel that stops answering, whichever comes first)."""
    return {k for k in kinds
            if not (set(k) & reported if isinstance(k, tuple) else k in reported)}


def _check_scores(scores, students, skip=()):
    bad = []
    for name, (_, want, _) in students.items():
        if name in skip:
            continue
        got = scores.get(name)
        if got is None or abs(got - want) > 1e-9:
            bad.append(f"{name}: expected {want}, got {got}")
    assert not bad, "wrong scores:\n" + "\n".join(bad)


def _autograded_scores(course):
    return {s: sum(v[0] or 0 for v in cells.values()) for s, cells in course.scores(UNIT).items()}


def _sandbox_leftovers(course, students):
    """Processes still running under the user ids this batch's kernels ran as."""
    import os

    uids = set()
    for name in students:
        path = course.root / "grading" / "work" / "autograded" / name / UNIT / f"{NB}.ipynb"
        if path.exists():
            uid = nbformat.read(path, as_version=4).metadata["day6_grading"].get("sandbox_uid")
            if uid is not None:
                uids.add(uid)
    assert uids, "no sandbox user ids recorded"
    left = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid in uids:
                    left.append(entry.name)
            except OSError:
                pass
    return left


def _outputs_text(course, student):
    path = course.root / "grading" / "work" / "autograded" / student / UNIT / f"{NB}.ipynb"
    nb = nbformat.read(path, as_version=4)
    text = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            text.append(o.get("text", "") if o.get("output_type") == "stream" else "")
    return "".join(text), path


def _check_isolation(course, listener, students):
    from grading.sandbox import bwrap_status

    if not bwrap_status()[0]:
        pytest.skip("bubblewrap unavailable: isolation not testable here (`make sandbox`)")
    text, _ = _outputs_text(course, "intruder")
    assert "gradebook blocked" in text and "GRADEBOOK WRITTEN" not in text, text[:800]
    assert "SNOOPED" not in text and text.count("snoop blocked") == 3, text[:800]
    assert "network blocked" in text and "NETWORK REACHED" not in text, text[:800]
    assert listener.hits == 0
    text, path = _outputs_text(course, "intruder")
    assert "output truncated by the grader" in text
    assert path.stat().st_size < 5_000_000, "20 MB of output reached the stored notebook"
    assert not _sandbox_leftovers(course, students), "sandboxed processes outlived grading"


# --------------------------------------------------------------------------- the two batches

def test_hostile_class_through_harness(course, tmp_path):
    from grading.harness import Course as HCourse
    from grading.harness import grade

    listener = _Listener()
    try:
        students = _build(course, listener.port)
        subs = tmp_path / "incoming"
        for name, (nb, _, _) in students.items():
            _write(subs / name / UNIT, nb)
        run = grade(UNIT, subs, course=HCourse(course.root, db_url=f"sqlite:///{course.db}"),
                    jobs=2, extra_args=LIMITS, progress=False, out=tmp_path / "report")
    finally:
        listener.close()

    report = run.report
    got = {s: e["score"] for s, e in report["students"].items()}
    _check_scores(got, students)
    _check_scores(_autograded_scores(course), students, skip={"missing", "corrupt"})
    assert {s: e["max_score"] for s, e in report["students"].items()} == \
        {s: 14.0 for s in students}, "edited points must not change the maximum"

    # Every fault and attack has its entry in the report; the clean ones have none.
    problems = {s: {p["kind"] for p in e["problems"]} for s, e in report["students"].items()}
    missing = {s: _unreported(kinds, problems[s]) for s, (_, _, kinds) in students.items()
               if _unreported(kinds, problems[s])}
    assert not missing, f"report entries missing: {missing}"
    for clean in ("honest", "blank", "wrong_farthest", "partly_wrong", "warning"):
        assert not problems[clean], f"{clean} flagged for nothing: {problems[clean]}"
    flipped = {s for s, e in report["students"].items()
               if any(p["kind"] == "tamper" and "kernel reported a pass" in p["detail"]
                      for p in e["problems"])}
    assert {"allclose", "patch_checks", "patch_check_class", "builtins", "hooks"} <= flipped
    needs = {item["student"] for item in report["needs_human"]}
    assert needs == {s for s in students if problems[s]}

    # Outputs of the run: grades.csv, report page and plots, feedback without hidden tests.
    import csv

    rows = {r["student_id"]: r for r in csv.DictReader(run.grades_csv.open())}
    assert set(rows) == set(students), "one row per student, the one who forgot the notebook too"
    assert float(rows["missing"]["score"]) == 0.0
    assert float(rows["honest"]["score"]) == FULL
    html = (run.out / "report.html").read_text()
    assert "Needs a human" in html and "scores_total.png" in html
    for png in report["plots"]:
        assert (run.out / png).read_bytes()[:4] == b"\x89PNG"
    fb = course.root / "grading" / "work" / "feedback" / "honest" / UNIT / f"{NB}.html"
    text = fb.read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "range(100" not in text
    assert "hidden tests: not shown" in text
    _check_isolation(course, listener, students)


# One student per protection in grading/nbgrader_config.py (every one of them is also in the
# harness's class above, with the other ways to reach the same protection): the re-judge
# outside the kernel (TrustedVerdicts), the sandbox's isolation and output limit, its time,
# memory and process limits, a dead kernel, and the cell checks (InspectSubmission,
# RestoreCells, CheckCellMetadata, Deduplicate).
ATTACKS_FOR_PLAIN = ("hooks", "intruder", "loop_no_interrupt", "exit", "membomb", "forkbomb",
                     "edited_cells")


def test_hostile_class_plain_nbgrader(course):
    """An instructor who skips the harness and runs `nbgrader autograde` from grading/."""
    listener = _Listener()
    try:
        students = _build(course, listener.port)
        students = {k: v for k, v in students.items() if k in ATTACKS_FOR_PLAIN}
        for name, (nb, _, _) in students.items():
            course.submit(name, UNIT, nb)
        proc = course.nbgrader("autograde", UNIT, "--force", *LIMITS, check=False, timeout=900,
                              script=True)
    finally:
        listener.close()
    scores = _autograded_scores(course)
    assert set(scores) == set(students), proc.stderr[-3000:]
    _check_scores(scores, students)
    for name, (_, _, kinds) in students.items():
        path = course.root / "grading" / "work" / "autograded" / name / UNIT / f"{NB}.ipynb"
        meta = nbformat.read(path, as_version=4).metadata["day6_grading"]
        reported = {e["kind"] for e in meta["events"]} | {f["kind"] for f in meta["flags"]}
        assert not _unreported(kinds, reported), \
            f"{name}: {_unreported(kinds, reported)} not recorded in the notebook"
    _check_isolation(course, listener, students)
