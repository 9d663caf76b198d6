"""Issue 8's accessibility rules (tests/a11y.py) on every explorer, live and static; the
notebooks' own figures are audited while they run (tests/test_notebooks_run.py). The audit
itself is checked first: it must catch what it is there to catch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import helpers.widgets as widgets

_spec = importlib.util.spec_from_file_location("a11y", Path(__file__).with_name("a11y.py"))
a11y = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(a11y)
audit = a11y.audit

SMALL = {"KMeansExplorer": {"n": 300}, "DBSCANExplorer": {"n": 300}}


def _fig(ncols=1):
    fig = Figure()
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def test_audit_passes_a_labelled_okabe_ito_plot():
    fig, (ax,) = _fig()
    ax.plot([0, 1], [0, 1], color="#0072B2", label="a")
    ax.plot([0, 1], [1, 0], color="#D55E00", label="b")
    ax.scatter([0.5], [0.5], color="#999999")
    ax.set(title="two lines", xlabel="x", ylabel="y")
    assert audit(fig) == []


def test_audit_finds_missing_title_and_labels():
    fig, (ax,) = _fig()
    ax.plot([0, 1], [0, 1])
    problems = audit(fig)
    assert any("no title" in p for p in problems)
    assert any("no x-axis label" in p for p in problems)
    assert any("no y-axis label" in p for p in problems)


def test_audit_finds_rainbow_maps_and_red_green_pairs():
    fig, (a, b) = _fig(2)
    a.imshow(np.random.default_rng(0).random((4, 4)), cmap="jet")
    a.set_axis_off()
    b.plot([0, 1], [0, 1], color="tab:red")
    b.plot([0, 1], [1, 0], color="tab:green")
    b.set(xlabel="x", ylabel="y")
    fig.suptitle("bad colours")
    problems = audit(fig)
    assert any("'jet'" in p for p in problems)
    assert any("not Okabe-Ito" in p for p in problems)


def test_image_grid_with_a_suptitle_and_no_axes_passes():
    fig, axes = _fig(3)
    for ax in axes:
        ax.imshow(np.eye(3), cmap="gray_r")
        ax.set_axis_off()
    fig.suptitle("three digits")
    assert audit(fig) == []


@pytest.mark.parametrize("name", widgets.__all__)
def test_explorer_figures_are_accessible(name):
    cls = getattr(widgets, name)
    explorer = cls(**SMALL.get(name, {}))
    assert audit(explorer.fig, f"{name} live") == []
    assert audit(cls.static(**SMALL.get(name, {})), f"{name} static") == []
