"""`make clean` removes caches only; `make clean-grading` deletes grading/work/ only when told
yes (issue: nothing a user made is deleted by a routine command). Run on a copy of the
Makefile in a scratch tree, so the real grading/work/ is never at risk."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _tree(tmp_path):
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    for d in ("helpers", "grading", "tests", "benchmarks", "scripts"):
        (tmp_path / d / "__pycache__").mkdir(parents=True)
        (tmp_path / d / "__pycache__" / "x.pyc").write_bytes(b"")
    work = tmp_path / "grading" / "work"
    (work / "submitted" / "alice" / "01-kmeans").mkdir(parents=True)
    (work / "gradebook.db").write_bytes(b"SQLite format 3\0")
    (work / "submitted" / "alice" / "01-kmeans" / "kmeans.ipynb").write_text("{}")
    (tmp_path / ".pytest_cache").mkdir()
    return work


def _make(tmp_path, *args):
    return subprocess.run(["make", "-s", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_make_clean_keeps_the_gradebook_and_submissions(tmp_path):
    work = _tree(tmp_path)
    proc = _make(tmp_path, "clean")
    assert proc.returncode == 0, proc.stderr
    assert (work / "gradebook.db").exists()
    assert (work / "submitted" / "alice" / "01-kmeans" / "kmeans.ipynb").exists()
    assert not (tmp_path / ".pytest_cache").exists()
    assert not list(tmp_path.rglob("__pycache__"))


def test_clean_grading_asks_first(tmp_path):
    work = _tree(tmp_path)
    refused = _make(tmp_path, "clean-grading", "CONFIRM=no")
    assert refused.returncode != 0 and (work / "gradebook.db").exists()
    assert "kept grading/work/" in refused.stdout
    unanswered = _make(tmp_path, "clean-grading")  # no terminal: an empty answer keeps it
    assert unanswered.returncode != 0 and (work / "gradebook.db").exists()
    done = _make(tmp_path, "clean-grading", "CONFIRM=yes")
    assert done.returncode == 0 and not work.exists(), done.stdout
