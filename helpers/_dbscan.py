"""DBSCAN (density-based spatial clustering), numbered exactly as scikit-learn numbers it.

The slides' vocabulary, and the convention used here (scikit-learn's):

- the **Eps-neighbourhood** of a point is every point at Euclidean distance ``<= eps`` from
  it, the point itself included (:func:`region_query`);
- a **core point** has at least ``min_samples`` points in its neighbourhood, itself
  included (:func:`core_points`). The slide's "more than MinPts" is ``min_samples =
  MinPts + 1`` here;
- a **border point** is not core but lies in the neighbourhood of a core point; it joins
  the cluster of such a core point (the smallest cluster label when several clusters reach
  it);
- a **noise point** is neither, label ``-1``;
- clusters are the connected components of core points ("density-connected"), numbered
  0, 1, 2, ... in the order of their lowest-index core point.

That is exactly what ``sklearn.cluster.DBSCAN(eps, min_samples=...).fit(X).labels_``
returns: its inner loop (``_dbscan_inner.pyx``) visits points in index order, starts a new
cluster at each unlabelled core point and labels everything reachable depth-first, so a
border point gets the label of the first - hence smallest - cluster that reaches it.

Distances and ties. A pair is a neighbour when ``sum_j (a_j - b_j)**2 <= eps * eps``
computed in float64 with the sum taken left to right over the coordinates. That is the
comparison scikit-learn's KD-tree makes at its leaves, so points at *exactly* ``eps``
(integer grids, 3-4-5 triangles, ``eps=sqrt(2)`` diagonals) are neighbours in both. Two
places can still differ from scikit-learn at the level of the last bit: its KD-tree accepts
whole nodes when ``sqrt(max squared distance) <= eps`` (a rounded square root), and its
brute-force search (used for ``d > 15`` features or at most 11 points) computes distances
as ``|a|^2 - 2 a.b + |b|^2``. Only pairs whose squared distance lies within an ulp or so of
``eps**2`` can be affected; exact ties on grids of integers or halves are not.

How it scales (the numpy reference never builds an n x n matrix):

1. Points are put in grid cells of side ``eps / (2 sqrt(d))`` (``eps / sqrt(d)`` for
   d > 2), so every pair inside one cell is within ``eps``: a cell is a clique. This is
   checked exactly from each cell's bounding box; a cell that fails (rounding) is split
   into single points.
2. Pairs of cells that can hold neighbours are found from the grid (d <= 3: a lookup per
   cell offset) or a KD-tree over the points (d > 3). For each such pair, bounding boxes decide most cases in O(1):
   "no pair can be within eps" or "every pair is within eps". Only the undecided pairs
   are compared point by point, in chunks of at most ``_CHUNK`` pairs. Memory is O(n)
   plus O(pairs of cells), which is itself O(n) for d <= 3.
3. Core points come from lower/upper bounds on neighbour counts per cell; points whose
   cell is undecided are counted exactly.
4. Clusters are connected components over *cells* holding core points (union of cells
   whose core points touch), so a dense region costs almost nothing no matter how large
   ``eps`` is: memory stays O(n) where neighbourhood lists would be O(n * neighbours).
5. Border points take the smallest cluster label among the core cells within reach.

``backend="torch"`` does the same maths by brute force in blocks on a device (GPU): it
computes ``block x n`` squared distances at a time (memory O(block * n)), counts
neighbours, joins core points by min-label propagation with pointer jumping, and assigns
border points; its labels equal the numpy ones. dtype: float64 on the CPU, float32 on a GPU
(the rule of every torch backend, :func:`helpers.device.torch_dtype_for`); on a GPU the
pairs whose float32 squared distance lies within rounding error of ``eps**2`` are decided
again in float64 with the reference's arithmetic, so the labels do not change.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from helpers._validation import check_array, check_choice, check_float, check_int

__all__ = [
    "DBSCANResult",
    "DBSCANStep",
    "dbscan",
    "region_query",
    "core_points",
    "k_distance",
    "dbscan_steps",
]

BACKENDS = ("numpy", "torch")

_CHUNK = 1 << 19  # point pairs compared at once: a few float64/int64 arrays of 4 MB each
_SMALL = 1 << 14  # cell pairs with at most this many core-core pairs are checked in batches
_CACHE_PAIRS_PER_POINT = 16  # keep the cell-pair list between passes up to this size ...
_CACHE_PAIRS_MIN = 1 << 20  # ... (per point, plus this many); beyond, recompute it per pass


@dataclass(frozen=True)
class DBSCANResult:
    """What :func:`dbscan` returns.

    Attributes
    ----------
    labels : ndarray (n,) of int64
        Cluster of every point, 0, 1, ... in the order of each cluster's lowest-index core
        point; ``-1`` for noise. Equal to ``sklearn.cluster.DBSCAN(...).labels_``.
    core_mask : ndarray (n,) of bool
        True for core points (at least ``min_samples`` points within ``eps``, itself
        included). ``np.flatnonzero(core_mask)`` is sklearn's ``core_sample_indices_``.
    """

    labels: np.ndarray
    core_mask: np.ndarray

    @property
    def n_clusters(self) -> int:
        """Number of clusters (noise is not a cluster)."""
        return int(self.labels.max()) + 1 if self.labels.size else 0

    @property
    def border_mask(self) -> np.ndarray:
        """True for border points: in a cluster but not core."""
        return (self.labels >= 0) & ~self.core_mask

    @property
    def noise_mask(self) -> np.ndarray:
        """True for noise points (label -1)."""
        return self.labels < 0


def dbscan(X, eps, min_samples=5, *, backend="numpy", device=None) -> DBSCANResult:
    """Cluster ``X`` with DBSCAN; the same labels as ``sklearn.cluster.DBSCAN``, exactly.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Data; finite values, at least one row and one column.
    eps : float
        Neighbourhood radius (> 0). A point at distance exactly ``eps`` is a neighbour.
    min_samples : int
        A point is core when at least ``min_samples`` points (itself included) lie within
        ``eps`` (>= 1; ``min_samples=1`` makes every point core).
    backend : {"numpy", "torch"}
        "numpy": the scalable reference (grid of cells, memory O(n)). "torch": blocked
        brute force on ``device`` (time O(n^2 d), memory O(block * n)), meant for a GPU.
    device : str, torch.device or None
        Used only by ``backend="torch"``; None picks cuda, then mps, then cpu. Distances
        follow the project's one dtype rule (:func:`helpers.device.torch_dtype_for`):
        float64 on the CPU, float32 on a GPU, where every pair whose float32 distance is
        within rounding error of ``eps`` is re-decided in float64, so the labels stay
        exactly sklearn's (on MPS, which has no float64, that re-check runs on the CPU).

    Returns
    -------
    DBSCANResult
        ``.labels`` (n,) int64 with -1 for noise, ``.core_mask`` (n,) bool.

    Raises
    ------
    ValueError
        If ``X`` is not a non-empty 2-D finite array, ``eps <= 0`` or not finite,
        ``min_samples < 1`` or ``backend`` is unknown.

    Examples
    --------
    >>> X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [5.0, 5.0], [5.0, 6.0], [9.0, 9.0]]
    >>> res = dbscan(X, eps=1.0, min_samples=2)
    >>> res.labels.tolist(), res.core_mask.tolist()
    ([0, 0, 0, 1, 1, -1], [True, True, True, True, True, False])
    >>> dbscan(X, eps=1.0, min_samples=3).labels.tolist()  # (0, 0) has 3 neighbours
    [0, 0, 0, -1, -1, -1]
    """
    X, eps, min_samples = _validate(X, eps, min_samples)
    backend = check_choice(backend, "backend", BACKENDS)
    if backend == "torch":
        labels, core = _dbscan_torch(X, eps, min_samples, device)
    else:
        labels, core = _dbscan_numpy(X, eps, min_samples)
    return DBSCANResult(labels=labels, core_mask=core)


def region_query(X, i, eps) -> np.ndarray:
    """Indices of the points within ``eps`` of point ``i`` (itself included), sorted.

    The Eps-neighbourhood of the slides: ``{j : dist(X[i], X[j]) <= eps}``, with the
    distance compared as ``sum((X[j] - X[i])**2) <= eps**2`` (see the module notes on ties).
    One pass over the data, O(n d).

    Parameters
    ----------
    X : array-like of shape (n, d)
    i : int
        Index of the query point, ``0 <= i < n``.
    eps : float
        Radius (> 0).

    Returns
    -------
    ndarray (k,) of int64
        Sorted indices; always contains ``i``.

    Examples
    --------
    >>> region_query([[0, 0], [3, 4], [1, 1], [6, 8]], 0, eps=5.0).tolist()
    [0, 1, 2]
    """
    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n, d)")
    i = check_int(i, "i", min_value=0, max_value=len(X) - 1)
    eps = check_float(eps, "eps", min_value=0.0, min_inclusive=False)
    d2 = _row_sqdist(X, X[i])
    return np.flatnonzero(d2 <= eps * eps).astype(np.int64)


def core_points(X, eps, min_samples=5) -> np.ndarray:
    """Boolean mask of the core points: at least ``min_samples`` points within ``eps``.

    The point itself counts (scikit-learn's convention); the slide's "more than MinPts"
    is ``min_samples = MinPts + 1``. Uses the same cell grid as :func:`dbscan`, so it
    scales to large ``n`` and large ``eps``.

    Parameters
    ----------
    X : array-like of shape (n, d)
    eps : float
        Radius (> 0); distance ``== eps`` counts.
    min_samples : int
        Threshold (>= 1), the point itself included.

    Returns
    -------
    ndarray (n,) of bool

    Examples
    --------
    >>> core_points([[0, 0], [1, 0], [2, 0], [9, 9]], eps=1.0, min_samples=3).tolist()
    [False, True, False, False]
    """
    X, eps, min_samples = _validate(X, eps, min_samples)
    cells = _Cells.build(X, eps)
    core_sorted = _core_sorted(cells, eps * eps, min_samples)
    core = np.empty(len(X), dtype=bool)
    core[cells.order] = core_sorted
    return core


def k_distance(X, k) -> np.ndarray:
    """Distance of every point to its ``k``-th nearest neighbour, sorted ascending.

    The point itself counts as its own first neighbour (distance 0), matching
    ``min_samples``: with ``eps`` set to a point's k-distance that point has at least
    ``k`` points within ``eps``, so it is core for ``min_samples=k``. This is exactly
    guaranteed here (each value is rounded up by at most one ulp if needed). Plot it and
    pick ``eps`` at the knee ("elbow") of the curve: points to the left of the knee are in
    dense regions and become core, the steep tail is noise.

    Equals ``np.sort(NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)[0][:, -1])``
    up to that ulp.

    Parameters
    ----------
    X : array-like of shape (n, d)
    k : int
        ``1 <= k <= n``; use ``k = min_samples``.

    Returns
    -------
    ndarray (n,) of float64, ascending.

    Examples
    --------
    >>> k_distance([[0.0], [1.0], [3.0], [7.0]], k=2).tolist()
    [1.0, 1.0, 2.0, 4.0]
    """
    from scipy.spatial import cKDTree

    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n, d)")
    k = check_int(k, "k", min_value=1, max_value=len(X))
    tree = cKDTree(X)
    kth = np.empty(len(X))
    rows = max(1, _CHUNK // k)
    for r0 in range(0, len(X), rows):
        part = X[r0:r0 + rows]
        _, idx = tree.query(part, k=k)
        idx = idx.reshape(len(part), k)
        # Re-measure with our exact formula: the largest of the k is the k-th distance.
        d2 = np.zeros(idx.shape)
        for j in range(X.shape[1]):
            diff = X[idx, j] - part[:, j, None]
            d2 += diff * diff
        kth[r0:r0 + rows] = d2.max(axis=1)
    dist = np.sqrt(kth)
    short = dist * dist < kth  # rounded sqrt too small to reach the k-th point: one ulp up
    dist[short] = np.nextafter(dist[short], np.inf)
    return np.sort(dist)


@dataclass(frozen=True)
class DBSCANStep:
    """One event of :func:`dbscan_steps`.

    Attributes
    ----------
    kind : {"new_cluster", "core", "border", "noise"}
        "new_cluster": ``point`` is an unlabelled core point that starts cluster
        ``cluster``; "core": a core point joined ``cluster`` (its neighbours are queued);
        "border": a non-core point joined ``cluster`` (nothing is queued);
        "noise": after all clusters, ``point`` was reached by none (``cluster`` is -1).
    point : int
        Index of the point concerned.
    cluster : int
        Its label after this step.
    labels : ndarray (n,) of int64
        A copy of all labels after this step (-1 = not (yet) in a cluster).
    """

    kind: str
    point: int
    cluster: int
    labels: np.ndarray


def dbscan_steps(X, eps, min_samples=5):
    """Yield DBSCAN's expansion one point at a time, for step-by-step demos.

    The same visiting order as scikit-learn: points are scanned in index order; each
    unlabelled core point starts a new cluster, which grows depth-first through a stack:
    a popped unlabelled point joins the cluster, and if it is core its unlabelled
    neighbours (from :func:`region_query`, pushed in descending index order so the smallest
    comes out first) are pushed. Points still unlabelled at the end are reported as noise.
    The final ``labels`` equal ``dbscan(X, eps, min_samples).labels``.

    Meant for teaching-size data (every step copies the labels and each core point runs
    one O(n) :func:`region_query`, so O(n^2) in all).

    Parameters
    ----------
    X : array-like of shape (n, d)
    eps : float
    min_samples : int

    Yields
    ------
    DBSCANStep

    Examples
    --------
    >>> X = [[0.0, 0.0], [0.0, 1.0], [0.0, 2.0], [5.0, 5.0]]
    >>> [(s.kind, s.point, s.cluster) for s in dbscan_steps(X, eps=1.0, min_samples=3)]
    [('new_cluster', 1, 0), ('border', 0, 0), ('border', 2, 0), ('noise', 3, -1)]
    """
    X, eps, min_samples = _validate(X, eps, min_samples)
    core = core_points(X, eps, min_samples)
    n = len(X)
    labels = np.full(n, -1, dtype=np.int64)
    cluster = 0
    for seed in range(n):
        if labels[seed] != -1 or not core[seed]:
            continue
        labels[seed] = cluster
        yield DBSCANStep("new_cluster", seed, cluster, labels.copy())
        stack = [j for j in region_query(X, seed, eps)[::-1].tolist() if labels[j] == -1]
        while stack:
            j = stack.pop()
            if labels[j] != -1:
                continue
            labels[j] = cluster
            if core[j]:
                stack.extend(v for v in region_query(X, j, eps)[::-1].tolist() if labels[v] == -1)
                yield DBSCANStep("core", j, cluster, labels.copy())
            else:
                yield DBSCANStep("border", j, cluster, labels.copy())
        cluster += 1
    for j in np.flatnonzero(labels == -1).tolist():
        yield DBSCANStep("noise", j, -1, labels.copy())


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------


def _validate(X, eps, min_samples):
    X = check_array(X, "X", ndim=2, min_samples=1, shape_hint="(n, d)")
    X = np.ascontiguousarray(X, dtype=np.float64)
    eps = check_float(eps, "eps", min_value=0.0, min_inclusive=False)
    min_samples = check_int(min_samples, "min_samples", min_value=1)
    return X, eps, min_samples


def _row_sqdist(X, x):
    """sum_j (X[:, j] - x[j])**2, summed left to right (the tie rule of the module)."""
    d2 = np.zeros(len(X))
    for j in range(X.shape[1]):
        diff = X[:, j] - x[j]
        d2 += diff * diff
    return d2


# ----------------------------------------------------------------------------------------
# numpy reference: grid of clique cells
# ----------------------------------------------------------------------------------------


def _dbscan_numpy(X, eps, min_samples, *, pairs="auto"):
    """Labels and core mask (original order). ``pairs="tree"`` forces the KD-tree path."""
    eps2 = eps * eps
    cells = _Cells.build(X, eps, pairs=pairs)
    core = _core_sorted(cells, eps2, min_samples)
    cells.put_core_first(core)
    core = cells.core
    labels_sorted = _cluster_labels(cells, eps2)
    labels = np.empty(len(X), dtype=np.int64)
    labels[cells.order] = labels_sorted
    core_mask = np.empty(len(X), dtype=bool)
    core_mask[cells.order] = core
    return labels, core_mask


class _Cells:
    """Points sorted by grid cell, with each cell's range and bounding box.

    ``start[c]:start[c+1]`` are the (sorted) points of cell ``c``; ``lo[c]``, ``hi[c]``
    their bounding box. Every cell is a clique (any two of its points within eps).
    """

    def __init__(self, X, order, bounds, eps):
        self.eps = eps
        self.order = order
        self.Xs = X[order]
        self.XT = np.ascontiguousarray(self.Xs.T)  # one row per coordinate: fast gathers
        self.start = bounds
        self.size = np.diff(bounds)
        self.m = len(bounds) - 1
        self.cell_of = np.repeat(np.arange(self.m), self.size)
        self.lo = np.minimum.reduceat(self.Xs, bounds[:-1], axis=0)
        self.hi = np.maximum.reduceat(self.Xs, bounds[:-1], axis=0)
        self.loT = np.ascontiguousarray(self.lo.T)
        self.hiT = np.ascontiguousarray(self.hi.T)
        self.keys = None  # grid key of each cell (d <= 3), set by build
        self.deltas = None  # key steps to the cells in reach (one of each +-offset pair)
        self.core = None
        self.ncore = None
        self._pairs = None

    @classmethod
    def build(cls, X, eps, *, pairs="auto"):
        n, d = X.shape
        eps2 = eps * eps
        side = eps / (2.0 * math.sqrt(d)) if d <= 2 else eps / math.sqrt(d)
        with np.errstate(over="ignore", invalid="ignore"):
            q = np.floor((X - X.min(axis=0)) / side)
        if not np.all(q < 2.0**40):
            # Coordinates far too large for eps: one cell per point (always correct).
            return cls(X, np.arange(n), np.arange(n + 1), eps)
        c = q.astype(np.int64)
        keys = deltas = None
        if pairs == "auto" and d <= 3:
            keys, deltas = _grid_keys(c, eps / side)
        if keys is not None:
            order = np.argsort(keys, kind="stable")
            ks = keys[order]
            bounds = np.r_[0, np.flatnonzero(ks[1:] != ks[:-1]) + 1, n]
        else:
            order = np.lexsort(c.T[::-1])
            cs = c[order]
            change = np.any(cs[1:] != cs[:-1], axis=1)
            bounds = np.r_[0, np.flatnonzero(change) + 1, n]
        cells = cls(X, order, bounds, eps)
        ok = _sum_sq(cells.hi - cells.lo) <= eps2  # exact certificate: cell is a clique
        if ok.all():
            if keys is not None:
                cells.keys, cells.deltas = ks[bounds[:-1]], deltas
            return cells
        # Rounding put points more than eps apart in one cell: split those cells into
        # single points (and drop the grid keys, which are no longer one per cell).
        split = np.repeat(~ok, cells.size)
        cut = np.zeros(n + 1, dtype=bool)
        cut[bounds] = True
        cut[:n] |= split
        return cls(X, order, np.flatnonzero(cut), eps)

    def pairs(self):
        """Cell pairs ``(A, B, certain)`` in chunks: A != B, each unordered pair once.

        Every pair of cells holding two points within eps appears; ``certain`` marks the
        pairs where *every* point pair is within eps (decided exactly from the bounding
        boxes). The chunks are kept for the next call unless there are many of them (more
        than ~16 pairs per point); then they are recomputed on each call (bounded memory).
        """
        if self._pairs is None:
            self._pairs = self._collect_pairs()
        return self._pairs if self._pairs else self._pair_stream()

    def _collect_pairs(self):
        kept, total = [], 0
        cap = _CACHE_PAIRS_PER_POINT * len(self.order) + _CACHE_PAIRS_MIN
        itype = np.int32 if self.m < 2**31 else np.int64
        for A, B, cert in self._pair_stream():
            total += len(A)
            if total > cap:
                return []
            kept.append((A.astype(itype), B.astype(itype), cert))
        return kept or [(np.empty(0, dtype=itype), np.empty(0, dtype=itype), np.empty(0, bool))]

    def _pair_stream(self):
        eps2 = self.eps * self.eps
        for A, B in self._candidate_pairs():
            gap2, span2 = _box_bounds(self, A, B)
            near = gap2 <= eps2
            yield A[near], B[near], span2[near] <= eps2

    def _candidate_pairs(self):
        if self.keys is not None:
            keys = self.keys
            for delta in self.deltas:
                target = keys + delta
                idx = np.searchsorted(keys, target)
                idx[idx == self.m] = 0
                found = keys[idx] == target
                yield np.flatnonzero(found), idx[found]
            return
        # KD-tree over the points: a point within eps of some point of cell A lies within
        # eps + half-diagonal of A's box centre (a small margin covers rounding).
        from scipy.spatial import cKDTree

        centre = (self.lo + self.hi) / 2
        half = np.sqrt(_sum_sq(self.hi - self.lo)) / 2
        slack = 16 * float(np.spacing(np.abs(self.Xs).max()))
        r = (self.eps + half) * (1 + 1e-6) + slack
        tree = cKDTree(self.Xs)
        counts = tree.query_ball_point(centre, r, return_length=True)
        for rows in _weighted_chunks(counts, _CHUNK):
            found = tree.query_ball_point(centre[rows], r[rows])
            lens = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
            points = np.fromiter(itertools.chain.from_iterable(found), dtype=np.int64,
                                 count=int(lens.sum()))
            A, B = np.repeat(rows, lens), self.cell_of[points]
            pair = np.unique(A[A < B] * self.m + B[A < B])
            yield pair // self.m, pair % self.m

    def put_core_first(self, core):
        """Reorder points inside each cell so its core points come first."""
        perm = np.lexsort((~core, self.cell_of))
        self.order = self.order[perm]
        self.Xs = self.Xs[perm]
        self.XT = np.ascontiguousarray(self.XT[:, perm])
        self.core = core[perm]
        self.ncore = np.add.reduceat(self.core.astype(np.int64), self.start[:-1])


def _grid_keys(c, reach):
    """One int64 key per grid cell and the key steps to every cell that may be in reach.

    Returns (None, None) when the keys would overflow. ``reach = eps / side``. A cell at
    offset o can hold a point within eps only if sum_j max(|o_j| - 1, 0)^2 <= reach^2
    (a small margin covers the rounding of the cell coordinates).
    """
    d = c.shape[1]
    R = int(math.floor(reach)) + 1
    bound = reach * reach + 0.01
    extent = c.max(axis=0) + 1 + 2 * R
    if math.prod(int(e) for e in extent) >= 2**62:
        return None, None
    radix = np.cumprod(np.r_[1, extent[:-1]]).astype(np.int64)
    keys = (c + R) @ radix
    deltas = []
    for o in itertools.product(range(-R, R + 1), repeat=d):
        nz = [v for v in o if v != 0]
        if not nz or nz[-1] < 0:  # keep one of o / -o: the last non-zero component > 0
            continue
        if sum(max(abs(v) - 1, 0) ** 2 for v in o) <= bound:
            deltas.append(int(np.dot(o, radix)))
    return keys, deltas


def _core_sorted(cells, eps2, min_samples):
    """Core mask in the cells' sorted order."""
    m = cells.m
    size = cells.size
    # Count bounds per cell: a certain pair adds its whole size to both bounds, an
    # uncertain one only to the upper bound. The cell itself is a clique.
    lower = size.astype(np.float64)
    upper = size.astype(np.float64)
    for A, B, cert in cells.pairs():
        upper += np.bincount(A, size[B], m) + np.bincount(B, size[A], m)
        A, B = A[cert], B[cert]
        lower += np.bincount(A, size[B], m) + np.bincount(B, size[A], m)
    core_cell = lower >= min_samples
    open_cell = (upper >= min_samples) & ~core_cell
    core = np.repeat(core_cell, size)
    if not open_cell.any():
        return core
    # Exact counts for the points of undecided cells.
    count = np.repeat(lower, size)
    s = cells.start
    for A, B, cert in cells.pairs():
        A, B = _keep(~cert & (open_cell[A] | open_cell[B]), A, B)
        for _, i, j in _close_pairs(cells, s[A], s[A + 1], s[B], s[B + 1], eps2):
            count += np.bincount(i, minlength=len(count)) + np.bincount(j, minlength=len(count))
    is_open = np.repeat(open_cell, size)
    core[is_open] = count[is_open] >= min_samples
    return core


def _cluster_labels(cells, eps2):
    """Cluster label of every (sorted) point; cells must have core points first."""
    m, s, ncore = cells.m, cells.start, cells.ncore
    has_core = ncore > 0
    comp = np.arange(m)
    # 1. Cell pairs whose points are all within eps: joined if both hold core points.
    for A, B, cert in cells.pairs():
        comp = _merge(comp, *_keep(cert & has_core[A] & has_core[B], A, B))
    # 2. Other pairs, unless already joined: small ones checked point by point in batches,
    #    large ones (rare once step 1 has run) one at a time below.
    big = []
    for A, B, cert in cells.pairs():
        A, B = _keep(~cert & has_core[A] & has_core[B], A, B)
        A, B = _keep(comp[A] != comp[B], A, B)
        small = ncore[A] * ncore[B] <= _SMALL
        As, Bs = A[small], B[small]
        hit = np.zeros(len(As), dtype=bool)
        for k, _, _ in _close_pairs(cells, s[As], s[As] + ncore[As], s[Bs], s[Bs] + ncore[Bs],
                                    eps2):
            hit[k] = True
        comp = _merge(comp, As[hit], Bs[hit])
        big.append((A[~small], B[~small]))
    comp = _merge_big(cells, comp, big, eps2)
    # 3. Number clusters by their lowest original index among core points.
    n = len(cells.order)
    first = np.minimum.reduceat(np.where(cells.core, cells.order, n), s[:-1])
    comp_first = np.full(m, n)
    np.minimum.at(comp_first, comp[has_core], first[has_core])
    cell_first = comp_first[comp]
    firsts = np.unique(cell_first[has_core])
    cell_label = np.where(has_core, np.searchsorted(firsts, cell_first), -1)
    # 4. Border points: the smallest label among core cells within reach. The own cell
    #    is a clique, so its label (if it has core points) is a candidate for every point.
    big_label = np.iinfo(np.int64).max
    cell_best = np.where(has_core, cell_label, big_label)
    has_border = ncore < cells.size
    for A, B, cert in cells.pairs():
        A, B = _keep(cert, A, B)
        for P, Q in ((A, B), (B, A)):
            sel = has_border[P] & has_core[Q]
            np.minimum.at(cell_best, P[sel], cell_label[Q[sel]])
    best = np.repeat(cell_best, cells.size)
    for A, B, cert in cells.pairs():
        A, B = _keep(~cert, A, B)
        for P, Q in ((A, B), (B, A)):
            P, Q = _keep(has_border[P] & has_core[Q] & (cell_label[Q] < cell_best[P]), P, Q)
            for k, i, _ in _close_pairs(cells, s[P] + ncore[P], s[P + 1], s[Q], s[Q] + ncore[Q],
                                        eps2):
                np.minimum.at(best, i, cell_label[Q[k]])
    labels = np.where(cells.core, np.repeat(cell_label, cells.size), best)
    labels[labels == big_label] = -1
    return labels


def _merge_big(cells, comp, big, eps2):
    """Join large cell pairs one at a time, skipping those already connected."""
    A = np.concatenate([a for a, _ in big]) if big else np.empty(0, dtype=np.int64)
    B = np.concatenate([b for _, b in big]) if big else np.empty(0, dtype=np.int64)
    if not len(A):
        return comp
    order = np.argsort(_box_bounds(cells, A, B)[0], kind="stable")  # nearest pairs first
    parent = {}

    def find(x):
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in zip(A[order].tolist(), B[order].tolist(), strict=True):
        ra, rb = find(int(comp[a])), find(int(comp[b]))
        if ra != rb and _cells_touch(cells, a, b, eps2):
            parent[max(ra, rb)] = min(ra, rb)
    if not parent:
        return comp
    ids = np.unique(comp)
    roots = np.array([find(int(x)) for x in ids.tolist()])
    return roots[np.searchsorted(ids, comp)]


def _cells_touch(cells, a, b, eps2):
    """Is some core point of cell a within eps of some core point of cell b?"""
    s, nc = cells.start, cells.ncore
    Pa = cells.Xs[s[a]:s[a] + nc[a]]
    Pb = cells.Xs[s[b]:s[b] + nc[b]]
    ga = _point_box_gap2(Pa, cells.lo[b], cells.hi[b])
    gb = _point_box_gap2(Pb, cells.lo[a], cells.hi[a])
    Pa = Pa[np.argsort(ga, kind="stable")][: np.count_nonzero(ga <= eps2)]
    Pb = Pb[gb <= eps2]
    if not len(Pa) or not len(Pb):
        return False
    rows = max(1, _CHUNK // len(Pb))
    for r0 in range(0, len(Pa), rows):  # closest rows first: usually stops at once
        d2 = np.zeros((len(Pa[r0:r0 + rows]), len(Pb)))
        for j in range(Pa.shape[1]):
            diff = Pa[r0:r0 + rows, j, None] - Pb[None, :, j]
            d2 += diff * diff
        if (d2 <= eps2).any():
            return True
    return False


def _close_pairs(cells, a_lo, a_hi, b_lo, b_hi, eps2):
    """Yield ``(k, i, j)`` for every point pair within eps, in chunks of <= _CHUNK pairs.

    Pair k of cell ranges compares sorted points ``a_lo[k]:a_hi[k]`` with
    ``b_lo[k]:b_hi[k]``; ``i``/``j`` are sorted point indices and ``k`` the range pair.
    """
    la, lb = a_hi - a_lo, b_hi - b_lo
    keep = (la > 0) & (lb > 0)
    k = np.flatnonzero(keep)
    a_lo, la, b_lo, lb = a_lo[keep], la[keep], b_lo[keep], lb[keep]
    if not len(k):
        return
    # Split a range pair whose work exceeds _CHUNK into slices of A's rows.
    rows = np.maximum(1, _CHUNK // lb)
    pieces = -(-la // rows)
    if (pieces > 1).any():
        which = np.repeat(np.arange(len(k)), pieces)
        piece = np.arange(len(which)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        lo = a_lo[which] + piece * rows[which]
        hi = np.minimum(lo + rows[which], a_lo[which] + la[which])
        k, a_lo, la, b_lo, lb = k[which], lo, hi - lo, b_lo[which], lb[which]
    work = np.cumsum(la * lb)
    cuts = np.searchsorted(work, np.arange(_CHUNK, work[-1], _CHUNK), side="right")
    XT = cells.XT
    for g in np.split(np.arange(len(k)), np.unique(cuts)):
        if not len(g):
            continue
        r1, i = _ranges(a_lo[g], la[g])
        r2, j = _ranges(b_lo[g][r1], lb[g][r1])
        i = i[r2]
        d2 = np.zeros(len(i))
        for row in XT:
            diff = row[i] - row[j]
            d2 += diff * diff
        hit = d2 <= eps2
        yield k[g][r1[r2[hit]]], i[hit], j[hit]


def _ranges(lo, lengths):
    """Concatenate arange(lo[t], lo[t] + lengths[t]); also return the owner t of each."""
    owner = np.repeat(np.arange(len(lo)), lengths)
    first = np.cumsum(lengths) - lengths
    return owner, np.arange(int(lengths.sum())) - first[owner] + lo[owner]


def _merge(comp, A, B):
    """Union the components of cells A[t] and B[t] (labels are cell indices)."""
    a, b = comp[A], comp[B]
    a, b = _keep(a != b, a, b)
    if not len(a):
        return comp
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m = len(comp)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(m, m))
    _, lab = connected_components(graph, directed=False)
    return lab[comp]


def _keep(mask, *arrays):
    return tuple(x[mask] for x in arrays)


def _sum_sq(D):
    """Row-wise sum of squares, left to right over the columns (the tie rule)."""
    out = np.zeros(len(D))
    for j in range(D.shape[1]):
        out += D[:, j] * D[:, j]
    return out


def _box_bounds(cells, A, B):
    """Lower and upper bounds on squared point distances between cells A[t] and B[t].

    From the bounding boxes: the gap between two boxes is never more than any point
    pair's distance, their farthest reach never less. Floating-point rounding is monotone,
    so with the same left-to-right sum both bounds hold exactly, not just up to rounding.
    """
    lo, hi = cells.loT, cells.hiT
    gap2 = np.zeros(len(A))
    span2 = np.zeros(len(A))
    for j in range(len(lo)):
        la, ha, lb, hb = lo[j][A], hi[j][A], lo[j][B], hi[j][B]
        gap = np.maximum(np.maximum(lb - ha, la - hb), 0.0)
        span = np.maximum(hb - la, ha - lb)
        gap2 += gap * gap
        span2 += span * span
    return gap2, span2


def _point_box_gap2(P, lo, hi):
    gap = np.maximum(np.maximum(lo - P, P - hi), 0.0)
    return _sum_sq(gap)


def _weighted_chunks(weights, budget):
    """Split range(len(weights)) into consecutive index arrays of total weight ~budget."""
    total = np.cumsum(weights)
    cuts = np.searchsorted(total, np.arange(budget, total[-1], budget), side="right")
    return [g for g in np.split(np.arange(len(weights)), np.unique(cuts)) if len(g)]


# ----------------------------------------------------------------------------------------
# torch backend: blocked brute force
# ----------------------------------------------------------------------------------------

_TORCH_BLOCK = 1 << 24  # distances per block on the device (128 MB in float64)


def _dbscan_torch(X, eps, min_samples, device):
    import torch

    from helpers.device import resolve_device, torch_dtype_for

    dev = resolve_device(device)
    dtype = torch_dtype_for(dev)  # the one rule: float64 on the CPU, float32 on a GPU
    n = len(X)
    if dtype == torch.float64:
        Xt = torch.as_tensor(X, dtype=dtype, device=dev)
        eps2 = torch.tensor(eps * eps, dtype=dtype, device=dev)
        exact = None
    else:
        Xt, eps2, exact = _float32_with_exact_recheck(X, eps, dev)

    def blocks(rows, cols):
        """(row offset, block of the neighbour matrix) for rows/cols: index tensors."""
        step = max(1, _TORCH_BLOCK // max(1, len(cols)))
        for r0 in range(0, len(rows), step):
            r = rows[r0:r0 + step]
            d2 = _torch_sqdist(Xt[r], Xt[cols])
            near = d2 <= eps2
            if exact is not None:
                exact(d2, near, r, cols)
            yield r0, near

    everyone = torch.arange(n, device=dev)
    counts = torch.empty(n, dtype=torch.int64, device=dev)
    for r0, near in blocks(everyone, everyone):
        counts[r0:r0 + len(near)] = near.sum(dim=1)
    core = counts >= min_samples
    core_idx = torch.nonzero(core).flatten()
    nc = len(core_idx)
    # Min-label propagation over core-core edges; labels are positions in core_idx (so
    # ascending original index). Pointer jumping (lab = lab[lab]) shortens long chains.
    lab = torch.arange(nc, device=dev)
    big = torch.tensor(nc, device=dev)
    while nc:
        new = lab.clone()
        for r0, near in blocks(core_idx, core_idx):
            cand = torch.where(near, lab[None, :], big).amin(dim=1)
            new[r0:r0 + len(near)] = torch.minimum(new[r0:r0 + len(near)], cand)
        while True:
            jumped = new[new]
            if torch.equal(jumped, new):
                break
            new = jumped
        if torch.equal(new, lab):
            break
        lab = new
    # lab is now the smallest core position in each component: rank = cluster label.
    roots = torch.unique(lab)
    cluster = torch.searchsorted(roots, lab)
    labels = torch.full((n,), -1, dtype=torch.int64, device=dev)
    labels[core_idx] = cluster
    other = torch.nonzero(~core).flatten()
    if nc and len(other):
        nobody = torch.tensor(len(roots), device=dev)
        border = torch.empty(len(other), dtype=torch.int64, device=dev)
        for r0, near in blocks(other, core_idx):
            border[r0:r0 + len(near)] = torch.where(near, cluster[None, :], nobody).amin(dim=1)
        border[border == len(roots)] = -1
        labels[other] = border
    return labels.cpu().numpy(), core.cpu().numpy()


def _float32_with_exact_recheck(X, eps, dev):
    """float32 data on ``dev`` and a function that re-decides, in float64, every pair whose
    float32 squared distance lies within rounding error of eps^2 - so that the labels stay
    exactly the numpy (and sklearn) ones while the bulk of the work runs in float32.

    The float32 copy is centred (distances do not change, rounding does: it scales with the
    coordinates' size R). Error of one float32 squared distance near eps^2, per coordinate:
    the two casts and the subtraction (2 e R_j + e r), squared and times 2r, plus d + 1
    roundings of squares and sums; doubled as a margin (a wider band only re-checks more).
    When the band is not small next to eps^2 (coordinates huge next to eps), float32
    cannot help: everything runs in float64.
    """
    import torch

    e = float(np.finfo(np.float32).eps)
    centred = X - X.mean(axis=0)
    R = np.abs(centred).max(axis=0)
    eps2 = eps * eps
    r = eps * 1.5  # |a_j - b_j| <= r for any pair whose squared distance is near eps^2
    err = 2 * r * (2 * e * R + e * r) + (2 * e * R + e * r) ** 2
    band = 2.0 * (float(err.sum()) + (X.shape[1] + 1) * e * 2.25 * eps2)
    # MPS has no float64: the re-check runs on the CPU there
    dev64 = torch.device("cpu") if dev.type == "mps" else dev
    X64 = torch.as_tensor(X, dtype=torch.float64, device=dev64)
    if band > 0.25 * eps2 and dev.type != "mps":
        return X64, torch.tensor(eps2, dtype=torch.float64, device=dev), None
    lo = torch.tensor(eps2 - band, dtype=torch.float32, device=dev)
    hi = torch.tensor(eps2 + band, dtype=torch.float32, device=dev)

    def exact(d2, near, rows, cols):
        i, j = torch.nonzero((d2 >= lo) & (d2 <= hi), as_tuple=True)
        if len(i):
            a, b = rows[i].to(dev64), cols[j].to(dev64)
            near[i, j] = (_torch_pair_sqdist(X64[a], X64[b]) <= eps2).to(dev)

    exact.band = band
    return (torch.as_tensor(centred, dtype=torch.float32, device=dev),
            torch.tensor(eps2, dtype=torch.float32, device=dev), exact)


def _torch_pair_sqdist(A, B):
    """Squared distance of A[i] to B[i], summed left to right like the numpy code."""
    diff = A - B
    d2 = diff[:, 0] * diff[:, 0]
    for j in range(1, A.shape[1]):
        d2 = d2 + diff[:, j] * diff[:, j]
    return d2


def _torch_sqdist(A, B):
    """(len(A), len(B)) squared distances, summed left to right like the numpy code."""
    d2 = None
    for j in range(A.shape[1]):
        diff = A[:, j, None] - B[None, :, j]
        d2 = diff * diff if d2 is None else d2 + diff * diff
    return d2
