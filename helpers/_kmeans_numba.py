"""Compiled (numba) assignment pass for :func:`helpers.clustering.kmeans`: sklearn's Lloyd
structure, for speed. The numpy code in :mod:`helpers._kmeans` stays the reference to read.

One compiled loop over chunks of 256 rows, as sklearn's ``lloyd_iter_chunked_dense``: per
chunk, ``||c||^2`` is written into a small buffer, the very BLAS call sklearn makes (the
``dgemm`` of ``scipy.linalg.cython_blas``, which sklearn calls too) adds ``-2 x.c``, then
one loop takes each row's first minimum and adds the row to its cluster's running sum. No
(n, k) temporary, no second pass for the sums. The chunks are split among worker threads
as OpenMP's ``schedule(static)`` splits sklearn's (one contiguous run each); the loop
releases the GIL. (Python threads, not numba's ``parallel=True``: numba's OpenMP layer
spin-waits, and on a busy 2-core machine each parallel launch then cost ~12 ms.)

Same bits: the distances come from the same dgemm call as sklearn's and the reference's,
each worker sums its rows in row order, and the workers' sums are added in worker order
onto zeros, as sklearn adds its threads'. With one worker (under 32,768 rows, see
``helpers._kmeans._BlockRunner``) the sums are the reference's bit for bit; with two they
are sklearn's with two threads, and (sum of first half) + (sum of second half) can differ
from the reference's row-order sum in the last bit.

The k-means++ initialisation's blocks (:func:`trial_gains`) are compiled the same way:
the reference's BLAS calls (dgemm for the products, dgemv with ones for each block's sums)
and elementwise steps, block by block, so both engines pick the same centers from a seed.

numba is optional: this module is imported only when :func:`helpers._kmeans._pick_pass`
picks the compiled pass, never by ``import helpers``. The machine code is cached on disk
(see :func:`_jit`), so only the first process ever compiles it.
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np

CHUNK = 256  # sklearn's CHUNK_SIZE (sklearn/cluster/_k_means_common.pyx)

_DGEMM_TYPE = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * 13))
_DGEMV_TYPE = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * 11))
_kernels = None  # (dgemm, _chunks and _gains_blocks compiled, dgemv): see _compiled


def ready():
    """Load (or compile) the kernels now and check them against the reference on a tiny
    problem; raises what numba raises where it cannot run."""
    return _compiled() is not None


def assign_and_sum(X, centers, run=None, sums=True):
    """Drop-in for :func:`helpers._kmeans._assign_and_sum`: labels (int64), per-cluster sums
    (k, d) and counts (k,) (None, None when ``sums`` is False), and sum over rows of
    min_c (||c||^2 - 2 x.c)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", centers, centers)  # as the reference (and sklearn's row_norms)
    labels = np.empty(X.shape[0], dtype=np.int64)
    cluster_sums, counts, best = lloyd_pass(X, centers, c_sq, labels, run, update=sums)
    if not sums:
        return labels, None, None, best
    return labels, cluster_sums, counts, best


def lloyd_pass(X, centers, c_sq, labels, run=None, update=True):
    """Labels (written into ``labels``, int64), per-cluster sums (k, d), counts (k,) and
    sum over rows of min_c (||c||^2 - 2 x.c), like :func:`helpers._kmeans._assign_and_sum`.

    ``X`` and ``centers`` C-contiguous float64. ``run`` (a :class:`helpers._kmeans._BlockRunner`,
    which also holds BLAS to one thread) hands each worker thread one contiguous run of
    chunks, as OpenMP's ``schedule(static)`` does in sklearn; the compiled loop releases
    the GIL, so the threads really run side by side. ``update=False``: labels and the sum
    only (sums and counts come back as zeros).
    """
    dgemm, kernel = _compiled()[:2]
    n, d = X.shape
    k = centers.shape[0]
    n_chunk = min(CHUNK, n)

    def work(first, last):
        sums, counts = np.zeros((k, d)), np.zeros(k)
        best = kernel(dgemm, X, centers, c_sq, labels, n_chunk, first, last, sums, counts,
                      update)
        return sums, counts, best

    sums, counts, best = np.zeros((k, d)), np.zeros(k), 0.0
    for part_sums, part_counts, part_best in _share(-(-n // n_chunk), run, work):
        sums += part_sums  # in worker order onto zeros, as sklearn adds its threads' sums
        counts += part_counts
        best += part_best
    return sums, counts, best


def trial_gains(X, gap, minus_2s, offsets, rows, out, run=None):
    """:func:`helpers._kmeans._trial_gains`, compiled: the same dgemm on the same blocks,
    the same additions in the same order, so the same bits. The blocks are shared out
    among ``run``'s worker threads, each block's sums kept apart, then added in block order."""
    dgemm, _, kernel, dgemv = _compiled()
    n_blocks = -(-X.shape[0] // rows)
    per_block = np.zeros((n_blocks, len(minus_2s)))

    def work(first, last):
        kernel(dgemm, dgemv, X, gap, minus_2s, offsets, rows, first, last, out, per_block)

    _share(n_blocks, run, work)
    gains = np.zeros(len(minus_2s))
    for block_sums in per_block:  # block after block, as the reference adds them
        gains += block_sums
    return gains


def _share(n_blocks, run, work):
    """[work(first, last), ...] over contiguous runs of blocks, one per worker thread of
    ``run``, split as OpenMP's schedule(static) splits a loop (the first runs one longer)."""
    workers = 1 if run is None else max(1, min(run.workers, n_blocks))
    if workers == 1:
        return [work(0, n_blocks)]
    q, r = divmod(n_blocks, workers)
    bounds = [q * t + min(t, r) for t in range(workers + 1)]
    return run.map(lambda t: work(bounds[t], bounds[t + 1]), range(workers))


def _compiled():
    global _kernels
    if _kernels is None:
        from numba.extending import get_cython_function_address

        from helpers import _kmeans

        dgemm = _DGEMM_TYPE(get_cython_function_address("scipy.linalg.cython_blas", "dgemm"))
        dgemv = _DGEMV_TYPE(get_cython_function_address("scipy.linalg.cython_blas", "dgemv"))
        kernels = (dgemm, _jit(_chunks), _jit(_gains_blocks), dgemv)
        # compile (or load from the cache) now, and check against the reference
        X = np.array([[0.0, 1.0], [3.0, 1.0], [1.0, 1.0], [0.5, 2.0]])
        centers = np.array([[0.0, 1.0], [3.0, 0.0]])
        mean = X.mean(axis=0)
        labels, sums, counts = np.empty(4, dtype=np.int64), np.zeros((2, 2)), np.zeros(2)
        kernels[1](dgemm, X, centers, np.einsum("ij,ij->i", centers, centers), labels, CHUNK,
                   0, 1, sums, counts, True)
        terms = _kmeans._distance_terms(X, mean, centers)
        gap, per_block = np.array([1.0, -2.0, 0.5, 3.0]), np.zeros((1, 2))
        dist, expected = np.empty((2, 4)), np.empty((2, 4))
        kernels[2](dgemm, dgemv, X, gap, *terms, 0, 1, dist, per_block)
        gains = _kmeans._trial_gains(X, gap, *terms, expected)
        if (labels.tolist() != [0, 1, 0, 0] or counts.tolist() != [3.0, 1.0]
                or not np.array_equal(per_block[0], gains)
                or not np.array_equal(dist, expected)):
            raise RuntimeError("the compiled K-Means kernels disagree with the numpy reference")
        _kernels = kernels
    return _kernels


def _jit(function):
    """The jitted ``function``, with its machine code cached on disk where that can be written.

    numba looks for a writable ``__pycache__`` beside this file, then a user-wide cache
    directory (``~/.cache/numba``); where neither is writable (a read-only course tree in a
    grading sandbox, say) we try a private directory under the system's temporary
    directory, and failing that compile without a cache (~1-2 s per process)."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available for file ..."
        pass
    path = _private_cache_dir()
    if path is not None:
        saved = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = path  # read when the cache is set up, i.e. right now
        try:
            return numba.njit(nogil=True, cache=True)(function)
        except RuntimeError:
            pass
        finally:
            numba.config.CACHE_DIR = saved
    return numba.njit(nogil=True)(function)


def _private_cache_dir():
    """``$TMPDIR/helpers-numba-<uid>``, only if it is ours and nobody else can write there
    (the cache holds machine code that numba would load and run)."""
    import os
    import stat
    import tempfile

    if not hasattr(os, "getuid"):
        return None
    path = os.path.join(tempfile.gettempdir(), f"helpers-numba-{os.getuid()}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        return None
    return path


def _chunks(dgemm, X, centers, c_sq, labels, n_chunk, first, last, sums, counts, update):
    """Chunks first..last-1 (of ``n_chunk`` rows) of sklearn's _update_chunk_dense: plain
    Python that numba compiles (see _build). Returns sum of each row's min distance."""
    n, d = X.shape
    k = centers.shape[0]
    best_total = 0.0
    dist = np.empty(n_chunk * k)
    # dgemm's by-reference arguments: trans flags, m n k lda ldb ldc, alpha, beta
    flags = np.array([116, 110], dtype=np.uint8)  # 't', 'n'
    ints = np.array([k, n_chunk, d, d, d, k], dtype=np.int32)
    scalars = np.array([-2.0, 1.0])
    for chunk in range(first, last):
        start = chunk * n_chunk
        m = min(n_chunk, n - start)
        for i in range(m):  # dist = ||c||^2, then += -2 x.c: sklearn's two roundings
            for j in range(k):
                dist[i * k + j] = c_sq[j]
        ints[1] = m
        # row-major (m, k) dist = -2 X[start:start+m] @ centers.T + dist, called column-major
        # exactly as sklearn's _gemm(RowMajor, NoTrans, Trans, ...) calls it
        dgemm(flags[0:].ctypes, flags[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes,
              ints[2:].ctypes, scalars[0:].ctypes, centers.ctypes, ints[3:].ctypes,
              X[start:].ctypes, ints[4:].ctypes, scalars[1:].ctypes, dist.ctypes,
              ints[5:].ctypes)
        for i in range(m):
            row = i * k
            best = dist[row]
            label = 0
            for j in range(1, k):  # the first minimum, as sklearn and argmin
                if dist[row + j] < best:
                    best = dist[row + j]
                    label = j
            labels[start + i] = label
            best_total += best
            if update:
                counts[label] += 1.0
                for f in range(d):
                    sums[label, f] += X[start + i, f]
    return best_total


def _gains_blocks(dgemm, dgemv, X, gap, minus_2s, offsets, rows, first, last, out,
                  per_block):
    """Blocks first..last-1 of :func:`helpers._kmeans._trial_gains`: out[t, i] =
    -2 s_t.x_i + offset_t, and per_block[b, t] = sum over the block's rows of
    min(out[t, i], gap[i]), both by the reference's BLAS calls."""
    n, d = X.shape
    t_count = minus_2s.shape[0]
    dist = np.empty(rows * t_count)
    ones = np.ones(rows)
    sums = np.empty(t_count)
    flags = np.array([116, 110], dtype=np.uint8)  # 't', 'n'
    ints = np.array([rows, t_count, d, d, d, rows, 1], dtype=np.int32)  # m n k ld* inc
    scalars = np.array([1.0, 0.0])  # alpha, beta
    for b in range(first, last):
        start = b * rows
        m = min(rows, n - start)
        ints[0] = m
        ints[5] = m
        # row-major (T, m) dist = minus_2s @ X[start:start+m].T, called column-major as
        # the reference calls it: dgemm('t', 'n', m, T, d, 1, X, d, minus_2s, d, 0, dist, m)
        dgemm(flags[0:].ctypes, flags[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes,
              ints[2:].ctypes, scalars[0:].ctypes, X[start:].ctypes, ints[3:].ctypes,
              minus_2s.ctypes, ints[4:].ctypes, scalars[1:].ctypes, dist.ctypes,
              ints[5:].ctypes)
        gaps = gap[start : start + m]
        for t in range(t_count):
            offset = offsets[t]
            row = dist[t * m : (t + 1) * m]
            kept = out[t, start : start + m]
            for i in range(m):
                v = row[i] + offset
                kept[i] = v
                row[i] = min(v, gaps[i])
        # sums = dist (column-major m x T).T @ ones: dgemv('t', m, T, 1, dist, m, ones, 1, 0, sums, 1)
        dgemv(flags[0:].ctypes, ints[0:].ctypes, ints[1:].ctypes, scalars[0:].ctypes,
              dist.ctypes, ints[5:].ctypes, ones.ctypes, ints[6:].ctypes, scalars[1:].ctypes,
              sums.ctypes, ints[6:].ctypes)
        per_block[b] = sums
