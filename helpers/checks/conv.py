"""Checkers for unit 03-convolution. Each compares a student's function with ``helpers.conv``
(itself tested against torch and scipy) on problems made from seeds and the slides' examples.

Two exercises must *refuse* some inputs: ``conv_output_size`` when the filter doesn't fit and
``same_padding`` for an even filter. For those checks a raised ``ValueError`` (any message,
any subclass) is the answer, recorded as the string ``"ValueError"`` so that the grading
harness can judge it again outside the student's kernel.

Examples
--------
>>> from helpers.conv import output_size
>>> check_conv_output_size(output_size)          # the reference passes its own check
>>> check_conv_output_size(lambda N, F, S, P: (N - F + 2 * P) // S + 1)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
helpers.checks._core.CheckFailure: the filter doesn't fit on N=7, F=3, S=3, P=0 ...
"""

from __future__ import annotations

import functools

import numpy as np

from helpers import conv as ref
from helpers.checks._core import (
    Case,
    Check,
    CheckFailure,
    _fmt,
    as_array,
    expect_close,
    expect_equal,
    expect_shape,
)

__all__ = [
    "RAISED",
    "check_conv_output_size",
    "check_conv_layer_params",
    "check_conv2d_forward",
    "check_same_padding",
    "check_conv1x1",
    "check_flip_kernel",
    "check_convolve_via_correlate",
]

RAISED = "ValueError"  # the recorded answer of a call that raised ValueError


class RaisesCheck(Check):
    """A Check whose function must raise ``ValueError`` on some cases: such a call's answer
    is :data:`RAISED`, judged like any other answer (here and in the grading harness)."""

    def __call__(self, fn, **params):
        return super().__call__(_value_error_as_answer(fn), **params)


def _value_error_as_answer(fn):
    if not callable(fn):
        return fn  # Check reports "should be a function"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError:
            return RAISED

    return wrapper


# --------------------------------------------------------------------------- output size

# The slides' examples (and AlexNet's CONV1) with what they show.
SLIDE_SIZES = [
    ((7, 3, 1, 0), "the slides' 7x7 input, 3x3 filter, stride 1"),
    ((7, 3, 2, 0), "the slides' 7x7 input, 3x3 filter, stride 2"),
    ((7, 3, 3, 0), "the slides' 7x7 input, 3x3 filter, stride 3 (doesn't fit!)"),
    ((7, 3, 1, 1), "the slides' 7x7 input, 3x3 filter, stride 1, pad 1"),
    ((32, 5, 1, 0), "32x32 input, 5x5 filter, stride 1"),
    ((32, 5, 1, 2), "the slides' 32x32x3 input with 5x5 filters, stride 1, pad 2"),
    ((227, 11, 4, 0), "AlexNet's CONV1: 227x227 input, 11x11 filters, stride 4"),
    ((224, 11, 4, 0), "224x224 input, 11x11 filters, stride 4 (the AlexNet paper's 224)"),
    ((3, 5, 1, 0), "a 5x5 filter on a 3x3 input without padding (larger than the input)"),
    ((3, 5, 1, 1), "a 5x5 filter on a 3x3 input with pad 1 (5x5 padded: fits once)"),
]


def _size_cases(seeds=(), slides=True):
    cases = []
    if slides:
        for (N, F, S, P), what in SLIDE_SIZES:
            cases.append(Case((N, F, S, P), f"N={N}, F={F}, S={S}, P={P} ({what})"))
    for seed in seeds:
        N, F, S, P = _random_size_problem(seed)
        cases.append(Case((N, F, S, P), f"N={N}, F={F}, S={S}, P={P} (seed={seed})"))
    return cases


def _random_size_problem(seed):
    """Seeds cycle through: fits exactly / doesn't fit / random / larger than the input."""
    rng = np.random.default_rng(seed)
    S = int(rng.integers(1, 5))
    F = int(rng.integers(1, 12))
    P = int(rng.integers(0, 4))
    kind = seed % 4
    if kind == 0:  # fits by construction
        n_out = int(rng.integers(1, 40))
        N = (n_out - 1) * S + F - 2 * P
        if N < 1:
            P, N = 0, (n_out - 1) * S + F
    elif kind == 1:  # doesn't fit by construction
        S = int(rng.integers(2, 5))
        N = int(rng.integers(F, F + 40))
        if (N - F + 2 * P) % S == 0:
            N += 1
    elif kind == 2:  # anything
        N = int(rng.integers(1, 64))
    else:  # the filter is larger than the padded input
        N = int(rng.integers(1, 10))
        F = N + 2 * P + int(rng.integers(1, 4))
    return N, F, S, P


def _size_judge(case, got):
    N, F, S, P = case.args
    where = case.description
    exact = (N - F + 2 * P) / S + 1
    try:
        want = ref.output_size(N, F, S, P)
    except ValueError:
        want = RAISED
    if want == RAISED:
        if got == RAISED:
            return
        why = (f"F={F} is larger than the padded input N + 2P = {N + 2 * P}"
               if F > N + 2 * P else
               f"(N - F + 2P)/S + 1 = ({N} - {F} + 2*{P})/{S} + 1 = {exact:.4g} is not an "
               f"integer")
        raise CheckFailure(f"the filter doesn't fit on {where}: {why}, so conv_output_size "
                           f"should raise ValueError, but it returned {got!r}")
    if got == RAISED:
        raise CheckFailure(f"conv_output_size raised ValueError on {where}, but the filter "
                           f"fits: (N - F + 2P)/S + 1 = ({N} - {F} + 2*{P})/{S} + 1 = {want}")
    value = _number(got, "conv_output_size", where)
    if value != want:
        raise CheckFailure(f"conv_output_size should be (N - F + 2P)/S + 1 = "
                           f"({N} - {F} + 2*{P})/{S} + 1 = {want} on {where}, got {got!r}")


check_conv_output_size = RaisesCheck("conv.output_size", "conv_output_size", _size_cases,
                                     _size_judge)


# --------------------------------------------------------------------------- parameters

SLIDE_PARAMS = [
    ((5, 3, 10, True), "the slides' 10 filters of 5x5 on a 32x32x3 input (760)"),
    ((11, 3, 96, False), "AlexNet's CONV1 weights only: (11*11*3)*96 (the slides' '35K')"),
    ((11, 3, 96, True), "AlexNet's CONV1 with its 96 biases"),
    ((1, 64, 32, True), "32 1x1 filters on a 64-deep input"),
]


def _params_cases(seeds=(), slides=True):
    cases = []
    if slides:
        for args, what in SLIDE_PARAMS:
            cases.append(Case(args, f"F={args[0]}, D_in={args[1]}, K={args[2]}, "
                                    f"bias={args[3]} ({what})"))
    for seed in seeds:
        rng = np.random.default_rng(seed)
        F = int(rng.choice([1, 3, 5, 7, 11]))
        D_in = int(rng.choice([1, 3, 16, 64, 256, 512]))
        K = int(rng.choice([1, 6, 10, 32, 64, 128, 384]))
        bias = bool(seed % 2)
        cases.append(Case((F, D_in, K, bias), f"F={F}, D_in={D_in}, K={K}, bias={bias} "
                                              f"(seed={seed})"))
    return cases


def _params_judge(case, got):
    F, D_in, K, bias = case.args
    want = ref.conv_params(F, D_in, K, bias=bias)
    value = _number(got, "conv_layer_params", case.description)
    if value != want:
        hint = ""
        if value == (want - K if bias else want + K):
            hint = " (the biases: one per filter, counted only when bias=True)"
        elif value == F * F * D_in + (1 if bias else 0):
            hint = " (that is one filter; there are K of them)"
        raise CheckFailure(f"conv_layer_params should be (F*F*D_in)*K{' + K' if bias else ''}"
                           f" = {want} on {case.description}, got {got!r}{hint}")


check_conv_layer_params = Check("conv.layer_params", "conv_layer_params", _params_cases,
                                _params_judge)


# --------------------------------------------------------------------------- conv2d forward

def conv_problem(seed):
    """A random conv2d problem (x, w, b, stride, pad) on which the filter fits exactly.

    Shapes, strides (1..3), paddings (0..2) and filter sizes (1, 2, 3, 5) vary with the seed;
    about half the inputs are not square.
    """
    rng = np.random.default_rng(seed)
    n, C, K = (int(v) for v in rng.integers(1, 4, size=3))
    F = int(rng.choice([1, 2, 3, 3, 5]))
    S = int(rng.integers(1, 4))
    P = int(rng.integers(0, 3))
    H_out, W_out = (int(v) for v in rng.integers(1, 6, size=2))
    if seed % 2 == 0:
        W_out = H_out
    H, W = (H_out - 1) * S + F - 2 * P, (W_out - 1) * S + F - 2 * P
    if min(H, W) < 1:
        P = 0
        H, W = (H_out - 1) * S + F, (W_out - 1) * S + F
    x = rng.standard_normal((n, C, H, W))
    w = rng.standard_normal((K, C, F, F))
    b = rng.standard_normal(K)
    return x, w, b, S, P


def _conv_cases(seeds=(0, 1, 2)):
    cases = []
    for seed in seeds:
        x, w, b, S, P = conv_problem(seed)
        cases.append(Case((x, w, b, S, P), f"x of shape {x.shape}, w of shape {w.shape}, "
                                           f"stride={S}, pad={P} (seed={seed})"))
    return cases


def _conv_judge(case, got):
    x, w, b, S, P = case.args
    where = case.description
    want = ref.conv2d(x, w, b, S, P)
    got = as_array(got, "conv2d_forward(x, w, b, stride, pad)", where)
    expect_shape(got, want.shape, "the output", where, names="(N, K, H', W')")
    if np.allclose(got, want - b[None, :, None, None], rtol=1e-7, atol=1e-9) and np.any(b):
        raise CheckFailure(f"the output is right except for the bias on {where}: add b[k] to "
                           "every number of activation map k")
    expect_close(got, want, "the output", where, rtol=1e-7, atol=1e-9)


check_conv2d_forward = Check("conv.conv2d_forward", "conv2d_forward", _conv_cases,
                             _conv_judge)


# --------------------------------------------------------------------------- same padding

def _same_cases(sizes=(1, 3, 5, 7)):
    return [Case((int(F),), f"F={int(F)}") for F in sizes]


def _same_judge(case, got):
    (F,) = case.args
    if F % 2 == 0:
        if got != RAISED:
            raise CheckFailure(f"for an even filter F={F}, (F-1)/2 = {(F - 1) / 2} is not an "
                               "integer: no padding keeps the size at stride 1 (it would take "
                               f"{(F - 1) / 2} zeros on each side), so same_padding should "
                               f"raise ValueError, got {got!r}")
        return
    want = (F - 1) // 2
    if got == RAISED:
        raise CheckFailure(f"same_padding raised ValueError for the odd filter F={F}; "
                           f"expected (F-1)/2 = {want}")
    value = _number(got, "same_padding", case.description)
    if value != want:
        raise CheckFailure(f"same_padding({F}) should be (F-1)/2 = {want}, got {got!r}")


check_same_padding = RaisesCheck("conv.same_padding", "same_padding", _same_cases,
                                 _same_judge)


# --------------------------------------------------------------------------- 1x1 convolution

def _conv1x1_cases(seeds=(0, 1, 2)):
    cases = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 3))
        C, K = (int(v) for v in rng.integers(1, 7, size=2))
        H, W = (int(v) for v in rng.integers(1, 7, size=2))
        x = rng.standard_normal((n, C, H, W))
        w = rng.standard_normal((K, C))
        cases.append(Case((x, w), f"x of shape {x.shape}, w of shape {w.shape} (seed={seed})"))
    return cases


def _conv1x1_judge(case, got):
    x, w = case.args
    where = case.description
    want = ref.conv2d(x, w[:, :, None, None])  # a 1x1 conv layer, no bias
    got = as_array(got, "conv1x1(x, w)", where)
    expect_shape(got, want.shape, "the output", where, names="(N, K, H, W)")
    N, C, H, W = x.shape
    no_transpose = (w @ x.reshape(C, -1)).reshape(want.shape)  # C not moved first
    if not np.allclose(want, no_transpose) and np.allclose(got, no_transpose):
        raise CheckFailure(
            f"wrong values in the output on {where}: x.reshape(C, -1) mixes images and "
            "channels, because C is not the first axis of x (N, C, H, W). Move C first, "
            "x.transpose(1, 0, 2, 3).reshape(C, -1), and the result's K axis back to second "
            "place (or use np.einsum('kc,nchw->nkhw', w, x))")
    expect_close(got, want, "the output (vs a conv layer with 1x1 filters)", where)


check_conv1x1 = Check("conv.conv1x1", "conv1x1", _conv1x1_cases, _conv1x1_judge)


# --------------------------------------------------------------------------- flipping

def _kernel(rng, rectangular):
    Fh = int(rng.integers(1, 6))
    Fw = int(rng.integers(1, 6)) if rectangular else Fh
    return rng.integers(-4, 5, size=(Fh, Fw)).astype(float)


def _flip_cases(seeds=(0, 1, 2), rectangular=False):
    cases = [Case((np.array([[1.0, 2.0], [3.0, 4.0]]),), "the 2x2 kernel [[1, 2], [3, 4]]")]
    for seed in seeds:
        k = _kernel(np.random.default_rng(seed), rectangular)
        cases.append(Case((k,), f"a kernel of shape {k.shape} (seed={seed})"))
    return cases


def _flip_judge(case, got):
    (kernel,) = case.args
    where = case.description
    got = as_array(got, "flip_kernel(kernel)", where)
    expect_shape(got, kernel.shape, "the flipped kernel", where)
    want = kernel[::-1, ::-1]
    for wrong, what in ((kernel[::-1], "only the rows"), (kernel[:, ::-1], "only the columns"),
                        (kernel.T, "a transpose")):
        if not np.array_equal(want, wrong) and np.array_equal(got, wrong):
            raise CheckFailure(f"flip_kernel flipped {what} on {where}; f*g flips the kernel "
                               "both ways (a 180-degree rotation): g[x - n1, y - n2]")
    expect_equal(got, want, "the flipped kernel", where)


check_flip_kernel = Check("conv.flip_kernel", "flip_kernel", _flip_cases, _flip_judge)


def _convolve_cases(seeds=(0, 1, 2), rectangular=False):
    cases = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        kernel = _kernel(rng, rectangular)
        H, W = (int(v) for v in rng.integers(5, 11, size=2))
        image = rng.integers(0, 10, size=(H, W)).astype(float)
        cases.append(Case((image, kernel), f"a {H}x{W} image and a kernel of shape "
                                           f"{kernel.shape} (seed={seed})"))
    return cases


def _convolve_judge(case, got):
    """Compared with scipy.signal.convolve2d(image, kernel, mode="valid")."""
    from scipy.signal import convolve2d

    image, kernel = case.args
    where = case.description
    want = convolve2d(image, kernel, mode="valid")
    got = as_array(got, "convolve_via_correlate(image, kernel)", where)
    expect_shape(got, want.shape, "the convolution", where, names="(H - Fh + 1, W - Fw + 1)")
    plain = ref.cross_correlate2d(image, kernel)
    if np.allclose(got, want):
        return
    first = _first_difference(got, want)
    shown = (f"at index {first}: got {_fmt(got[first])}, expected {_fmt(want[first])} "
             f"(top-left corner: got {_fmt(got[0, 0])}, expected {_fmt(want[0, 0])})")
    if not np.allclose(want, plain) and np.allclose(got, plain):
        raise CheckFailure(f"this is the cross-correlation (what a conv layer computes), not the "
                           f"convolution f*g, on {where}, {shown}: did you flip the kernel? "
                           "Correlate with flip_kernel(kernel)")
    for half, axes in ((kernel[::-1], "rows"), (kernel[:, ::-1], "columns")):
        if np.allclose(got, ref.cross_correlate2d(image, half)):
            raise CheckFailure(f"wrong values on {where}, {shown}: the kernel was flipped along "
                               f"its {axes} only; flip both rows and columns (180 degrees)")
    raise CheckFailure(f"wrong values in the convolution (vs scipy.signal.convolve2d) on "
                       f"{where}, {shown}: did you flip the kernel (rows and columns) and "
                       "correlate in 'valid' mode?")


def _first_difference(got, want):
    bad = np.argwhere(~np.isclose(got, want, rtol=1e-7, atol=1e-9))
    return tuple(int(i) for i in bad[0]) if len(bad) else (0,) * got.ndim


check_convolve_via_correlate = Check("conv.convolve_via_correlate", "convolve_via_correlate",
                                     _convolve_cases, _convolve_judge)


# --------------------------------------------------------------------------- internals

def _number(got, what, where):
    """A whole number (int, or a float / 0-d array equal to one), else a CheckFailure."""
    if isinstance(got, bool | np.bool_) or isinstance(got, str):
        raise CheckFailure(f"{what} should return a number on {where}, got {got!r}")
    arr = as_array(got, what, where)
    if arr.shape != ():
        raise CheckFailure(f"{what} should return a single number on {where}, got an array "
                           f"of shape {arr.shape}")
    value = float(arr)
    if not np.isfinite(value) or value != round(value):
        raise CheckFailure(f"{what} should return a whole number on {where}, got {got!r}")
    return int(value)
