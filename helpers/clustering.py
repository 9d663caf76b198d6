"""Clustering: K-Means (Lloyd's algorithm) and DBSCAN.

The numpy code is the reference: readable, float64, and exact enough that from the same
initial centers :func:`kmeans` reproduces ``sklearn.cluster.KMeans(algorithm="lloyd",
n_init=1)`` (centers, labels, inertia, iteration count). ``backend="torch"`` runs the same
steps with torch on the best available device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helpers._dbscan import (
    DBSCANResult,
    DBSCANStep,
    core_points,
    dbscan,
    dbscan_steps,
    k_distance,
    region_query,
)
from helpers._validation import check_array, check_choice, check_float, check_int

__all__ = [
    "KMeansResult",
    "kmeans",
    "kmeans_step",
    "assign_clusters",
    "update_centers",
    "inertia",
    "init_centers",
    "farthest_first",
    "elbow_k",
    "DBSCANResult",
    "DBSCANStep",
    "dbscan",
    "dbscan_steps",
    "region_query",
    "core_points",
    "k_distance",
]

INITS = ("k-means++", "random", "farthest")
BACKENDS = ("numpy", "torch")


@dataclass(frozen=True)
class KMeansResult:
    """What :func:`kmeans` returns.

    Attributes
    ----------
    centers : ndarray (k, d)
        Final cluster centers.
    labels : ndarray (n,) of int
        Index of the nearest final center for every point.
    inertia : float
        Sum of squared distances from each point to its center.
    n_iter : int
        Number of assign + update iterations run (sklearn's ``n_iter_``).
    history : tuple of ndarray (k, d)
        ``history[0]`` is the initial centers, ``history[i]`` the centers after iteration i.
    inertia_history : tuple of float
        Inertia of the assignment made in each iteration (w.r.t. that iteration's centers).
    converged : bool
        True when the labels stopped changing or the centers moved less than ``tol``.
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int
    history: tuple
    inertia_history: tuple
    converged: bool


def kmeans(
    X,
    k,
    *,
    init="k-means++",
    max_iter=300,
    tol=1e-4,
    seed=None,
    backend="numpy",
    device=None,
) -> KMeansResult:
    """Cluster ``X`` into ``k`` groups with Lloyd's algorithm (the slides' K-Means).

    Each iteration assigns every point to its nearest center (squared Euclidean distance)
    and moves every center to the mean of its points (:func:`kmeans_step`). It stops when

    - the assignment did not change (the slide's "centers of newly formed clusters do not
      change"), or
    - the centers moved less than ``tol``: the sum over centers of the squared shift is at
      most ``tol * mean(var(X, axis=0))`` (sklearn's relative tolerance), or
    - ``max_iter`` iterations have run.

    When it stops on ``tol`` or ``max_iter`` the points are assigned once more to the final
    centers, so ``labels`` always match ``centers``.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Data; finite values, at least ``k`` rows.
    k : int
        Number of clusters, ``1 <= k <= n``.
    init : {"k-means++", "random", "farthest"} or array-like of shape (k, d)
        "random": k distinct data points chosen uniformly (the slide's first option);
        "farthest": a random first point, then repeatedly the point farthest from all
        chosen centers (the slide's "as far as possible from each other");
        "k-means++": D^2 sampling with 2 + log(k) greedy trials per center (as sklearn);
        an array: these initial centers (then ``seed`` is not used).
    max_iter : int
        Maximum number of iterations (>= 1).
    tol : float
        Relative tolerance on the center shift (>= 0), see above.
    seed : int, numpy Generator or None
        Randomness for the initialisation only.
    backend : {"numpy", "torch"}
        "numpy" is the reference; "torch" runs on ``device`` (None = cuda, then mps, then
        cpu) in float64 on the CPU and float32 on a GPU.
    device : str, torch.device or None

    Returns
    -------
    KMeansResult

    Notes
    -----
    Empty clusters never give NaN. A cluster that ends an assignment with no points is
    moved onto the point farthest from its current center (taken from the cluster that
    owned it) - sklearn's rule, so results stay identical. If every point already sits
    exactly on a center (more clusters than distinct points) the empty center is placed on
    the center of the biggest cluster, again as sklearn does.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    >>> result = kmeans(X, 2, init=np.array([[0.0, 0.0], [10.0, 0.0]]))
    >>> result.centers
    array([[ 0. ,  0.5],
           [10. ,  0.5]])
    >>> result.labels, result.inertia, result.n_iter
    (array([0, 0, 1, 1]), 1.0, 2)
    """
    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n_samples, n_features)")
    n, d = X.shape
    if d == 0:
        raise ValueError(f"X must have at least one feature (column), got shape {X.shape}")
    k = check_int(k, "k", min_value=1)
    if k > n:
        raise ValueError(f"k={k} must be <= n_samples={n}: cannot make more clusters than points")
    max_iter = check_int(max_iter, "max_iter", min_value=1)
    tol = check_float(tol, "tol", min_value=0.0)
    check_choice(backend, "backend", BACKENDS)

    centers0 = init_centers(X, k, init=init, seed=seed)
    # Like sklearn, work on centred data: it changes nothing mathematically but keeps the
    # ||x||^2 - 2 x.c + ||c||^2 distance trick accurate when the data sit far from 0.
    mean = X.mean(axis=0)
    Xc = X - mean
    tol_abs = float(np.mean(np.var(X, axis=0)) * tol)
    if backend == "torch":
        from helpers._kmeans_torch import lloyd_torch

        centers, labels, n_iter, history, inertias, converged = lloyd_torch(
            Xc, centers0 - mean, max_iter, tol_abs, device
        )
    else:
        centers, labels, n_iter, history, inertias, converged = _lloyd(
            Xc, centers0 - mean, max_iter, tol_abs
        )
    centers = centers + mean
    return KMeansResult(
        centers=centers,
        labels=labels,
        inertia=inertia(X, centers, labels),
        n_iter=n_iter,
        history=tuple(c + mean for c in history),
        inertia_history=tuple(inertias),
        converged=converged,
    )


def kmeans_step(X, centers):
    """One Lloyd iteration: assign every point, then move every center to its points' mean.

    This is the step the widgets and :func:`kmeans` share.

    Parameters
    ----------
    X : array-like of shape (n, d)
    centers : array-like of shape (k, d)

    Returns
    -------
    labels : ndarray (n,) of int
        Nearest center (in ``centers``) for every point; ties go to the lower index.
    new_centers : ndarray (k, d)
        Mean of each cluster's points; an empty cluster is moved as described in
        :func:`kmeans` (never NaN).

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [9.0], [11.0]])
    >>> labels, new_centers = kmeans_step(X, np.array([[0.0], [5.0]]))
    >>> labels, new_centers.ravel()
    (array([0, 0, 1, 1]), array([ 0.5, 10. ]))
    """
    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n_samples, n_features)")
    centers = _check_centers(centers, "centers", X.shape[1])
    labels, _ = _assign(X, centers)
    new_centers = _update(X, labels, centers)
    return labels, new_centers


def assign_clusters(X, centers):
    """Index of the nearest center for every row of ``X`` (ties go to the lower index).

    Examples
    --------
    >>> assign_clusters(np.array([[0.0, 0.0], [4.0, 4.0]]), np.array([[5.0, 5.0], [0.0, 1.0]]))
    array([1, 0])
    """
    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n_samples, n_features)")
    centers = _check_centers(centers, "centers", X.shape[1])
    return _assign(X, centers)[0]


def update_centers(X, labels, k):
    """Mean of the points of each cluster 0..k-1; shape (k, d).

    This is the plain update the slides describe. A cluster with no points has no mean:
    its row is NaN here, so that the caller decides what to do (:func:`kmeans_step` and
    :func:`kmeans` relocate it instead).

    Examples
    --------
    >>> update_centers(np.array([[0.0], [2.0], [10.0]]), np.array([0, 0, 1]), 2).ravel()
    array([ 1., 10.])
    """
    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n_samples, n_features)")
    k = check_int(k, "k", min_value=1)
    labels = _check_labels(labels, X.shape[0], k)
    sums, counts = _cluster_sums(X, labels, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def inertia(X, centers, labels=None):
    """Sum of squared distances of each point to its center (to the nearest one if no labels).

    Examples
    --------
    >>> inertia(np.array([[0.0, 0.0], [0.0, 2.0]]), np.array([[0.0, 1.0]]))
    2.0
    """
    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n_samples, n_features)")
    centers = _check_centers(centers, "centers", X.shape[1])
    if labels is None:
        labels = _assign(X, centers)[0]
    labels = _check_labels(labels, X.shape[0], centers.shape[0])
    total = 0.0
    for start in range(0, X.shape[0], _CHUNK):
        diff = X[start : start + _CHUNK] - centers[labels[start : start + _CHUNK]]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


def init_centers(X, k, *, init="k-means++", seed=None):
    """Initial centers for :func:`kmeans` (see its ``init`` parameter); shape (k, d).

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    >>> init_centers(X, 2, init="farthest", seed=0)  # the seed picked row 2 first
    array([[10.,  0.],
           [ 0.,  0.]])
    """
    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n_samples, n_features)")
    n, d = X.shape
    k = check_int(k, "k", min_value=1)
    if k > n:
        raise ValueError(f"k={k} must be <= n_samples={n}: cannot make more clusters than points")
    if not isinstance(init, str):
        centers = _check_centers(init, "init", d)
        if centers.shape[0] != k:
            raise ValueError(f"init must have shape (k, d) = ({k}, {d}), got {centers.shape}")
        return centers.copy()
    check_choice(init, "init", INITS)
    rng = np.random.default_rng(seed)
    if init == "random":
        return X[np.sort(rng.choice(n, size=k, replace=False))].copy()
    if init == "farthest":
        return farthest_first(X, k, first=int(rng.integers(n)))
    return _kmeans_plusplus(X, k, rng)


def farthest_first(X, k, first=0):
    """Farthest-first traversal: start at row ``first``, then repeatedly take the point
    whose distance to its nearest chosen center is largest (ties: the lowest index).

    The slide's "select cluster centers as far as possible from each other"
    (Gonzalez 1985). Deterministic once ``first`` is fixed.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [5.0, 0.0]])
    >>> farthest_first(X, 3, first=0)
    array([[ 0.,  0.],
           [10.,  0.],
           [ 5.,  0.]])
    """
    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n_samples, n_features)")
    n = X.shape[0]
    k = check_int(k, "k", min_value=1, max_value=n)
    first = check_int(first, "first", min_value=0, max_value=n - 1)
    chosen = [first]
    min_d2 = ((X - X[first]) ** 2).sum(axis=1)
    for _ in range(1, k):
        nxt = int(np.argmax(min_d2))
        chosen.append(nxt)
        min_d2 = np.minimum(min_d2, ((X - X[nxt]) ** 2).sum(axis=1))
    return X[chosen].copy()


def elbow_k(ks, inertias):
    """The "elbow" of an inertia-versus-k curve: the k where the curve bends most.

    Defined as the k with the largest second difference
    ``(I[k-1] - I[k]) - (I[k] - I[k+1])``: the gain from adding this cluster minus the gain
    from adding the next one. ``ks`` must be consecutive integers; the first and last k
    cannot be elbows.

    Examples
    --------
    >>> elbow_k([1, 2, 3, 4, 5], [100.0, 50.0, 10.0, 8.0, 7.0])
    3
    """
    ks = np.asarray(ks)
    inertias = check_array(inertias, "inertias", ndim=1, min_samples=3)
    if ks.shape != inertias.shape:
        raise ValueError(f"ks and inertias must have the same length, got {ks.shape} and {inertias.shape}")
    if not np.array_equal(np.diff(ks), np.ones(len(ks) - 1)):
        raise ValueError(f"ks must be consecutive integers such as [1, 2, ..., 8], got {ks.tolist()}")
    second = inertias[:-2] - 2 * inertias[1:-1] + inertias[2:]
    return int(ks[1 + int(np.argmax(second))])


# --------------------------------------------------------------------------- internals

_CHUNK = 16384  # rows per block where only memory matters (inertia)
_PARALLEL_MIN_ROWS = 16384  # below this many rows per core, threads cost more than they save


def _block_rows(k):
    """Rows per block in the assignment pass: the block's (rows, k) distances stay in the
    CPU cache (about 1 MiB), yet blocks are long enough that numpy's per-call overhead is
    small. Measured on 200,000 x 16, k=32 and 1,000,000 x 2, k=8 (benchmarks/bench_kmeans.py)."""
    return int(np.clip(2**17 // k, 1024, 16384))


def _lloyd(X, centers, max_iter, tol_abs):
    """Lloyd's loop on centred data, mirroring sklearn's _kmeans_single_lloyd."""
    history = [centers.copy()]
    inertias = []
    labels_old = None
    converged = False
    x_sq = float(np.einsum("ij,ij->", X, X))
    columns = np.ascontiguousarray(X.T)  # for the sums, see _cluster_sums
    with _BlockRunner(X.shape[0]) as run:
        for _ in range(max_iter):
            labels, sums, counts, best = _assign_and_sum(X, centers, run, columns=columns)
            inertias.append(max(best + x_sq, 0.0))
            relocate_empty_clusters(X, labels, centers, sums, counts)
            new_centers = _means(sums, counts)
            shift = float(((new_centers - centers) ** 2).sum())
            centers = new_centers
            history.append(centers.copy())
            if labels_old is not None and np.array_equal(labels, labels_old):
                return centers, labels, len(inertias), history, inertias, True
            if shift <= tol_abs:
                converged = True
                break
            labels_old = labels
        labels = _assign_and_sum(X, centers, run, sums=False)[0]
    return centers, labels, len(inertias), history, inertias, converged


def _assign_and_sum(X, centers, run=None, sums=True, columns=None):
    """One pass over the data, block by block of rows: the nearest center of every row,
    each cluster's sum of points and count, and the sum over rows of
    min_c (||c||^2 - 2 x.c) (add sum ||x||^2 to get the inertia).

    Distances use ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, computed exactly as sklearn
    does (one matrix product per block, then + ||c||^2), so near-ties break the same way;
    ||x||^2 does not change which center is nearest and is left out. Blocks are small
    enough to stay in the CPU cache, and ``run`` (a :class:`_BlockRunner`) may spread them
    over the cores. The sums then come from one sequential pass (:func:`_cluster_sums`).
    """
    n, d = X.shape
    k = centers.shape[0]
    c_sq = np.einsum("ij,ij->i", centers, centers)
    labels = np.empty(n, dtype=np.int64)

    rows_per_block = _block_rows(k)
    # where row r's entry for cluster c sits in a flattened (rows_per_block, k) block
    row_offsets = np.arange(rows_per_block) * k

    def work(starts):
        dist = np.empty((rows_per_block, k))
        best = 0.0
        for start in starts:
            block = X[start : start + rows_per_block]
            m = block.shape[0]
            dist_m = _center_distances(block, centers, c_sq, dist[:m])
            idx = dist_m.argmin(axis=1)
            labels[start : start + m] = idx
            best += float(dist_m.reshape(-1)[row_offsets[:m] + idx].sum())
        return best

    best = sum((run or _BlockRunner.serial)(range(0, n, rows_per_block), work))
    if not sums:
        return labels, None, None, best
    cluster_sums, counts = _cluster_sums(X, labels, k, columns)
    return labels, cluster_sums, counts, best


def _center_distances(block, centers, c_sq, out):
    """``out[i, j] = ||c_j||^2 - 2 x_i . c_j`` for the rows of ``block``, computed by the
    very BLAS call sklearn's Lloyd makes (scipy's dgemm, c_sq then beta=1, alpha=-2, same
    operand order), so every rounding - and so every near-tie between two centers, common
    with integer-valued data - comes out as in sklearn. numpy's own matmul links another
    OpenBLAS build whose sums round differently in the last bit."""
    from scipy.linalg.blas import dgemm

    out[...] = c_sq
    # Column-major view: out.T (k, m) = -2 * centers (k, d) @ block.T (d, m) + out.T.
    # f2py writes into out when it can (out C-contiguous); the result is right either way.
    return dgemm(-2.0, centers.T, block.T, beta=1.0, c=out.T, trans_a=1, overwrite_c=1).T


class _BlockRunner:
    """Runs ``work(starts)`` over row blocks, split among the CPU cores when there are
    enough rows; BLAS is held to one thread meanwhile so that the workers do not fight
    over the cores (sklearn's Lloyd does the same). The threads overlap only where numpy
    releases the GIL, around each argmin and copy (scipy's dgemm wrapper keeps it):
    measured on 2 cores, the assignment pass takes half the time at 1,000,000 x 2, k=8,
    and the same time at 200,000 x 16, k=32 (see NOTES.md)."""

    def __init__(self, n, workers=None):
        import os

        if workers is None:
            cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count())
            workers = min(cores or 1, n // _PARALLEL_MIN_ROWS)
        self.workers = max(1, workers)
        self._pool = self._limits = None

    def __enter__(self):
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(limits=1, user_api="blas")
            self._pool = ThreadPoolExecutor(self.workers)
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown()
            self._limits.restore_original_limits()

    def __call__(self, starts, work):
        if self._pool is None:
            return [work(starts)]
        return list(self._pool.map(work, [starts[i :: self.workers] for i in range(self.workers)]))

    @staticmethod
    def serial(starts, work):
        return [work(starts)]


def _assign(X, centers):
    """Nearest center per row, and the inertia of that assignment."""
    labels, _, _, best = _assign_and_sum(X, centers, sums=False)
    return labels, max(best + float(np.einsum("ij,ij->", X, X)), 0.0)


def _cluster_sums(X, labels, k, columns=None):
    """Per-cluster sums of the points (k, d) and counts (k,).

    A weighted bincount per feature adds the points of each cluster one by one in row
    order, as sklearn's Lloyd does (for up to 256 rows, one of its chunks, the sums are bit
    for bit the same; near-ties in the next assignment depend on that). ``columns`` is
    ``X.T`` as a contiguous array when the caller keeps one (bincount is 3x faster on it).
    """
    if columns is None:
        columns = np.ascontiguousarray(X.T)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.empty((k, X.shape[1]))
    for j, column in enumerate(columns):
        sums[:, j] = np.bincount(labels, weights=column, minlength=k)
    return sums, counts


def _means(sums, counts):
    """sums / counts the way sklearn computes it (times the reciprocal: a last-bit
    difference from dividing that can flip a near-tie in the next assignment)."""
    return sums * (1.0 / counts)[:, None]


def _update(X, labels, old_centers):
    """Means of the clusters; empty clusters relocated (sklearn's rule, see kmeans Notes)."""
    k = old_centers.shape[0]
    sums, counts = _cluster_sums(X, labels, k)
    relocate_empty_clusters(X, labels, old_centers, sums, counts)
    return _means(sums, counts)


def relocate_empty_clusters(X, labels, old_centers, sums, counts):
    """Fill empty clusters in place: each takes one of the points farthest from their center.

    ``sums`` (k, d) and ``counts`` (k,) are per-cluster sums and sizes; on return every
    count is positive. The farthest points are picked exactly as sklearn's
    ``_relocate_empty_clusters_dense`` picks them (same argpartition), which is what makes
    the results identical when clusters empty out. Shared by the numpy and torch backends.
    """
    empty = np.flatnonzero(counts == 0)
    if empty.size == 0:
        return
    n_empty = empty.size
    dist = np.empty(X.shape[0])
    for start in range(0, X.shape[0], _CHUNK):  # squared distance to own center, by blocks
        diff = X[start : start + _CHUNK] - old_centers[labels[start : start + _CHUNK]]
        dist[start : start + _CHUNK] = np.einsum("ij,ij->i", diff, diff)
    if np.max(dist) == 0:
        # More clusters than distinct points: no point can move. Park the empty centers on
        # the biggest cluster's center (sklearn does the same) rather than at the origin.
        biggest = int(np.argmax(counts))
        sums[empty] = sums[biggest] / counts[biggest]
        counts[empty] = 1.0
        return
    far = np.argpartition(dist, -n_empty)[: -n_empty - 1 : -1]
    for new_id, idx in zip(empty, far):
        old_id = labels[idx]
        sums[old_id] -= X[idx]
        counts[old_id] -= 1
        sums[new_id] = X[idx]
        counts[new_id] = 1


def _kmeans_plusplus(X, k, rng):
    """Greedy k-means++ (Arthur & Vassilvitskii 2007; greedy trials as in sklearn)."""
    n = X.shape[0]
    n_trials = 2 + int(np.log(k))
    first = int(rng.integers(n))
    centers = [X[first]]
    closest = ((X - X[first]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # all remaining points coincide with centers: pick any unused row
            candidates = rng.integers(n, size=n_trials)
        else:
            candidates = np.searchsorted(np.cumsum(closest), rng.uniform(size=n_trials) * total)
            candidates = np.clip(candidates, 0, n - 1)
        d2 = ((X[None, :, :] - X[candidates][:, None, :]) ** 2).sum(axis=2)
        pots = np.minimum(closest[None, :], d2)
        best = int(np.argmin(pots.sum(axis=1)))
        centers.append(X[candidates[best]])
        closest = pots[best]
    return np.array(centers)


def _check_centers(centers, name, d):
    centers = check_array(centers, name, ndim=2, min_samples=1, shape_hint="(k, n_features)")
    if centers.shape[1] != d:
        raise ValueError(
            f"{name} must have shape (k, {d}) to match X's {d} features, got {centers.shape}"
        )
    return centers


def _check_labels(labels, n, k):
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) like X's rows, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers in [0, {k}), got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got values from {labels.min()} to {labels.max()}")
    return labels.astype(np.int64, copy=False)
