"""nbgrader's own documented path, run for real on every unit (STYLE.md: their docs are a test).

validate the source -> generate the release -> the committed release equals a fresh one ->
validate --invert the release -> autograde simulated students -> read the gradebook ->
generate feedback -> export grades.
"""

from __future__ import annotations

import csv

import nbformat
import pytest

pytestmark = pytest.mark.slow

VOLATILE_METADATA = {"execution", "collapsed", "scrolled", "trusted"}


def _normalise(nb):
    """What must match between the committed and a fresh release: cell types, sources and
    nbgrader metadata (checksums included); not volatile editor state."""
    cells = []
    for cell in nb.cells:
        meta = {k: v for k, v in cell.metadata.items() if k not in VOLATILE_METADATA}
        cells.append((cell.cell_type, cell.source, meta))
    return cells


def test_source_validates(course, unit):
    src = course.repo / "solutions" / unit / course.units[unit]["notebook"]
    proc = course.nbgrader("validate", str(src))
    assert "Success! Your notebook passes all the tests." in proc.stdout, proc.stdout[-2000:]


def test_grading_path(course, unit):
    spec = course.units[unit]
    course.add_unit(unit)
    course.nbgrader("generate_assignment", unit, "--force")
    release_path = course.release_path(unit)

    # The committed release is exactly what nbgrader generates from the committed source.
    committed = nbformat.read(course.repo / "notebooks" / unit / spec["notebook"], as_version=4)
    fresh = nbformat.read(release_path, as_version=4)
    assert _normalise(committed) == _normalise(fresh), (
        f"notebooks/{unit} is stale: run `make release` and commit the result")
    for cell in committed.cells:
        assert "BEGIN HIDDEN TESTS" not in cell.source and "BEGIN SOLUTION" not in cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [], "notebooks are committed without outputs"

    proc = course.nbgrader("validate", "--invert", str(release_path))
    assert "Success! The notebook does not pass any tests." in proc.stdout, proc.stdout[-2000:]

    source = nbformat.read(course.repo / "solutions" / unit / spec["notebook"], as_version=4)
    sources = course.solution_sources(source)
    release = nbformat.read(release_path, as_version=4)
    course.submit("blank", unit, release)
    course.submit("honest", unit, course.fill_in(release, sources))
    for grade_id, (wrong_source, _) in spec["wrong"].items():
        course.submit(f"wrong_{grade_id}", unit, course.fill_in(release, {**sources, grade_id: wrong_source}))

    course.nbgrader("autograde", unit, "--force")
    scores = course.scores(unit)
    total = sum(m for _, m in scores["honest"].values())
    assert total > 0
    assert {g: s for g, (s, _) in scores["blank"].items()} == {g: 0 for g in scores["blank"]}, (
        "an untouched release must score 0")
    assert all(s == m for s, m in scores["honest"].values()), (
        f"the reference solutions must score every autograded point: {scores['honest']}")
    for grade_id, (_, failing) in spec["wrong"].items():
        got = scores[f"wrong_{grade_id}"]
        lost = {g for g, (s, m) in got.items() if s < m}
        assert lost == failing, f"a wrong {grade_id} should fail exactly {failing}, failed {lost}"
        assert all(got[g][0] == 0 for g in failing)

    course.nbgrader("generate_feedback", unit, "--force")
    feedback = list((course.root / "grading" / "work" / "feedback" / "honest" / unit).glob("*.html"))
    assert feedback, "feedback HTML was not generated"

    out = course.root / "grades.csv"
    course.nbgrader("export", f"--to={out}")
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert float(rows["honest"]["score"]) == pytest.approx(total)
    assert float(rows["blank"]["score"]) == 0
