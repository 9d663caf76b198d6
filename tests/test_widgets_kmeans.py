"""KMeansExplorer driven like a presenter drives it: controls, buttons, clicks, static path."""

from __future__ import annotations

import types

import numpy as np
import pytest
from matplotlib.figure import Figure

from helpers.clustering import assign_clusters, init_centers, kmeans, kmeans_step
from helpers.widgets import KMeansExplorer


def test_protocol_controls_fig_static():
    ex = KMeansExplorer()
    assert {"dataset", "k", "init", "n", "seed"} <= set(ex.controls)
    assert set(ex.controls["dataset"].options) == {"blobs", "moons", "smiley", "uniform",
                                                   "anisotropic", "density_bars"}
    assert set(ex.controls["init"].options) == {"random", "farthest", "k-means++", "click"}
    assert isinstance(ex.fig, Figure)
    fig = KMeansExplorer.static(dataset="moons", k=2, n=200, seed=1)
    assert isinstance(fig, Figure)
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle


def test_assign_then_update_is_kmeans_step():
    ex = KMeansExplorer(dataset="blobs", k=4, init="random", n=300, seed=2)
    start = ex.centers.copy()
    np.testing.assert_array_equal(start, init_centers(ex.X, 4, init="random", seed=2))
    assert ex.buttons["Update"].disabled and not ex.buttons["Assign"].disabled
    ex.buttons["Assign"].click()
    np.testing.assert_array_equal(ex.labels, assign_clusters(ex.X, start))
    np.testing.assert_array_equal(ex.centers, start)  # assigning does not move centers
    assert ex.buttons["Assign"].disabled and not ex.buttons["Update"].disabled
    ex.buttons["Update"].click()
    np.testing.assert_allclose(ex.centers, kmeans_step(ex.X, start)[1])
    assert ex.iteration == 1
    np.testing.assert_array_equal(ex.scatter.get_offsets(), ex.X)


def test_run_converges_to_the_reference_and_reset_restarts():
    ex = KMeansExplorer(dataset="smiley", k=5, init="farthest", n=400, seed=3)
    start = ex.centers.copy()
    ex.buttons["Run"].click()
    ref = kmeans(ex.X, 5, init=start, tol=0.0)
    np.testing.assert_allclose(ex.centers, ref.centers, atol=1e-9)
    assert ex.converged and ex.buttons["Run"].disabled
    assert np.all(np.diff(ex.inertias) <= 1e-9), "inertia never increases"
    assert "converged" in ex.ax.get_title()
    ex.buttons["Reset"].click()
    assert ex.iteration == 0 and ex.labels is None
    np.testing.assert_array_equal(ex.centers, start)


def test_controls_rebuild_data_and_centers():
    ex = KMeansExplorer(n=300)
    ex.controls["dataset"].value = "moons"
    ex.controls["n"].value = 500
    assert ex.X.shape == (500, 2)
    ex.controls["k"].value = 7
    assert ex.centers.shape == (7, 2) and ex.iteration == 0


def test_click_to_place_centers():
    ex = KMeansExplorer(init="click", k=2, n=200)
    assert ex.centers.shape == (0, 2) and ex.buttons["Assign"].disabled
    assert "Click to place center 1 of 2" in ex.ax.get_title()
    for xy in [(-2.0, -1.0), (2.0, 2.0)]:
        ex._on_click(types.SimpleNamespace(inaxes=ex.ax, xdata=xy[0], ydata=xy[1]))
    ex._on_click(types.SimpleNamespace(inaxes=ex.ax, xdata=0.0, ydata=0.0))  # ignored: k placed
    np.testing.assert_array_equal(ex.centers, [[-2.0, -1.0], [2.0, 2.0]])
    assert not ex.buttons["Assign"].disabled


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="dataset"):
        KMeansExplorer(dataset="spirals")
    with pytest.raises(ValueError, match="init"):
        KMeansExplorer(init="kmeans")
