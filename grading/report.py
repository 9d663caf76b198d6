"""The instructor's report after a grading run: ``report.json``, ``report.html`` and one PNG
per exercise (score distribution) plus the total, in the run's output folder.

Needs a human: every submission with a fault (missing or unreadable notebook, a worker that
failed), an event while it ran (time limit, dead kernel, memory or process limit, output cut,
edited / deleted / duplicated cells, edited points) or a flag (a verdict the kernel claimed
but the outside re-judge refused, tampering or reference-calling code, suspicious calls,
test cells that cannot be verified). Answers that are manually graded anyway (markdown
questions) are counted separately: they are routine.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import nbformat

# Events that are not problems by themselves.
ROUTINE = set()


def gather(run):
    """Per student: scores per graded cell, total, and every fault, event and flag."""
    from nbgrader.api import Gradebook, MissingEntry

    course = run.course
    cells, students = [], {}
    with Gradebook(course.db_url) as gb:
        assignment = gb.find_assignment(run.assignment)
        for nb in assignment.notebooks:
            for gc in nb.grade_cells:
                cells.append({"notebook": nb.name, "grade_id": gc.name,
                              "max_score": float(gc.max_score), "auto": gc.cell_type == "code"
                              and not _is_solution(nb, gc.name)})
        for student, res in run.students.items():
            entry = {"student": student, "scores": {}, "score": 0.0,
                     "max_score": sum(c["max_score"] for c in cells),
                     "manual_pending": [], "problems": list(res.faults), "verdicts": {},
                     "sandbox": None, "seconds": res.seconds}
            try:
                sub = gb.find_submission(run.assignment, student)
            except MissingEntry:
                sub = None
            if sub is not None:
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        entry["scores"][grade.name] = grade.score
                        if grade.needs_manual_grade:
                            entry["manual_pending"].append(grade.name)
                entry["score"] = float(sub.score)
            for nbname in {c["notebook"] for c in cells}:
                path = course.autograded / student / run.assignment / f"{nbname}.ipynb"
                if not path.exists() or not res.graded:
                    continue
                meta = nbformat.read(str(path), as_version=4).metadata.get("day6_grading", {})
                entry["sandbox"] = meta.get("sandbox")
                entry["verdicts"].update(meta.get("verdicts", {}))
                for e in meta.get("events", []):
                    if e.get("kind") not in ROUTINE:
                        entry["problems"].append(e)
                entry["problems"].extend(meta.get("flags", []))
                if meta.get("sandbox") and not str(meta["sandbox"]).startswith("sandboxed"):
                    entry["problems"].append({"kind": "unprotected", "cell": None,
                                              "detail": f"graded {meta['sandbox']}"})
            students[student] = entry
    return cells, students


def _is_solution(nb, name):
    return any(c.name == name for c in nb.solution_cells)


def write(run):
    cells, students = gather(run)
    out = Path(run.out)
    plots = _plots(out, cells, students)
    needs_human = [{"student": s, "problems": e["problems"]}
                   for s, e in sorted(students.items()) if e["problems"]]
    report = {
        "assignment": run.assignment,
        "sandbox": run.sandbox,
        "seconds": run.seconds,
        "submissions": len(students),
        "cells": cells,
        "students": students,
        "needs_human": needs_human,
        "manual_pending": sum(len(e["manual_pending"]) for e in students.values()),
        "plots": plots,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "report.html").write_text(_html(report))
    return report


def _plots(out, cells, students):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    series = [(c["grade_id"], c["max_score"]) for c in cells] + [("total", None)]
    for name, max_score in series:
        if name == "total":
            values = [e["score"] for e in students.values()]
            max_score = next(iter(students.values()))["max_score"] if students else 1
        else:
            values = [e["scores"].get(name) for e in students.values()]
            values = [v for v in values if v is not None]
        fig, ax = plt.subplots(figsize=(4.2, 2.8))
        if values:
            ax.hist(values, bins=min(20, max(4, int(max_score * 2) + 1)),
                    range=(0, max_score), color="#3b6ea8", edgecolor="white")
        ax.set(title=f"{name} (max {max_score:g})", xlabel="score", ylabel="students")
        ax.set_xlim(0, max_score)
        fig.tight_layout()
        fname = f"scores_{name}.png"
        fig.savefig(out / fname, dpi=90)
        plt.close(fig)
        made.append(fname)
    return made


def _html(report):
    e = html.escape
    rows = []
    for s, entry in sorted(report["students"].items()):
        cls = " class='flag'" if entry["problems"] else ""
        rows.append(f"<tr{cls}><td>{e(s)}</td><td>{entry['score']:g} / "
                    f"{entry['max_score']:g}</td><td>"
                    + "".join(f"{e(k)}: {'' if v is None else format(v, 'g')} "
                              for k, v in entry["scores"].items()) + "</td></tr>")
    human = []
    for item in report["needs_human"]:
        probs = "".join(f"<li><b>{e(p.get('kind', ''))}</b> {e(str(p.get('cell') or ''))}: "
                        f"{e(p.get('detail', ''))}</li>" for p in item["problems"])
        human.append(f"<li><b>{e(item['student'])}</b><ul>{probs}</ul></li>")
    imgs = "".join(f"<img src='{e(p)}' alt='{e(p)}'>" for p in report["plots"])
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Grading report: {e(report['assignment'])}</title>
<style>body{{font-family:sans-serif;margin:2em}} img{{margin:4px;border:1px solid #ddd}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 8px}}
tr.flag{{background:#fff3cd}} .warn{{color:#a00;font-weight:bold}}</style></head><body>
<h1>Grading report: {e(report['assignment'])}</h1>
<p>{report['submissions']} submissions in {report['seconds']:.0f} s.
Sandbox: <span class="{'' if str(report['sandbox']).startswith('sandboxed') else 'warn'}">
{e(str(report['sandbox']))}</span>. Manually graded answers pending: {report['manual_pending']}
(open formgrader).</p>
<h2>Needs a human ({len(report['needs_human'])})</h2><ul>{''.join(human) or '<li>none</li>'}</ul>
<h2>Score distributions</h2>{imgs}
<h2>Scores</h2><table><tr><th>student</th><th>score</th><th>per cell</th></tr>
{''.join(rows)}</table></body></html>
"""
