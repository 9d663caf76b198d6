"""helpers.clustering.kmeans against scikit-learn (the outside reference) and by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans

from helpers import clustering
from helpers.checks import kmeans as checks
from helpers.clustering import kmeans, kmeans_step
from helpers.data import toy_2d

BACKENDS = ["numpy", "torch"]


def sklearn_lloyd(X, init, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when it relocates duplicate centers
        return KMeans(len(init), init=init, n_init=1, algorithm="lloyd", **kw).fit(X)


def assert_same_as_sklearn(result, sk):
    np.testing.assert_allclose(result.centers, sk.cluster_centers_, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result.labels, sk.labels_)
    assert result.inertia == pytest.approx(sk.inertia_, rel=1e-9, abs=1e-9)
    assert result.n_iter == sk.n_iter_


def test_hand_computed_problem():
    # Two obvious pairs on a line; from centers at 0 and 1 the first assignment puts 0 and 1
    # apart, then the means move to 0.5 and 10.5 (worked out by hand).
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    result = kmeans(X, 2, init=np.array([[0.0], [1.0]]))
    np.testing.assert_array_equal(result.labels, [0, 0, 1, 1])
    np.testing.assert_allclose(result.centers, [[0.5], [10.5]])
    assert result.inertia == pytest.approx(4 * 0.25)
    # history: initial centers, after step 1 ((0), (1+10+11)/3), after step 2, after step 3
    np.testing.assert_allclose(result.history[1], [[0.0], [22.0 / 3.0]])
    np.testing.assert_allclose(result.history[-1], result.centers)
    assert result.converged


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(6))
def test_matches_sklearn_from_same_init(backend, seed):
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(50, 400)), int(rng.integers(1, 6)), int(rng.integers(2, 9))
    means = 3 * rng.standard_normal((k, d))
    X = means[rng.integers(k, size=n)] + rng.standard_normal((n, d)) + 100.0  # far from 0
    init = X[rng.choice(n, k, replace=False)]
    result = kmeans(X, k, init=init, backend=backend, device="cpu")
    assert_same_as_sklearn(result, sklearn_lloyd(X, init))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n,d,k", [(50_000, 3, 5), (37_001, 9, 40)])
def test_matches_sklearn_on_many_blocks_and_threads(backend, n, d, k):
    # Big enough for several row blocks (a ragged last one) and, on a multi-core machine,
    # the threaded path: blocks split among workers must still give sklearn's answer.
    rng = np.random.default_rng(n)
    means = 4 * rng.standard_normal((k, d))
    X = means[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    init = X[rng.choice(n, k, replace=False)]
    result = kmeans(X, k, init=init, max_iter=15, backend=backend, device="cpu")
    assert_same_as_sklearn(result, sklearn_lloyd(X, init, max_iter=15))


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_data_with_exact_ties_matches_sklearn(backend):
    # Small integer grids make points exactly as far from two centers all the time: which
    # one wins then depends on the last bit of every distance and every mean, so this only
    # passes when the arithmetic is sklearn's (same BLAS call, sums in row order, means as
    # sum * (1 / count)). Before that was so, 1 of these cases (numpy) and 13 of 300 (torch) differed.
    rng = np.random.default_rng(5)
    for _ in range(200):
        n, d = int(rng.integers(4, 60)), int(rng.integers(1, 5))
        k = int(rng.integers(1, min(n, 6) + 1))
        X = rng.integers(0, 6, size=(n, d)).astype(float)
        init = X[rng.choice(n, k, replace=False)]
        result = kmeans(X, k, init=init, backend=backend, device="cpu")
        assert_same_as_sklearn(result, sklearn_lloyd(X, init))


def test_torch_index_add_sums_in_row_order_like_bincount():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50_000, 3)) * 1e3
    labels = rng.integers(7, size=50_000)
    sums, _ = clustering._cluster_sums(X, labels, 7)
    by_torch = torch.zeros(7, 3, dtype=torch.float64)
    for start in range(0, 50_000, 4096):  # block by block, as the torch backend adds them
        by_torch.index_add_(0, torch.as_tensor(labels[start : start + 4096]),
                            torch.as_tensor(X[start : start + 4096]))
    np.testing.assert_array_equal(by_torch.numpy(), sums)


def test_threaded_assignment_equals_serial():
    X = np.random.default_rng(1).standard_normal((3 * clustering._PARALLEL_MIN_ROWS + 17, 4))
    C = X[:6].copy()
    serial = clustering._assign_and_sum(X, C)
    with clustering._BlockRunner(X.shape[0], workers=3) as run:  # threads even on one core
        threaded = clustering._assign_and_sum(X, C, run)
    np.testing.assert_array_equal(threaded[0], serial[0])
    np.testing.assert_allclose(threaded[1], serial[1], rtol=1e-12)
    np.testing.assert_array_equal(threaded[2], serial[2])
    assert threaded[3] == pytest.approx(serial[3], rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("max_iter,tol", [(1, 1e-4), (2, 0.0), (300, 1e-2), (300, 0.0)])
def test_stopping_rules_match_sklearn(backend, max_iter, tol):
    X, _ = toy_2d("anisotropic", n=500, seed=3)
    init = X[:4]
    result = kmeans(X, 4, init=init, max_iter=max_iter, tol=tol, backend=backend, device="cpu")
    assert_same_as_sklearn(result, sklearn_lloyd(X, init, max_iter=max_iter, tol=tol))
    assert len(result.history) == result.n_iter + 1
    assert len(result.inertia_history) == result.n_iter


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_clusters_relocate_like_sklearn_and_never_nan(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 2))
    # Three centers far from all data: all of them empty out in the first assignment.
    init = np.array([[0.0, 0.0], [100.0, 100.0], [200.0, -50.0], [0.1, 0.1], [-300.0, 0.0]])
    result = kmeans(X, 5, init=init, backend=backend, device="cpu")
    assert not np.isnan(result.centers).any()
    assert_same_as_sklearn(result, sklearn_lloyd(X, init))
    assert len(np.unique(result.labels)) == 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_more_clusters_than_distinct_points(backend):
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    init = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    result = kmeans(X, 3, init=init, backend=backend, device="cpu")
    assert not np.isnan(result.centers).any()
    assert_same_as_sklearn(result, sklearn_lloyd(X, init))


def test_inertia_never_increases():
    X, _ = toy_2d("smiley", n=600, seed=5)
    result = kmeans(X, 6, init="random", seed=1, tol=0.0)
    assert np.all(np.diff(result.inertia_history) <= 1e-9)
    assert result.inertia <= result.inertia_history[-1] + 1e-9


def test_kmeans_step_is_one_lloyd_iteration():
    X, _ = toy_2d("blobs", n=200, seed=2)
    init = X[[0, 70, 140]]
    labels, new_centers = kmeans_step(X, init)
    sk = sklearn_lloyd(X, init, max_iter=1)
    np.testing.assert_allclose(new_centers, sk.cluster_centers_, atol=1e-12)
    np.testing.assert_array_equal(labels, clustering.assign_clusters(X, init))


def test_random_init_picks_distinct_data_points_reproducibly():
    X, _ = toy_2d("uniform", n=50, seed=0)
    a = clustering.init_centers(X, 10, init="random", seed=7)
    b = clustering.init_centers(X, 10, init="random", seed=7)
    np.testing.assert_array_equal(a, b)
    rows = {tuple(r) for r in X}
    assert all(tuple(c) in rows for c in a) and len({tuple(c) for c in a}) == 10


def test_farthest_first_is_a_2_approximation_of_k_center():
    # Gonzalez' guarantee: the covering radius of farthest-first is at most twice the optimum.
    # On three tight, far-apart groups the optimum radius is tiny, so each group gets a center.
    X = np.concatenate([np.array(c) + 0.01 * np.random.default_rng(i).standard_normal((20, 2))
                        for i, c in enumerate([(0, 0), (50, 0), (0, 50)])])
    centers = clustering.farthest_first(X, 3, first=5)
    groups = {tuple(np.round(c / 50).astype(int)) for c in centers}
    assert groups == {(0, 0), (1, 0), (0, 1)}


def test_kmeans_plusplus_is_as_good_as_sklearns():
    # Same algorithm family (greedy k-means++ then Lloyd), different random streams: compare
    # the average final inertia over seeds, not single runs.
    X, _ = toy_2d("blobs", n=600, seed=0)
    X = np.concatenate([X, X + [8.0, 0.0]])  # six blobs
    ours = np.mean([kmeans(X, 6, seed=s).inertia for s in range(8)])
    theirs = np.mean([KMeans(6, n_init=1, random_state=s).fit(X).inertia_ for s in range(8)])
    assert ours <= 1.05 * theirs


def greedy_kmeans_plusplus(X, k, rng):
    """Arthur & Vassilvitskii's D^2 sampling with sklearn's greedy 2 + log(k) trials, written
    the obvious way (every distance as sum((x - c)**2)): the reference for the fast one."""
    n = len(X)
    n_trials = 2 + int(np.log(k))
    centers = [X[int(rng.integers(n))]]
    closest = ((X - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        cumulative = np.cumsum(closest)
        candidates = np.searchsorted(cumulative, rng.uniform(size=n_trials) * cumulative[-1])
        candidates = np.minimum(candidates, n - 1)
        pots = [np.minimum(closest, ((X - X[c]) ** 2).sum(axis=1)) for c in candidates]
        best = int(np.argmin([p.sum() for p in pots]))
        centers.append(X[candidates[best]])
        closest = pots[best]
    return np.array(centers)


@pytest.mark.parametrize("n,d,k,offset", [(500, 2, 5, 0.0), (3000, 7, 20, 0.0),
                                          (40_000, 3, 9, 0.0), (2000, 4, 8, 1e4)])
def test_kmeans_plusplus_picks_the_greedy_d2_centers(n, d, k, offset):
    # The blocked ||x||^2 - 2 x.c + ||c||^2 distances must pick the very rows the plain
    # algorithm picks from the same random stream (40,000 rows: several blocks, BLAS limited).
    rng = np.random.default_rng(n)
    X = 3 * rng.standard_normal((k, d))[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    X += offset  # far from the origin: the distances are taken about the mean
    ours = clustering.init_centers(X, k, init="k-means++", seed=7)
    np.testing.assert_array_equal(ours, greedy_kmeans_plusplus(X, k, np.random.default_rng(7)))


def test_kmeans_plusplus_potential_matches_sklearns_over_seeds():
    # Quality of the init itself (before Lloyd): the sum of squared distances to the chosen
    # centers, over 30 seeds each, against sklearn.cluster.kmeans_plusplus. The random
    # streams differ (numpy Generator vs RandomState), so compare distributions.
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.default_rng(3)
    k, d = 12, 3
    X = 6 * rng.standard_normal((k, d))[rng.integers(k, size=4000)] + rng.standard_normal((4000, d))
    ours = np.array([clustering.inertia(X, clustering.init_centers(X, k, seed=s))
                     for s in range(30)])
    theirs = np.array([clustering.inertia(X, kmeans_plusplus(X, k, random_state=s)[0])
                       for s in range(30)])
    assert np.median(ours) <= 1.15 * np.median(theirs)
    assert np.mean(ours) <= 1.15 * np.mean(theirs)
    uniform = np.array([clustering.inertia(X, clustering.init_centers(X, k, init="random", seed=s))
                        for s in range(30)])
    assert np.mean(ours) < 0.8 * np.mean(uniform)  # the test can tell D^2 sampling apart


def test_kmeans_plusplus_is_reproducible_from_seed():
    X = np.random.default_rng(0).standard_normal((30_000, 5))
    a = clustering.init_centers(X, 10, seed=123)
    np.testing.assert_array_equal(a, clustering.init_centers(X, 10, seed=123))
    np.testing.assert_array_equal(a, clustering.init_centers(X, 10, seed=np.random.default_rng(123)))
    assert not np.array_equal(a, clustering.init_centers(X, 10, seed=124))


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_kmeans_plusplus_needs_no_big_temporaries(engine):
    # The old code built an (n_trials, n, d) array: 5 x 100,000 x 16 floats = 64 MB here.
    # Now: a few arrays of n floats and the trials' distances (n_trials x n, as sklearn
    # keeps them), plus ~1 MiB blocks: at most sklearn's own peak (issue 15: 1.2x).
    import tracemalloc

    from sklearn.cluster import kmeans_plusplus

    if engine == "numba":
        pytest.importorskip("numba")
    X = np.random.default_rng(0).standard_normal((100_000, 16))
    clustering.init_centers(X, 32, seed=0, engine=engine)  # compile outside the count
    peaks = []
    for init in (lambda: clustering.init_centers(X, 32, seed=0, engine=engine),
                 lambda: kmeans_plusplus(X, 32, random_state=0)):
        tracemalloc.start()
        init()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[0] < 5 * X.nbytes / 4  # a quarter of the old (n_trials, n, d) temporary
    assert peaks[0] <= 1.2 * peaks[1]


def test_kmeans_plusplus_engines_pick_the_same_centers():
    # The compiled blocks make the reference's BLAS calls and additions in the same order:
    # the same seed gives the same centers with or without numba, bit for bit.
    pytest.importorskip("numba")
    rng = np.random.default_rng(4)
    for n, d, k in [(70_000, 3, 9), (5000, 16, 40), (3000, 2, 5)]:
        X = rng.integers(0, 7, size=(n, d)).astype(float)  # ties everywhere
        X[: n // 2] += rng.standard_normal((n // 2, d))
        for seed in range(2):
            np.testing.assert_array_equal(
                clustering.init_centers(X, k, seed=seed, engine="numba"),
                clustering.init_centers(X, k, seed=seed, engine="numpy"))


def test_kmeans_plusplus_with_duplicates_and_k_equal_n():
    X = np.repeat(np.arange(4.0)[:, None], 5, axis=0)  # 4 distinct points, 5 copies each
    centers = clustering.init_centers(X, 4, seed=0)
    assert sorted(centers.ravel().tolist()) == [0.0, 1.0, 2.0, 3.0]
    centers = clustering.init_centers(X, 6, seed=0)  # more centers than distinct points
    assert set(centers.ravel().tolist()) == {0.0, 1.0, 2.0, 3.0}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("init", ["random", "farthest", "k-means++"])
def test_seeded_inits_are_deterministic_across_backends(backend, init):
    X, _ = toy_2d("moons", n=300, seed=1)
    a = kmeans(X, 3, init=init, seed=11, backend=backend, device="cpu")
    b = kmeans(X, 3, init=init, seed=11, backend="numpy")
    np.testing.assert_allclose(a.centers, b.centers, atol=1e-9)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_torch_backend_explicit_cpu_and_unavailable_device():
    X, _ = toy_2d("blobs", n=100, seed=0)
    r = kmeans(X, 3, seed=0, backend="torch", device="cpu")
    np.testing.assert_allclose(r.centers, kmeans(X, 3, seed=0).centers, atol=1e-9)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device"):
            kmeans(X, 3, seed=0, backend="torch", device="cuda")


@pytest.mark.parametrize(
    "kwargs,param",
    [
        (dict(X=np.zeros((5, 2)), k=0), "k"),
        (dict(X=np.zeros((5, 2)), k=6), "k"),
        (dict(X=np.zeros((5, 2)), k=2.5), "k"),
        (dict(X=np.array([[0.0, np.nan], [1.0, 1.0]]), k=1), "X"),
        (dict(X=np.array([[0.0, np.inf], [1.0, 1.0]]), k=1), "X"),
        (dict(X=np.arange(5.0), k=2), "X"),
        (dict(X=np.empty((0, 2)), k=1), "X"),
        (dict(X=[["a", "b"]], k=1), "X"),
        (dict(X=np.zeros((5, 2)), k=2, init="kmeans++"), "init"),
        (dict(X=np.zeros((5, 2)), k=2, init=np.zeros((3, 2))), "init"),
        (dict(X=np.zeros((5, 2)), k=2, init=np.zeros((2, 3))), "init"),
        (dict(X=np.zeros((5, 2)), k=2, max_iter=0), "max_iter"),
        (dict(X=np.zeros((5, 2)), k=2, tol=-1.0), "tol"),
        (dict(X=np.zeros((5, 2)), k=2, backend="jax"), "backend"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, param):
    with pytest.raises((ValueError, TypeError), match=param):
        kmeans(**kwargs)


def test_checkers_accept_the_reference_and_reject_mistakes():
    checks.check_assign_clusters(clustering.assign_clusters, seeds=range(10), dims=(1, 2, 5))
    checks.check_assign_ties(clustering.assign_clusters)
    checks.check_update_centers(clustering.update_centers, seeds=range(10), dims=(1, 3))
    checks.check_farthest_first(clustering.farthest_first, seeds=range(10), dims=(2, 3))
    checks.check_inertia(clustering.inertia, seeds=range(5))

    def lloyd(X, centers, max_iter=100):
        result = kmeans(X, len(centers), init=centers, tol=0.0, max_iter=max_iter)
        return result.centers, result.labels

    checks.check_lloyd(lloyd, seeds=range(5), dims=(2, 3))

    def farthest_argmin(X, k, first=0):
        return X[np.argsort(((X - X[first]) ** 2).sum(axis=1))[:k]]

    def mean_of_all(X, labels, k):
        return np.repeat(X.mean(axis=0, keepdims=True), k, axis=0)

    def argmax(X, centers):
        return ((X[:, None] - centers[None]) ** 2).sum(-1).argmax(1)

    for check, wrong in [(checks.check_farthest_first, farthest_argmin),
                         (checks.check_update_centers, mean_of_all),
                         (checks.check_assign_clusters, argmax)]:
        with pytest.raises(AssertionError):
            check(wrong)

    def not_done(X, centers):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        checks.check_assign_clusters(not_done)
