"""Torch backend of :func:`helpers.clustering.kmeans`: the same Lloyd loop, on a device.

Kept beside the reference so the two read alike; only the array library changes. The rare
cases where the last bit decides - empty-cluster relocation, and on the CPU the rows whose
two nearest centers are within rounding error - are delegated to the numpy reference, so
both backends give exactly the same results.
"""

from __future__ import annotations

from helpers._kmeans import _block_rows, _center_distances, _means, relocate_empty_clusters
from helpers.device import resolve_device, torch_dtype_for


def lloyd_torch(X, centers, max_iter, tol_abs, device=None):
    """Lloyd iterations on centred numpy data; returns numpy results like ``_lloyd``."""
    import torch

    dev = resolve_device(device)
    dtype = torch_dtype_for(dev)
    Xt = torch.as_tensor(X, dtype=dtype, device=dev)
    C = torch.as_tensor(centers, dtype=dtype, device=dev)
    history = [centers.copy()]
    inertias = []
    labels_old = None
    converged = False
    x_sq = (Xt * Xt).sum(dim=1)
    x_sq_total = float(x_sq.sum())
    for _ in range(max_iter):
        labels, sums, counts, best_total = _assign_and_sum(Xt, C, x_sq)
        inertias.append(max(best_total + x_sq_total, 0.0))
        C_new = _update(Xt, labels, C, X, sums, counts)
        shift = float(((C_new - C) ** 2).sum())
        C = C_new
        history.append(C.double().cpu().numpy())
        if labels_old is not None and torch.equal(labels, labels_old):
            return (history[-1].copy(), labels.cpu().numpy(), len(inertias), history,
                    inertias, True)
        if shift <= tol_abs:
            converged = True
            break
        labels_old = labels
    labels = _assign_and_sum(Xt, C, x_sq)[0]
    return history[-1].copy(), labels.cpu().numpy(), len(inertias), history, inertias, converged


def _assign_and_sum(Xt, C, x_sq):
    """Labels, per-cluster sums and counts, and sum of min(||c||^2 - 2 x.c), in one pass.

    Block by block of rows, as the numpy reference does; on a CPU the blocks stay in the
    cache, on a GPU they are large enough to fill it.

    In float64 on the CPU the results equal the reference's bit for bit: torch's matrix
    product (MKL) rounds differently from the BLAS call sklearn and the reference make,
    which only matters where two centers are (nearly) equally far from a point - common
    with integer-valued data - so those rows are re-assigned with the reference's
    arithmetic; and ``index_add_`` into one running sum adds each cluster's points in row
    order, as the reference's bincount does (checked bit for bit in tests/test_kmeans.py).
    On a GPU, float32 rounding and atomic adds rule out bit-for-bit results anyway.
    ``x_sq`` holds ||x||^2 per row (it bounds the rounding error).
    """
    import numpy as np
    import torch


    k, d = C.shape
    exact = Xt.device.type == "cpu" and Xt.dtype == torch.float64
    if exact:  # ||c||^2 summed exactly as the reference sums it
        c_sq = torch.from_numpy(np.einsum("ij,ij->i", C.numpy(), C.numpy()))
    else:
        c_sq = (C * C).sum(dim=1)
    minus_2ct = -2.0 * C.T
    # Bound on the rounding error of one distance: d products and 2 additions, each off by
    # at most eps * (||x||^2 + ||c||^2) since |x.c| <= (||x||^2 + ||c||^2) / 2; x64 margin
    # because MKL may sum in any order (too wide only sends more rows to the exact path).
    slack = 64 * (d + 2) * torch.finfo(Xt.dtype).eps
    labels = torch.empty(Xt.shape[0], dtype=torch.int64, device=Xt.device)
    sums = torch.zeros_like(C)
    best_total = torch.zeros((), dtype=Xt.dtype, device=Xt.device)
    # GPU: 2**26 distances per block (256 MiB in float32) keep every core busy and fit any card
    rows = _block_rows(k) if Xt.device.type == "cpu" else max(1, 2**26 // k)
    for start in range(0, Xt.shape[0], rows):
        block = Xt[start : start + rows]
        dist = block @ minus_2ct  # then + ||c||^2: two roundings, as the reference
        dist += c_sq
        best, idx = dist.min(dim=1)
        if exact:
            tol = slack * (x_sq[start : start + rows] + c_sq.max())
            close = ((dist <= (best + tol)[:, None]).sum(dim=1) > 1).nonzero().squeeze(1)
            if len(close):
                again = _center_distances(block[close].numpy(), C.numpy(), c_sq.numpy(),
                                          np.empty((len(close), k)))
                idx[close] = torch.from_numpy(again.argmin(axis=1))
                best[close] = torch.from_numpy(again.min(axis=1))
        labels[start : start + rows] = idx
        best_total += best.sum()
        sums.index_add_(0, idx, block)  # each cluster's points added in row order
    counts = torch.bincount(labels, minlength=k).to(Xt.dtype)
    return labels, sums, counts, float(best_total)


def _update(Xt, labels, C, X_numpy, sums, counts):
    import torch

    if bool((counts == 0).any()):
        sums_np = sums.double().cpu().numpy()
        counts_np = counts.double().cpu().numpy()
        relocate_empty_clusters(X_numpy, labels.cpu().numpy(), C.double().cpu().numpy(),
                                sums_np, counts_np)
        sums = torch.as_tensor(sums_np, dtype=Xt.dtype, device=Xt.device)
        counts = torch.as_tensor(counts_np, dtype=Xt.dtype, device=Xt.device)
    return _means(sums, counts)
