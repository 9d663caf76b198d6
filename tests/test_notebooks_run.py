"""Every source notebook (solutions filled in) runs top to bottom without error, as a
presenter's "Run all" would, live widgets included."""

from __future__ import annotations

import time

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow


def test_source_notebook_executes(course, unit, monkeypatch):
    path = course.repo / "solutions" / unit / course.units[unit]["notebook"]
    nb = nbformat.read(path, as_version=4)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    start = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    stderr = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"stderr output in {unit}: {stderr[:3]}"
    print(f"{unit} executed in {elapsed:.1f} s")
