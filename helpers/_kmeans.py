"""K-Means numerics behind :mod:`helpers.clustering`: Lloyd's loop, k-means++ and the
empty-cluster rule, in numpy.

:mod:`helpers.clustering` holds the public, validated functions a student calls;
this module holds what they run (and what the torch backend, :mod:`helpers._kmeans_torch`,
shares with them), on already-validated float64 arrays. Every arithmetic choice here copies
sklearn's (same BLAS call, sums in row order, means as ``sum * (1 / count)``) because
near-ties between two centers, common with integer data, are decided by the last bit.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 16384  # rows per block where only memory matters (inertia)
_PARALLEL_MIN_ROWS = 16384  # below this many rows per core, threads cost more than they save


def _block_rows(k):
    """Rows per block in the assignment pass: the block's (rows, k) distances stay in the
    CPU cache (about 1 MiB), yet blocks are long enough that numpy's per-call overhead is
    small. Measured on 200,000 x 16, k=32 and 1,000,000 x 2, k=8 (benchmarks/bench_kmeans.py)."""
    return int(np.clip(2**17 // k, 1024, 16384))


ENGINES = ("auto", "numba", "numpy")
ENGINE_ENV = "HELPERS_KMEANS_ENGINE"  # set to "numpy" to force the reference everywhere
# The numba pass is taken ("auto") from n * k = 2**22 points x centers (200,000 x 21), where
# one iteration of the numpy reference takes ~25 ms and the compiled pass saves ~2/3 of it:
# a fresh process pays ~0.5 s once (import numba, load the cached machine code; ~1.5 s
# more the very first time, to compile), which ~30 iterations repay. Once numba is loaded
# in this process, it is taken from n * k = 2**16 on (where it is faster than numpy).
_NUMBA_MIN_WORK = 2**22
_NUMBA_MIN_WORK_LOADED = 2**16


def _lloyd(X, centers, max_iter, tol_abs, engine="auto"):
    """Lloyd's loop on centred data, mirroring sklearn's _kmeans_single_lloyd.

    ``engine`` picks the assignment pass (see :func:`_pick_pass`); all of them give the
    same labels, and the same centers up to the last bit of the sums (see
    :mod:`helpers._kmeans_numba`)."""
    history = [centers.copy()]
    inertias = []
    labels_old = None
    converged = False
    x_sq = float(np.einsum("ij,ij->", X, X))
    assign_and_sum = _pick_pass(X.shape[0], centers.shape[0], engine)
    fast = assign_and_sum is not None
    if not fast:  # the reference; X.T made contiguous once, for the sums
        columns = np.ascontiguousarray(X.T)

        def assign_and_sum(X, centers, run, sums=True):
            return _assign_and_sum(X, centers, run, sums=sums, columns=columns)

    # the compiled pass calls BLAS from its own loop, always on one thread (as sklearn)
    with _BlockRunner(X.shape[0], one_blas_thread=fast) as run:
        for _ in range(max_iter):
            labels, sums, counts, best = assign_and_sum(X, centers, run)
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
        labels = assign_and_sum(X, centers, run, sums=False)[0]
    return centers, labels, len(inertias), history, inertias, converged


def _pick_pass(n, k, engine="auto"):
    """The assignment pass for Lloyd's loop: the compiled one of :mod:`helpers._kmeans_numba`
    (same signature as :func:`_assign_and_sum`, same labels), or None for the reference.

    "numpy": the reference. "numba": the compiled pass (ImportError without numba).
    "auto": the compiled pass when numba is installed and loads, and the problem is big
    enough to repay loading it (see ``_NUMBA_MIN_WORK``), else the reference. The
    environment variable ``HELPERS_KMEANS_ENGINE`` (``numpy``, ``numba`` or ``auto``)
    overrides "auto".
    """
    fast = _numba_module(n, k, engine)
    return None if fast is None else fast.assign_and_sum


def _numba_module(n, k, engine="auto"):
    """:mod:`helpers._kmeans_numba`, loaded and compiled, or None: see :func:`_pick_pass`."""
    import os

    if engine == "auto":
        engine = os.environ.get(ENGINE_ENV, "auto").strip().lower() or "auto"
        if engine not in ENGINES:
            raise ValueError(f"{ENGINE_ENV} must be one of {ENGINES}, got {engine!r}")
    if engine == "numpy":
        return None
    if engine == "auto":
        import sys

        loaded = "helpers._kmeans_numba" in sys.modules
        if _numba_failed or n * k < (_NUMBA_MIN_WORK_LOADED if loaded else _NUMBA_MIN_WORK):
            return None
        try:
            from helpers import _kmeans_numba

            _kmeans_numba.ready()
        except Exception as exc:  # no numba, or it cannot compile here: the reference
            _numba_unusable(exc)
            return None
        return _kmeans_numba
    from helpers import _kmeans_numba

    _kmeans_numba.ready()
    return _kmeans_numba


_numba_failed = False  # "auto" tried numba in this process and it did not load


def _numba_unusable(exc):
    """Remember that numba did not load (no second try), and say so once - unless it is
    simply not installed (it is optional)."""
    global _numba_failed
    _numba_failed = True
    if isinstance(exc, ImportError):
        return
    import warnings

    warnings.warn(f"K-Means: the compiled (numba) pass failed to load ({exc!r}); using the "
                  "numpy reference, which gives the same results more slowly", RuntimeWarning,
                  stacklevel=5)


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

    def __init__(self, n, workers=None, one_blas_thread=False):
        import os

        if workers is None:
            cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count())
            workers = min(cores or 1, n // _PARALLEL_MIN_ROWS)
        self.workers = max(1, workers)
        self._one_blas_thread = one_blas_thread or self.workers > 1
        self._pool = self._limits = None

    def __enter__(self):
        if self._one_blas_thread:
            self._limits = _one_blas_thread()
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.workers)
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown()
        if self._limits is not None:
            self._limits.restore_original_limits()

    def __call__(self, starts, work):
        if self._pool is None:
            return [work(starts)]
        return list(self._pool.map(work, [starts[i :: self.workers] for i in range(self.workers)]))

    def map(self, fn, items):
        """``[fn(item) for item in items]``, on the worker threads when there are any."""
        if self._pool is None:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    @staticmethod
    def serial(starts, work):
        return [work(starts)]


_blas_controller = None


def _one_blas_thread():
    """threadpoolctl's ``threadpool_limits(1, user_api="blas")``, from a controller made
    once (a fresh ``threadpool_limits`` scans the loaded libraries: ~2 ms a call). Use as
    a context manager, or call ``restore_original_limits()``."""
    global _blas_controller
    if _blas_controller is None:
        import scipy.linalg.blas  # noqa: F401  (load scipy's BLAS before looking for it)
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


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


def kmeans_plusplus(X, k, rng, engine="auto"):
    """Greedy k-means++ (Arthur & Vassilvitskii 2007), with sklearn's 2 + log(k) trials.

    The first center is a uniformly random row. Each next center: draw ``n_trials`` rows
    with probability proportional to D(x)^2 (the squared distance of x to its nearest
    chosen center), keep the one that lowers sum D^2 the most, update D^2.

    Distances use ||x - c||^2 = ||x - m||^2 + ||c - m||^2 - 2 (x - m).(c - m) about the
    data's mean m (accurate when the data sit far from 0), block by block of rows: the
    memory is a few arrays of n floats, the trials' distances (n, n_trials) as sklearn
    keeps them, and one cache-sized block; never (n_trials, n, d).
    Randomness only from ``rng`` (a numpy Generator), and every sum runs in a fixed order,
    so a seed gives the same centers every time. (The same seed does not give sklearn's
    centers: sklearn draws from a legacy RandomState.)

    ``engine`` as for Lloyd's loop (:func:`_pick_pass`): the compiled blocks of
    :mod:`helpers._kmeans_numba` make the same floating-point operations in the same order
    (same BLAS call, sums along each block in row order, then block after block), so both
    engines pick the same centers from the same seed.
    """
    fast = _numba_module(X.shape[0], k, engine)
    # BLAS on one thread in both engines: the products are small (n_trials x d by d x block),
    # so BLAS threads would only wait for each other, and a threaded sum (dgemv) could add
    # in another order
    if fast is not None:
        with _BlockRunner(X.shape[0], one_blas_thread=True) as run:
            return _kmeans_plusplus(X, k, rng, fast.trial_gains, run)
    with _one_blas_thread():
        return _kmeans_plusplus(X, k, rng, _trial_gains)


def _kmeans_plusplus(X, k, rng, trial_gains, run=None):
    n, d = X.shape
    n_trials = 2 + int(np.log(k))
    mean = X.mean(axis=0)
    x_sq = np.empty(n)  # ||x - m||^2 per row
    for start in range(0, n, _CHUNK):
        block = X[start : start + _CHUNK] - mean
        x_sq[start : start + _CHUNK] = np.einsum("ij,ij->i", block, block)
    x_sq_total = x_sq.sum()
    centers = np.empty((k, d))
    centers[0] = X[int(rng.integers(n))]
    # ||x - t||^2 - ||x - m||^2 for every trial and row (sklearn keeps the same n_trials x n)
    trial_dist = np.empty((n_trials, n))
    gap = np.full(n, np.inf)  # D^2 - ||x - m||^2 (first: no center yet)
    trial_gains(X, gap, *_distance_terms(X, mean, centers[:1]), trial_dist[:1], run)
    closest = np.maximum(trial_dist[0] + x_sq, 0.0)  # D^2 (never below 0: rounding)
    cumulative = np.empty(n)
    for c in range(1, k):
        np.cumsum(closest, out=cumulative)
        total = cumulative[-1]
        if total <= 0:  # every point sits on a center already: any rows will do
            candidates = rng.integers(n, size=n_trials)
        else:
            candidates = np.searchsorted(cumulative, rng.uniform(size=n_trials) * total)
            np.minimum(candidates, n - 1, out=candidates)
        # sum D^2 if each candidate were added (its argmin is all that matters)
        np.subtract(closest, x_sq, out=gap)
        gains = trial_gains(X, gap, *_distance_terms(X, mean, X[candidates]), trial_dist, run)
        best = int(np.argmin(x_sq_total + gains))
        centers[c] = X[candidates[best]]
        new = np.add(trial_dist[best], x_sq, out=cumulative)  # (cumulative is free now)
        np.minimum(closest, np.maximum(new, 0.0, out=new), out=closest)
    return centers


def _distance_terms(X, mean, trials):
    """The parts of ||x - t||^2 - ||x - m||^2 = -2 x.(t - m) + (||t - m||^2 + 2 m.(t - m))
    that depend on the trials: the matrix -2 (t - m), shape (n_trials, d), and the offsets,
    and rows per block so that a (n_trials, rows) float64 block takes about 1 MiB (fits the cache)."""
    shifted = trials - mean
    offsets = np.einsum("ij,ij->i", shifted, shifted) + 2.0 * (shifted @ mean)
    return np.ascontiguousarray(-2.0 * shifted), offsets, max(256, 2**17 // len(trials))


def _trial_gains(X, gap, minus_2s, offsets, rows, out, run=None):
    """sum over rows of min(||x - t||^2 - ||x - m||^2, gap) for each trial t: shape (n_trials,);
    ``out`` (n_trials, n) receives every ||x - t||^2 - ||x - m||^2.

    ``gap`` is D^2 - ||x - m||^2 per row, so adding sum ||x - m||^2 gives each trial's sum
    of min(D^2, ||x - t||^2). Per block of rows: one matrix product, the offsets, the
    minimum, and the block's sums (a matrix-vector product with ones), then block after
    block. Both BLAS calls are scipy's, made as the compiled engine makes them, so both
    engines get the same bits (with BLAS on one thread).
    """
    from scipy.linalg.blas import dgemm, dgemv

    t = len(minus_2s)
    buffer = np.empty(t * rows)
    ones = np.ones(rows)
    gains = np.zeros(t)
    for start in range(0, X.shape[0], rows):
        block = X[start : start + rows]
        m = block.shape[0]
        # column-major: dist.T (m, n_trials) = block (m, d) @ minus_2s.T (d, n_trials)
        dist = dgemm(1.0, block.T, minus_2s.T, beta=0.0, c=buffer[: t * m].reshape(t, m).T,
                     trans_a=1, overwrite_c=1).T
        dist += offsets[:, None]
        out[:, start : start + m] = dist
        np.minimum(dist, gap[start : start + m], out=dist)
        gains += dgemv(1.0, dist.T, ones[:m], trans=1)  # column-major (m, n_trials).T @ ones
    return gains
