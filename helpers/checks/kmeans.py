"""Checkers for unit 01-kmeans. Each compares a student's function with ``helpers.clustering``.

Problems come from seeds: the visible tests in the notebook use the defaults, the hidden
tests pass other seeds, dimensions and edge cases.

Examples
--------
>>> from helpers.clustering import assign_clusters
>>> check_assign_clusters(assign_clusters)   # the reference passes its own check
"""

from __future__ import annotations

import numpy as np

from helpers import clustering as ref
from helpers.checks._core import (
    Case,
    Check,
    CheckFailure,
    as_array,
    expect_close,
    expect_equal,
    expect_shape,
)
from helpers.data import toy_2d

__all__ = [
    "check_assign_clusters",
    "check_assign_ties",
    "check_update_centers",
    "check_farthest_first",
    "check_lloyd",
    "check_inertia",
    "check_elbow",
]


def problem(seed, d=2, n=None, k=None):
    """A clustering problem (X, centers, description) made from ``seed``.

    2-D problems use the toy sets; other dimensions use Gaussian blobs. The centers are
    distinct data points, as a random initialisation would pick.
    """
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(20, 120))
    k = k or int(rng.integers(2, 6))
    if d == 2:
        name = ("blobs", "moons", "anisotropic", "uniform", "smiley")[seed % 5]
        X, _ = toy_2d(name, n=n, seed=seed)
        what = f"the {name} data (n={n}, k={k}, seed={seed})"
    else:
        means = 4 * rng.standard_normal((k, d))
        X = means[rng.integers(k, size=n)] + rng.standard_normal((n, d))
        what = f"random blobs (n={n}, d={d}, k={k}, seed={seed})"
    centers = X[rng.choice(n, size=k, replace=False)].copy()
    return X, centers, what


# --------------------------------------------------------------------------- assign

def _assign_cases(seeds=(0, 1, 2), dims=(2,)):
    cases = []
    for d in dims:
        for seed in seeds:
            X, centers, what = problem(seed, d)
            cases.append(Case((X, centers), what))
    return cases


def _assign_judge(case, got):
    X, centers = case.args
    _check_labels(got, X, centers, case.description)


def _ties_cases():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [1.0, 5.0]])
    centers = np.array([[0.0, 0.0], [2.0, 0.0]])
    return [Case((X, centers), "a point exactly halfway between center 0 and center 1")]


def _ties_judge(case, got):
    expect_equal(as_array(got, "labels", case.description, dtype=np.int64), [0, 1, 0, 0],
                 "labels (ties go to the lower center index, as np.argmin does)",
                 case.description)


check_assign_clusters = Check("kmeans.assign_clusters", "assign_clusters", _assign_cases,
                              _assign_judge)
check_assign_ties = Check("kmeans.assign_ties", "assign_clusters", _ties_cases, _ties_judge)


# --------------------------------------------------------------------------- update

def _update_cases(seeds=(0, 1, 2), dims=(2,)):
    cases = []
    for d in dims:
        for seed in seeds:
            X, centers, what = problem(seed, d)
            cases.append(Case((X, _non_empty_labels(X, centers), len(centers)), what))
    return cases


def _update_judge(case, got):
    X, labels, k = case.args
    got = as_array(got, "update_centers(X, labels, k)", case.description)
    expect_shape(got, (k, X.shape[1]), "the new centers", case.description, names="(k, d)")
    expect_close(got, ref.update_centers(X, labels, k), "the new centers", case.description)


check_update_centers = Check("kmeans.update_centers", "update_centers", _update_cases,
                             _update_judge)


# --------------------------------------------------------------------------- farthest first

def _farthest_cases(seeds=(0, 1, 2), dims=(2,)):
    cases = []
    for d in dims:
        for seed in seeds:
            X, centers, what = problem(seed, d)
            cases.append(Case((X, len(centers), seed % len(X)), what))
    return cases


def _farthest_judge(case, got):
    X, k, first = case.args
    got = as_array(got, "farthest_first(X, k, first)", case.description)
    expect_shape(got, (k, X.shape[1]), "the initial centers", case.description, names="(k, d)")
    want = ref.farthest_first(X, k, first=first)
    if not np.allclose(got[0], want[0]):
        raise CheckFailure(f"the first center should be X[first] = X[{first}] = "
                           f"{want[0]}, got {got[0]} on {case.description}")
    expect_close(got, want, "the initial centers (in the order they were chosen)",
                 case.description)


check_farthest_first = Check("kmeans.farthest_first", "farthest_first", _farthest_cases,
                             _farthest_judge)


# --------------------------------------------------------------------------- lloyd

def _lloyd_cases(seeds=(0, 1, 2), dims=(2,)):
    cases = []
    for d in dims:
        for seed in seeds:
            X, centers, what = _problem_without_empty_clusters(seed, d)
            cases.append(Case((X, centers), what))
    return cases


def _lloyd_judge(case, got):
    """Compared with sklearn's KMeans(algorithm="lloyd", n_init=1) from the same initial
    centers, run until the assignment no longer changes (the slides' stopping rule)."""
    from sklearn.cluster import KMeans

    X, centers = case.args
    where = case.description
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailure(f"lloyd should return a pair (centers, labels), got "
                           f"{type(got).__name__} on {where}")
    got_centers = as_array(got[0], "the final centers", where)
    sk = KMeans(len(centers), init=centers, n_init=1, algorithm="lloyd", tol=0.0,
                max_iter=300).fit(X)
    expect_shape(got_centers, centers.shape, "the final centers", where, names="(k, d)")
    if (np.allclose(got_centers, centers) and not np.allclose(centers, sk.cluster_centers_)):
        raise CheckFailure(
            f"the centers lloyd returned are the initial centers, unchanged, on {where}: the "
            "likely cause is that the updated centers are never kept (e.g. `new_centers = "
            "update_centers(...)` without `centers = new_centers`, or returning before the "
            "first update). Return the centers after the last update.")
    expect_close(got_centers, sk.cluster_centers_, "the final centers (vs sklearn)", where,
                 rtol=1e-6, atol=1e-6)
    _check_labels(got[1], X, sk.cluster_centers_, where)


check_lloyd = Check("kmeans.lloyd", "lloyd", _lloyd_cases, _lloyd_judge)


# --------------------------------------------------------------------------- inertia

def _inertia_cases(seeds=(0, 1, 2), dims=(2,)):
    cases = []
    for d in dims:
        for seed in seeds:
            X, centers, what = problem(seed, d)
            cases.append(Case((X, centers, ref.assign_clusters(X, centers)), what))
    return cases


def _inertia_judge(case, got):
    X, centers, labels = case.args
    got = as_array(got, "compute_inertia(X, centers, labels)", case.description)
    expect_shape(got, (), "the inertia", case.description, names="a single number")
    expect_close(got, ref.inertia(X, centers, labels), "the inertia", case.description)


check_inertia = Check("kmeans.inertia", "compute_inertia", _inertia_cases, _inertia_judge)


# --------------------------------------------------------------------------- elbow

def _elbow_cases(datasets=("blobs",), seeds=(0, 1), max_k=8):
    cases = []
    for name in datasets:
        for seed in seeds:
            X, _ = toy_2d(name, n=300, seed=seed)
            cases.append(Case((X, max_k, seed), f"the {name} data (n=300, seed={seed}, "
                              f"max_k={max_k})"))
    return cases


def _elbow_judge(case, got):
    """inertias[i] must be ``helpers.clustering.kmeans(X, ks[i], seed=seed).inertia``."""
    X, max_k, seed = case.args
    where = case.description
    if not isinstance(got, tuple | list) or len(got) != 3:
        raise CheckFailure(f"elbow should return (ks, inertias, best_k), got "
                           f"{type(got).__name__} on {where}")
    ks = list(range(1, max_k + 1))
    want = [ref.kmeans(X, k, seed=seed).inertia for k in ks]
    expect_equal(as_array(got[0], "ks", where, dtype=np.int64), ks, "ks", where)
    inertias = as_array(got[1], "the inertias", where)
    if inertias.shape == (max_k,) and not np.allclose(inertias, want, rtol=1e-9):
        if seed != 0 and np.allclose(
                inertias, [ref.kmeans(X, k, seed=0).inertia for k in ks], rtol=1e-9):
            raise CheckFailure(
                f"the inertias match clustering.kmeans(X, k, seed=0), not seed={seed}, on "
                f"{where}: the likely cause is that elbow ignores its seed argument; pass it "
                "on: clustering.kmeans(X, k, seed=seed)")
    try:
        expect_close(inertias, want, "the inertias", where, rtol=1e-9)
    except CheckFailure as failure:
        raise CheckFailure(f"{failure}. inertias[i] must be clustering.kmeans(X, ks[i], "
                           "seed=seed).inertia: without seed=seed each run starts from other "
                           "random centers") from None
    expect_equal(int(as_array(got[2], "best_k", where)), ref.elbow_k(ks, want), "best_k", where)


check_elbow = Check("kmeans.elbow", "elbow", _elbow_cases, _elbow_judge)


# --------------------------------------------------------------------------- internals

def _check_labels(got, X, centers, case):
    """Labels must name a nearest center; where two centers are equally near (to rounding),
    either is accepted, so a correct answer never fails on floating-point noise."""
    got = as_array(got, "labels", case)
    expect_shape(got, (len(X),), "labels", case, names="(n,)")
    if not np.all(got == np.round(got)):
        raise CheckFailure(f"labels should be whole numbers (cluster indices), got {got[:5]}... "
                           f"on {case}")
    got = got.astype(np.int64)
    k = len(centers)
    if got.min() < 0 or got.max() >= k:
        raise CheckFailure(f"labels should lie in 0..{k - 1} (one per center), got values "
                           f"from {got.min()} to {got.max()} on {case}")
    d2 = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    want = d2.argmin(axis=1)
    gap = d2[np.arange(len(X)), got] - d2[np.arange(len(X)), want]
    wrong = np.flatnonzero(gap > 1e-9 * (1.0 + d2.max()))
    if wrong.size:
        i = int(wrong[0])
        raise CheckFailure(
            f"{wrong.size} of {len(X)} points are not assigned to their nearest center on "
            f"{case}; e.g. point {i} {X[i]} got label {got[i]} (squared distance "
            f"{d2[i, got[i]]:.4g}) but center {want[i]} is nearer ({d2[i, want[i]]:.4g})"
        )


def _non_empty_labels(X, centers):
    """Nearest-center labels in which every cluster has at least one point."""
    labels = ref.assign_clusters(X, centers)
    missing = np.setdiff1d(np.arange(len(centers)), labels)
    labels[missing] = missing  # hand each empty cluster one point: an honest problem
    return labels


def _problem_without_empty_clusters(seed, d):
    """A problem whose plain Lloyd run never empties a cluster (the slides' algorithm has
    no rule for that case), found by trying successive seeds deterministically."""
    for offset in range(0, 1000, 7):
        X, centers, case = problem(seed + offset, d)
        if not _empties_during_lloyd(X, centers):
            return X, centers, case
    raise RuntimeError(f"no problem without empty clusters near seed {seed}")  # pragma: no cover


def _empties_during_lloyd(X, centers, max_iter=300):
    labels_old = None
    for _ in range(max_iter):
        labels = ref.assign_clusters(X, centers)
        if len(np.unique(labels)) < len(centers):
            return True
        if labels_old is not None and np.array_equal(labels, labels_old):
            return False
        centers = ref.update_centers(X, labels, len(centers))
        labels_old = labels
    return False
