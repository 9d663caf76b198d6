"""Pick the torch device a backend should use (the d2l ``try_gpu`` idea), and its dtype.

The one dtype rule of every torch backend (K-Means, DBSCAN; :func:`torch_dtype_for`):
float64 on the CPU, where the backends reproduce the numpy references exactly, and float32
on a GPU (cuda, mps), where float64 runs 2x (data-centre cards) to 64x (consumer cards)
slower and MPS has none. Where a backend promises exact answers it settles the few cases
float32 cannot decide in float64 (DBSCAN: pairs at ``eps`` within rounding); K-Means on a
GPU agrees with the reference to float32 tolerance. ``conv2d(method="torch")``, the
pooling functions and :mod:`helpers.train` keep the dtype they are given.
"""

from __future__ import annotations


def default_device():
    """Return the best available ``torch.device``: cuda, then mps, then cpu.

    Examples
    --------
    >>> default_device().type in {"cuda", "mps", "cpu"}
    True
    """
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device=None):
    """Turn ``device`` (None, a string such as "cuda:0", or a torch.device) into a torch.device.

    ``None`` means :func:`default_device`. An unavailable device - no CUDA, no MPS, or a
    GPU index the machine does not have ("cuda:7" on a one-GPU machine) - raises
    ``ValueError`` naming the ``device`` parameter rather than failing later inside torch.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be None, 'cpu', 'cuda', 'mps' or a torch.device; got {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA GPU is available; use device=None or 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ValueError(f"device={device!r} was asked for but this machine has {count} CUDA "
                         f"GPU{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1}); use "
                         f"device='cuda', None or 'cpu'")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device={device!r} was asked for but MPS is not available; use device=None or 'cpu'")
    return dev


def torch_dtype_for(device):
    """The torch backends' dtype on ``device``: float64 on the CPU (exact agreement with the
    numpy references), float32 on a GPU (see the module's notes).

    Examples
    --------
    >>> import torch
    >>> torch_dtype_for(torch.device("cpu")), torch_dtype_for(torch.device("cuda"))
    (torch.float64, torch.float32)
    """
    import torch

    return torch.float64 if device.type == "cpu" else torch.float32
