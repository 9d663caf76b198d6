"""DBSCANExplorer driven like a presenter drives it: sliders, clicks, Step buttons, static path.

What the panels show is compared with scikit-learn (DBSCAN labels and core points,
NearestNeighbors k-distances and radius neighbours), not with the widget's own reference.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from sklearn.cluster import DBSCAN
from sklearn.neighbors import NearestNeighbors

from helpers.clustering import kmeans
from helpers.widgets import DBSCANExplorer
from helpers.widgets._base import NOISE_COLOR, cluster_colors


def sk(ex):
    return DBSCAN(eps=ex.eps, min_samples=ex.min_samples).fit(ex.X)


def rows(points):
    """Set of coordinate pairs, to compare scatter offsets with X[mask] in any order."""
    return {tuple(p) for p in np.asarray(points).tolist()}


@pytest.fixture(scope="module")
def explorer():
    return DBSCANExplorer(dataset="blobs_noise", eps=0.5, min_samples=8, k=3, n=300, seed=1)


def test_protocol_controls_fig_static(explorer):
    ex = explorer
    assert {"dataset", "eps", "min_samples", "k", "n", "seed"} <= set(ex.controls)
    assert set(ex.controls["dataset"].options) == {"smiley", "density_bars", "moons",
                                                   "blobs_noise", "rings"}
    assert isinstance(ex.fig, Figure) and len(ex.fig.axes) == 3
    fig = DBSCANExplorer.static(dataset="moons", eps=0.15, min_samples=5, n=200, seed=1)
    assert isinstance(fig, Figure)
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    assert "clusters" in bundle["text/plain"]


def test_core_border_noise_are_sklearns_and_drawn_differently(explorer):
    ex = explorer
    ex.controls["eps"].value = 0.45
    ref = sk(ex)
    np.testing.assert_array_equal(ex.result.labels, ref.labels_)
    core = np.zeros(len(ex.X), dtype=bool)
    core[ref.core_sample_indices_] = True
    border = (ref.labels_ >= 0) & ~core
    noise = ref.labels_ < 0
    assert core.any() and border.any() and noise.any(), "the case must show all three types"
    assert rows(ex.core_sc.get_offsets()) == rows(ex.X[core])
    assert rows(ex.border_sc.get_offsets()) == rows(ex.X[border])
    assert rows(ex.noise_sc.get_offsets()) == rows(ex.X[noise])
    np.testing.assert_allclose(ex.core_sc.get_facecolors(), cluster_colors(ref.labels_[core]))
    np.testing.assert_allclose(ex.noise_sc.get_edgecolors()[0], to_rgba(NOISE_COLOR))
    # Not colour alone: marker size and shape differ between the three types.
    sizes = [sc.get_sizes()[0] for sc in (ex.core_sc, ex.border_sc, ex.noise_sc)]
    assert sizes[0] > sizes[1]
    paths = [sc.get_paths()[0].vertices.shape for sc in (ex.core_sc, ex.border_sc, ex.noise_sc)]
    assert len(set(paths)) == 3
    assert f"{ref.labels_.max() + 1} clusters, {int(noise.sum())} noise" in ex.ax.get_title()


def test_kdistance_panel_matches_nearest_neighbors_and_eps_line(explorer):
    ex = explorer
    ex.controls["min_samples"].value = 6
    ex.controls["eps"].value = 0.4
    dist, _ = NearestNeighbors(n_neighbors=6).fit(ex.X).kneighbors(ex.X)
    want = np.sort(dist[:, -1])
    np.testing.assert_allclose(ex.kd_line.get_ydata(), want, rtol=1e-12)
    assert ex.eps_line.get_ydata()[0] == pytest.approx(0.4)
    # The line splits the curve exactly: k-distance <= eps  <=>  core for min_samples = k.
    n_core = len(sk(ex).core_sample_indices_)
    assert int((ex.kdist <= 0.4).sum()) == n_core
    assert ex.core_vline.get_xdata()[0] == pytest.approx(100 * (n_core + 0.5) / len(ex.X))
    assert f"{n_core} core" in ex.ax_kd.get_title()


def test_kmeans_panel_follows_k(explorer):
    ex = explorer
    ex.controls["k"].value = 4
    ref = kmeans(ex.X, 4, seed=1)
    np.testing.assert_allclose(ex.km_centers.get_offsets(), ref.centers)
    np.testing.assert_allclose(ex.km_scatter.get_facecolors(), cluster_colors(ref.labels))
    assert "k = 4" in ex.ax_km.get_title()


def test_click_draws_the_eps_circle_and_region_query(explorer):
    ex = explorer
    ex.controls["eps"].value = 0.6
    i = 17
    ex._on_click(types.SimpleNamespace(inaxes=ex.ax, xdata=ex.X[i, 0] + 1e-3,
                                       ydata=ex.X[i, 1]))
    assert ex.query == i
    assert ex.circle.get_visible() and ex.circle.get_radius() == pytest.approx(0.6)
    np.testing.assert_allclose(ex.circle.center, ex.X[i])
    neigh = NearestNeighbors(radius=0.6).fit(ex.X).radius_neighbors(ex.X[i:i + 1])[1][0]
    assert rows(ex.ring_sc.get_offsets()) == rows(ex.X[neigh])
    assert f"{len(neigh)} points within eps" in ex.status.value
    ex.controls["eps"].value = 0.3  # the circle follows the slider
    assert ex.circle.get_radius() == pytest.approx(0.3)
    ex._on_click(types.SimpleNamespace(inaxes=ex.ax_km, xdata=0.0, ydata=0.0))  # other panel
    assert ex.query == i
    ex._on_click(types.SimpleNamespace(inaxes=ex.ax, xdata=ex.X[i, 0], ydata=ex.X[i, 1]))
    assert ex.query is None and not ex.circle.get_visible()  # a second click clears it


def test_step_by_step_expansion_ends_at_sklearns_labels():
    ex = DBSCANExplorer(dataset="moons", eps=0.2, min_samples=5, n=150, seed=3)
    ref = sk(ex)
    ex.buttons["Step"].click()
    assert ex.step_index == 1 and ex.n_steps == len(ex.X)
    first = ex.events["point"][0]
    assert ex.events["kind"][0] == "new_cluster" and first == ref.core_sample_indices_[0]
    assert "starts cluster 0" in ex.ax.get_title()
    assert ex.circle.get_visible() and np.allclose(ex.circle.center, ex.X[first])
    np.testing.assert_array_equal(ex.labels_at(1), np.where(np.arange(len(ex.X)) == first, 0, -1))
    ex.buttons["Next cluster"].click()  # cluster 0 complete, nothing of cluster 1 yet
    np.testing.assert_array_equal(ex.labels_at(ex.step_index),
                                  np.where(ref.labels_ == 0, 0, -1))
    ex.buttons["Finish"].click()
    np.testing.assert_array_equal(ex.labels_at(ex.step_index), ref.labels_)
    assert ex.buttons["Step"].disabled and ex.buttons["Finish"].disabled
    ex.buttons["Restart"].click()
    assert ex.step_index == 0 and len(ex.pending_sc.get_offsets()) == len(ex.X)
    ex.controls["eps"].value = 0.25  # a slider move leaves step mode
    assert ex.events is None and not ex.buttons["Step"].disabled


def test_fast_redraw_equals_a_full_draw():
    ex = DBSCANExplorer(dataset="smiley", eps=0.3, min_samples=5, n=300, seed=0)
    ex.controls["eps"].value = 0.22        # blitted update
    ex.select(10)
    ex.controls["k"].value = 3
    fast = np.asarray(ex.fig.canvas.buffer_rgba()).copy()
    ex.fig.canvas.draw()                   # everything from scratch
    full = np.asarray(ex.fig.canvas.buffer_rgba())
    assert fast.shape == full.shape
    assert np.mean(np.any(fast != full, axis=2)) < 1e-4, "the blitted frame is stale"


def test_switching_dataset_redraws_exactly_what_a_full_draw_would():
    ex = DBSCANExplorer(n=300)
    for dataset in ("smiley", "rings", "density_bars"):
        ex.controls["dataset"].value = dataset
        ex.controls["eps"].value = 0.2 if dataset != "density_bars" else 0.3  # blitted
        shown = np.asarray(ex.fig.canvas.buffer_rgba()).copy()
        ex.fig.canvas.draw()
        np.testing.assert_array_equal(shown, np.asarray(ex.fig.canvas.buffer_rgba()))


def test_controls_rebuild_data():
    ex = DBSCANExplorer(n=200)
    ex.controls["dataset"].value = "rings"
    ex.controls["n"].value = 400
    assert ex.X.shape == (400, 2)
    np.testing.assert_array_equal(ex.result.labels, sk(ex).labels_)
    fig = DBSCANExplorer.static(dataset="smiley", eps=0.3, n=200, steps=40, query=5)
    assert isinstance(fig, Figure)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="dataset"):
        DBSCANExplorer(dataset="spirals")
    with pytest.raises(ValueError, match="eps"):
        DBSCANExplorer(eps=0.0)
    with pytest.raises(ValueError, match="min_samples"):
        DBSCANExplorer(min_samples=0)
    with pytest.raises(ValueError, match="steps"):
        DBSCANExplorer.static(steps=-1)
