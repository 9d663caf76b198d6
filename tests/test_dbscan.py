"""DBSCAN reference (helpers._dbscan) against scikit-learn, exactly.

Labels must equal ``sklearn.cluster.DBSCAN(...).labels_`` value for value (not up to
renaming) and the core mask must equal ``core_sample_indices_``, on toy sets, duplicates,
exact ties at distance == eps, min_samples=1, 1-D to 10-D data, for both the numpy and the
torch backend. Internal knobs (chunk sizes, the pair cache, the two ways of finding cell
pairs) are forced so every code path is compared with sklearn, not just the fast one.
"""

import math
import tracemalloc

import numpy as np
import pytest
from sklearn.cluster import DBSCAN
from sklearn.neighbors import NearestNeighbors

import helpers._dbscan as mod
from helpers._dbscan import (
    DBSCANResult,
    core_points,
    dbscan,
    dbscan_steps,
    k_distance,
    region_query,
)
from helpers.data import toy_2d


def sklearn_dbscan(X, eps, min_samples):
    return DBSCAN(eps=eps, min_samples=min_samples).fit(np.asarray(X, dtype=float))


def assert_same_as_sklearn(X, eps, min_samples, **kwargs):
    ref = sklearn_dbscan(X, eps, min_samples)
    res = dbscan(X, eps, min_samples, **kwargs)
    np.testing.assert_array_equal(res.labels, ref.labels_)
    np.testing.assert_array_equal(np.flatnonzero(res.core_mask), ref.core_sample_indices_)
    assert res.labels.dtype == np.int64 and res.core_mask.dtype == bool
    return res


def grid_points(side, d=2, drop=0.25, seed=0):
    """Integer grid with a random quarter of the points removed (so clusters vary)."""
    rng = np.random.default_rng(seed)
    X = np.array(np.meshgrid(*[np.arange(side)] * d, indexing="ij")).reshape(d, -1).T
    X = X[rng.random(len(X)) >= drop].astype(float)
    return X[rng.permutation(len(X))]


# ----------------------------------------------------------------------------------------
# Hand-made cases with known answers
# ----------------------------------------------------------------------------------------


def test_border_point_joins_smallest_cluster_label():
    # Point 0 sits at exactly eps = 3 from a core point of each cluster. Cluster B's points
    # come first in index order, so B is cluster 0 and A cluster 1; the border point takes
    # the smaller label, 0, although A's core point (index 10) is no farther.
    A = [0.0, 0.5, 1.0, 1.5, 2.0]
    B = [8.0, 8.5, 9.0, 9.5, 10.0]
    X = np.array([[5.0]] + [[b] for b in B] + [[a] for a in A])
    res = assert_same_as_sklearn(X, 3.0, 4)
    assert res.labels.tolist() == [0] + [0] * 5 + [1] * 5
    assert res.core_mask.tolist() == [False] + [True] * 10
    assert res.border_mask.tolist() == [True] + [False] * 10
    # Reverse the clusters' index order: the border point now follows A.
    X2 = np.array([[5.0]] + [[a] for a in A] + [[b] for b in B])
    assert assert_same_as_sklearn(X2, 3.0, 4).labels[0] == 0


def test_clusters_are_numbered_by_lowest_index_core_point():
    # Cluster around 10 holds index 0 but only as a border point; its lowest core point is
    # index 3, after the core point 1 of the other cluster: so it is cluster 1.
    X = np.array([[12.0], [0.0], [0.5], [10.0], [10.5], [1.0], [11.0], [40.0]])
    res = assert_same_as_sklearn(X, 1.0, 3)
    assert res.labels.tolist() == [1, 0, 0, 1, 1, 0, 1, -1]
    assert res.core_mask.tolist() == [False, True, True, True, True, True, True, False]


def test_min_samples_counts_the_point_itself():
    # Two points 1 apart: each has 2 points within eps = 1 (itself and the other).
    X = [[0.0, 0.0], [1.0, 0.0]]
    assert dbscan(X, 1.0, 2).labels.tolist() == [0, 0]
    assert dbscan(X, 1.0, 3).labels.tolist() == [-1, -1]
    assert dbscan(X, np.nextafter(1.0, 0), 2).labels.tolist() == [-1, -1]  # 1 > eps
    assert dbscan(X, 0.5, 1).labels.tolist() == [0, 1]  # min_samples=1: all core


def test_result_is_frozen_with_summary_properties():
    res = dbscan([[0.0], [0.1], [0.2], [5.0], [9.0], [9.1], [9.2]], 0.15, 2)
    with pytest.raises(AttributeError):
        res.labels = None
    assert isinstance(res, DBSCANResult)
    assert res.n_clusters == 2
    assert res.noise_mask.tolist() == [False, False, False, True, False, False, False]
    assert not res.border_mask.any()
    assert dbscan([[0.0], [9.0]], 1.0, 2).n_clusters == 0


# ----------------------------------------------------------------------------------------
# Against sklearn: toy sets, duplicates, ties, dimensions
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, n, eps, min_samples",
    [
        ("blobs", 600, 0.3, 5),
        ("blobs", 600, 0.15, 10),
        ("moons", 500, 0.1, 4),
        ("moons", 500, 0.2, 5),
        ("blobs_noise", 1500, 0.25, 8),
        ("uniform", 800, 0.12, 4),
        ("smiley", 700, 0.2, 5),
        ("density_bars", 900, 0.15, 6),
        ("rings", 600, 0.15, 3),
    ],
)
def test_toy_sets_equal_sklearn(name, n, eps, min_samples):
    X, _ = toy_2d(name, n, seed=3)
    res = assert_same_as_sklearn(X, eps, min_samples)
    assert res.n_clusters >= 1
    assert_same_as_sklearn(X, eps, min_samples, backend="torch", device="cpu")


def test_toy_sets_have_core_border_and_noise():
    # The comparison above is meaningful: this set has all three kinds of points.
    X, _ = toy_2d("blobs_noise", 1500, seed=3)
    res = dbscan(X, 0.25, 8)
    assert res.core_mask.any() and res.border_mask.any() and res.noise_mask.any()
    assert res.n_clusters >= 3


@pytest.mark.parametrize("seed", range(4))
def test_random_mixtures_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    d = [1, 2, 3, 2][seed]
    centers = rng.uniform(-5, 5, (6, d))
    X = np.concatenate([c + rng.normal(scale=rng.uniform(0.2, 1.0), size=(150, d))
                        for c in centers] + [rng.uniform(-7, 7, (100, d))])
    X = X[rng.permutation(len(X))]
    for eps, ms in [(0.3, 5), (0.6, 10), (1.2, 20)]:
        assert_same_as_sklearn(X, eps, ms)


def test_duplicated_points_equal_sklearn():
    rng = np.random.default_rng(5)
    base = rng.integers(0, 8, size=(60, 2)).astype(float)
    X = base[rng.integers(0, 60, size=400)]  # every point repeated several times
    for eps, ms in [(0.5, 3), (0.5, 8), (1.0, 10), (1.5, 25), (1e-9, 7)]:
        assert_same_as_sklearn(X, eps, ms)
        assert_same_as_sklearn(X, eps, ms, backend="torch", device="cpu")
    # All points identical: one cluster when min_samples <= n, else all noise.
    same = np.ones((12, 3))
    assert assert_same_as_sklearn(same, 0.1, 12).labels.tolist() == [0] * 12
    assert assert_same_as_sklearn(same, 0.1, 13).labels.tolist() == [-1] * 12


@pytest.mark.parametrize(
    "eps, scale, d",
    [(1.0, 1.0, 2), (math.sqrt(2), 1.0, 2), (2.0, 1.0, 2), (0.5, 0.5, 2), (1.0, 1.0, 3),
     (1.0, 1.0, 1), (5.0, 1.0, 2)],
)
def test_exact_ties_at_eps_equal_sklearn(eps, scale, d):
    X = grid_points(14 if d < 3 else 7, d=d, seed=int(eps * 10)) * scale
    if eps == 5.0:  # 3-4-5 triangles: many pairs at exactly 5
        X = X * np.array([3.0, 4.0])
    changed = False
    for ms in (2, 3, 4, 5, 6, 9):
        res = assert_same_as_sklearn(X, eps, ms)
        assert_same_as_sklearn(X, eps, ms, backend="torch", device="cpu")
        below = dbscan(X, np.nextafter(eps, 0), ms)
        changed |= not np.array_equal(res.labels, below.labels)
    assert changed, "ties at exactly eps should matter on this grid"


def test_exact_ties_tiny_set_equal_sklearn():
    # <= 11 points: sklearn switches to brute force (|a|^2 - 2ab + |b|^2), exact on integers.
    X = grid_points(3, drop=0.0, seed=1)
    for ms in (2, 3, 4, 5):
        assert_same_as_sklearn(X, 1.0, ms)


@pytest.mark.parametrize("d", [5, 6, 8, 10])
def test_high_dimensional_equal_sklearn(d):
    rng = np.random.default_rng(d)
    centers = rng.normal(scale=4.0, size=(4, d))
    X = np.concatenate([c + rng.normal(size=(120, d)) for c in centers]
                       + [rng.uniform(-8, 8, (60, d))])
    eps = 0.3 * d + 0.6  # about the 80th percentile of the 8-th neighbour distance
    for ms in (3, 8):
        res = assert_same_as_sklearn(X, eps, ms)
        assert res.n_clusters >= 2
    assert_same_as_sklearn(X, eps, 5, backend="torch", device="cpu")
    # Integer lattice in d dimensions: ties at eps = 1.
    G = np.random.default_rng(d).integers(0, 3, size=(300, d)).astype(float)
    for ms in (2, 4, 2 * d + 1):
        assert_same_as_sklearn(G, 1.0, ms)


def test_min_samples_one_every_point_is_core():
    X, _ = toy_2d("moons", 300, seed=1)
    res = assert_same_as_sklearn(X, 0.08, 1)
    assert res.core_mask.all() and not res.noise_mask.any()
    assert res.n_clusters > 2
    assert_same_as_sklearn(X, 0.08, 1, backend="torch", device="cpu")


def test_single_point_and_huge_min_samples():
    assert dbscan([[1.0, 2.0]], 0.5, 1).labels.tolist() == [0]
    assert dbscan([[1.0, 2.0]], 0.5, 2).labels.tolist() == [-1]
    X, _ = toy_2d("blobs", 200, seed=0)
    assert (dbscan(X, 0.3, 1000).labels == -1).all()


# ----------------------------------------------------------------------------------------
# Every internal path against sklearn
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "knobs",
    [
        {"_SMALL": 0},  # all undecided cell pairs go through the one-at-a-time union
        {"_CHUNK": 7},  # tiny chunks: range pairs split, many groups
        {"_CACHE_PAIRS_PER_POINT": 0, "_CACHE_PAIRS_MIN": 0},  # pairs recomputed each pass
    ],
)
def test_internal_paths_equal_sklearn(monkeypatch, knobs):
    for key, value in knobs.items():
        monkeypatch.setattr(mod, key, value)
    X, _ = toy_2d("blobs_noise", 1200, seed=7)
    for eps, ms in [(0.2, 5), (0.35, 12)]:
        assert_same_as_sklearn(X * 1.5, eps, ms)
    G = grid_points(12, seed=2)
    assert_same_as_sklearn(G, 1.0, 4)
    D = np.random.default_rng(2).integers(0, 5, size=(300, 2)).astype(float)
    assert_same_as_sklearn(D, 1.0, 6)


@pytest.mark.parametrize("small", [0, mod._SMALL])
def test_cells_across_a_diagonal_gap_equal_sklearn(monkeypatch, small):
    # Two dense triangles facing each other across a diagonal gap of 0.95 eps (one
    # cluster) or 1.05 eps (two). Cells along the diagonal have boxes that overlap across
    # the gap while their points may or may not be within eps, so the exact cell-to-cell
    # check decides; small=0 sends every such pair through the one-at-a-time union.
    monkeypatch.setattr(mod, "_SMALL", small)
    outcomes = []
    touch = mod._cells_touch
    monkeypatch.setattr(mod, "_cells_touch", lambda *a: outcomes.append(touch(*a)) or outcomes[-1])
    rng = np.random.default_rng(0)
    eps = 0.05
    for gap, n_clusters in [(0.95, 1), (1.05, 2)]:
        P = rng.random((20_000, 2))
        half = gap * eps / math.sqrt(2)  # x + y = 1 -/+ half: perpendicular gap = gap * eps
        X = np.concatenate([P[P.sum(1) <= 1 - half], P[P.sum(1) >= 1 + half]])
        X = X[rng.permutation(len(X))]
        assert assert_same_as_sklearn(X, eps, 4).n_clusters == n_clusters
    if small == 0:
        assert True in outcomes and False in outcomes


@pytest.mark.parametrize("d", [2, 3])
def test_tree_path_equals_grid_path_and_sklearn(d):
    rng = np.random.default_rng(d)
    X = np.concatenate([rng.normal(size=(400, d)), rng.normal(3.0, 0.5, size=(300, d))])
    ref = sklearn_dbscan(X, 0.35, 6)
    for pairs in ("auto", "tree"):
        labels, core = mod._dbscan_numpy(X, 0.35, 6, pairs=pairs)
        np.testing.assert_array_equal(labels, ref.labels_)
        np.testing.assert_array_equal(np.flatnonzero(core), ref.core_sample_indices_)


def test_rounding_split_cells_equal_sklearn():
    # side = eps / sqrt(3): two opposite corners of one cell end up just over eps apart
    # after rounding, so that cell is split into single points (and the tree path used).
    eps = 1.6326771598401906
    s = np.nextafter(eps / math.sqrt(3), 0)
    rng = np.random.default_rng(0)
    X = np.concatenate([[[0.0, 0.0, 0.0], [s, s, s]], rng.uniform(0, 4, (200, 3))])
    cells = mod._Cells.build(X, eps)
    grid_cells = np.unique(np.floor(X / (eps / math.sqrt(3))), axis=0)  # X.min(0) == 0
    assert cells.keys is None and cells.m > len(grid_cells)
    assert np.floor(s / (eps / math.sqrt(3))) == 0  # both corners in grid cell (0, 0, 0)
    for ms in (2, 3, 5):
        assert_same_as_sklearn(X, eps, ms)


def test_coordinates_huge_compared_with_eps_equal_sklearn():
    # (x - min) / cell side exceeds 2**40: one cell per point, still exact.
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(0, 1e-3, (150, 2)), 1e12 + rng.normal(0, 1e-3, (150, 2))])
    assert mod._Cells.build(X, 1e-3).m == len(X)
    for ms in (3, 6):
        assert_same_as_sklearn(X, 1e-3, ms)


# ----------------------------------------------------------------------------------------
# Memory: no n x n anything
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [10.0, 0.05])
def test_memory_stays_bounded_when_everything_is_a_neighbour(eps):
    # eps = 10 on the unit square: each of the 20,000 points has all 20,000 as neighbours
    # (sklearn would store 4e8 indices = 3.2 GB); eps = 0.05: ~160 neighbours each.
    n = 20_000
    X = np.random.default_rng(0).random((n, 2))
    tracemalloc.start()
    try:
        res = dbscan(X, eps, 5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    n2_bytes = n * n * 8
    assert peak < n2_bytes / 50, f"peak {peak / 1e6:.1f} MB is not far below n^2 floats"
    assert peak < 64e6
    assert res.core_mask.all() and res.n_clusters == 1


def test_medium_set_equal_sklearn():
    X, _ = toy_2d("blobs_noise", 20_000, seed=1)
    res = assert_same_as_sklearn(X * 3.0, 0.1, 10)
    assert res.n_clusters >= 3 and res.border_mask.any() and res.noise_mask.any()


# ----------------------------------------------------------------------------------------
# Teaching pieces: region_query, core_points, k_distance, dbscan_steps
# ----------------------------------------------------------------------------------------


def test_region_query_equals_sklearn_radius_neighbors():
    X = np.concatenate([grid_points(8, seed=3), toy_2d("moons", 100, seed=0)[0] * 3])
    nn = NearestNeighbors(radius=1.0).fit(X)
    for i in [0, 5, 17, len(X) - 1]:
        ref = np.sort(nn.radius_neighbors(X[i:i + 1], return_distance=False)[0])
        got = region_query(X, i, 1.0)
        np.testing.assert_array_equal(got, ref)
        assert i in got and np.all(np.diff(got) > 0)


def test_core_points_equal_sklearn():
    X, _ = toy_2d("smiley", 600, seed=2)
    for eps, ms in [(0.15, 4), (0.3, 12)]:
        ref = sklearn_dbscan(X, eps, ms).core_sample_indices_
        np.testing.assert_array_equal(np.flatnonzero(core_points(X, eps, ms)), ref)
    # by definition: count of region_query >= min_samples
    counts = np.array([len(region_query(X, i, 0.15)) for i in range(len(X))])
    np.testing.assert_array_equal(core_points(X, 0.15, 4), counts >= 4)


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_k_distance_equals_sklearn_and_makes_points_core(k):
    X = np.concatenate([toy_2d("blobs_noise", 400, seed=1)[0], grid_points(6, seed=1)])
    got = k_distance(X, k)
    dist, _ = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    np.testing.assert_allclose(got, np.sort(dist[:, -1]), rtol=1e-12, atol=0)
    assert np.all(np.diff(got) >= 0)
    # eps at the i-th smallest k-distance: at least i + 1 points are core for min_samples=k
    if k == 1:
        assert np.all(got == 0)  # the point itself
        return
    for i in [0, len(X) // 3, len(X) // 2, len(X) - 1]:
        assert core_points(X, got[i], k).sum() >= i + 1


def test_dbscan_steps_replays_sklearn_order_and_ends_with_its_labels():
    X, _ = toy_2d("moons", 150, seed=4)
    X = np.concatenate([X, [[3.0, 3.0]]])
    eps, ms = 0.2, 5
    final = dbscan(X, eps, ms)
    steps = list(dbscan_steps(X, eps, ms))
    np.testing.assert_array_equal(steps[-1].labels, final.labels)
    np.testing.assert_array_equal(steps[-1].labels, sklearn_dbscan(X, eps, ms).labels_)
    kinds = [s.kind for s in steps]
    assert set(kinds) <= {"new_cluster", "core", "border", "noise"}
    assert kinds.count("new_cluster") == final.n_clusters
    # each point appears once; core / border / noise events match the final roles
    assert sorted(s.point for s in steps) == list(range(len(X)))
    for s in steps:
        assert final.labels[s.point] == s.cluster
        if s.kind in ("new_cluster", "core"):
            assert final.core_mask[s.point]
        elif s.kind == "border":
            assert final.border_mask[s.point]
        else:
            assert final.noise_mask[s.point]
    # a cluster starts at its lowest-index core point, clusters in increasing order
    starts = [s for s in steps if s.kind == "new_cluster"]
    for c, s in enumerate(starts):
        assert s.cluster == c
        assert s.point == np.flatnonzero(final.core_mask & (final.labels == c))[0]
    # labels only ever go from -1 to a cluster, one point per step
    prev = np.full(len(X), -1)
    for s in steps[: len(steps) - kinds.count("noise")]:
        changed = np.flatnonzero(s.labels != prev)
        assert changed.tolist() == [s.point] and prev[s.point] == -1
        prev = s.labels


# ----------------------------------------------------------------------------------------
# torch backend
# ----------------------------------------------------------------------------------------


def test_torch_backend_equals_numpy_on_long_chains():
    # A chain in decreasing index order: min-label propagation needs pointer jumping.
    t = np.linspace(0, 20, 400)
    X = np.c_[t, np.sin(t)][::-1].copy()
    X = np.concatenate([X, X[::7] + [0.0, 5.0]])
    for ms in (1, 2, 3):
        a = dbscan(X, 0.06, ms)
        b = dbscan(X, 0.06, ms, backend="torch", device="cpu")
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.core_mask, b.core_mask)
    assert_same_as_sklearn(X, 0.06, 2, backend="torch", device="cpu")


@pytest.fixture
def float32_on_cpu(monkeypatch):
    """Run the torch backend's GPU arithmetic (float32 + float64 re-check) on the CPU."""
    torch = pytest.importorskip("torch")
    import helpers.device

    monkeypatch.setattr(helpers.device, "torch_dtype_for", lambda device: torch.float32)


@pytest.mark.parametrize(
    "eps, scale, d",
    [(1.0, 1.0, 2), (math.sqrt(2), 1.0, 2), (0.5, 0.5, 2), (1.0, 1.0, 3), (5.0, 1.0, 2)],
)
def test_torch_float32_path_keeps_exact_ties(float32_on_cpu, eps, scale, d):
    # The GPU dtype rule (float32) must not change labels: pairs at exactly eps on integer
    # grids are re-decided in float64. (1e3 offset: centring must not disturb the ties.)
    X = grid_points(14 if d < 3 else 7, d=d, seed=int(eps * 10)) * scale + 1e3
    if eps == 5.0:
        X = X * np.array([3.0, 4.0])
    for ms in (2, 4, 6):
        assert_same_as_sklearn(X, eps, ms, backend="torch", device="cpu")


def test_torch_float32_path_random_and_huge_coordinates(float32_on_cpu, monkeypatch):
    rng = np.random.default_rng(8)
    X = np.concatenate([rng.normal(0, 0.3, (300, 2)), rng.normal(3, 0.3, (300, 2))])
    assert_same_as_sklearn(X, 0.2, 5, backend="torch", device="cpu")
    monkeypatch.setattr(mod, "_TORCH_BLOCK", 999)  # many blocks
    assert_same_as_sklearn(X, 0.2, 5, backend="torch", device="cpu")
    # coordinates 1e12 with eps 1e-3: float32 cannot resolve eps, so it all runs in float64
    Y = np.concatenate([rng.normal(0, 1e-3, (150, 2)), 1e12 + rng.normal(0, 1e-3, (150, 2))])
    assert_same_as_sklearn(Y, 1e-3, 3, backend="torch", device="cpu")


def test_float32_band_covers_the_float32_error():
    # Every float32 squared distance near eps^2 must be within the re-check band of the
    # float64 one (the module's left-to-right sum), else a label could flip on a GPU.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for scale, eps, d in [(1.0, 0.05, 3), (1e3, 0.7, 2), (1e5, 3.0, 6), (-1e4, 0.01, 1)]:
        X = scale + rng.normal(0, 2 * eps / np.sqrt(d), (1500, d))
        Xt, _, exact = mod._float32_with_exact_recheck(X, eps, torch.device("cpu"))
        d2_32 = mod._torch_sqdist(Xt, Xt).numpy().astype(np.float64)
        d2_64 = np.stack([mod._row_sqdist(X, x) for x in X])
        close = np.abs(d2_64 - eps * eps) <= 0.25 * eps * eps
        assert close.sum() > 1000
        assert np.abs(d2_32 - d2_64)[close].max() <= exact.band
        assert exact.band < 0.01 * eps * eps  # and the band is narrow: few pairs re-checked


def test_torch_backend_small_blocks(monkeypatch):
    monkeypatch.setattr(mod, "_TORCH_BLOCK", 50)
    X, _ = toy_2d("blobs_noise", 500, seed=2)
    assert_same_as_sklearn(X, 0.3, 6, backend="torch", device="cpu")


def test_torch_backend_all_noise_and_all_core():
    X = np.arange(10.0)[:, None] * 10
    assert (dbscan(X, 1.0, 2, backend="torch", device="cpu").labels == -1).all()
    assert dbscan(X, 1.0, 1, backend="torch", device="cpu").labels.tolist() == list(range(10))


# ----------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------

X_OK = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize(
    "X, eps, min_samples, param",
    [
        (X_OK, 0.0, 2, "eps"),
        (X_OK, -1.0, 2, "eps"),
        (X_OK, float("nan"), 2, "eps"),
        (X_OK, float("inf"), 2, "eps"),
        (X_OK, 1.0, 0, "min_samples"),
        (X_OK, 1.0, -3, "min_samples"),
        ([[0.0, np.nan], [1.0, 1.0]], 1.0, 2, "X"),
        ([[0.0, np.inf], [1.0, 1.0]], 1.0, 2, "X"),
        ([0.0, 1.0, 2.0], 1.0, 2, "X"),
        (np.zeros((0, 2)), 1.0, 2, "X"),
        (np.zeros((3, 0)), 1.0, 2, "X"),
        (np.zeros((2, 2, 2)), 1.0, 2, "X"),
    ],
)
def test_bad_input_raises_value_error_naming_parameter(X, eps, min_samples, param, backend):
    with pytest.raises(ValueError, match=param):
        dbscan(X, eps, min_samples, backend=backend)


def test_bad_backend_and_device():
    with pytest.raises(ValueError, match="backend"):
        dbscan(X_OK, 1.0, 2, backend="cuda")
    with pytest.raises(ValueError, match="device"):
        dbscan(X_OK, 1.0, 2, backend="torch", device="no-such-device")


def test_bad_input_in_teaching_functions():
    with pytest.raises(ValueError, match="eps"):
        region_query(X_OK, 0, 0.0)
    with pytest.raises(ValueError, match="^i must"):
        region_query(X_OK, 3, 1.0)
    with pytest.raises(ValueError, match="min_samples"):
        core_points(X_OK, 1.0, 0)
    with pytest.raises(ValueError, match="k"):
        k_distance(X_OK, 0)
    with pytest.raises(ValueError, match="k"):
        k_distance(X_OK, 4)
    with pytest.raises(ValueError, match="X"):
        k_distance([[np.nan, 0.0]], 1)
    with pytest.raises(ValueError, match="eps"):
        next(dbscan_steps(X_OK, -1.0, 2))
