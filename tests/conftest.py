"""Shared fixtures: the repository's paths and a real nbgrader course in a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# One BLAS/OpenMP/torch thread in every process the suite starts (its own workers, the
# kernels of nbgrader validate and of the notebook runs): `make test` runs nproc+1 pytest
# workers, each with kernels of its own, so a second thread per process only fights the
# others for the cores (torch measured 5-20x slower oversubscribed; the grading sandbox
# already runs its kernels with one, grading.sandbox). Set before torch is imported.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

def _load_units():
    """Every unit's grading expectations, from tests/units/NN-topic.py (one file per unit,
    so units can be added without touching this file)."""
    import runpy

    units = {}
    for path in sorted((Path(__file__).parent / "units").glob("[0-9][0-9]-*.py")):
        spec = runpy.run_path(str(path))
        units[path.stem] = {"notebook": spec["NOTEBOOK"], "wrong": spec["WRONG"]}
    return units


UNITS = _load_units()


def available_units():
    """Units whose source notebook exists (units land one by one)."""
    return [u for u, spec in UNITS.items() if (REPO / "solutions" / u / spec["notebook"]).exists()]


def nb_env():
    env = dict(os.environ)
    # nbgrader shells out to `alembic` when it creates a gradebook: the venv's bin must be
    # on PATH even when pytest was started without activating the venv.
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("NBGRADER_EXECUTION", None)
    env["MPLBACKEND"] = "Agg"
    return env


class Course:
    """A throwaway nbgrader course using the repository's grading/nbgrader_config.py."""

    units = UNITS
    repo = REPO

    def __init__(self, root: Path):
        self.root = root
        self.db = root / "gradebook.db"

    @staticmethod
    def solution_sources(source_nb):
        return solution_sources(source_nb)

    @staticmethod
    def fill_in(release_nb, sources):
        return fill_in(release_nb, sources)

    def nbgrader(self, *args, check=True, timeout=600, script=False):
        """nbgrader's command line app; ``script``: through the ``nbgrader`` console script
        itself (plain nbgrader, as an instructor types it). Otherwise the harness's launcher
        (the same ``main()``, ~1.4 s less start-up: see grading.harness.NBGRADER_CMD)."""
        from grading.harness import NBGRADER_CMD

        start = [str(VENV_BIN / "nbgrader")] if script else NBGRADER_CMD
        cmd = [*start, *args,
               f"--CourseDirectory.root={self.root}",
               f"--CourseDirectory.db_url=sqlite:///{self.db}"]
        proc = subprocess.run(cmd, cwd=REPO / "grading", env=nb_env(), capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        return proc

    def add_unit(self, unit):
        shutil.copytree(REPO / "solutions" / unit, self.root / "solutions" / unit)

    def release_path(self, unit):
        return self.root / "notebooks" / unit / UNITS[unit]["notebook"]

    def submit(self, student, unit, nb):
        path = self.root / "grading" / "work" / "submitted" / student / unit / UNITS[unit]["notebook"]
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return path

    def scores(self, unit):
        """{student: {grade_id: (score, max_score)}} for the autograded test cells."""
        from nbgrader.api import Gradebook

        out = {}
        with Gradebook(f"sqlite:///{self.db}") as gb:
            for sub in gb.assignment_submissions(unit):
                cells = {}
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        if grade.cell.name.startswith("test_"):
                            cells[grade.cell.name] = (grade.score, grade.max_score)
                out[sub.student.id] = cells
        return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny models: as fast, and far faster when other
    jobs share the cores (two threads on a busy 2-core machine measured 5-20x slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def course(tmp_path):
    return Course(tmp_path)


@pytest.fixture(scope="module")
def module_course(tmp_path_factory):
    return Course(tmp_path_factory.mktemp("course"))


# The tests that take ten seconds or more, longest first, so that the heavy ones start first
# and the ~1,200 short tests fill the gaps. Seconds: each test inside a full `make test` on
# this 2-core machine (session 10: subtests included; the pipeline's pairs are CPU-bound and
# slow down most under load); a file not named test by test gets its file's figure. How they
# reach the workers: see pytest_collection_modifyitems.
HEAVY_TESTS = {
    "test_nbgrader_pipeline.py::test_grading_path[04-pooling+06-case-study-cnns]": 178,
    "test_nbgrader_pipeline.py::test_grading_path[01-kmeans+03-convolution]": 174,
    "test_grading_class.py::test_a_messy_lms_class": 172,
    "test_nbgrader_pipeline.py::test_grading_path[02-dbscan+05-optimisers]": 141,
    "test_grading_hostile.py::test_hostile_class_through_harness": 129,
    "test_grading_hostile.py::test_hostile_class_plain_nbgrader": 108,
    "test_grading_dask.py::test_a_class_on_a_dask_cluster": 84,
    "test_grading_postgres.py::test_a_postgresql_gradebook_shared_by_two_teaching_assistants": 64,
    "test_notebooks_run.py::test_source_notebook_executes[06-case-study-cnns]": 55,
    "test_notebooks_run.py::test_source_notebook_executes[05-optimisers]": 28,
    "test_notebooks_run.py::test_source_notebook_executes[03-convolution]": 25,
    "test_grading_class.py::test_canary_refuses_an_environment_that_cannot_grade": 21,
    "test_kmeans_numba.py::test_read_only_course_tree_caches_under_tmpdir_or_compiles_without_cache": 20,
}
HEAVY_FILES = {"test_notebooks_run.py": 15, "test_grading_class.py": 3, "test_grading_hostile.py": 3,
               "test_grading_dask.py": 3}


def _expected_seconds(item):
    name = f"{item.path.name}::{item.name}"
    return HEAVY_TESTS.get(name, HEAVY_FILES.get(item.path.name, 0))


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -_expected_seconds(item))  # stable: same order in each worker
    n = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if n > 1:
        items[:] = _balanced(items, n)


def _balanced(items, n):
    """pytest-xdist's worksteal hands worker k one contiguous slice of this order (sizes
    len // n, then what is left // (n - 1), ...) and lets idle workers steal from the *end*
    of the others' queues. Sorted alone, the first slice held every heavy test, one after
    another (the whole run's critical path). So each heavy test goes to the slice with the
    least expected time so far (longest first), and the short tests fill the slices
    round-robin. Session 7 dealt them round-robin and went back (two time limits gave with
    the three grading classes side by side); session 9 dealt them round-robin again with
    warm kernels and it held; session 10 balances the expected seconds, which round-robin
    did not once the pipeline ran two units a course (one slice got the three classes:
    385 s of heavy tests). If a time limit gives under load again, keep the hostile classes
    on one slice (NOTES)."""
    sizes, left = [], len(items)
    for k in range(n):
        sizes.append(left // (n - k))
        left -= sizes[-1]
    slices, load = [[] for _ in range(n)], [0.0] * n
    heavy = [item for item in items if _expected_seconds(item)]
    for item in heavy:
        k = min((k for k in range(n) if len(slices[k]) < sizes[k]), key=lambda k: load[k])
        slices[k].append(item)
        load[k] += _expected_seconds(item)
    k = 0
    for item in items[len(heavy):]:
        while len(slices[k % n]) >= sizes[k % n]:
            k += 1
        slices[k % n].append(item)
        k += 1
    return [item for s in slices for item in s]


# Units graded together in one course by tests that take `units` (the nbgrader pipeline):
# heaviest with lightest (seconds alone on 2 cores, session 8: 06 65 + 04 38, 05 55 + 02 37,
# 03 45 + 01 40). A unit not named here gets a course of its own.
UNIT_PAIRS = (("04-pooling", "06-case-study-cnns"), ("02-dbscan", "05-optimisers"),
              ("01-kmeans", "03-convolution"))


def unit_groups():
    units = available_units()
    pairs = [p for p in UNIT_PAIRS if all(u in units for u in p)]
    return pairs + [(u,) for u in units if not any(u in p for p in pairs)]


def pytest_generate_tests(metafunc):
    # Any test that takes a `unit` argument runs once per unit that has landed; one that
    # takes `units`, once per group of them (UNIT_PAIRS).
    if "unit" in metafunc.fixturenames:
        metafunc.parametrize("unit", available_units())
    if "units" in metafunc.fixturenames:
        metafunc.parametrize("units", unit_groups(), ids="+".join)


def solution_sources(source_nb):
    """grade_id -> solution source with the BEGIN/END SOLUTION markers removed."""
    out = {}
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            lines = [ln for ln in cell.source.splitlines()
                     if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln]
            out[meta["grade_id"]] = "\n".join(lines)
    return out


def fill_in(release_nb, sources):
    """A copy of the student's release with the given solution cells written in."""
    nb = json.loads(json.dumps(release_nb))
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in sources:
            cell.source = sources[grade_id]
    return nb
