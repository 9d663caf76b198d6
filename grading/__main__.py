"""``python -m grading grade --assignment 01-kmeans --submissions PATH`` (see grading.harness).

``python -m grading sandbox`` says whether kernels will run sandboxed here.
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
    g.add_argument("--no-feedback", action="store_true")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("sandbox", help="report whether grading kernels can be sandboxed here")
    args = parser.parse_args(argv)

    if args.command == "sandbox":
        from grading.sandbox import bwrap_status

        ok, why = bwrap_status()
        print(("sandbox available: " if ok else "NO SANDBOX: ") + why)
        return 0 if ok else 1

    from grading.harness import Course, grade, summary_line

    course = Course(args.root) if args.root else Course()
    if args.db:
        course = Course(course.root, db_url=args.db)
    run = grade(args.assignment, args.submissions, course=course, out=args.out, jobs=args.jobs,
                cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                feedback=not args.no_feedback, progress=not args.quiet)
    print(summary_line(run))
    for item in run.report["needs_human"]:
        kinds = sorted({p.get("kind", "?") for p in item["problems"]})
        print(f"  needs a human: {item['student']}: {', '.join(kinds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
