"""nbgrader's own documented path, run for real on every unit (STYLE.md: their docs are a test).

generate the release -> the committed release equals a fresh one -> a student's Validate ->
autograde simulated students -> read the gradebook -> generate feedback -> export grades.

Cost (make test must stay under 8 minutes on 2 cores): every notebook execution here is a
kernel running a whole unit, so each is made to count. The source is not validated on its
own: the honest student below is the source's solutions in the release, graded through the
sandbox, and must score every point (the grading harness's canary grades the source itself,
tests/test_grading_class.py). Validate runs for the first unit only: what it executes for
every unit (the release with the solutions, without the hidden tests) is what
tests/test_notebooks_run.py runs, live widgets included. The untouched release must score 0
on every cell, which is what `validate --invert` would check. The unit's plausible
mistakes (tests/units/) are made by one student together: each mistake is in a function no
other exercise calls, so the cells that lose points must be exactly the union of the cells
each mistake should fail, and every other cell must keep its points (partial credit per
cell).

Units are graded two to a course (the heaviest with the lightest): each nbgrader step runs
once for both (`nbgrader autograde "*"`: nbgrader globs its assignment ids), which saves a
process start, a sandbox warm-up and an HTML exporter per unit (~12 CPU-s each); every
assertion is still made per unit, each in its own subtest. The pairs: conftest.UNIT_PAIRS.
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


def test_grading_path(course, units, subtests):
    for unit in units:
        course.add_unit(unit)
    course.nbgrader("generate_assignment", "*", "--force")
    expected = {}
    for unit in units:
        with subtests.test("committed release == fresh release", unit=unit):
            expected[unit] = _submit_class(course, unit)
    course.nbgrader("autograde", "*", "--force")
    scores = {unit: course.scores(unit) for unit in units}
    totals = {}
    for unit in units:
        with subtests.test("scores", unit=unit):
            totals[unit] = _check_scores(scores[unit], *expected[unit])

    # Feedback for the honest student only (the page every student gets is the same
    # conversion; the harness's class tests check the hidden tests stay out of it).
    course.nbgrader("generate_feedback", "*", "--force", "--student=honest")
    out = course.root / "grades.csv"
    course.nbgrader("export", f"--to={out}")
    rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(out.open())}
    for unit in units:
        with subtests.test("feedback and export", unit=unit):
            feedback = course.root / "grading" / "work" / "feedback" / "honest" / unit
            assert list(feedback.glob("*.html")), "feedback HTML was not generated"
            assert float(rows[unit, "honest"]["score"]) == pytest.approx(totals[unit])
            assert float(rows[unit, "blank"]["score"]) == 0


def _submit_class(course, unit):
    """The committed release checked against the fresh one; blank, honest and wrong
    submitted. -> (mistakes, the test cells each mistake must fail)."""
    spec = course.units[unit]
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

    source = nbformat.read(course.repo / "solutions" / unit / spec["notebook"], as_version=4)
    sources = course.solution_sources(source)
    release = nbformat.read(release_path, as_version=4)
    course.submit("blank", unit, release)
    # the written answers too: Validate insists on them (they are graded by hand)
    written = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")}
    honest = course.submit("honest", unit, course.fill_in(release, {**sources, **written}))
    if unit == min(course.units):
        # What a student who got everything right sees when they press Validate.
        proc = course.nbgrader("validate", str(honest))
        assert "Success! Your notebook passes all the tests." in proc.stdout, proc.stdout[-2000:]
    mistakes = {grade_id: wrong for grade_id, (wrong, _) in spec["wrong"].items()}
    course.submit("wrong", unit, course.fill_in(release, {**sources, **mistakes}))
    failing = [cells for _, cells in spec["wrong"].values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(failing) for b in failing[i + 1:]), (
        "each mistake in tests/units/ must fail its own test cells")
    return sorted(mistakes), failing


def _check_scores(scores, mistakes, failing):
    """-> the honest student's total."""
    total = sum(m for _, m in scores["honest"].values())
    assert total > 0
    assert {g: s for g, (s, _) in scores["blank"].items()} == {g: 0 for g in scores["blank"]}, (
        "an untouched release must score 0")
    assert all(s == m for s, m in scores["honest"].values()), (
        f"the reference solutions must score every autograded point: {scores['honest']}")
    got = scores["wrong"]
    lost = {g for g, (s, m) in got.items() if s < m}
    should = set().union(*failing)
    assert lost == should, (f"the mistakes in {mistakes} should fail exactly "
                            f"{sorted(should)}, failed {sorted(lost)}")
    assert all(got[g][0] == 0 for g in should)
    assert all(s == m for g, (s, m) in got.items() if g not in should), "partial credit"
    return total
