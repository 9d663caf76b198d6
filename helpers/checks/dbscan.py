"""Checkers for unit 02-dbscan. Each compares a student's function with ``helpers.clustering``
or with ``sklearn.cluster.DBSCAN``.

Problems come from seeds: the visible tests in the notebook use the defaults, the hidden
tests pass other seeds and dimensions. Every check also runs a few hand-made problems with
exact ties (a point at distance exactly ``eps``), a point with exactly ``min_samples``
neighbours, a border point two clusters reach, so the conventions are tested, not just the
easy cases. Random problems keep every pairwise distance away from ``eps`` (by more than
rounding), so a correct answer never fails on the last bit of a float.

Examples
--------
>>> from helpers.clustering import region_query
>>> check_region_query(region_query)   # the reference passes its own check
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
    expect_shape,
)
from helpers.data import toy_2d

__all__ = [
    "TYPE_CODES",
    "problem",
    "reference_types",
    "reference_ari_scores",
    "check_region_query",
    "check_point_types",
    "check_my_dbscan",
    "check_k_distances",
    "check_eps_choice",
    "check_ari_scores",
]

# How point types are recorded for re-judging outside the kernel (strings are not encodable).
TYPE_CODES = {"noise": 0, "border": 1, "core": 2}
_TYPE_NAMES = {code: name for name, code in TYPE_CODES.items()}
_TOY = ("blobs_noise", "moons", "smiley", "rings", "density_bars", "blobs", "anisotropic",
        "uniform")


def problem(seed, d=2, n=None, min_samples=None):
    """A DBSCAN problem ``(X, eps, min_samples, description)`` made from ``seed``.

    2-D problems use the toy sets; other dimensions use Gaussian blobs plus uniform
    background noise. ``eps`` is a quantile of the k-distances, so most points are core and
    a few are border or noise, then nudged so that no pairwise distance is within
    rounding of it.
    """
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(40, 150))
    min_samples = min_samples or int(rng.integers(3, 8))
    if d == 2:
        name = _TOY[seed % len(_TOY)]
        X, _ = toy_2d(name, n=n, seed=seed)
        what = f"the {name} data"
    else:
        k = int(rng.integers(2, 5))
        means = 5 * rng.standard_normal((k, d))
        X = means[rng.integers(k, size=n)] + rng.standard_normal((n, d))
        X[: n // 10] = rng.uniform(X.min(), X.max(), (n // 10, d))  # background noise
        what = f"random blobs with noise (d={d})"
    quantile = rng.uniform(0.55, 0.9)
    eps = _away_from_ties(X, float(np.quantile(ref.k_distance(X, min_samples), quantile)))
    return X, eps, min_samples, (f"{what} (n={n}, eps={eps:.4g}, min_samples={min_samples}, "
                                 f"seed={seed})")


# --------------------------------------------------------------------------- region query

def _region_cases(seeds=(0, 1, 2), dims=(2,), queries=3):
    cases = list(_tie_region_cases())
    for d in dims:
        for seed in seeds:
            X, eps, _, what = problem(seed, d)
            rng = np.random.default_rng(seed + 1000)
            for i in rng.choice(len(X), size=min(queries, len(X)), replace=False).tolist():
                cases.append(Case((X, i, eps), f"{what}, point i={i}"))
    return cases


def _tie_region_cases():
    grid = np.array([[x, y] for x in range(4) for y in range(4)], dtype=float)
    yield Case((grid, 5, 1.0), "a 4x4 integer grid, i=5 (1, 1), eps=1: four points lie at "
               "distance exactly eps")
    triangle = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0], [6.0, 8.0], [0.0, 0.0]])
    yield Case((triangle, 0, 5.0), "points (0,0), (3,4), (1,1), (6,8), (0,0), i=0, eps=5: "
               "(3,4) is at distance exactly 5 and (0,0) appears twice")


def _region_judge(case, got):
    X, i, eps = case.args
    where = case.description
    arr = np.asarray(got)
    if arr.dtype == bool and arr.shape == (len(X),):
        raise CheckFailure(f"region_query should return the indices of the neighbours "
                           f"(e.g. np.flatnonzero(mask)), not a boolean mask, on {where}")
    got = as_array(got, "region_query(X, i, eps)", where)
    if got.ndim != 1:
        raise CheckFailure(f"region_query should return a 1-D array of indices, got shape "
                           f"{got.shape} on {where}")
    if not np.all(got == np.round(got)):
        raise CheckFailure(f"region_query should return whole-number indices, got "
                           f"{got[:5]} on {where}")
    got = got.astype(np.int64)
    want = ref.region_query(X, i, eps)
    sure_in, sure_out = _certain_membership(X, i, eps)
    got_set = set(got.tolist())
    missing = [j for j in np.flatnonzero(sure_in).tolist() if j not in got_set]
    extra = [j for j in sorted(got_set) if not 0 <= j < len(X) or sure_out[j]]
    if missing:
        j = missing[0]
        dist = float(np.linalg.norm(X[j] - X[i]))
        hint = (" (the point itself is always in its own neighbourhood)" if j == i
                else " (distance == eps counts: use <=)" if np.isclose(dist, eps) else "")
        raise CheckFailure(f"region_query misses {len(missing)} neighbour(s) on {where}; e.g. "
                           f"point {j} at distance {dist:.6g} <= eps = {eps:.6g}{hint}")
    if extra:
        j = extra[0]
        if not 0 <= j < len(X):
            raise CheckFailure(f"region_query returned index {j}, outside 0..{len(X) - 1}, "
                               f"on {where}")
        dist = float(np.linalg.norm(X[j] - X[i]))
        raise CheckFailure(f"region_query returned {len(extra)} point(s) farther than eps on "
                           f"{where}; e.g. point {j} at distance {dist:.6g} > eps = {eps:.6g}")
    if len(got) != len(got_set):
        raise CheckFailure(f"region_query returned some indices twice on {where}")
    if not np.all(np.diff(got) > 0):
        raise CheckFailure(f"region_query found the right points but not in ascending order "
                           f"on {where} (np.flatnonzero returns them sorted)")
    if len(got) != len(want):  # only near-ties can differ here; report them plainly
        raise CheckFailure(f"region_query returned {len(got)} points, expected {len(want)} "
                           f"on {where}")


check_region_query = Check("dbscan.region_query", "region_query", _region_cases, _region_judge)


# --------------------------------------------------------------------------- point types

class _TypesCheck(Check):
    """Point types may be returned as strings ("core", "border", "noise"); they are turned
    into integer codes (TYPE_CODES) before they are recorded, since only numbers and
    arrays of numbers can be re-judged outside the kernel."""

    def __call__(self, fn, **params):
        return super().__call__(_coded(fn), **params)


def _coded(fn):
    if not callable(fn):
        return fn  # call() reports it

    def point_types_as_codes(*args, **kwargs):
        return _to_codes(fn(*args, **kwargs))

    return point_types_as_codes


def _to_codes(value):
    arr = np.asarray(value)
    if arr.dtype.kind in "US" or arr.dtype == object:
        names = [str(v).strip().lower() for v in arr.ravel().tolist()]
        return np.array([TYPE_CODES.get(name, -1) for name in names],
                        dtype=np.int8).reshape(arr.shape)
    return value


def _types_cases(seeds=(0, 1, 2), dims=(2,)):
    cases = list(_threshold_cases())
    for d in dims:
        for seed in seeds:
            X, eps, min_samples, what = problem(seed, d)
            cases.append(Case((X, eps, min_samples), what))
    return cases


def _threshold_cases():
    # Point 0 has exactly 4 points within eps = 1 (itself and three at distance exactly 1):
    # core for min_samples = 4 ("at least, itself included"), not for "more than 4".
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.8, 0.0], [5.0, 5.0]])
    yield Case((X, 1.0, 4), "point (0, 0) with exactly min_samples = 4 points within eps = 1 "
               "(itself included; three at distance exactly 1), a border point (1, 0), a "
               "noise point (1.8, 0) two steps away, an isolated point (5, 5)")


def reference_types(X, eps, min_samples):
    """Integer codes (TYPE_CODES) of every point: core, border or noise."""
    res = ref.dbscan(X, eps, min_samples)
    codes = np.full(len(X), TYPE_CODES["noise"], dtype=np.int8)
    codes[res.border_mask] = TYPE_CODES["border"]
    codes[res.core_mask] = TYPE_CODES["core"]
    return codes


def _types_judge(case, got):
    X, eps, min_samples = case.args
    where = case.description
    got = _to_codes(got)
    got = np.asarray(got)
    expect_shape(got, (len(X),), "point_types(X, eps, min_samples)", where, names="(n,)")
    if got.dtype.kind not in "biu":
        raise CheckFailure(f"point_types should return 'core' / 'border' / 'noise' for every "
                           f"point, got values like {got[:3].tolist()} on {where}")
    unknown = ~np.isin(got, list(TYPE_CODES.values()))
    if unknown.any():
        raise CheckFailure(f"point_types should return only 'core', 'border' or 'noise', got "
                           f"something else for {int(unknown.sum())} point(s) on {where}")
    want = reference_types(X, eps, min_samples)
    bad = np.flatnonzero(got != want)
    if bad.size:
        i = int(bad[0])
        count = len(ref.region_query(X, i, eps))
        g, w = _TYPE_NAMES[int(got[i])], _TYPE_NAMES[int(want[i])]
        if w == "core" or g == "core":
            why = (f"it has {count} points within eps (itself included) and min_samples = "
                   f"{min_samples}: core means at least min_samples")
        elif w == "border":
            why = "it is not core but lies within eps of a core point"
        else:
            why = "it is not core and no core point lies within eps of it"
        raise CheckFailure(f"{bad.size} of {len(X)} point types are wrong on {where}; e.g. "
                           f"point {i} should be {w}, got {g}: {why}")


check_point_types = _TypesCheck("dbscan.point_types", "point_types", _types_cases,
                                _types_judge)


# --------------------------------------------------------------------------- my_dbscan

def _dbscan_cases(seeds=(0, 1, 2), dims=(2,)):
    cases = list(_numbering_cases())
    for d in dims:
        for seed in seeds:
            X, eps, min_samples, what = problem(seed, d)
            cases.append(Case((X, eps, min_samples), what))
    return cases


def _numbering_cases():
    # From tests/test_dbscan.py: point 0 is a border point of both clusters (exactly eps = 3
    # from a core point of each); cluster 0 (points 1-5) reaches it first and keeps it.
    A = [0.0, 0.5, 1.0, 1.5, 2.0]
    B = [8.0, 8.5, 9.0, 9.5, 10.0]
    X = np.array([[5.0]] + [[b] for b in B] + [[a] for a in A])
    yield Case((X, 3.0, 4), "1-D points 5 | 8 ... 10 | 0 ... 2 with eps = 3, min_samples = 4: "
               "point 0 (at 5) is a border point of both clusters")
    # The cluster around 10 holds index 0, but only as a border point: its lowest-index core
    # point is 3, after core point 1 of the other cluster, so it is cluster 1.
    X = np.array([[12.0], [0.0], [0.5], [10.0], [10.5], [1.0], [11.0], [40.0]])
    yield Case((X, 1.0, 3), "1-D points 12, 0, 0.5, 10, 10.5, 1, 11, 40 with eps = 1, "
               "min_samples = 3: point 0 is a border point, the first core point is 1")
    grid = np.array([[x, y] for x in range(5) for y in range(3)], dtype=float)
    X = np.vstack([grid, grid + [10.0, 0.0], [[20.0, 20.0]]])
    yield Case((X, 1.0, 5), "two 5x3 integer grids and one far point with eps = 1, "
               "min_samples = 5: neighbours at distance exactly eps")


def _dbscan_judge(case, got):
    """Compared with ``sklearn.cluster.DBSCAN(eps, min_samples).fit(X).labels_``, exactly."""
    from sklearn.cluster import DBSCAN

    X, eps, min_samples = case.args
    where = case.description
    got = as_array(got, "my_dbscan(X, eps, min_samples)", where)
    expect_shape(got, (len(X),), "labels", where, names="(n,)")
    if not np.all(got == np.round(got)):
        raise CheckFailure(f"labels should be whole numbers (-1 for noise), got {got[:5]} "
                           f"on {where}")
    got = got.astype(np.int64)
    want = DBSCAN(eps=eps, min_samples=min_samples).fit(X).labels_.astype(np.int64)
    if np.array_equal(got, want):
        return
    core = ref.core_points(X, eps, min_samples)
    noise_got, noise_want = got < 0, want < 0
    if not np.array_equal(noise_got, noise_want):
        i = int(np.flatnonzero(noise_got != noise_want)[0])
        kind = "core" if core[i] else "border" if want[i] >= 0 else "noise"
        raise CheckFailure(f"point {i} is a {kind} point and should have label {want[i]}, "
                           f"got {got[i]} on {where} (-1 is noise: neither core nor within "
                           f"eps of a core point)")
    if _same_partition(got, want):
        raise CheckFailure(f"your clusters are right but numbered differently on {where}: "
                           f"number them 0, 1, 2, ... in the order of their lowest-index core "
                           f"point (scan the points in index order and start a new cluster at "
                           f"each core point that has no label yet), as sklearn does; got "
                           f"{_first_labels(got)}, expected {_first_labels(want)}")
    bad = np.flatnonzero(got != want)
    i = int(bad[0])
    if not core[i]:
        raise CheckFailure(f"border point {i} should be in cluster {want[i]}, got {got[i]} on "
                           f"{where}: a border point keeps the first cluster that reaches it "
                           f"(never relabel a point that already has a cluster)")
    raise CheckFailure(f"{bad.size} of {len(X)} labels differ from sklearn's DBSCAN on {where}; "
                       f"e.g. core point {i}: got {got[i]}, expected {want[i]}")


check_my_dbscan = Check("dbscan.my_dbscan", "my_dbscan", _dbscan_cases, _dbscan_judge)


# --------------------------------------------------------------------------- k-distances

def _kdist_cases(seeds=(0, 1, 2), dims=(2,)):
    cases = [Case((np.array([[0.0], [1.0], [3.0], [7.0]]), 2),
                  "1-D points 0, 1, 3, 7 with k = 2 (each point is its own first neighbour)"),
             Case((np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [4.0, 0.0]]), 3),
                  "four 2-D points with a duplicate, k = 3")]
    for d in dims:
        for seed in seeds:
            X, _, min_samples, _ = problem(seed, d)
            cases.append(Case((X, min_samples), f"{_name(seed, d)} (n={len(X)}, "
                              f"k={min_samples}, seed={seed})"))
    return cases


def _kdist_judge(case, got):
    X, k = case.args
    where = case.description
    got = as_array(got, "k_distances(X, k)", where)
    expect_shape(got, (len(X),), "the k-distances", where, names="(n,)")
    want = ref.k_distance(X, k)
    if np.allclose(got, want, rtol=1e-9, atol=1e-12):
        return
    if np.allclose(np.sort(got), want, rtol=1e-9, atol=1e-12):
        raise CheckFailure(f"the k-distances are right but not sorted on {where}: return them "
                           f"in ascending order (np.sort)")
    if k < len(X) and np.allclose(np.sort(got), ref.k_distance(X, k + 1), rtol=1e-9,
                                  atol=1e-12):
        raise CheckFailure(f"you return the distance to the k-th *other* point on {where}; "
                           f"count the point itself as its own first neighbour (distance 0), "
                           f"as min_samples does")
    expect_close(got, want, "the sorted k-distances", where, rtol=1e-9, atol=1e-12)


check_k_distances = Check("dbscan.k_distances", "k_distances", _kdist_cases, _kdist_judge)


# --------------------------------------------------------------------------- eps choice

def _eps_cases(dataset="blobs_noise", n=500, seeds=(0,), min_samples=10):
    cases = []
    for seed in seeds:
        X, y = toy_2d(dataset, n=n, seed=seed)
        cases.append(Case((X, min_samples), f"the {dataset} data (n={n}, seed={seed}, "
                          f"min_samples={min_samples})", y=y))
    return cases


def _eps_judge(case, got):
    """Judged by the outcome: DBSCAN with this eps finds the true number of clusters and
    calls at most twice the true share of background points noise (and at most 20%)."""
    X, min_samples = case.args
    y = case.extra["y"]
    where = case.description
    got = as_array(got, "eps", where)
    if got.shape != () or not np.isfinite(got) or got <= 0:
        raise CheckFailure(f"eps should be one positive number, got {got!r} on {where}")
    eps = float(got)
    res = ref.dbscan(X, eps, min_samples)
    n_true = len(np.unique(y[y >= 0]))
    noise = float(res.noise_mask.mean())
    limit = min(0.2, 2 * float(np.mean(y < 0)) or 0.05)
    if res.n_clusters == n_true and noise <= limit:
        return
    if res.n_clusters > n_true or noise > limit:
        hint = ("eps is too small: parts of the clusters are not dense enough at this radius; "
                "take eps where the k-distance curve turns sharply upwards (the knee)")
    else:
        hint = ("eps is too large: clusters merge through the sparse points between them; "
                "take eps at the knee of the k-distance curve, not in its steep tail")
    raise CheckFailure(f"with eps = {eps:.4g} DBSCAN finds {res.n_clusters} clusters and calls "
                       f"{noise:.0%} of the points noise on {where}; the data have {n_true} "
                       f"clusters and {float(np.mean(y < 0)):.0%} background noise. {hint}")


check_eps_choice = Check("dbscan.eps_choice", "your eps", _eps_cases, _eps_judge)


# --------------------------------------------------------------------------- ARI comparison

def _ari_cases(datasets=("moons",), seeds=(0,), n=400):
    settings = {"moons": (0.15, 5, 2), "rings": (0.3, 5, 2), "smiley": (0.3, 5, 4),
                "blobs_noise": (0.5, 10, 3), "density_bars": (0.35, 5, 3)}
    cases = []
    for name in datasets:
        eps, min_samples, k = settings[name]
        for seed in seeds:
            X, y = toy_2d(name, n=n, seed=seed)
            cases.append(Case((X, y, eps, min_samples, k, seed),
                              f"the {name} data (n={n}, eps={eps}, min_samples={min_samples}, "
                              f"k={k}, seed={seed})"))
    return cases


def reference_ari_scores(X, y, eps, min_samples, k, seed=0):
    """(ARI of DBSCAN, ARI of K-Means) against the true labels ``y``."""
    from sklearn.metrics import adjusted_rand_score

    return (adjusted_rand_score(y, ref.dbscan(X, eps, min_samples).labels),
            adjusted_rand_score(y, ref.kmeans(X, k, seed=seed).labels))


def _ari_judge(case, got):
    where = case.description
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailure(f"ari_scores should return a pair (ari_dbscan, ari_kmeans), got "
                           f"{type(got).__name__} on {where}")
    want = reference_ari_scores(*case.args)
    for value, expected, name, how in (
            (got[0], want[0], "ari_dbscan", "clustering.dbscan(X, eps, min_samples).labels"),
            (got[1], want[1], "ari_kmeans", "clustering.kmeans(X, k, seed=seed).labels")):
        value = as_array(value, name, where)
        expect_shape(value, (), name, where, names="a single number")
        if not np.isclose(value, expected, rtol=1e-9, atol=1e-12):
            raise CheckFailure(f"{name} should be {expected:.6g}, got {float(value):.6g} on "
                               f"{where}: compare y with {how} using adjusted_rand_score(y, "
                               f"labels)")


check_ari_scores = Check("dbscan.ari_scores", "ari_scores", _ari_cases, _ari_judge)


# --------------------------------------------------------------------------- internals

def _name(seed, d):
    return f"the {_TOY[seed % len(_TOY)]} data" if d == 2 else f"random blobs (d={d})"


def _pair_distances(X):
    diff = X[:, None, :] - X[None, :, :]
    return np.sqrt((diff * diff).sum(axis=2))


def _away_from_ties(X, eps, rel=1e-9):
    """``eps`` nudged up until no pairwise distance lies within ``rel`` of it (so every
    sensible way of comparing distances with eps gives the same neighbours)."""
    dist = _pair_distances(X)
    while np.any(np.abs(dist - eps) <= rel * eps):
        eps *= 1 + 1e-6
    return float(eps)


def _certain_membership(X, i, eps):
    """(surely within eps, surely outside) for every point: the ways a student may compare
    (squared distance with eps**2, norm with eps, differences summed in another order)
    agree. Only a pair within rounding of eps can be 'unsure', and then either answer is
    accepted; exact ties such as integer grids are decided the same by all of them."""
    diff = X - X[i]
    d2 = (diff * diff).sum(axis=1)
    verdicts = np.stack([
        d2 <= eps * eps,
        np.sqrt(d2) <= eps,
        np.linalg.norm(diff, axis=1) <= eps,
        np.einsum("ij,ij->i", diff, diff) <= eps ** 2,
        np.hypot.reduce(np.abs(diff), axis=1) <= eps,
    ])
    return verdicts.all(axis=0), ~verdicts.any(axis=0)


def _same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def _first_labels(labels, count=12):
    text = ", ".join(str(v) for v in labels[:count].tolist())
    return f"[{text}{', ...' if len(labels) > count else ''}]"

