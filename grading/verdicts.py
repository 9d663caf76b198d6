"""Verdicts the student cannot flip, and the notebook checks around them.

nbgrader scores a test cell from what the kernel sent back: no error output means full
points. The kernel runs the student's code, so it can lie (patch ``numpy.allclose``, the
checker, ``builtins``, IPython's ``showtraceback`` ...). Here, in the nbgrader process, outside
the kernel:

``InspectSubmission`` (sanitize step, before nbgrader repairs the notebook)
    notes what the student changed in the instructor's cells: edited or deleted test cells,
    edited points, duplicated or unknown grade ids, and repairs metadata nbgrader would choke
    on. nbgrader's ``OverwriteCells`` then restores the test cells from the gradebook (and
    ``add_missing_cells`` puts deleted ones back).

``TrustedVerdicts`` (autograde step, after execution, before ``SaveAutoGrades``)
    for every autograded test cell, reads the TRUSTED source from the gradebook, finds the
    checker calls in it (``check.check_lloyd(lloyd, seeds=range(100, 106), dims=(2, 3))``)
    and requires, in the cell's outputs, exactly one recorded payload per call, in order,
    with the same check name and parameters; it re-judges the recorded answers against the
    reference (``REGISTRY[name].rejudge``) here. The cell passes only if the kernel reported
    no error AND every recorded answer is right; otherwise an error output is put first, so
    ``SaveAutoGrades`` scores it 0, and the report says why. The kernel can only make its own
    verdict worse, never better. A pass the kernel claimed but the re-judge refuses is
    flagged as tampering. Plain asserts in a test cell are not re-run outside: every test
    cell must call at least one checker (tests/test_grading_static.py enforces it for every
    unit); a cell without one is graded as the kernel says and flagged.

    Warnings printed to stderr in a passing test cell no longer cost the points (nbgrader
    scores any stderr output 0): they are kept as stdout text.

``HideHiddenTests`` (feedback step)
    removes the ``### BEGIN HIDDEN TESTS`` blocks from the feedback, error tracebacks of cells
    that have hidden tests (they quote the failing line), and the recorded answers.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import DeduplicateIds, NbGraderPreprocessor, OverwriteCells
from traitlets import Bool

from grading import static
from grading.execute import RECORD_MIMETYPE, add_event, error_output, grading_meta

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


# --------------------------------------------------------------------------- checker calls

def _check_modules():
    import helpers.checks as pkg

    return [info.name for info in pkgutil.iter_modules(pkg.__path__)
            if not info.name.startswith("_")]


@lru_cache(maxsize=1)
def _names_by_module():
    """{module: top-level names it binds}, read from each checker module's source without
    importing it (importing them all pulls torch, sklearn and scipy into every grading
    process, ~3 s; a test cell of one unit needs one module)."""
    import helpers.checks as pkg

    found = {}
    for name in _check_modules():
        tree = ast.parse((Path(pkg.__path__[0]) / f"{name}.py").read_text())
        bound = set()
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign):
                bound.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                bound.add(stmt.target.id)
            elif isinstance(stmt, ast.FunctionDef | ast.ClassDef):
                bound.add(stmt.name)
            elif isinstance(stmt, ast.ImportFrom):
                bound.update(a.asname or a.name for a in stmt.names)
        found[name] = bound
    return found


@cache
def _checks_in(module_names):
    from helpers.checks._core import Check

    found = {}
    for name in module_names:
        module = importlib.import_module(f"helpers.checks.{name}")
        for attr, value in vars(module).items():
            if isinstance(value, Check):
                found.setdefault(attr, [])
                if value not in found[attr]:
                    found[attr].append(value)
    return found


def checks_by_attribute(attributes=None):
    """{attribute name: [Check, ...]} over every ``helpers.checks`` module, or only over
    those that bind one of ``attributes`` (every checker is bound by a plain top-level
    statement of its module: tests/test_grading_static.py holds that)."""
    modules = _check_modules()
    if attributes is not None:
        index = _names_by_module()
        modules = [m for m in modules if index[m] & set(attributes)]
    return _checks_in(tuple(modules))


def _literal(node):
    """Value of a literal kwarg; ``range(...)`` of literal ints is allowed."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id == "range" and not node.keywords:
        return range(*[_literal(a) for a in node.args])
    if isinstance(node, ast.Tuple | ast.List):
        return [_literal(e) for e in node.elts]
    return ast.literal_eval(node)


def _call_attr(node):
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            return node.func.attr
        if isinstance(node.func, ast.Name):
            return node.func.id
    return None


def parse_check_calls(source):
    """The checker calls of a test cell: ``(calls, problems)``.

    ``calls``: ``[(candidates, params)]`` for each top-level statement that calls a checker,
    in order (``candidates``: the Check objects that attribute name may be); ``problems``:
    why some part of the cell cannot be verified outside the kernel (a checker call inside a
    loop or a condition, a parameter that is not a literal).
    """
    from helpers.checks._core import _jsonable

    tree = static.to_python(source)
    if tree is None:
        return [], ["the test cell does not parse"]
    known = checks_by_attribute({a for node in ast.walk(tree) if (a := _call_attr(node))})
    calls, problems = [], []
    top = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and _call_attr(stmt.value) in known:
            top.add(id(stmt.value))
            call = stmt.value
            attr = _call_attr(call)
            if len(call.args) != 1:
                problems.append(f"{attr}: expected the function as the only positional "
                                "argument")
                continue
            try:
                params = {kw.arg: _jsonable(_literal(kw.value)) for kw in call.keywords}
            except (ValueError, TypeError, SyntaxError):
                problems.append(f"{attr}: parameters must be literals (or range(...))")
                continue
            if None in params:
                problems.append(f"{attr}: **kwargs cannot be checked outside the kernel")
                continue
            calls.append((known[attr], params))
    for node in ast.walk(tree):
        if _call_attr(node) in known and id(node) not in top:
            problems.append(f"{_call_attr(node)} is called inside a block: only top-level "
                            "checker calls are verified outside the kernel")
    return calls, problems


def _records(cell):
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "display_data" and RECORD_MIMETYPE in o.get("data", {}):
            out.append(o["data"][RECORD_MIMETYPE])
    return out


class Verdict(NamedTuple):
    """The outside verdict on one executed test cell. ``kind`` says what decided it, so
    callers branch on it, never on the wording of ``reason`` (which is for people):

    - ``verified``: every recorded answer re-judged outside the kernel and right;
    - ``no-checker``: the cell calls no checker; the kernel's own outcome is all there is;
    - ``kernel-failed``: the kernel raised in the cell (final: a failure is never upgraded);
    - ``rejected``: the re-judge finds an answer wrong (a kernel that reported a pass lied);
    - ``forged``: records missing, malformed, or for another check or other parameters;
    - ``source-differs``: the test cell's source is not the gradebook's.
    """

    ok: bool
    reason: str
    kind: str
    problems: list

    @property
    def kernel_failed(self):
        return self.kind == "kernel-failed"


def judge_cell(trusted_source, cell) -> Verdict:
    """Outside verdict for one executed test cell (a ``Verdict``)."""
    calls, problems = parse_check_calls(trusted_source)
    kernel_errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not calls:
        return Verdict(not kernel_errors, "no checker call to verify outside the kernel",
                       "kernel-failed" if kernel_errors else "no-checker", problems)
    records = _records(cell)
    if kernel_errors:
        # A failure the kernel reports is final; the records explain nothing more.
        first = kernel_errors[0]
        return Verdict(False, f"{first.get('ename')}: {first.get('evalue')}", "kernel-failed",
                       problems)
    if len(records) != len(calls):
        return Verdict(False, f"expected {len(calls)} recorded check result(s), found "
                       f"{len(records)} (recording was suppressed or forged)", "forged", problems)
    for (candidates, params), record in zip(calls, records):
        if not isinstance(record, dict) or not isinstance(record.get("answers"), list):
            return Verdict(False, "a recorded check result is malformed", "forged", problems)
        check = next((c for c in candidates if c.name == record.get("check")), None)
        if check is None:
            return Verdict(False, f"recorded check {record.get('check')!r} is not the one the "
                           f"test cell calls ({', '.join(c.name for c in candidates)})",
                           "forged", problems)
        if record.get("params") != params:
            return Verdict(False, f"{check.name}: recorded parameters {record.get('params')!r} "
                           "differ from the test cell's", "forged", problems)
        try:
            check.rejudge(params, record["answers"])
        except AssertionError as exc:
            return Verdict(False, f"{check.name}: {exc}", "rejected", problems)
        except Exception as exc:  # noqa: BLE001 - garbage answers must fail, not crash
            return Verdict(False, f"{check.name}: the recorded answers cannot be judged "
                           f"({type(exc).__name__}: {exc})", "rejected", problems)
    return Verdict(True, "verified outside the kernel", "verified", problems)


# --------------------------------------------------------------------------- sanitize

def release_source(source):
    """A test cell's source as the student got it (hidden tests removed, as nbgrader's
    ClearHiddenTests does when it generates the release)."""
    from nbgrader.preprocessors import ClearHiddenTests

    cell = NotebookNode(cell_type="code", source=source, metadata={}, outputs=[],
                        execution_count=None)
    ClearHiddenTests()._remove_hidden_test_region(cell)
    return cell.source


class InspectSubmission(NbGraderPreprocessor):
    """Record (and make repairable) what the student changed in the instructor's cells."""

    def preprocess(self, nb, resources):
        nb.metadata.pop("day6_grading", None)  # never trust what the submission brings
        for cell in nb.cells:
            if isinstance(cell.get("metadata"), dict):
                cell.metadata.pop("day6", None)
        meta = grading_meta(nb)
        notebook_id = resources["nbgrader"]["notebook"]
        assignment_id = resources["nbgrader"]["assignment"]
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            try:
                source_nb = gb.find_notebook(notebook_id, assignment_id)
            except MissingEntry:
                return nb, resources
            source = {c.name: c for c in source_nb.source_cells}
            graded = {c.name: c for c in source_nb.grade_cells}
            solutions = {c.name for c in source_nb.solution_cells}
            tasks = {c.name for c in source_nb.task_cells}
            seen = {}
            for index, cell in enumerate(nb.cells):
                md = cell.get("metadata", {}).get("nbgrader")
                if md is None:
                    continue
                if not isinstance(md, dict):
                    cell.metadata.pop("nbgrader")
                    continue
                gid = md.get("grade_id")
                if gid is None or gid not in source:
                    if gid is not None or md.get("grade") or md.get("solution"):
                        self._note(nb, "unknown-cell", f"cell {index} carries grading metadata "
                                   f"({gid!r}) that the assignment does not have: ignored")
                    cell.metadata.pop("nbgrader")
                    continue
                seen.setdefault(gid, []).append(index)
                src = source[gid]
                if src.locked and cell.source not in (src.source, release_source(src.source)):
                    self._note(nb, "edited-cell", f"{gid} was edited: restored from the "
                               "gradebook")
                if gid in graded:
                    try:
                        points = float(md.get("points"))
                    except (TypeError, ValueError):
                        points = None
                    if points != float(graded[gid].max_score):
                        self._note(nb, "edited-points", f"{gid}: points changed to "
                                   f"{md.get('points')!r}: restored to {graded[gid].max_score:g}")
                        md["points"] = float(graded[gid].max_score)
                flags = {"grade": gid in graded, "solution": gid in solutions,
                         "task": gid in tasks, "locked": bool(src.locked)}
                changed = [k for k, v in flags.items() if bool(md.get(k, False)) != v]
                if changed:
                    self._note(nb, "edited-metadata", f"{gid}: {', '.join(changed)} changed: "
                               "restored")
                md.update(flags)
            for gid, where in seen.items():
                if len(where) > 1:
                    self._note(nb, "duplicate-id", f"{gid} appears {len(where)} times (cells "
                               f"{where}); only the last one is graded")
            for gid in graded:
                if gid not in seen:
                    self._note(nb, "deleted-cell", f"{gid} was deleted: put back from the "
                               "gradebook")
        meta.setdefault("notebook", [])
        return nb, resources

    def _note(self, nb, kind, detail):
        self.log.warning("Submission problem: %s", detail)
        add_event(nb, kind, detail)


# --------------------------------------------------------------------------- autograde

def _is_trusted_source(source, trusted):
    """The gradebook's source, possibly behind the comment nbgrader's add_missing_cells puts
    in front of a cell it restored."""
    if source == trusted:
        return True
    if not source.endswith(trusted):
        return False
    prefix = source[: len(source) - len(trusted)]
    return all(not ln.strip() or ln.lstrip().startswith("#") for ln in prefix.splitlines())


class RestoreCells(OverwriteCells):
    """nbgrader's OverwriteCells without its "checksum for cell X has changed" warning.

    Every test cell with hidden tests differs from the gradebook's copy in the release itself
    (``ClearHiddenTests`` removed the hidden part), so nbgrader warned once per such cell per
    student though nothing was edited. ``InspectSubmission`` already compares each locked
    cell with both the gradebook's and the release's source and reports real edits
    (``edited-cell``); the cell is restored either way."""

    def report_change(self, name, attr, old, new):
        if attr == "checksum":
            return
        super().report_change(name, attr, old, new)


class Deduplicate(DeduplicateIds):
    """nbgrader's DeduplicateIds, leaving no empty grading metadata behind (nbgrader's own
    add_missing_cells crashes on a cell whose metadata lost its grade_id)."""

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        for cell in nb.cells:
            if cell.get("metadata", {}).get("nbgrader") == {}:
                del cell.metadata["nbgrader"]
        return nb, resources


class TrustedVerdicts(NbGraderPreprocessor):
    """Judge every autograded test cell again outside the kernel (see module docs)."""

    flag_static = Bool(True, help="Read the student's cells for reference calls and "
                       "tampering (flags only).").tag(config=True)

    def preprocess(self, nb, resources):
        meta = grading_meta(nb)
        if resources.get("day6_replayed"):
            return nb, resources  # judged by the worker that executed it (same code, trusted)
        notebook_id = resources["nbgrader"]["notebook"]
        assignment_id = resources["nbgrader"]["assignment"]
        trusted = {}
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            source_nb = gb.find_notebook(notebook_id, assignment_id)
            sources = {c.name: c.source for c in source_nb.source_cells}
            for gc in source_nb.grade_cells:
                if gc.cell_type == "code":
                    trusted[gc.name] = sources.get(gc.name)
        verdicts = {}
        for cell in nb.cells:
            md = cell.get("metadata", {}).get("nbgrader", {})
            gid = md.get("grade_id")
            if cell.cell_type != "code" or not utils.is_grade(cell) or \
                    utils.is_solution(cell) or gid not in trusted:
                continue
            if not _is_trusted_source(cell.source, trusted[gid]):  # OverwriteCells restored it
                verdict = Verdict(False, "test cell source differs from the gradebook",
                                  "source-differs", [])
            else:
                verdict = judge_cell(trusted[gid], cell)
            ok, reason, kernel_failed = verdict.ok, verdict.reason, verdict.kernel_failed
            for p in verdict.problems:
                self._flag(meta, "unverifiable", gid, p)
            if verdict.kind == "no-checker":
                self._flag(meta, "unverifiable", gid, "this test cell calls no checker: its "
                           "verdict comes from the kernel and can be forged")
            if not ok and not kernel_failed:
                self._flag(meta, "tamper", gid, f"the kernel reported a pass, the outside "
                           f"re-judge does not: {reason}")
            verdicts[gid] = {"passed": ok, "reason": reason}
            cell.metadata["day6"] = {"passed": ok, "reason": reason}
            self._normalise(cell, ok, reason, kernel_failed)
        meta["verdicts"] = verdicts
        for kind, cell, detail in run_problems(nb, verdicts):
            self._flag(meta, kind, cell, detail)
        if self.flag_static:
            for f in static.analyze(static.notebook_cells(nb, set(trusted)), assignment_id):
                self._flag(meta, f["kind"], f["cell"], f["detail"])
        return nb, resources

    def _flag(self, meta, kind, cell, detail):
        entry = {"kind": kind, "cell": cell, "detail": detail}
        if entry not in meta["flags"]:
            meta["flags"].append(entry)
            self.log.warning("Flag (%s) %s: %s", kind, cell, detail)

    @staticmethod
    def _normalise(cell, ok, reason, kernel_failed):
        """Make nbgrader's scoring (error/stderr -> 0, execute_result -> partial) say ours."""
        outputs = []
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                o = NotebookNode(output_type="stream", name="stdout", text=o.get("text", ""))
            elif o.get("output_type") == "execute_result":
                continue  # partial credit is not used by our tests; a forged one must not count
            outputs.append(o)
        if not ok and not kernel_failed:
            outputs.insert(0, error_output("VerificationFailed", reason))
        elif not ok and not any(o.get("output_type") == "error" for o in outputs):
            outputs.insert(0, error_output("VerificationFailed", reason))
        cell.outputs = outputs


# --------------------------------------------------------------------------- run problems

SAME_ERROR = ("NameError", "ImportError", "ModuleNotFoundError", "AttributeError")


def _first_error(cell):
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


def run_problems(nb, verdicts):
    """What a human should look at in how the notebook ran (not in what it answered):

    - ``setup-crash``: a cell that is neither a solution nor a test, before the first test
      cell, raised (``import seaborn`` at the top of a correct notebook: every test then
      fails for want of ``np``);
    - ``same-error``: two or more test cells, and every failing one, fail with the same
      NameError / ImportError (one missing name costs every exercise).
    A kernel that died is already an event (``kernel-died``)."""
    problems = []
    first_test = next((i for i, c in enumerate(nb.cells)
                       if c.cell_type == "code" and utils.is_grade(c)
                       and not utils.is_solution(c)), len(nb.cells))
    for index, cell in enumerate(nb.cells[:first_test]):
        if cell.cell_type != "code" or utils.is_solution(cell) or utils.is_grade(cell):
            continue
        err = _first_error(cell)
        if err is not None and err.get("ename") != "NotRun":
            problems.append(("setup-crash", f"cell {index}", f"a set-up cell (not an exercise) "
                             f"raised {err.get('ename')}: {str(err.get('evalue'))[:200]}; the "
                             "tests after it may fail for that reason alone"))
    failing = []
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in verdicts and not verdicts[gid]["passed"]:
            err = _first_error(cell)
            failing.append((gid, (err.get("ename"), err.get("evalue")) if err else None))
    errors = {e for _, e in failing}
    if len(failing) >= 2 and len(errors) == 1:
        (err,) = errors
        if err is not None and err[0] in SAME_ERROR:
            problems.append(("same-error", None, f"all {len(failing)} failing test cells fail "
                             f"with the same {err[0]}: {str(err[1])[:200]} (a set-up problem "
                             "rather than wrong answers?)"))
    return problems


# --------------------------------------------------------------------------- feedback

_HIDDEN = re.compile(re.escape(HIDDEN_BEGIN) + r".*?" + re.escape(HIDDEN_END), re.S)


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback without hidden test code (nbgrader shows the whole restored cell)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or HIDDEN_BEGIN not in cell.source:
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.get("outputs", []) if not _is_record(o)]
            return cell, resources
        cell.source = _HIDDEN.sub("# (hidden tests: not shown)", cell.source)
        if HIDDEN_BEGIN in cell.source:  # unterminated block: hide to the end
            cell.source = cell.source.split(HIDDEN_BEGIN)[0] + "# (hidden tests: not shown)"
        outputs = []
        for o in cell.get("outputs", []):
            if _is_record(o):
                continue
            if o.get("output_type") == "error":
                o = NotebookNode(output_type="error", ename=o.get("ename", "Error"),
                                 evalue=o.get("evalue", ""),
                                 traceback=[f"{o.get('ename', 'Error')}: {o.get('evalue', '')}"])
            outputs.append(o)
        cell.outputs = outputs
        return cell, resources


def _is_record(o):
    return o.get("output_type") == "display_data" and RECORD_MIMETYPE in o.get("data", {})
