"""Torch backend of :func:`helpers.clustering.kmeans`: the same Lloyd loop, on a device.

Kept beside the reference so the two read alike; only the array library changes. The rare
empty-cluster relocation is delegated to the numpy reference so both backends pick exactly
the same points.
"""

from __future__ import annotations

from helpers.clustering import _block_rows, relocate_empty_clusters
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
    x_sq_total = float((Xt * Xt).sum())
    for _ in range(max_iter):
        labels, sums, counts, best_total = _assign_and_sum(Xt, C)
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
    labels = _assign_and_sum(Xt, C)[0]
    return history[-1].copy(), labels.cpu().numpy(), len(inertias), history, inertias, converged


def _assign_and_sum(Xt, C):
    """Labels, per-cluster sums and counts, and sum of min(||c||^2 - 2 x.c), in one pass.

    Block by block of rows, as the numpy reference does; on a CPU the blocks stay in the
    cache, on a GPU they are large enough to fill it. ``index_add_`` gathers the sums (on
    torch 2.13's CPU it beat a one-hot matrix product by 1.5x, see NOTES.md).
    """
    import torch

    k = C.shape[0]
    c_sq = (C * C).sum(dim=1)
    labels = torch.empty(Xt.shape[0], dtype=torch.int64, device=Xt.device)
    sums = torch.zeros_like(C)
    best_total = torch.zeros((), dtype=Xt.dtype, device=Xt.device)
    rows = _block_rows(k) if Xt.device.type == "cpu" else max(1, 2**26 // k)
    for start in range(0, Xt.shape[0], rows):
        block = Xt[start : start + rows]
        best, idx = torch.addmm(c_sq, block, C.T, alpha=-2.0).min(dim=1)
        labels[start : start + rows] = idx
        best_total += best.sum()
        sums.index_add_(0, idx, block)
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
    return sums / counts[:, None]
