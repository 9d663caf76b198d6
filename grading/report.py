"""The instructor's report and grade export for one assignment, built from the gradebook for
EVERY student who submitted it (not only the ones the last run graded), plus the harness's
state file (``grading/work/harness/<assignment>.json``: faults found while collecting and
running, and every uploaded file's fate).

Written to the run's output folder: ``report.json``, ``report.html``, one PNG per exercise
(score distribution, pending manual grades left out) plus the total, and ``grades.csv``.

Needs a human: every submission with a fault (missing or unreadable notebook, renamed file,
name clash, a worker that failed), an event while it ran (time limit, dead kernel, memory or
process limit, output cut, set-up crash, edited / deleted / duplicated cells, edited points)
or a flag (a verdict the kernel claimed but the outside re-judge refused, tampering or
reference-calling code, suspicious calls, test cells that cannot be verified); and every
uploaded file that was not graded, by its name, with the reason. Answers that are graded by
hand anyway (written answers) are counted as pending: they are routine.

``python -m grading report --assignment A`` rebuilds all of it from the gradebook, e.g. after
grading written answers in formgrader.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import nbformat

# Events that are not problems by themselves.
ROUTINE = set()


def _cells(gb, assignment):
    cells = []
    for nb in gb.find_assignment(assignment).notebooks:
        solution = {c.name for c in nb.solution_cells}
        for gc in nb.grade_cells:
            cells.append({"notebook": nb.name, "grade_id": gc.name,
                          "max_score": float(gc.max_score),
                          "auto": gc.cell_type == "code" and gc.name not in solution})
    return cells


def gather(course, assignment, state=None):
    """Per student who submitted ``assignment``: scores per graded cell (None = pending a
    manual grade), total, late penalty, and every fault, event and flag."""
    from nbgrader.api import Gradebook

    state = state or {"students": {}}
    students = {}
    with Gradebook(course.db_url) as gb:
        cells = _cells(gb, assignment)
        max_score = sum(c["max_score"] for c in cells)
        for sub in gb.assignment_submissions(assignment):
            sid = sub.student.id
            if sid.startswith("_"):
                continue
            known = state["students"].get(sid, {})
            entry = {"student": sid, "name": " ".join(filter(None, (sub.student.first_name,
                                                                      sub.student.last_name))),
                     "email": sub.student.email, "scores": {},
                     "score": float(sub.score) - float(sub.late_submission_penalty or 0),
                     "max_score": max_score,
                     "late_penalty": float(sub.late_submission_penalty or 0),
                     "submitted": str(sub.timestamp) if sub.timestamp else "",
                     "manual_pending": [], "problems": list(known.get("faults", [])),
                     "verdicts": {}, "sandbox": None, "seconds": known.get("seconds")}
            for nb in sub.notebooks:
                for grade in nb.grades:
                    pending = grade.needs_manual_grade and grade.manual_score is None
                    entry["scores"][grade.name] = None if pending else float(grade.score)
                    if pending:
                        entry["manual_pending"].append(grade.name)
                _read_meta(course, assignment, sid, nb.name, entry)
            entry["complete"] = not entry["manual_pending"]
            students[sid] = entry
    return cells, students


def _read_meta(course, assignment, student, notebook, entry):
    path = course.autograded / student / assignment / f"{notebook}.ipynb"
    if not path.exists():
        return
    try:
        meta = nbformat.read(str(path), as_version=4).metadata.get("day6_grading", {})
    except Exception:  # noqa: BLE001 - an unreadable copy is a problem to show
        entry["problems"].append({"kind": "unreadable-result", "cell": notebook,
                                  "detail": f"{path} cannot be read"})
        return
    entry["sandbox"] = meta.get("sandbox")
    entry["verdicts"].update(meta.get("verdicts", {}))
    for e in meta.get("events", []) + meta.get("flags", []):
        e = {"kind": e.get("kind"), "cell": e.get("cell"), "detail": e.get("detail")}
        if e["kind"] not in ROUTINE and e not in entry["problems"]:
            entry["problems"].append(e)
    if meta.get("sandbox") and not str(meta["sandbox"]).startswith("sandboxed"):
        entry["problems"].append({"kind": "unprotected", "cell": None,
                                  "detail": f"graded {meta['sandbox']}"})


def unplaced_files(state):
    """Uploaded files no student was graded from, over every run (latest word per file),
    that are still not accounted for by a later run."""
    return [f for f in state.get("files", {}).values() if f.get("status") == "listed"]


def build(course, assignment, out, *, state=None, run=None):
    """Write report.json, report.html, the plots and grades.csv; return the report dict."""
    from grading.harness import load_state

    state = state if state is not None else load_state(course, assignment)
    cells, students = gather(course, assignment, state)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = unplaced_files(state)
    plots = _plots(out, cells, students)
    predictions, prediction_plot = _predictions(course, assignment, students, out)
    needs_human = [{"student": s, "problems": e["problems"]}
                   for s, e in sorted(students.items()) if e["problems"]]
    # students the harness saw but who never reached the gradebook (e.g. a name clash)
    for sid, known in sorted(state.get("students", {}).items()):
        if sid not in students and known.get("faults"):
            needs_human.append({"student": sid, "problems": known["faults"]})
    needs_human += [{"file": f["upload"], "student": f.get("student"),
                     "problems": [{"kind": "not-graded", "cell": None, "detail": f["reason"]}]}
                    for f in files]
    report = {
        "assignment": assignment,
        "sandbox": getattr(run, "sandbox", None),
        "seconds": getattr(run, "seconds", None),
        "run": getattr(run, "run_id", None),
        "canary": getattr(run, "canary", None),
        "graded_this_run": sorted(s for s, r in (run.students.items() if run else ())
                                  if r.graded),
        "skipped_this_run": {s: r.skipped for s, r in (run.students.items() if run else ())
                             if r.skipped},
        "submissions": len(students),
        "cells": cells,
        "students": students,
        "needs_human": needs_human,
        "files_not_graded": files,
        "manual_pending": sum(len(e["manual_pending"]) for e in students.values()),
        "plots": plots,
        "predictions": predictions,
        "prediction_plot": prediction_plot,
        "runs": state.get("runs", []),
    }
    write_csv(out / "grades.csv", cells, students)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "report.html").write_text(_html(report))
    return report


def _predictions(course, assignment, students, out):
    """How the class predicted (never graded), read from what each student submitted (the
    autograded copy is re-executed, so its predictions are the grader's, not theirs)."""
    from grading.predictions import class_predictions, plot_predictions

    paths = [p for sid in sorted(students)
             for p in sorted((course.submitted / sid / assignment).glob("*.ipynb"))]
    counts = class_predictions(paths)
    if not counts:
        return {}, None
    plot_predictions(counts, out / "predictions.png")
    return counts, "predictions.png"


def write(run):
    """The report after a grading run (``grading.harness.grade``)."""
    return build(run.course, run.assignment, run.out, run=run)


CSV_FIXED = ["student_id", "last_name", "first_name", "email", "submitted", "score",
             "max_score", "late_penalty", "manual_pending", "complete"]


def write_csv(path, cells, students):
    """One row per student who submitted: totals, then one column per graded cell (empty
    while a manual grade is pending)."""
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIXED + [c["grade_id"] for c in cells])
        for sid, e in sorted(students.items()):
            first, _, last = (e.get("name") or "").partition(" ")
            w.writerow([sid, last, first, e.get("email") or "", e["submitted"],
                        f"{e['score']:g}", f"{e['max_score']:g}", f"{e['late_penalty']:g}",
                        len(e["manual_pending"]), "yes" if e["complete"] else "no"]
                       + ["" if e["scores"].get(c["grade_id"]) is None
                          else f"{e['scores'][c['grade_id']]:g}" for c in cells])


def _plots(out, cells, students):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    series = [(c["grade_id"], c["max_score"]) for c in cells] + [("total", None)]
    for name, max_score in series:
        if name == "total":
            values = [e["score"] for e in students.values() if e["complete"]]
            pending = sum(1 for e in students.values() if not e["complete"])
            max_score = next(iter(students.values()))["max_score"] if students else 1
        else:
            values = [e["scores"].get(name) for e in students.values()
                      if name in e["scores"]]
            pending = sum(1 for v in values if v is None)
            values = [v for v in values if v is not None]
        fig, ax = plt.subplots(figsize=(4.2, 2.8))
        if values:
            ax.hist(values, bins=min(20, max(4, int(max_score * 2) + 1)),
                    range=(0, max_score), color="#3b6ea8", edgecolor="white")
        title = f"{name} (max {max_score:g})"
        if pending:
            title += f"; {pending} pending"
        ax.set(title=title, xlabel="score", ylabel="students")
        ax.set_xlim(0, max_score)
        fig.tight_layout()
        fname = f"scores_{name}.png"
        fig.savefig(out / fname, dpi=90)
        plt.close(fig)
        made.append(fname)
    return made


def _predictions_html(report):
    e = html.escape
    if not report.get("predictions"):
        return ("<h2>How the class predicted</h2><p>No predictions in the submitted "
                "notebooks (students who never committed one, or an old release).</p>")
    items = []
    for q in report["predictions"].values():
        n = sum(q["counts"].values())
        opts = "".join(f"<li>{e(o)}: {c}{' &#10003;' if o == q.get('answer') else ''}</li>"
                       for o, c in q["counts"].items())
        items.append(f"<li>{e(q['question'])} ({n} answered)<ul>{opts}</ul></li>")
    return (f"<h2>How the class predicted</h2><p>Never graded: a wrong majority is what the "
            f"next lecture should address (&#10003; = the true answer).</p>"
            f"<img src='{e(report['prediction_plot'])}' alt='bar chart per prediction "
            f"question: how many students chose each option'><ul>{''.join(items)}</ul>")


def _html(report):
    e = html.escape
    rows = []
    for s, entry in sorted(report["students"].items()):
        cls = " class='flag'" if entry["problems"] else ""
        status = "" if entry["complete"] else \
            f" <i>({len(entry['manual_pending'])} pending)</i>"
        late = f" (late: -{entry['late_penalty']:g})" if entry["late_penalty"] else ""
        rows.append(f"<tr{cls}><td>{e(s)}</td><td>{entry['score']:g} / "
                    f"{entry['max_score']:g}{status}{late}</td><td>"
                    + "".join(f"{e(k)}: {'pending' if v is None else format(v, 'g')} "
                              for k, v in entry["scores"].items()) + "</td></tr>")
    human = []
    for item in report["needs_human"]:
        probs = "".join(f"<li><b>{e(p.get('kind') or '')}</b> {e(str(p.get('cell') or ''))}: "
                        f"{e(p.get('detail') or '')}</li>" for p in item["problems"])
        who = (f"file <code>{e(item['file'])}</code>" if "file" in item
               else f"<b>{e(item['student'])}</b>")
        human.append(f"<li>{who}<ul>{probs}</ul></li>")
    imgs = "".join(f"<img src='{e(p)}' alt='score distribution: {e(p)}'>"
                   for p in report["plots"])
    sandbox = str(report["sandbox"] or "")
    warn = "" if sandbox.startswith("sandboxed") or not sandbox else "warn"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Grading report: {e(report['assignment'])}</title>
<style>body{{font-family:sans-serif;margin:2em}} img{{margin:4px;border:1px solid #ddd}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 8px}}
tr.flag{{background:#fff3cd}} .warn{{color:#a00;font-weight:bold}}</style></head><body>
<h1>Grading report: {e(report['assignment'])}</h1>
<p>{report['submissions']} submissions in the gradebook ({len(report['graded_this_run'])}
graded by the last run, {len(report['skipped_this_run'])} skipped).
Sandbox: <span class="{warn}">{e(sandbox)}</span>. {e(str(report.get('canary') or ''))}.
Manually graded answers pending: {report['manual_pending']} (open formgrader, then
<code>python -m grading report --assignment {e(report['assignment'])}</code>).</p>
<h2>Needs a human ({len(report['needs_human'])})</h2><ul>{''.join(human) or '<li>none</li>'}</ul>
<h2>Score distributions</h2>{imgs}
{_predictions_html(report)}
<h2>Scores</h2><table><tr><th>student</th><th>score</th><th>per cell</th></tr>
{''.join(rows)}</table></body></html>
"""
