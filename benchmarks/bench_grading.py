"""Grading throughput: a simulated class (honest, wrong and blank submissions) of 01-kmeans
and of 03-convolution, graded by the harness (``python -m grading grade``: canary, parallel
long-lived workers, serial record, feedback) and, side by side, by plain ``nbgrader
autograde`` + ``generate_feedback`` (what an instructor would otherwise run: one process,
one student after another). Both sandboxed, same nbgrader configuration, fresh course.

Also the harness with ``--SandboxKernelManager.warm=False`` ("cold": a fresh sandbox and a
fresh Python per kernel, as before grading/warm.py). Prints notebooks per minute, the ratios, and the peak memory of the whole process tree
(nbgrader workers + kernels), sampled every 0.2 s.

    .venv/bin/python benchmarks/bench_grading.py [N_STUDENTS=20] [JOBS=cores] [UNIT ...]

Before this harness had long-lived workers (session 5, one nbgrader process per batch of
<= 4 students, all checker modules imported by every re-judge), the same 20-student 01 class
graded at 12.2-12.9 per minute on this 2-core machine (see NOTES.md for today's figures).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from conftest import UNITS, fill_in, solution_sources  # noqa: E402

from grading.harness import Course, default_jobs, grade  # noqa: E402
from grading.sandbox import bwrap_status  # noqa: E402

UNIT = "01-kmeans"
NBGRADER = Path(sys.executable).parent / "nbgrader"


class PeakMemory:
    """Largest summed RSS of this process and all its descendants."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            try:
                procs = [me, *me.children(recursive=True)]
            except psutil.Error:
                procs = [me]
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def make_class(root: Path, n, unit=UNIT):
    spec = UNITS[unit]
    source = nbformat.read(REPO / "solutions" / unit / spec["notebook"], as_version=4)
    release = nbformat.read(REPO / "notebooks" / unit / spec["notebook"], as_version=4)
    sources = solution_sources(source)
    wrong = [{g: w for g, (w, _) in spec["wrong"].items() if g == k} for k in spec["wrong"]]
    subs = root / "submissions"
    for i in range(n):
        kind = i % 5
        nb = (release if kind == 4 else
              fill_in(release, {**sources, **wrong[kind % len(wrong)]}) if kind == 3 else
              fill_in(release, sources))
        path = subs / f"student{i:02d}" / unit / spec["notebook"]
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    return subs


def _nbgrader(root: Path, *args):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run([str(NBGRADER), *args, f"--CourseDirectory.root={root}",
                    f"--CourseDirectory.db_url=sqlite:///{root}/gradebook.db"],
                   cwd=REPO / "grading", env=env, check=True, capture_output=True)


def fresh_course(root: Path, unit=UNIT):
    root.mkdir(parents=True)
    shutil.copytree(REPO / "solutions" / unit, root / "solutions" / unit)
    _nbgrader(root, "generate_assignment", unit, "--force")
    return Course(root, db_url=f"sqlite:///{root}/gradebook.db")


def run(label, unit, n, jobs, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        course = fresh_course(tmp / "course", unit)
        subs = make_class(tmp, n, unit)
        start = time.perf_counter()
        with PeakMemory() as mem:
            result = grade(unit, subs, course=course, jobs=jobs, extra_args=list(extra),
                           progress=False, out=tmp / "report")
        seconds = time.perf_counter() - start
    scores = sorted(e["score"] for e in result.report["students"].values())
    print(f"{label:>22}: {n} notebooks in {seconds:6.1f} s = {60 * n / seconds:5.1f} / min; "
          f"peak RSS {mem.peak / 2**30:.2f} GiB; scores {scores[0]:g}..{scores[-1]:g}")
    return seconds


def run_plain(label, unit, n):
    """Plain nbgrader on the same class: autograde, then feedback (no canary, no report)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        course = fresh_course(tmp / "course", unit)
        shutil.copytree(make_class(tmp, n, unit), course.submitted)
        start = time.perf_counter()
        with PeakMemory() as mem:
            _nbgrader(course.root, "autograde", unit, "--force")
            _nbgrader(course.root, "generate_feedback", unit, "--force")
        seconds = time.perf_counter() - start
    print(f"{label:>22}: {n} notebooks in {seconds:6.1f} s = {60 * n / seconds:5.1f} / min; "
          f"peak RSS {mem.peak / 2**30:.2f} GiB")
    return seconds


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else default_jobs()
    units = sys.argv[3:] or [UNIT, "03-convolution"]
    ok, why = bwrap_status()
    print(f"{n} simulated students per unit, {jobs} parallel workers, {os.cpu_count()} cores; "
          f"sandbox: {why if ok else 'UNAVAILABLE: ' + why}")
    print("before (one nbgrader process per batch of <= 4 students; that code is gone, so not "
          "re-run): 01-kmeans 12.2-12.9 / min, measured 2026-12-06 on a 2-core machine")
    for unit in units:
        harness = run(f"{unit} harness", unit, n, jobs)
        cold = run(f"{unit} harness, cold", unit, n, jobs,
                   extra=["--SandboxKernelManager.warm=False"])
        plain = run_plain(f"{unit} plain nbgrader", unit, n)
        print(f"{unit}: the harness grades {plain / harness:.2f}x as many notebooks per minute "
              f"as plain nbgrader (canary and report included); warm kernels "
              f"{cold / harness:.2f}x as many as a fresh sandbox per kernel (cold)")


if __name__ == "__main__":
    main()
