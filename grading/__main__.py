"""``python -m grading grade --assignment 01-kmeans --submissions PATH`` (see grading.harness).

``python -m grading report --assignment 01-kmeans`` rebuilds grades.csv and the report from
the gradebook (after grading written answers in formgrader, say).
``python -m grading sandbox`` says whether kernels will run sandboxed here.
``--scheduler tcp://HOST:8786`` grades on a Dask cluster's workers (docs/grading-cluster.md).

Exit status: 0 graded; 3 refused to grade (the canary failed: nothing was touched); 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grading", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="autograde a folder (or LMS zip) of submissions")
    g.add_argument("--assignment", required=True, help="e.g. 01-kmeans")
    g.add_argument("--submissions", required=True, type=Path,
                   help="<student>/<assignment>/<notebook>.ipynb folders, or an LMS .zip / "
                   "folder of <student>_..._<notebook>.ipynb files")
    g.add_argument("--jobs", type=int, default=None, help="parallel workers (default: cores)")
    g.add_argument("--out", type=Path, default=None,
                   help="report folder (default grading/work/reports/<assignment>)")
    g.add_argument("--root", type=Path, default=None, help="course root (default: this repo)")
    g.add_argument("--db", default=None, help="gradebook URL (default: <root>/grading/work/"
                   "gradebook.db)")
    g.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell")
    g.add_argument("--notebook-timeout", type=int, default=None, help="seconds per notebook")
    g.add_argument("--nbgrader-arg", action="append", default=[], metavar="ARG",
                   help="an nbgrader option for every autograde, e.g. "
                   "--nbgrader-arg=--SandboxKernelManager.memory_mb=4096 (repeatable)")
    g.add_argument("--no-feedback", action="store_true")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--roster", type=Path, default=None,
                   help="CSV with a header: student_id and any of lms_id, name, email")
    g.add_argument("--student", action="append", default=None, metavar="ID",
                   help="grade only this student (repeatable)")
    g.add_argument("--force", action="store_true",
                   help="regrade submissions that have not changed since they were graded")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="execute the students on a Dask cluster: the scheduler's address "
                   "(tcp://HOST:8786) or its scheduler file; every worker runs the canary "
                   "first (docs/grading-cluster.md). Without it nothing imports Dask")
    g.add_argument("--duedate", default=None,
                   help="the assignment's due date, e.g. '2026-12-01 17:00 UTC' (late "
                   "penalties, see grading/late.py)")
    r = sub.add_parser("report", help="rebuild grades.csv and the report from the gradebook")
    r.add_argument("--assignment", required=True)
    r.add_argument("--out", type=Path, default=None)
    r.add_argument("--root", type=Path, default=None)
    r.add_argument("--db", default=None)
    sub.add_parser("sandbox", help="report whether grading kernels can be sandboxed here")
    args = parser.parse_args(argv)

    if args.command == "sandbox":
        from grading.sandbox import bwrap_status

        ok, why = bwrap_status()
        print(("sandbox available: " if ok else "NO SANDBOX: ") + why)
        return 0 if ok else 1

    from grading.harness import Course, GradingRefused, grade, summary_line

    course = Course(args.root) if args.root else Course()
    if args.db:
        course = Course(course.root, db_url=args.db)
    out = args.out or course.work / "reports" / args.assignment
    if args.command == "report":
        from grading.report import build

        report = build(course, args.assignment, out)
        print(f"{report['submissions']} submission(s) of {args.assignment}; "
              f"{report['manual_pending']} manual grade(s) pending; "
              f"{len(report['needs_human'])} need a human. Report: {out / 'report.html'}  "
              f"Grades: {out / 'grades.csv'}")
        _print_needs_human(report)
        return 0
    try:
        run = grade(args.assignment, args.submissions, course=course, out=out, jobs=args.jobs,
                    cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                    feedback=not args.no_feedback, progress=not args.quiet,
                    roster=args.roster, students=args.student, force=args.force,
                    duedate=args.duedate, extra_args=args.nbgrader_arg,
                    scheduler=args.scheduler)
    except GradingRefused as exc:
        print(exc.message, file=sys.stderr)
        return exc.code
    except ValueError as exc:  # a bad roster, due date ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_line(run))
    _print_needs_human(run.report)
    return 0


def _print_needs_human(report):
    for item in report["needs_human"]:
        kinds = sorted({p.get("kind") or "?" for p in item["problems"]})
        if "file" in item:
            detail = "; ".join(p.get("detail") or "" for p in item["problems"])
            print(f"  needs a human: file {item['file']}: {detail}")
        else:
            print(f"  needs a human: {item['student']}: {', '.join(kinds)}")


if __name__ == "__main__":
    sys.exit(main())
