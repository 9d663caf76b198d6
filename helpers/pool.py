"""Pooling layers: max and average pooling (forward) and max pooling's backward pass.

Pooling slides a ``size x size`` window over every activation map independently (the
depth is unchanged) and keeps the window's maximum or mean. It has no parameters: it is
a fixed function of its input. The output size is the convolution formula with no
padding, ``W2 = (W1 - F)/S + 1``, computed by :func:`helpers.conv.output_size`'s code, so
a window that "doesn't fit" raises here too unless you pass ``floor=True`` (torch's
``ceil_mode=False`` behaviour: the last rows/columns are ignored).

All functions equal torch's ``F.max_pool2d`` / ``F.avg_pool2d`` (padding 0,
``ceil_mode=False``) and autograd through them. dtypes: float32 input stays float32,
anything else is computed in float64. ``method="torch"`` runs those torch functions
instead, on ``device`` (the CPU, or a GPU with ``device="cuda"``), and returns numpy.

Ties in max pooling: when several elements of a window share the maximum, the gradient
goes to ONE of them, the first in row-major order (smallest row, then smallest column),
exactly as torch does. Overlapping windows (``stride < size``) add their gradients.
"""

from __future__ import annotations

import numpy as np

from helpers._spatial import (
    _check_bool,
    _check_device,
    _check_size,
    _spatial_output_size,
    _taps,
    _to_torch,
    _work_dtype,
)
from helpers._validation import check_array, check_choice

__all__ = ["avg_pool2d", "max_pool2d", "max_pool2d_backward"]

METHODS = ("numpy", "torch")


def max_pool2d(x, size=2, stride=2, *, floor=False, method="numpy",
               device="cpu") -> np.ndarray:
    """Max pooling: the largest value of every ``size x size`` window, map by map.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Input batch (for one map, pass ``a[None, None]``). H and W may differ.
    size : int, default 2
        Window size F (windows are F x F), >= 1.
    stride : int, default 2
        Step S between windows, >= 1.
    floor : bool, default False
        False: raise a ValueError when the window doesn't fit (``stride`` does not divide
        ``H - size`` or ``W - size``). True: torch's behaviour, ignore the leftover
        rows/columns.
    method : {"numpy", "torch"}, default "numpy"
        "numpy": the reference below (read it). "torch": ``torch.nn.functional.max_pool2d``
        on ``device``; the same numbers.
    device : str or torch.device, default "cpu"
        Where ``method="torch"`` runs ("cuda", "mps", None = the best available); the
        numpy method runs on the CPU only.

    Returns
    -------
    numpy.ndarray, shape (N, C, H', W')
        float32 for float32 input, float64 otherwise.

    Shape
    -----
    - x: (N, C, H, W)
    - out: (N, C, H', W') with ``H' = (H - F)/S + 1`` and ``W' = (W - F)/S + 1``
      (exact; torch's ``floor((H - F)/S) + 1`` with ``floor=True``).

    Examples
    --------
    The slides' example, max pool with 2x2 filters and stride 2:

    >>> a = np.array([[1, 1, 2, 4],
    ...               [5, 6, 7, 8],
    ...               [3, 2, 1, 0],
    ...               [1, 2, 3, 4]])
    >>> max_pool2d(a[None, None], size=2, stride=2)[0, 0]
    array([[6., 8.],
           [3., 4.]])
    """
    x, size, stride, floor, H_out, W_out = _check_pool_args(x, size, stride, floor,
                                                           method=method, device=device)
    if method == "torch":
        return _pool_torch("max_pool2d", x, size, stride, device)
    return _pool(x, size, stride, H_out, W_out, np.maximum)


def avg_pool2d(x, size=2, stride=2, *, floor=False, method="numpy",
               device="cpu") -> np.ndarray:
    """Average pooling: the mean of every ``size x size`` window, map by map.

    Parameters, shapes, the ``floor`` option, ``method`` and ``device`` are those of
    :func:`max_pool2d`. Equals
    ``torch.nn.functional.avg_pool2d(x, size, stride)`` (no padding, so
    ``count_include_pad`` does not matter).

    Shape
    -----
    - x: (N, C, H, W)
    - out: (N, C, H', W') with ``H' = (H - F)/S + 1`` and ``W' = (W - F)/S + 1``

    Examples
    --------
    >>> a = np.array([[1, 1, 2, 4],
    ...               [5, 6, 7, 8],
    ...               [3, 2, 1, 0],
    ...               [1, 2, 3, 4]])
    >>> avg_pool2d(a[None, None])[0, 0]
    array([[3.25, 5.25],
           [2.  , 2.  ]])
    """
    x, size, stride, floor, H_out, W_out = _check_pool_args(x, size, stride, floor,
                                                           method=method, device=device)
    if method == "torch":
        return _pool_torch("avg_pool2d", x, size, stride, device)
    out = _pool(x, size, stride, H_out, W_out, np.add)
    out /= size * size
    return out


def max_pool2d_backward(dout, x, size=2, stride=2, *, floor=False, method="numpy",
                        device="cpu") -> np.ndarray:
    """Backward pass of :func:`max_pool2d`: route each window's gradient to its maximum.

    ``dx`` is zero except at the position of each window's maximum, which receives that
    window's ``dout``. Ties: the gradient goes to the FIRST maximal element of the window
    in row-major order (top row first, then leftmost), as torch does, never split.
    Overlapping windows (``stride < size``) that share a maximum add their gradients.

    Parameters
    ----------
    dout : array_like, shape (N, C, H', W')
        Upstream gradient, the shape of ``max_pool2d(x, size, stride)``.
    x, size, stride, floor
        Exactly as given to :func:`max_pool2d`.
    method, device
        As for :func:`max_pool2d`; "torch" runs autograd through ``F.max_pool2d``.

    Returns
    -------
    numpy.ndarray, shape (N, C, H, W)
        ``dx``; equals torch autograd through ``F.max_pool2d``.

    Shape
    -----
    - dout: (N, C, H', W') with ``H' = (H - F)/S + 1``, ``W' = (W - F)/S + 1``
    - dx: (N, C, H, W)

    Examples
    --------
    A window of four equal values sends its gradient to the top-left one:

    >>> x = np.array([[[[5.0, 5.0], [5.0, 5.0]]]])
    >>> max_pool2d_backward(np.array([[[[1.0]]]]), x)[0, 0]
    array([[1., 0.],
           [0., 0.]])
    """
    x, size, stride, floor, H_out, W_out = _check_pool_args(x, size, stride, floor, dout=dout,
                                                           method=method, device=device)
    dout = check_array(dout, "dout", ndim=4, dtype=x.dtype, shape_hint="(N, C, H', W')")
    want = x.shape[:2] + (H_out, W_out)
    if dout.shape != want:
        raise ValueError(
            f"dout must have the shape of max_pool2d's output (N, C, H', W') = {want}, "
            f"got {dout.shape}"
        )
    if method == "torch":
        return _max_pool_backward_torch(dout, x, size, stride, device)
    # Max pooling is separable: take the max across each row of a window, then down the
    # rows. Keeping the FIRST offset on ties in both passes (strict >) finds the first
    # maximum in row-major order: the top-most row that holds the window's maximum, and
    # the left-most column within that row.
    across, q_arg = _first_max(x, size, stride, W_out, axis=3)  # (N, C, H, W')
    _, p_arg = _first_max(across, size, stride, H_out, axis=2)  # (N, C, H', W')
    # The gradient retraces those steps backwards: each window's dout goes to its row
    # p_arg, then within that row to column q_arg. Overlapping windows add up.
    d_across = _route(dout, p_arg, size, stride, across.shape, axis=2)
    return _route(d_across, q_arg, size, stride, x.shape, axis=3)


def _first_max(a, size, stride, n_out, axis):
    """Max of every ``size``-long strided window of ``a`` along ``axis``, and its first offset."""
    best = _tap(a, 0, stride, n_out, axis).copy()
    arg = np.zeros(best.shape, dtype=np.min_scalar_type(size - 1))
    for offset in range(1, size):
        tap = _tap(a, offset, stride, n_out, axis)
        wins = tap > best  # strict: on a tie the earlier offset stays
        np.maximum(best, tap, out=best)
        np.copyto(arg, offset, where=wins)
    return best, arg


def _route(d, arg, size, stride, shape, axis):
    """Inverse of :func:`_first_max`: send ``d`` back to the offsets in ``arg``, adding overlaps."""
    out = np.zeros(shape, dtype=d.dtype)
    for offset in range(size):
        target = _tap(out, offset, stride, d.shape[axis], axis)
        target += d * (arg == offset)
    return out


def _tap(a, offset, stride, n_out, axis):
    """``a`` at position ``offset`` inside each of the n_out windows along ``axis`` (a view)."""
    index = [slice(None)] * a.ndim
    index[axis] = _taps(offset, stride, n_out)
    return a[tuple(index)]


def _pool(x, size, stride, H_out, W_out, combine):
    """Combine (np.maximum or np.add) every size x size window: down the rows, then across.

    Both max and sum are separable, so pooling each column segment of the windows and
    then the results across equals pooling each window whole, with 2*size whole-array
    operations instead of one small one per output number.
    """
    down = _combine_windows(x, size, stride, H_out, 2, combine)  # (N, C, H', W)
    return _combine_windows(down, size, stride, W_out, 3, combine)  # (N, C, H', W')


def _combine_windows(a, size, stride, n_out, axis, combine):
    """Combine the ``size`` strided slices of ``a`` along ``axis``: one per window offset."""
    out = _tap(a, 0, stride, n_out, axis).copy()
    for offset in range(1, size):
        combine(out, _tap(a, offset, stride, n_out, axis), out=out)
    return out


def _pool_torch(name, x, size, stride, device):
    """torch.nn.functional.max_pool2d / avg_pool2d on ``device``, back as numpy."""
    import torch
    import torch.nn.functional as tF

    from helpers.device import resolve_device

    with torch.no_grad():
        out = getattr(tF, name)(_to_torch(x, resolve_device(device)), size, stride)
    return out.cpu().numpy()


def _max_pool_backward_torch(dout, x, size, stride, device):
    """Autograd through torch.nn.functional.max_pool2d on ``device``, back as numpy."""
    import torch.nn.functional as tF

    from helpers.device import resolve_device

    dev = resolve_device(device)
    xt = _to_torch(x, dev).clone().requires_grad_(True)
    tF.max_pool2d(xt, size, stride).backward(_to_torch(dout, dev))
    return xt.grad.cpu().numpy()


def _check_pool_args(x, size, stride, floor, dout=None, method="numpy", device="cpu"):
    check_choice(method, "method", METHODS)
    _check_device(device, method)
    x = check_array(x, "x", ndim=4, dtype=_work_dtype(x, dout), shape_hint="(N, C, H, W)")
    size = _check_size(size, "size", min_value=1)
    stride = _check_size(stride, "stride", min_value=1)
    floor = _check_bool(floor, "floor")
    N, C, H, W = x.shape
    if min(H, W) < 1:
        raise ValueError(f"x must have at least one row and column, got shape {x.shape}")
    H_out = _spatial_output_size(
        H, size, stride, 0, floor, dim=f"height H={H} (x.shape[2])", f_name="size", kind="window"
    )
    W_out = _spatial_output_size(
        W, size, stride, 0, floor, dim=f"width W={W} (x.shape[3])", f_name="size", kind="window"
    )
    return x, size, stride, floor, H_out, W_out
