"""Torch backend of :func:`helpers.clustering.kmeans`: the same Lloyd loop, on a device.

Kept beside the reference so the two read alike; only the array library changes. The rare
empty-cluster relocation is delegated to the numpy reference so both backends pick exactly
the same points.
"""

from __future__ import annotations

from helpers.clustering import relocate_empty_clusters
from helpers.device import resolve_device, torch_dtype_for

_CHUNK = 65536  # rows per distance block: bounds memory at _CHUNK * k floats on the device


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
    for _ in range(max_iter):
        labels, min_d2 = _assign(Xt, C)
        inertias.append(float(min_d2.sum()))
        C_new = _update(Xt, labels, C, X)
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
    labels, _ = _assign(Xt, C)
    return history[-1].copy(), labels.cpu().numpy(), len(inertias), history, inertias, converged


def _assign(Xt, C):
    import torch

    c_sq = (C * C).sum(dim=1)
    labels = torch.empty(Xt.shape[0], dtype=torch.int64, device=Xt.device)
    min_d2 = torch.empty(Xt.shape[0], dtype=Xt.dtype, device=Xt.device)
    for start in range(0, Xt.shape[0], _CHUNK):
        block = Xt[start : start + _CHUNK]
        d2 = torch.addmm(c_sq, block, C.T, alpha=-2.0)
        best, idx = d2.min(dim=1)
        labels[start : start + _CHUNK] = idx
        min_d2[start : start + _CHUNK] = (best + (block * block).sum(dim=1)).clamp_min(0.0)
    return labels, min_d2


def _update(Xt, labels, C, X_numpy):
    import torch

    k, d = C.shape
    sums = torch.zeros((k, d), dtype=Xt.dtype, device=Xt.device).index_add_(0, labels, Xt)
    counts = torch.bincount(labels, minlength=k).to(Xt.dtype)
    if bool((counts == 0).any()):
        sums_np = sums.double().cpu().numpy()
        counts_np = counts.double().cpu().numpy()
        relocate_empty_clusters(X_numpy, labels.cpu().numpy(), C.double().cpu().numpy(),
                                sums_np, counts_np)
        sums = torch.as_tensor(sums_np, dtype=Xt.dtype, device=Xt.device)
        counts = torch.as_tensor(counts_np, dtype=Xt.dtype, device=Xt.device)
    return sums / counts[:, None]
