"""Convolution arithmetic and 2-D convolution layers (forward and backward).

The slides' formula for one spatial dimension is

    output = (N - F + 2P) / S + 1

for an N-wide input, an F x F filter, stride S and P zeros of padding on each side.
:func:`output_size` computes it and **raises** when the result is not an integer (the
slides' "doesn't fit!" case: a 3x3 filter at stride 3 on a 7x7 input); ``floor=True``
gives torch's behaviour instead, ``floor((N - F + 2P) / S) + 1``, which silently drops the
last rows and columns of the input. Every function in this module and in
:mod:`helpers.pool` uses that one formula, with the same ``floor`` switch.

:func:`conv2d` has three methods that give the same numbers:

- ``"naive"``: four loops, one dot product per output number (the CS231n way). Read this
  one; it is slow.
- ``"im2col"`` (the default): copy every receptive field into one column of a matrix,
  then one matrix multiplication by the (K, C*F*F) filter matrix, done a few images at a
  time so that the matrix stays in the CPU cache. Pure numpy (stride tricks), no
  compiled extension. :func:`conv2d_backward` uses the same matrix.
- ``"torch"``: ``torch.nn.functional.conv2d`` on ``device`` (the CPU by default, or a
  GPU: ``device="cuda"``), converted back to numpy.

Like every deep-learning library, :func:`conv2d` computes a cross-correlation (the filter
is not flipped). The mathematical convolution ``f * g`` of the slides flips the kernel;
:func:`cross_correlate2d` and :func:`convolve2d` show the difference on one 2-D map.

dtypes: when ``x`` and ``w`` (and ``b``) are all float32 the computation and the result
stay float32 (fast, as torch does); anything else is computed and returned in float64.

Pictures of all of this: https://github.com/vdumoulin/conv_arithmetic
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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

__all__ = [
    "ConvGrads",
    "conv2d",
    "conv2d_backward",
    "conv_params",
    "convolve2d",
    "cross_correlate2d",
    "output_size",
]

METHODS = ("naive", "im2col", "torch")
_CHUNK_BYTES = 2**22  # im2col: a chunk of images whose column matrix is about 4 MB


class ConvGrads(NamedTuple):
    """Gradients returned by :func:`conv2d_backward`; unpacks as ``dx, dw, db``."""

    dx: np.ndarray
    """(N, C, H, W): gradient of the loss with respect to the input ``x``."""
    dw: np.ndarray
    """(K, C, F, F): gradient with respect to the filters ``w``."""
    db: np.ndarray
    """(K,): gradient with respect to the biases ``b``."""


def output_size(n, f, stride=1, pad=0, *, floor=False) -> int:
    """Spatial output size of a convolution or pooling layer: ``(n - f + 2*pad)/stride + 1``.

    Parameters
    ----------
    n : int
        Input size along one spatial dimension (the slides' N, or W1 / H1), >= 1.
    f : int
        Filter (or pooling window) size F, >= 1.
    stride : int, default 1
        Step S between two filter positions, >= 1.
    pad : int, default 0
        Zeros P added on *each* side of the input, >= 0.
    floor : bool, default False
        False: raise when ``(n - f + 2*pad)`` is not a multiple of ``stride`` (the filter
        "doesn't fit"). True: round down like torch's ``nn.Conv2d`` / ``nn.MaxPool2d``
        (``floor((n - f + 2*pad)/stride) + 1``), silently ignoring the last rows/columns.

    Returns
    -------
    int
        The output size.

    Raises
    ------
    ValueError
        When the filter doesn't fit (with ``floor=False``), when ``f > n + 2*pad`` (no
        position fits at all, whatever ``floor`` says; torch raises too), or when an
        argument is a non-integral number (``stride=1.5``) or out of range
        (``stride=0``, ``pad=-1``). The message names the parameter.
    TypeError
        When an argument is not a number at all (``"3"``, None, True).

    Shape
    -----
    ``out = (n - f + 2*pad) / stride + 1`` exactly, or with ``floor=True``
    ``out = floor((n - f + 2*pad) / stride) + 1`` (torch's formula).

    Examples
    --------
    The slides' 7x7 input with a 3x3 filter:

    >>> output_size(7, 3, stride=1), output_size(7, 3, stride=2)
    (5, 3)
    >>> output_size(7, 3, stride=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: (7 - 3 + 2*0)/3 + 1 = 2.33 is not an integer: a 3x3 filter ... doesn't fit ...

    The full message: "... doesn't fit a 7x7 input; pad=1 (-> 3) or stride=2 (-> 3) would
    fit, or pass floor=True for torch's behaviour (-> 2)".

    >>> output_size(7, 3, stride=3, floor=True)
    2
    >>> output_size(7, 3, pad=1), output_size(227, 11, stride=4)
    (7, 55)
    """
    n = _check_size(n, "n", min_value=1)
    f = _check_size(f, "f", min_value=1)
    stride = _check_size(stride, "stride", min_value=1)
    pad = _check_size(pad, "pad", min_value=0)
    floor = _check_bool(floor, "floor")
    return _spatial_output_size(n, f, stride, pad, floor)


def conv_params(f, d_in, k, bias=True) -> int:
    """Number of learnable parameters of a conv layer: ``(f*f*d_in)*k`` weights, plus ``k`` biases.

    Each of the ``k`` filters spans the full input depth ``d_in``, so it has ``f*f*d_in``
    weights and one bias; the count does not depend on the input's height and width
    (parameter sharing) nor on stride or padding.

    Parameters
    ----------
    f : int
        Filter size F (filters are F x F), >= 1.
    d_in : int
        Input depth (channels) C, >= 1.
    k : int
        Number of filters K (= output depth), >= 1.
    bias : bool, default True
        Count one bias per filter.

    Returns
    -------
    int

    Examples
    --------
    The slides' 10 filters of 5x5 on a 32x32x3 input, and AlexNet's CONV1 ("35K"):

    >>> conv_params(5, 3, 10)
    760
    >>> conv_params(11, 3, 96, bias=False)
    34848
    """
    f = _check_size(f, "f", min_value=1)
    d_in = _check_size(d_in, "d_in", min_value=1)
    k = _check_size(k, "k", min_value=1)
    bias = _check_bool(bias, "bias")
    return (f * f * d_in) * k + (k if bias else 0)


def conv2d(x, w, b=None, stride=1, pad=0, *, method="im2col", floor=False,
           device="cpu") -> np.ndarray:
    """2-D convolution layer forward pass; equals ``torch.nn.functional.conv2d``.

    ``out[n, k, i, j] = b[k] + sum over c, p, q of
    w[k, c, p, q] * xpad[n, c, i*stride + p, j*stride + q]``, where ``xpad`` is ``x``
    with ``pad`` zeros on each side of H and W. This is a cross-correlation, as in every
    deep-learning library: the filter is not flipped (see :func:`convolve2d`).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Input batch. H and W may differ.
    w : array_like, shape (K, C, F, F)
        K square filters, each spanning the full input depth C.
    b : array_like of shape (K,), optional
        One bias per filter; None means no bias.
    stride : int, default 1
        Step S between filter positions (the same along H and W), >= 1.
    pad : int, default 0
        Zeros P added on each side of H and W, >= 0.
    method : {"im2col", "naive", "torch"}, default "im2col"
        ``"naive"``: explicit loops (read this one). ``"im2col"``: the filters times the
        matrix of receptive fields built from a stride-tricks view (fast, numpy only).
        ``"torch"``: ``torch.nn.functional.conv2d`` on ``device``. All three return the
        same numbers (to rounding).
    floor : bool, default False
        False (default): raise a ValueError, like :func:`output_size`, when the filter
        doesn't fit, i.e. ``stride`` does not divide ``H - F + 2P`` or ``W - F + 2P``.
        True: torch's behaviour, the last rows/columns that no full filter position
        covers are ignored.
    device : str or torch.device, default "cpu"
        Where ``method="torch"`` runs ("cuda", "cuda:1", "mps", None = the best available,
        see :func:`helpers.device.resolve_device`); the arrays go there and the result
        comes back as numpy, in the dtype given (float32 in, float32 out). The numpy
        methods run on the CPU only: any other device is a ValueError.

    Returns
    -------
    numpy.ndarray, shape (N, K, H', W')
        float32 when ``x``, ``w`` (and ``b``) are all float32, float64 otherwise.

    Shape
    -----
    - x: (N, C, H, W);  w: (K, C, F, F);  b: (K,)
    - out: (N, K, H', W') with ``H' = (H - F + 2P)/S + 1`` and ``W' = (W - F + 2P)/S + 1``
      (exact; torch's ``floor((H - F + 2P)/S) + 1`` with ``floor=True``).

    Raises
    ------
    ValueError
        Naming the parameter: ``x`` / ``w`` not 4-D, non-square filters, ``w``'s C not
        equal to ``x``'s C, ``b`` not of shape (K,), ``stride`` < 1, ``pad`` < 0 or either
        not an integer, a filter larger than the padded input, a filter that doesn't fit.

    Examples
    --------
    A 3x3 filter on a 1x1x4x5 input at stride 1, pad 1 keeps the size (same padding):

    >>> x = np.arange(20.0).reshape(1, 1, 4, 5)
    >>> w = np.ones((2, 1, 3, 3))
    >>> conv2d(x, w, pad=1).shape
    (1, 2, 4, 5)
    >>> conv2d(x, w)[0, 0]   # sum of each 3x3 window
    array([[ 54.,  63.,  72.],
           [ 99., 108., 117.]])
    >>> np.allclose(conv2d(x, w, method="naive"), conv2d(x, w, method="torch"))
    True
    """
    method = check_choice(method, "method", METHODS)
    _check_device(device, method)
    x, w, b, stride, pad, floor = _check_conv_args(x, w, b, stride, pad, floor)
    if method == "naive":
        return _conv2d_naive(x, w, b, stride, pad, floor)
    if method == "im2col":
        return _conv2d_im2col(x, w, b, stride, pad, floor)
    return _conv2d_torch(x, w, b, stride, pad, device)


def conv2d_backward(dout, x, w, stride=1, pad=0, *, floor=False) -> ConvGrads:
    """Backward pass of :func:`conv2d`: gradients of the loss with respect to x, w and b.

    Given ``dout = dL/d(out)`` for ``out = conv2d(x, w, b, stride, pad)``:

    - ``db[k] = sum of dout[:, k]``
    - ``dw[k, c, p, q] = sum over n, i, j of dout[n, k, i, j] * xpad[n, c, i*S + p, j*S + q]``
    - ``dx``: every output number sends ``dout[n, k, i, j] * w[k]`` back to the window of
      ``xpad`` it was computed from; windows that overlap add up; the padding is cut off.
      Input pixels that no window covers (``stride > F``, or ``floor=True``) get 0.

    Equals torch autograd through ``torch.nn.functional.conv2d``. The bias is not needed
    to compute any of the three gradients.

    Parameters
    ----------
    dout : array_like, shape (N, K, H', W')
        Upstream gradient, the shape of ``conv2d``'s output.
    x, w, stride, pad, floor
        Exactly as given to :func:`conv2d`.

    Returns
    -------
    ConvGrads
        Named tuple ``(dx, dw, db)`` with the shapes of ``x``, ``w`` and ``(K,)``; unpack
        it as ``dx, dw, db = conv2d_backward(...)``. dtype as in :func:`conv2d`.

    Shape
    -----
    - dout: (N, K, H', W') with ``H' = (H - F + 2P)/S + 1``, ``W' = (W - F + 2P)/S + 1``
    - dx: (N, C, H, W);  dw: (K, C, F, F);  db: (K,)

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 3, 3))
    >>> dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> dx[0, 0]   # how many windows cover each pixel
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    >>> db
    array([4.])
    """
    x, w, _, stride, pad, floor = _check_conv_args(x, w, None, stride, pad, floor, dout=dout)
    N, C, H, W = x.shape
    K, _, F, _ = w.shape
    H_out = _spatial_output_size(H, F, stride, pad, floor)
    W_out = _spatial_output_size(W, F, stride, pad, floor)
    dout = check_array(dout, "dout", ndim=4, dtype=x.dtype, shape_hint="(N, K, H', W')")
    if dout.shape != (N, K, H_out, W_out):
        raise ValueError(
            f"dout must have the shape of conv2d's output (N, K, H', W') = "
            f"{(N, K, H_out, W_out)}, got {dout.shape}"
        )

    xp = _pad(x, pad)
    windows = _windows(xp, F, stride, H_out, W_out)  # view (N, C, F, F, H', W')
    dout_mat = dout.reshape(N, K, H_out * W_out)
    w_mat = w.reshape(K, C * F * F)

    db = dout.sum(axis=(0, 2, 3))
    dw_mat = np.zeros((K, C * F * F), dtype=x.dtype)
    dxp = np.zeros_like(xp)
    for chunk in _chunks(N, C * F * F * H_out * W_out * x.itemsize):  # as in the forward
        cols = windows[chunk].reshape(-1, C * F * F, H_out * W_out)
        # dw: each filter weight meets, in every window, the input pixel it multiplied.
        dw_mat += np.matmul(dout_mat[chunk], cols.transpose(0, 2, 1)).sum(axis=0)
        # dcols: the gradient of every copied window; col2im adds each back where it
        # was copied from (overlapping windows add up).
        dcols = np.matmul(w_mat.T, dout_mat[chunk]).reshape(-1, C, F, F, H_out, W_out)
        for p in range(F):
            for q in range(F):
                taps = (chunk, slice(None), _taps(p, stride, H_out), _taps(q, stride, W_out))
                dxp[taps] += dcols[:, :, p, q]
    dw = dw_mat.reshape(w.shape)
    dx = dxp[:, :, pad : pad + H, pad : pad + W]
    return ConvGrads(dx=np.ascontiguousarray(dx), dw=dw, db=db)


def cross_correlate2d(image, kernel, mode="valid") -> np.ndarray:
    """Cross-correlation of one 2-D map with one 2-D kernel (no flip), like scipy's.

    ``out[i, j] = sum over p, q of image[i + p, j + q] * kernel[p, q]`` -- what a conv
    layer computes, and what ``scipy.signal.correlate2d`` returns (same modes, same
    numbers, zero fill).

    Parameters
    ----------
    image : array_like, shape (H, W)
    kernel : array_like, shape (Fh, Fw)
        May be rectangular; in mode "valid" it must not be larger than ``image``.
    mode : {"valid", "full", "same"}, default "valid"
        "valid": only positions where the kernel lies inside the image, (H-Fh+1, W-Fw+1).
        "full": every overlap, (H+Fh-1, W+Fw-1). "same": the centre part of "full" with the
        shape of ``image``, centred as scipy does.

    Returns
    -------
    numpy.ndarray (float64)

    Examples
    --------
    >>> image = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
    >>> kernel = np.array([[1.0, 0], [0, -1]])
    >>> cross_correlate2d(image, kernel)
    array([[-4., -4.],
           [-4., -4.]])
    """
    return _correlate2d(image, kernel, mode, flip=False)


def convolve2d(image, kernel, mode="valid") -> np.ndarray:
    """Mathematical 2-D convolution ``f * g``: cross-correlation with the kernel flipped.

    ``(f * g)[x, y] = sum over n1, n2 of f[n1, n2] g[x - n1, y - n2]`` (the slides'
    formula): the kernel is flipped both ways before sliding. Equals
    ``scipy.signal.convolve2d`` (same modes, zero fill). A deep-learning "convolution"
    is :func:`cross_correlate2d`; the two agree only for kernels symmetric under a
    180-degree rotation.

    Parameters
    ----------
    image : array_like, shape (H, W)
    kernel : array_like, shape (Fh, Fw)
    mode : {"valid", "full", "same"}, default "valid"
        As in :func:`cross_correlate2d`; "same" is centred as ``scipy.signal.convolve2d``.

    Returns
    -------
    numpy.ndarray (float64)

    Examples
    --------
    >>> image = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
    >>> kernel = np.array([[1.0, 0], [0, -1]])
    >>> convolve2d(image, kernel)
    array([[4., 4.],
           [4., 4.]])
    >>> np.array_equal(convolve2d(image, kernel), cross_correlate2d(image, kernel[::-1, ::-1]))
    True
    """
    return _correlate2d(image, kernel, mode, flip=True)


# --------------------------------------------------------------------------------------
# The three forward methods


def _conv2d_naive(x, w, b, stride, pad, floor):
    """CS231n-style loops: one output number = one window of xpad dotted with one filter."""
    N, C, H, W = x.shape
    K, _, F, _ = w.shape
    H_out = _spatial_output_size(H, F, stride, pad, floor)
    W_out = _spatial_output_size(W, F, stride, pad, floor)
    xp = _pad(x, pad)
    out = np.zeros((N, K, H_out, W_out), dtype=x.dtype)
    for n in range(N):  # every image
        for k in range(K):  # every filter
            for i in range(H_out):  # every output row
                for j in range(W_out):  # every output column
                    top, left = i * stride, j * stride
                    window = xp[n, :, top : top + F, left : left + F]  # (C, F, F)
                    out[n, k, i, j] = np.sum(window * w[k])
            if b is not None:
                out[n, k] += b[k]
    return out


def _conv2d_im2col(x, w, b, stride, pad, floor):
    """Copy every receptive field into a column, then one matrix product per chunk of images."""
    N, C, H, W = x.shape
    K, _, F, _ = w.shape
    H_out = _spatial_output_size(H, F, stride, pad, floor)
    W_out = _spatial_output_size(W, F, stride, pad, floor)
    windows = _windows(_pad(x, pad), F, stride, H_out, W_out)  # view (N, C, F, F, H', W')
    w_mat = w.reshape(K, C * F * F)
    out = np.empty((N, K, H_out * W_out), dtype=x.dtype)
    for chunk in _chunks(N, C * F * F * H_out * W_out * x.itemsize):
        cols = windows[chunk].reshape(-1, C * F * F, H_out * W_out)  # the im2col copy
        np.matmul(w_mat, cols, out=out[chunk])  # (K, C*F*F) @ (C*F*F, H'*W') per image
    if b is not None:
        out += b[:, None]
    return out.reshape(N, K, H_out, W_out)


def _conv2d_torch(x, w, b, stride, pad, device="cpu"):
    import torch
    import torch.nn.functional as tF

    from helpers.device import resolve_device

    dev = resolve_device(device)
    with torch.no_grad():
        bias = None if b is None else _to_torch(b, dev)
        out = tF.conv2d(_to_torch(x, dev), _to_torch(w, dev), bias, stride=stride, padding=pad)
    return out.cpu().numpy()


# --------------------------------------------------------------------------------------
# Shared pieces (the arithmetic also used by helpers.pool lives in helpers._spatial)


def _check_conv_args(x, w, b, stride, pad, floor, dout=None):
    dtype = _work_dtype(x, w, b, dout)
    x = check_array(x, "x", ndim=4, dtype=dtype, shape_hint="(N, C, H, W)")
    w = check_array(w, "w", ndim=4, dtype=dtype, shape_hint="(K, C, F, F)")
    stride = _check_size(stride, "stride", min_value=1)
    pad = _check_size(pad, "pad", min_value=0)
    floor = _check_bool(floor, "floor")
    N, C, H, W = x.shape
    K, C_w, F, F2 = w.shape
    if min(C, H, W) < 1:
        raise ValueError(f"x must have at least one channel, row and column, got shape {x.shape}")
    if min(K, F, F2) < 1:
        raise ValueError(f"w must hold at least one non-empty filter, got shape {w.shape}")
    if F != F2:
        raise ValueError(
            f"w must hold square F x F filters (K, C, F, F), got {F}x{F2} filters "
            f"(w.shape = {w.shape})"
        )
    if C_w != C:
        raise ValueError(
            f"w has C={C_w} input channels (w.shape[1]) but x has C={C} channels "
            f"(x.shape[1]); each filter must span the full input depth, so w must have "
            f"shape (K, {C}, F, F)"
        )
    if b is not None:
        b = check_array(b, "b", ndim=1, dtype=dtype, shape_hint="(K,)")
        if b.shape != (K,):
            raise ValueError(f"b must have shape (K,) = ({K},), one bias per filter; got {b.shape}")
    # Check both dimensions up front so that every method raises the same error.
    _spatial_output_size(H, F, stride, pad, floor, dim=f"height H={H} (x.shape[2])")
    _spatial_output_size(W, F, stride, pad, floor, dim=f"width W={W} (x.shape[3])")
    return x, w, b, stride, pad, floor


def _pad(x, pad):
    """Zero-pad the last two axes by ``pad`` on each side (no copy when pad == 0)."""
    if pad == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def _chunks(n, bytes_per_item):
    """Slices of range(n) whose im2col matrices take about _CHUNK_BYTES each.

    Working on a few images at a time keeps their column matrix in the CPU cache and the
    extra memory bounded (the full matrix is F*F/stride**2 times larger than x).
    """
    step = max(1, _CHUNK_BYTES // max(1, bytes_per_item))
    return [slice(start, start + step) for start in range(0, n, step)]


def _windows(xp, F, stride, H_out, W_out):
    """View (no copy) of every F x F receptive field of the padded input xp (N, C, Hp, Wp).

    Returns shape (N, C, F, F, H', W'): ``[n, c, p, q, i, j]`` is the pixel that filter
    weight ``(c, p, q)`` multiplies at output position ``(i, j)``. Reshaping it to
    (N, C*F*F, H'*W') copies it into the im2col matrix, laid out so that
    ``w.reshape(K, C*F*F) @ cols`` is already in NCHW order.
    """
    windows = sliding_window_view(xp, (F, F), axis=(2, 3))  # (N, C, Hp-F+1, Wp-F+1, F, F)
    windows = windows[:, :, : stride * H_out : stride, : stride * W_out : stride]
    return windows.transpose(0, 1, 4, 5, 2, 3)


def _correlate2d(image, kernel, mode, flip):
    image = check_array(image, "image", ndim=2, shape_hint="(H, W)")
    kernel = check_array(kernel, "kernel", ndim=2, shape_hint="(Fh, Fw)")
    mode = check_choice(mode, "mode", ("valid", "full", "same"))
    if image.size == 0 or kernel.size == 0:
        raise ValueError(
            f"image and kernel must not be empty, got shapes {image.shape} and {kernel.shape}"
        )
    (H, W), (Fh, Fw) = image.shape, kernel.shape
    if mode == "valid" and (Fh > H or Fw > W):
        raise ValueError(
            f"kernel of shape {kernel.shape} is larger than image of shape {image.shape}; "
            f"mode='valid' needs kernel <= image in both dimensions (or use mode='full')"
        )
    if flip:
        kernel = kernel[::-1, ::-1]
    if mode != "valid":
        image = np.pad(image, ((Fh - 1, Fh - 1), (Fw - 1, Fw - 1)))
    out = np.einsum("ijpq,pq->ij", sliding_window_view(image, (Fh, Fw)), kernel)
    if mode == "same":
        # scipy centres "same" inside "full"; for even kernels correlation and
        # convolution round the centre in opposite directions.
        top = (Fh - 1) // 2 if flip else Fh // 2
        left = (Fw - 1) // 2 if flip else Fw // 2
        out = out[top : top + H, left : left + W]
    return out
