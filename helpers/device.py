"""Pick the torch device a backend should use (the d2l ``try_gpu`` idea)."""

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

    ``None`` means :func:`default_device`. An unavailable device raises ``ValueError``
    naming the ``device`` parameter rather than failing later inside torch.
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
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device={device!r} was asked for but MPS is not available; use device=None or 'cpu'")
    return dev


def torch_dtype_for(device):
    """float64 on the CPU (exact agreement with the numpy references), float32 on accelerators."""
    import torch

    return torch.float64 if device.type == "cpu" else torch.float32
