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
from helpers._kmeans import (  # noqa: F401  (private names kept importable from here)
    _CHUNK,
    _PARALLEL_MIN_ROWS,
    ENGINES,
    _assign,
    _assign_and_sum,
    _block_rows,
    _BlockRunner,
    _center_distances,
    _cluster_sums,
    _lloyd,
    _means,
    _update,
    kmeans_plusplus,
    relocate_empty_clusters,
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
    engine="auto",
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
    engine : {"auto", "numba", "numpy"}
        How the numpy backend runs the assignment pass (the results are the same; see
        Notes). "numpy": the readable reference in ``helpers/_kmeans.py``. "numba": a
        compiled loop with sklearn's structure (needs numba). "auto" (default): the
        compiled loop when numba is installed and the problem is big (n * k from about
        4 million; the first use in a process costs ~0.5 s to load numba, more to compile
        the first time), the reference otherwise. The k-means++ initialisation takes the
        same engine (and picks the same centers with either). The environment variable
        ``HELPERS_KMEANS_ENGINE=numpy`` makes "auto" mean the reference everywhere.

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

    Both engines make sklearn's floating-point operations (the same BLAS call for the
    distances, sums in row order, means as ``sum * (1 / count)``), so labels, iteration
    counts and centers agree with sklearn's even where points are exactly as far from two
    centers. One exception, in the last bit only: on several cores the compiled loop, like
    sklearn, adds each core's share of the rows separately and then the shares, so its
    centers may differ from the reference's in the last bit (from 32,768 rows on).

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
    check_choice(engine, "engine", ENGINES)

    centers0 = init_centers(X, k, init=init, seed=seed, engine=engine)
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
            Xc, centers0 - mean, max_iter, tol_abs, engine
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


def init_centers(X, k, *, init="k-means++", seed=None, engine="auto"):
    """Initial centers for :func:`kmeans` (see its ``init`` parameter); shape (k, d).

    ``engine`` as in :func:`kmeans` (for "k-means++"; both engines pick the same centers).

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
    check_choice(engine, "engine", ENGINES)
    rng = np.random.default_rng(seed)
    if init == "random":
        return X[np.sort(rng.choice(n, size=k, replace=False))].copy()
    if init == "farthest":
        return farthest_first(X, k, first=int(rng.integers(n)))
    return kmeans_plusplus(X, k, rng, engine)


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


# --------------------------------------------------------------------------- validation


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
