"""Fast checks of the grading protections, without running nbgrader: every unit's test cells
can be judged outside the kernel, forged or wrong recordings fail, reference calls and
monkeypatching are flagged (and the reference solutions are not), feedback hides hidden
tests, and the sandbox command binds nothing it should not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat import NotebookNode

from grading import static
from grading.references import FORBIDDEN
from grading.verdicts import HideHiddenTests, _is_trusted_source, judge_cell, parse_check_calls
from helpers import clustering
from helpers.checks._core import RECORD_MIMETYPE, REGISTRY, decode, encode


def _source(course, unit):
    return nbformat.read(course.repo / "solutions" / unit / course.units[unit]["notebook"],
                         as_version=4)


def _test_cells(nb):
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and md.get("grade") and not md.get("solution"):
            yield md["grade_id"], cell.source


def test_every_test_cell_is_verifiable_outside_the_kernel(course, unit):
    """Each autograded test cell calls at least one checker, at top level, with literal
    parameters: otherwise its verdict would come from the student's kernel alone."""
    cells = dict(_test_cells(_source(course, unit)))
    assert cells
    for grade_id, source in cells.items():
        calls, problems = parse_check_calls(source)
        assert calls, f"{unit}/{grade_id} calls no checker: add a check.check_...() call"
        assert not problems, f"{unit}/{grade_id}: {problems}"
        for candidates, params in calls:
            assert candidates[0].cases(**params), f"{unit}/{grade_id}: no cases for {params}"


def test_every_solution_cell_has_a_forbidden_list(course, unit):
    ids = {c.metadata["nbgrader"]["grade_id"] for c in _source(course, unit).cells
           if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
    missing = ids - set(FORBIDDEN.get(unit, {}))
    assert not missing, f"grading/references.py: add FORBIDDEN[{unit!r}] for {missing}"


def test_reference_solutions_raise_no_flags(course, unit):
    nb = _source(course, unit)
    trusted = {gid for gid, _ in _test_cells(nb)}
    assert static.analyze(static.notebook_cells(nb, trusted), unit) == []


# --------------------------------------------------------------------------- static flags

def _flags(source, grade_id="assign_clusters", prelude="from helpers import clustering\n"):
    cells = [("cell 0", prelude, None, False), (grade_id, source, grade_id, False)]
    return {(f["kind"], f["cell"]) for f in static.analyze(cells, "01-kmeans")}


@pytest.mark.parametrize("source", [
    "def assign_clusters(X, c):\n    return clustering.assign_clusters(X, c)",
    "import helpers.clustering as hc\ndef assign_clusters(X, c):\n    return hc.assign_clusters(X, c)",
    "from helpers.clustering import assign_clusters as ac\ndef assign_clusters(X, c):\n    return ac(X, c)",
    "import helpers\ndef assign_clusters(X, c):\n    return helpers.clustering.kmeans_step(X, c)[0]",
    "f = clustering.assign_clusters\ndef assign_clusters(X, c):\n    return f(X, c)",
    "def assign_clusters(X, c):\n    return getattr(clustering, 'assign_clusters')(X, c)",
    "from sklearn.cluster import KMeans\ndef assign_clusters(X, c):\n    return KMeans(len(c), init=c, n_init=1).fit(X).labels_",
])
def test_reference_calls_are_flagged(source):
    assert ("reference", "assign_clusters") in _flags(source)


def test_allowed_helpers_are_not_flagged():
    # 01-kmeans's elbow is meant to call clustering.kmeans
    src = "def elbow(X, max_k=8, seed=0):\n    return clustering.kmeans(X, 2, seed=seed).inertia"
    assert _flags(src, "elbow") == set()


@pytest.mark.parametrize("source, kind", [
    ("import numpy as np\nnp.allclose = lambda *a, **k: True", "tamper"),
    ("import numpy\nsetattr(numpy, 'allclose', lambda *a: True)", "tamper"),
    ("import builtins\nbuiltins.zip = lambda *a: iter(())", "tamper"),
    ("__builtins__['len'] = lambda x: 0", "tamper"),
    ("import sys\nsys.excepthook = lambda *a: None", "tamper"),
    ("get_ipython().showtraceback = lambda *a, **k: None", "tamper"),
    ("from helpers.checks import _core\n_core.Check.__call__ = lambda *a, **k: None", "tamper"),
    ("display({'application/vnd.day6.check+json': {}}, raw=True)", "tamper"),
    ("import os\nos._exit(0)", "suspicious"),
    ("import sqlite3\nsqlite3.connect('gradebook.db')", "suspicious"),
    ("exec('1 + 1')", "suspicious"),
])
def test_tampering_is_flagged(source, kind):
    assert (kind, "assign_clusters") in _flags(source)


# --------------------------------------------------------------------------- outside verdicts

SOURCE = ("labels = assign_clusters(X, c)\n"
          "check.check_assign_clusters(assign_clusters)\n"
          "### BEGIN HIDDEN TESTS\n"
          "check.check_assign_clusters(assign_clusters, seeds=range(100, 103), dims=(1, 3))\n"
          "### END HIDDEN TESTS\n")


def _record(params, fn=clustering.assign_clusters):
    check = REGISTRY["kmeans.assign_clusters"]
    norm = json.loads(json.dumps(params))
    answers = [encode(fn(*case.args)) for case in check.cases(**params)]
    data = {"check": check.name, "params": norm, "answers": answers}
    return NotebookNode(output_type="display_data", metadata={},
                        data={RECORD_MIMETYPE: json.loads(json.dumps(data)),
                              "text/plain": "[recorded]"})


def _cell(*outputs):
    return NotebookNode(cell_type="code", source=SOURCE, metadata={}, outputs=list(outputs))


HIDDEN = {"seeds": [100, 101, 102], "dims": [1, 3]}


def test_parse_check_calls_reads_literal_parameters():
    calls, problems = parse_check_calls(SOURCE)
    assert not problems
    assert [(c[0].name, p) for c, p in calls] == [("kmeans.assign_clusters", {}),
                                                 ("kmeans.assign_clusters", HIDDEN)]
    _, problems = parse_check_calls("for s in range(3):\n    check.check_lloyd(lloyd, seeds=[s])")
    assert problems
    _, problems = parse_check_calls("check.check_lloyd(lloyd, seeds=my_seeds)")
    assert problems


def test_checker_modules_are_found_without_importing_them_all():
    """The grader imports only the checker modules a test cell names (a 01 cell must not
    pull torch into every grading process), so every checker must be bound by a plain
    top-level statement that the source index sees: the index agrees with the imports."""
    from grading import verdicts

    full = verdicts.checks_by_attribute()
    index = verdicts._names_by_module()
    for attr, found in full.items():
        modules = {c.judge.__module__.rsplit(".", 1)[-1] for c in found}
        assert any(attr in index[m] for m in modules), attr
        assert verdicts.checks_by_attribute({attr})[attr] == found
    code = ("import sys\nfrom grading.verdicts import parse_check_calls\n"
            "calls, _ = parse_check_calls('check.check_lloyd(lloyd)\\nnp.allclose(1, 1)')\n"
            "print(calls[0][0][0].name, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout.split()
    assert out == ["kmeans.lloyd", "False"]


def test_right_recordings_pass_and_warnings_do_not_count():
    stderr = NotebookNode(output_type="stream", name="stderr", text="UserWarning: careful\n")
    verdict = judge_cell(SOURCE, _cell(_record({}), stderr, _record(HIDDEN)))
    assert verdict.ok and verdict.kind == "verified", verdict


def _wrong(X, c):
    labels = clustering.assign_clusters(X, c)
    labels[0] = (labels[0] + 1) % len(c)
    return labels


@pytest.mark.parametrize("outputs, why, kind", [
    (lambda: [_record({}), _record(HIDDEN, _wrong)], "not assigned to their nearest",
     "rejected"),
    (lambda: [_record({})], "expected 2 recorded", "forged"),
    (lambda: [], "expected 2 recorded", "forged"),
    (lambda: [_record({}), _record({"seeds": [0], "dims": [2]})], "parameters", "forged"),
    (lambda: [_record({}), _record(HIDDEN), _record(HIDDEN)], "expected 2 recorded", "forged"),
    (lambda: [_record({}), NotebookNode(output_type="error", ename="AssertionError",
                                        evalue="x", traceback=[])], "AssertionError",
     "kernel-failed"),
])
def test_wrong_missing_or_forged_recordings_fail(outputs, why, kind):
    verdict = judge_cell(SOURCE, _cell(*outputs()))
    assert not verdict.ok and why in verdict.reason, verdict
    assert verdict.kind == kind and verdict.kernel_failed == (kind == "kernel-failed"), verdict


def test_a_cell_without_a_checker_call_is_said_so_by_kind():
    verdict = judge_cell("assert 1 + 1 == 2", _cell())
    assert verdict.ok and verdict.kind == "no-checker", verdict


def test_garbage_recordings_fail_without_crashing():
    rec = _record(HIDDEN)
    rec.data[RECORD_MIMETYPE]["answers"][0] = {"__b64array__": "AAAA", "dtype": "|O",
                                               "shape": [10**12]}
    verdict = judge_cell(SOURCE, _cell(_record({}), rec))
    assert not verdict.ok and "cannot be judged" in verdict.reason
    assert verdict.kind == "rejected"


def test_encode_decode_round_trip_is_exact():
    values = [np.array([0.1, np.nan, -np.inf]), np.arange(6, dtype=np.int32).reshape(2, 3).T,
              (np.float64(2.5), 3, "x", None), float("nan")]
    for v in values:
        back = decode(json.loads(json.dumps(encode(v), allow_nan=False)))
        if isinstance(v, np.ndarray):
            assert back.dtype == v.dtype and np.array_equal(back, v, equal_nan=True)
    with pytest.raises(ValueError, match="dtype"):
        decode({"__b64array__": "", "dtype": "O", "shape": [0]})


def test_restored_cell_prefix_is_accepted_but_edits_are_not():
    assert _is_trusted_source("# This cell was missing\n\n" + SOURCE, SOURCE)
    assert not _is_trusted_source("np.allclose = None\n" + SOURCE, SOURCE)


def test_feedback_hides_hidden_tests():
    cell = _cell(_record({}), NotebookNode(output_type="error", ename="CheckFailure",
                                           evalue="wrong", traceback=["check_assign(seeds=range(100"]))
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert "BEGIN HIDDEN" not in cell.source and "range(100" not in cell.source
    assert "hidden tests: not shown" in cell.source
    assert [o.output_type for o in cell.outputs] == ["error"]
    assert "range(100" not in json.dumps(cell.outputs)


# --------------------------------------------------------------------------- sandbox

def test_sandbox_binds_only_the_environment_and_the_notebook(tmp_path):
    from grading.sandbox import SandboxKernelManager

    km = SandboxKernelManager()
    km._box_dir = tmp_path / "box"
    (km._box_dir / "run").mkdir(parents=True)
    km._box_uid = 1_234_567
    cwd = str(tmp_path / "autograded" / "alice" / "01-kmeans")
    argv = km._wrap([sys.executable, "-m", "ipykernel_launcher", "-f", "k.json"], cwd)
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv"):
        assert flag in argv
    assert cwd in binds and str(km._box_dir / "run") in binds
    writable = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert writable == [str(km._box_dir / "run")]
    repo = Path(__file__).resolve().parents[1]
    for forbidden in ("/", "/root", str(repo), str(repo / "grading"), str(repo / "solutions"),
                      os.path.expanduser("~")):
        assert forbidden not in binds, f"{forbidden} must not be visible to the kernel"
    env = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert "JPY_PARENT_PID" not in env and env["HOME"].startswith("/tmp")
    assert json.loads(argv[argv.index("-c") + 2])["rlimits"]["RLIMIT_NPROC"] == 128


def test_lms_zip_download_is_collected(tmp_path, monkeypatch):
    """An LMS download (<student>_..._<notebook>.ipynb in a zip) through nbgrader's zip_collect
    lands in the <student>/<assignment>/ layout the harness grades."""
    import zipfile

    from nbgrader.api import Gradebook

    from grading.harness import VENV_BIN, Course, collect

    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    course = Course(tmp_path / "course", db_url=f"sqlite:///{tmp_path / 'gb.db'}")
    with Gradebook(course.db_url):
        pass
    text = (Path(__file__).resolve().parents[1] / "notebooks" / "01-kmeans" /
            "kmeans.ipynb").read_text()
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("alice_attempt_2024-01-01_kmeans.ipynb", text)
        z.writestr("bob-smith_kmeans.ipynb", text)
        z.writestr("readme.txt", "not a submission")
    (tmp_path / "work").mkdir()
    found = collect(archive, "01-kmeans", course, tmp_path / "work")
    assert sorted(found) == ["alice", "bob-smith"]
    for folder in found.values():
        assert (folder / "kmeans.ipynb").read_text() == text
