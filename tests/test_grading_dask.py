"""Grading on a real Dask cluster (``python -m grading grade ... --scheduler``, grading/cluster.py).

The test starts a real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 (no
LocalCluster), grades a small class of honest, wrong, hostile and faulty 01-kmeans submissions
on it and the same class locally (in a subprocess, which must never import Dask), and asserts
that scores, flags, the gradebook rows and grades.csv are identical. Then it grades the class
again and SIGKILLs one worker (and the processes under it, as a dying machine would) once a
student is running on it: nobody may be lost. Both phases share the one cluster, in one test
(pytest-xdist would otherwise start a cluster per worker), each phase a subtest.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

UNIT = "01-kmeans"
NB = "kmeans"
LIMITS = ["--GuardedExecute.timeout=60", "--GuardedExecute.notebook_timeout=240"]
DASK = ("dask", "distributed")
AGAIN = {"honest"}   # graded again while a worker is killed (and retried on the other)


def test_grading_without_a_scheduler_never_imports_dask():
    code = ("import sys\nimport grading.harness, grading.__main__, grading.report, "
            "grading.collect, grading.execute, grading.sandbox, grading.verdicts\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {DASK!r}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _wait(future, seconds=60):
    deadline = time.monotonic() + seconds
    while not future.done():
        assert time.monotonic() < deadline, future
        time.sleep(0.1)


@pytest.mark.slow
def test_a_student_whose_workers_die_is_worker_lost(tmp_path):
    """What the harness makes of Dask's two failures, from real futures (a LocalCluster):
    a task whose worker dies (``KilledWorker``) and a task that raises on every try."""
    import dask
    from distributed import Client, LocalCluster

    from grading.cluster import failure

    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "temporary-directory": str(tmp_path)}), \
            LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as lc, \
            Client(lc, set_as_default=False) as client:
        raises = client.submit(int, "not a number", retries=1, pure=False)
        _wait(raises)
        dies = client.submit(os._exit, 1, pure=False)
        _wait(dies)
        lost, failed = failure(dies, "ann"), failure(raises, "bob")
        assert dies.status == "error" and raises.status == "error"
    assert lost["kind"] == "worker-lost" and "--student ann" in lost["detail"], lost
    assert "died or left the cluster" in lost["detail"]
    assert failed["kind"] == "worker-failed" and "ValueError" in failed["detail"], failed


def test_a_worker_with_another_environment_is_named():
    from grading.cluster import _differences

    here = {"python": "3.11.7", "code": "a", "checkout": "/srv/day6",
            "packages": {"nbgrader": "0.9.6", "numpy": "2.4.6"}}
    assert _differences(here, dict(here)) == []
    there = {**here, "python": "3.11.9", "code": "b",
             "packages": {"nbgrader": "0.9.6", "numpy": "2.4.5"}}
    found = _differences(here, there)
    assert found[0] == "Python 3.11.9 (here 3.11.7)"
    assert "numpy 2.4.5 (here 2.4.6)" in found
    assert any("grading/ or helpers/ code" in f for f in found) and len(found) == 3


# --------------------------------------------------------------------------- the class

def _class(course, folder: Path):
    """honest, wrong, hostile (patches np.allclose: flagged, judged outside the kernel),
    faulty (the kernel dies; an unreadable upload) -> {student: expected score}."""
    source = nbformat.read(REPO / "solutions" / UNIT / f"{NB}.ipynb", as_version=4)
    release = nbformat.read(REPO / "notebooks" / UNIT / f"{NB}.ipynb", as_version=4)
    s = course.solution_sources(source)
    wrong = course.units[UNIT]["wrong"]
    students = {
        "honest": (course.fill_in(release, s), 12.0),
        "wrong": (course.fill_in(release, {**s, "farthest_first": wrong["farthest_first"][0]}),
                  10.0),
        "hostile": (course.fill_in(release, {**s, "elbow": s["elbow"].replace(
            "return ks, inertias, best_k", "return ks, [1.01 * v for v in inertias], best_k")
            + "\nnp.allclose = lambda *a, **k: True\n"}), 10.0),
        "crash": (course.fill_in(release, {**s, "lloyd": "import os\ndef lloyd(X, "
                                           "initial_centers, max_iter=100):\n    os._exit(1)\n"}),
                  6.0),
        "corrupt": (b'{"cells": [ not json', 0.0),
    }
    for name, (nb, _) in students.items():
        path = folder / name / UNIT / f"{NB}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(nb if isinstance(nb, bytes) else nbformat.writes(nb).encode())
    return {name: score for name, (_, score) in students.items()}


LOCAL = """
import json, sys
from grading.__main__ import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "dask": sorted(m for m in sys.modules
                                           if m.split(".")[0] in ("dask", "distributed"))}))
"""


def _grade_args(root, subs):
    return ["grade", "--assignment", UNIT, "--submissions", str(subs), "--root", str(root),
            "--no-feedback", "--quiet", *[f"--nbgrader-arg={a}" for a in LIMITS]]


def _env():
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env.pop("NBGRADER_EXECUTION", None)
    return env


def _gradebook_rows(db):
    """Every recorded grade, comment and submission of the course, without ids and times."""
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(f"sqlite:///{db}") as gb:
        for sub in gb.assignment_submissions(UNIT):
            rows.append(("submission", sub.student.id, float(sub.score),
                         float(sub.late_submission_penalty or 0)))
            for nb in sub.notebooks:
                rows += [("grade", sub.student.id, nb.name, g.name, g.auto_score,
                          g.manual_score, g.extra_credit, g.needs_manual_grade, g.max_score)
                         for g in nb.grades]
                rows += [("comment", sub.student.id, nb.name, c.name, c.auto_comment,
                          c.manual_comment) for c in nb.comments]
    return sorted(rows, key=repr)


def _problems(report):
    return {s: sorted({(p["kind"], p.get("cell")) for p in e["problems"]}, key=repr)
            for s, e in report["students"].items()}


# --------------------------------------------------------------------------- the cluster

class _Cluster:
    """A scheduler and two workers started as processes by this test (their pids kept, so
    the test stops exactly what it started)."""

    def __init__(self, folder: Path, workers=2):
        self.folder = folder
        folder.mkdir(parents=True)
        self.file = folder / "scheduler.json"
        self.procs = {}
        env = _env()
        env["PYTHONPATH"] = str(REPO)   # the workers import this checkout's grading code
        env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "1"   # retry a student once
        # What a killed worker leaves behind goes to a folder of this test. A short path: the
        # kernels' ipc sockets live under it (a Unix socket path has at most 107 bytes).
        self.tmp = Path(tempfile.mkdtemp(prefix="d6dask-", dir="/tmp"))
        env["TMPDIR"] = str(self.tmp)
        dask = str(VENV_BIN / "dask")
        self._start("scheduler", [dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(self.file)], env)
        deadline = time.monotonic() + 60
        while not (self.file.exists() and self.file.stat().st_size):
            assert time.monotonic() < deadline, self.log("scheduler")
            time.sleep(0.2)
        for i in range(1, workers + 1):
            self._start(f"w{i}", [dask, "worker", "--scheduler-file", str(self.file),
                                  "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                  "--name", f"w{i}", "--local-directory",
                                  str(folder / f"w{i}")], env)
        self.address = json.loads(self.file.read_text())["address"]
        from distributed import Client

        self.client = Client(self.address, timeout=60, set_as_default=False)
        self.client.wait_for_workers(workers, timeout=120)
        self.pids = self.client.run(os.getpid)  # {worker address: pid}
        assert set(self.pids.values()) == {p.pid for n, p in self.procs.items() if n != "scheduler"}

    def _start(self, name, cmd, env):
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def log(self, name):
        return (self.folder / f"{name}.log").read_text()[-3000:]

    def kill_once_grading(self, stop: threading.Event, killed: dict):
        """SIGKILL the first worker seen running a student (its nbgrader, the long-lived
        ``grading.autograde_worker``, started), and the
        processes under it, as a machine that dies takes them all."""
        import psutil

        while not stop.is_set():
            for addr, keys in self.client.processing().items():
                if not any(str(k).startswith("day6-grade-") for k in keys):
                    continue
                worker = psutil.Process(self.pids[addr])
                below = worker.children(recursive=True)
                if not any("grading.autograde_worker" in " ".join(_cmdline(p)) for p in below):
                    continue
                for p in [worker, *below]:
                    try:
                        os.kill(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                killed.update(address=addr, keys=[str(k) for k in keys],
                              pid=self.pids[addr])
                return
            time.sleep(0.2)

    def close(self):
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - the scheduler may be gone already
            pass
        # Exactly the processes this test started: the workers first (a worker whose
        # scheduler went first waits ~20 s for it to come back).
        for name in [n for n in self.procs if n != "scheduler"] + ["scheduler"]:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _cmdline(proc):
    try:
        return proc.cmdline()
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess, AccessDenied: gone or not ours
        return []


@pytest.mark.slow
def test_a_class_on_a_dask_cluster(course, tmp_path, subtests):
    from grading.harness import Course as HCourse
    from grading.harness import grade

    subs = tmp_path / "incoming"
    expected = _class(course, subs)
    local_root, remote_root = tmp_path / "local", tmp_path / "remote"
    for root in (local_root, remote_root):
        shutil.copytree(REPO / "solutions" / UNIT, root / "solutions" / UNIT)
    # The local reference runs beside the cluster run, in its own process.
    local = subprocess.Popen([sys.executable, "-c", LOCAL, *_grade_args(local_root, subs)],
                             cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    cluster = None
    try:
        cluster = _Cluster(tmp_path / "cluster")
        hcourse = HCourse(remote_root)
        run = grade(UNIT, subs, course=hcourse, extra_args=LIMITS, progress=False,
                    feedback=False, scheduler=cluster.address)
        out, err = local.communicate(timeout=600)
        assert local.returncode == 0, err[-3000:]
        local_said = json.loads(out.strip().splitlines()[-1])
        local_report = json.loads((local_root / "grading" / "work" / "reports" / UNIT
                                   / "report.json").read_text())

        with subtests.test("the local run never imported Dask"):
            assert local_said == {"rc": 0, "dask": []}
        with subtests.test("the class was graded on both workers, the canary on each"):
            placed = json.loads((run.logs / "cluster.json").read_text())
            assert set(placed["students"]) == set(expected) - {"corrupt"}
            assert {p["worker"] for p in placed["students"].values()} == set(cluster.pids)
            assert run.canary.startswith("canary passed on 2 Dask worker(s)"), run.canary
            assert "on 2 Dask worker(s)" in run.sandbox
        with subtests.test("scores as expected and identical to the local run"):
            scores = {s: e["score"] for s, e in run.report["students"].items()}
            assert scores == expected
            assert scores == {s: e["score"] for s, e in local_report["students"].items()}
            assert {s: e["scores"] for s, e in run.report["students"].items()} == \
                {s: e["scores"] for s, e in local_report["students"].items()}
        with subtests.test("flags and faults identical to the local run"):
            problems = _problems(run.report)
            assert problems == _problems(local_report)
            kinds = {s: {k for k, _ in p} for s, p in problems.items()}
            assert "tamper" in kinds["hostile"] and "kernel-died" in kinds["crash"]
            assert kinds["corrupt"] == {"unreadable-notebook"}
            assert not kinds["honest"] and not kinds["wrong"]
            assert {s: e["verdicts"] for s, e in run.report["students"].items()} == \
                {s: e["verdicts"] for s, e in local_report["students"].items()}
        with subtests.test("gradebook rows and grades.csv identical to the local run"):
            assert _gradebook_rows(hcourse.db_path) == \
                _gradebook_rows(local_root / "grading" / "work" / "gradebook.db")
            rows = list(csv.reader(run.grades_csv.open()))
            assert rows == list(csv.reader((local_root / "grading" / "work" / "reports" / UNIT
                                            / "grades.csv").open()))

        # ------------------------------------------------ a worker dies in the middle
        stop, killed = threading.Event(), {}
        killer = threading.Thread(target=cluster.kill_once_grading, args=(stop, killed),
                                  daemon=True)
        killer.start()
        try:
            again = grade(UNIT, subs, course=hcourse, extra_args=LIMITS, progress=False,
                          feedback=False, scheduler=cluster.address, force=True,
                          students=sorted(AGAIN))
        finally:
            stop.set()
            killer.join(30)
        with subtests.test("a worker killed mid-run loses nobody"):
            assert killed, "no worker was seen grading a student: nothing was killed"
            assert cluster.procs[next(n for n, p in cluster.procs.items()
                                      if p.pid == killed["pid"])].wait(timeout=30) != 0
            # (cached unless someone edited grading/ or helpers/ in between)
            assert again.canary.startswith("canary passed on 2 Dask worker(s)"), again.canary
            lost = {s for s, r in again.students.items()
                    if any(f["kind"] == "worker-lost" for f in r.faults)}
            graded = {s for s, r in again.students.items() if r.graded}
            assert AGAIN <= graded | lost, again.students
            needs = {item["student"] for item in again.report["needs_human"]
                     if "student" in item}
            assert lost <= needs
            assert set(again.report["students"]) == set(expected)
            # The killed worker's students were retried once, on the other worker.
            victims = {s for s in AGAIN if any(k.endswith(f"-{s}") for k in killed["keys"])}
            assert victims and victims <= graded, (victims, again.students)
            placed = json.loads((again.logs / "cluster.json").read_text())["students"]
            assert {placed[s]["worker"] for s in victims} == set(cluster.pids) - \
                {killed["address"]}
            for s in AGAIN:
                assert again.report["students"][s]["score"] == expected[s], s
    finally:
        if local.poll() is None:
            local.kill()
            local.communicate()
        if cluster is not None:
            cluster.close()
