"""Grading throughput: a simulated class of 01-kmeans submissions graded by the batch harness
(``python -m grading grade``), sandboxed and then unsandboxed, on the cores available.

Prints submissions per minute, the sandbox's overhead and the peak memory of the whole
process tree (nbgrader workers + kernels), sampled every 0.2 s.

    .venv/bin/python benchmarks/bench_grading.py [N_STUDENTS=20] [JOBS=cores]
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


def make_class(root: Path, n):
    spec = UNITS[UNIT]
    source = nbformat.read(REPO / "solutions" / UNIT / spec["notebook"], as_version=4)
    release = nbformat.read(REPO / "notebooks" / UNIT / spec["notebook"], as_version=4)
    sources = solution_sources(source)
    wrong = [{g: w for g, (w, _) in spec["wrong"].items() if g == k} for k in spec["wrong"]]
    subs = root / "submissions"
    for i in range(n):
        kind = i % 5
        nb = (release if kind == 4 else
              fill_in(release, {**sources, **wrong[kind % len(wrong)]}) if kind == 3 else
              fill_in(release, sources))
        path = subs / f"student{i:02d}" / UNIT / spec["notebook"]
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    return subs


def fresh_course(root: Path):
    root.mkdir(parents=True)
    shutil.copytree(REPO / "solutions" / UNIT, root / "solutions" / UNIT)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "generate_assignment", UNIT,
                    "--force", f"--CourseDirectory.root={root}",
                    f"--CourseDirectory.db_url=sqlite:///{root}/gradebook.db"],
                   cwd=REPO / "grading", env=env, check=True, capture_output=True)
    return Course(root, db_url=f"sqlite:///{root}/gradebook.db")


def run(label, n, jobs, extra):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        course = fresh_course(tmp / "course")
        subs = make_class(tmp, n)
        start = time.perf_counter()
        with PeakMemory() as mem:
            result = grade(UNIT, subs, course=course, jobs=jobs, extra_args=extra,
                           progress=False, out=tmp / "report")
        seconds = time.perf_counter() - start
    scores = sorted(e["score"] for e in result.report["students"].values())
    print(f"{label:>12}: {n} submissions in {seconds:6.1f} s = {60 * n / seconds:5.1f} / min; "
          f"peak RSS {mem.peak / 2**30:.2f} GiB; scores {scores[0]:g}..{scores[-1]:g}")
    return seconds, mem.peak


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else default_jobs()
    ok, why = bwrap_status()
    print(f"{n} simulated students of {UNIT}, {jobs} parallel workers, {os.cpu_count()} cores; "
          f"sandbox: {why if ok else 'UNAVAILABLE: ' + why}")
    boxed, boxed_mem = run("sandboxed", n, jobs, [])
    plain, plain_mem = run("unsandboxed", n, jobs, ["--SandboxKernelManager.sandbox=False"])
    print(f"sandbox overhead: time x{boxed / plain:.2f}, peak memory x{boxed_mem / plain_mem:.2f}")


if __name__ == "__main__":
    main()
