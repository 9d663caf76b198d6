"""Checkers for unit 04-pooling. Each compares a student's function with :mod:`helpers.pool`
(which equals torch's ``F.max_pool2d`` / ``F.avg_pool2d`` and autograd, see
``tests/test_pool.py``) or with :func:`helpers.conv.output_size`.

Every check runs a few hand-made problems first (the slides' 4x4 example, windows full of
equal values, all-negative inputs, overlapping windows that share their maximum), then
problems made from seeds: the visible tests use the default seeds, the hidden tests others.
When an answer is wrong, the judge also tries the usual mistakes (a maximum that starts at
0, the gradient sent to every tied maximum, torch's floor instead of "doesn't fit", ...) and
names the one that matches, so the message says what to fix.

Examples
--------
>>> from helpers.pool import max_pool2d
>>> check_max_pool_forward(lambda x, F, S: max_pool2d(x, F, S))   # the reference passes
"""

from __future__ import annotations

import numbers

import numpy as np

from helpers import pool as ref
from helpers.checks._core import (
    Case,
    Check,
    CheckFailure,
    as_array,
    expect_close,
    expect_shape,
)
from helpers.conv import output_size

__all__ = [
    "RAISED",
    "SLIDE_EXAMPLE",
    "check_pool_output_size",
    "check_max_pool_forward",
    "check_max_pool_backward",
    "check_avg_pool_forward",
    "pool_problem",
]

SLIDE_EXAMPLE = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=float)
RAISED = "ValueError"  # what is recorded when the student's function raises a ValueError
# (F, S) settings the seeded problems draw from: the common ones, overlapping, gaps, 1x1.
SETTINGS = ((2, 2), (3, 2), (2, 1), (3, 3), (1, 1), (2, 3), (4, 2), (3, 1))
IMAGE_SIZE = (48, 72)


def pool_problem(seed, *, ties=False):
    """A pooling problem ``(x, F, S, description)`` made from ``seed``: NCHW, fitting.

    N in 1..3, C in 1..4, an output of 1..5 rows and columns (not square in general), and
    the input sized so that the window fits exactly. ``ties=True`` draws integers 0..2, so
    that most windows hold their maximum more than once.
    """
    rng = np.random.default_rng(seed)
    F, S = SETTINGS[seed % len(SETTINGS)]
    N, C = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    H2, W2 = (int(v) for v in rng.integers(1, 6, size=2))
    shape = (N, C, (H2 - 1) * S + F, (W2 - 1) * S + F)
    if ties:
        x = rng.integers(0, 3, size=shape).astype(float)
    else:
        x = rng.standard_normal(shape)
    kind = "integers 0..2, many ties" if ties else "random normal values"
    return x, F, S, f"x of shape {shape} ({kind}), F={F}, S={S}, seed={seed}"


# --------------------------------------------------------------------------- output size

class _RaisingCheck(Check):
    """A Check whose function may answer by raising ValueError: that answer is recorded
    as the string "ValueError" (any ValueError, whatever its message)."""

    def __call__(self, fn, **params):
        return super().__call__(_value_error_as_answer(fn), **params)


def _value_error_as_answer(fn):
    if not callable(fn):
        return fn  # call() explains that it should be a function

    def answer(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError:
            return RAISED

    answer.__name__ = getattr(fn, "__name__", "answer")
    return answer


# The slides' numbers and the usual suspects, in every run (visible and hidden).
_SIZE_FIXED = (
    (4, 2, 2),  # the slides' 4x4 example -> 2
    (55, 3, 2),  # AlexNet POOL1: 55 -> 27
    (27, 3, 2),  # POOL2: 27 -> 13
    (13, 3, 2),  # POOL3: 13 -> 6
    (224, 2, 2),  # the common F=2, S=2 -> 112
    (224, 3, 2),  # F=3, S=2 on 224: (224 - 3)/2 + 1 = 111.5 doesn't fit
    (5, 2, 2),  # odd size, F=2, S=2: doesn't fit
    (3, 4, 1),  # window larger than the input: doesn't fit even once
)


def _size_cases(seeds=(0, 1, 2)):
    cases = [Case((W, F, S), f"W={W}, F={F}, S={S}") for W, F, S in _SIZE_FIXED]
    for seed in seeds:
        rng = np.random.default_rng(seed)
        F = int(rng.integers(1, 8))
        S = int(rng.integers(2, 5))
        n = int(rng.integers(1, 60))
        fitting = (n - 1) * S + F
        problems = [
            (fitting, F, S),  # fits
            (fitting + int(rng.integers(1, S)), F, S),  # 1..S-1 columns left over
            (int(rng.integers(1, 300)), F, 1),  # stride 1 fits whenever F <= W
            (max(1, F - int(rng.integers(1, F + 1))), F + 1, S),  # F > W
        ]
        cases += [Case(p, f"W={p[0]}, F={p[1]}, S={p[2]} (seed={seed})") for p in problems]
    return cases


def _size_judge(case, got):
    W, F, S = case.args
    call = f"pool_output_size({W}, {F}, {S})"
    exact = f"({W} - {F})/{S} + 1 = {_g((W - F) / S + 1)}"
    try:
        want = output_size(W, F, S)
    except ValueError:
        want = None
    if want is None:
        if _is_raised(got):
            return
        why = (f"the window is larger than the input (F={F} > W={W}), so it doesn't fit "
               f"even once" if F > W else f"{exact} is not a whole number: the window "
               f"doesn't fit")
        floor_hint = ""
        if F <= W and _is_number(got) and float(got) == (W - F) // S + 1:
            floor_hint = " (that is torch's floor; the slides' formula says it doesn't fit)"
        raise CheckFailure(f"{call} should raise ValueError: {why}; your function returned "
                           f"{_show(got)}{floor_hint}")
    if _is_raised(got):
        raise CheckFailure(f"{call} raised ValueError, but the window fits: {exact}")
    if not _is_number(got):
        raise CheckFailure(f"{call} should return a number, got {_show(got)}")
    if not _is_integer(got):
        raise CheckFailure(f"{call} should return an int ({want}), got {_show(got)} of type "
                           f"{type(got).__name__}: an output size counts positions, so use "
                           f"// once you know (W - F) is a multiple of S")
    if int(got) != want:
        raise CheckFailure(f"{call} should be {exact}, got {_show(got)}")


check_pool_output_size = _RaisingCheck("pool.output_size", "pool_output_size", _size_cases,
                                       _size_judge)


# --------------------------------------------------------------------------- max forward

def _max_forward_cases(seeds=(0, 1, 2)):
    rng = np.random.default_rng(4)
    cases = [
        Case((SLIDE_EXAMPLE[None, None].copy(), 2, 2),
             "the slides' 4x4 example, x of shape (1, 1, 4, 4), F=2, S=2"),
        Case((-(rng.random((2, 3, 6, 6)) + 0.1), 2, 2),
             "an all-negative x of shape (2, 3, 6, 6), F=2, S=2"),
        Case((rng.standard_normal((2, 3, 5, 9)), 3, 2),
             "x of shape (2, 3, 5, 9) (not square), F=3, S=2 (overlapping windows)"),
    ]
    for seed in seeds:
        x, F, S, what = pool_problem(seed)
        cases.append(Case((x, F, S), what))
    return cases


def _max_forward_judge(case, got):
    x, F, S = case.args
    want = ref.max_pool2d(x, F, S)
    _judge_forward(case, got, want, "max_pool_forward(x, F, S)", _max_forward_mistakes)


def _max_forward_mistakes(x, F, S, got):
    want = ref.max_pool2d(x, F, S)
    if np.allclose(got, np.maximum(want, 0.0)) and (want < 0).any():
        return ("where every value of a window is negative you return 0: start the "
                "maximum from the window's first value (or -inf), not from 0")
    if np.allclose(got, ref.avg_pool2d(x, F, S)):
        return "these are the windows' averages: max pooling keeps each window's maximum"
    return None


check_max_pool_forward = Check("pool.max_pool_forward", "max_pool_forward",
                               _max_forward_cases, _max_forward_judge)


# --------------------------------------------------------------------------- avg forward

def _avg_forward_cases(seeds=(0, 1, 2), images=("china",)):
    from helpers.data import sample_image

    cases = [Case((SLIDE_EXAMPLE[None, None].copy(), 2, 2),
                  "the slides' 4x4 example, x of shape (1, 1, 4, 4), F=2, S=2")]
    for seed in seeds:
        x, F, S, what = pool_problem(seed)
        cases.append(Case((x, F, S), what))
    for i, name in enumerate(images):
        img = sample_image(name, size=IMAGE_SIZE).transpose(2, 0, 1)[None]  # (1, 3, H, W)
        F, S = ((2, 2), (4, 4), (3, 3))[i % 3]
        cases.append(Case((img, F, S), f"the {name} photo as (1, 3, {IMAGE_SIZE[0]}, "
                          f"{IMAGE_SIZE[1]}) (RGB channels), F={F}, S={S}"))
    return cases


def _avg_forward_judge(case, got):
    x, F, S = case.args
    want = ref.avg_pool2d(x, F, S)
    _judge_forward(case, got, want, "avg_pool_forward(x, F, S)", _avg_forward_mistakes)


def _avg_forward_mistakes(x, F, S, got):
    want = ref.avg_pool2d(x, F, S)
    if F > 1 and np.allclose(got, want * F):
        return f"you divided each window's sum by F = {F}; a window has F*F = {F * F} values"
    if F > 1 and np.allclose(got, want * F * F):
        return f"these are the windows' sums: divide by the F*F = {F * F} values of a window"
    if np.allclose(got, ref.max_pool2d(x, F, S)):
        return "these are the windows' maxima: average pooling keeps each window's mean"
    return None


check_avg_pool_forward = Check("pool.avg_pool_forward", "avg_pool_forward",
                               _avg_forward_cases, _avg_forward_judge)


# --------------------------------------------------------------------------- max backward

def _max_backward_cases(seeds=(0, 1, 2)):
    rng = np.random.default_rng(7)
    overlap = np.zeros((1, 1, 3, 5))
    overlap[0, 0, 1, 2] = 9.0  # in both windows of a 3x3, stride-2 pooling
    fixed = [
        (np.array([[[[1.0]]]]), np.full((1, 1, 2, 2), 5.0), 2, 2,
         "one 2x2 window of four equal values [[5, 5], [5, 5]]"),
        (np.array([[[[1.0]]]]), np.array([[[[1.0, 5.0], [5.0, 2.0]]]]), 2, 2,
         "one window [[1, 5], [5, 2]]: the maximum 5 twice, at (0, 1) and (1, 0)"),
        (np.arange(1.0, 5.0).reshape(1, 1, 2, 2), SLIDE_EXAMPLE[None, None].copy(), 2, 2,
         "the slides' 4x4 example with dout = [[1, 2], [3, 4]]"),
        (np.array([[[[1.0, 10.0]]]]), overlap, 3, 2,
         "x of shape (1, 1, 3, 5), F=3, S=2: both windows share their maximum x[1, 2]"),
        (rng.standard_normal((2, 2, 3, 3)), rng.integers(0, 2, (2, 2, 7, 7)).astype(float),
         3, 2, "x of shape (2, 2, 7, 7) of 0s and 1s, F=3, S=2: ties and overlaps"),
    ]
    cases = [Case((dout, x, F, S), what) for dout, x, F, S, what in fixed]
    for seed in seeds:
        for ties in (False, True):
            x, F, S, what = pool_problem(seed, ties=ties)
            dout = np.random.default_rng(seed + 500).standard_normal(ref.max_pool2d(x, F, S).shape)
            cases.append(Case((dout, x, F, S), what))
    return cases


def _max_backward_judge(case, got):
    dout, x, F, S = case.args
    where = case.description
    want = ref.max_pool2d_backward(dout, x, F, S)
    got = as_array(got, "max_pool_backward(dout, x, F, S)", where)
    expect_shape(got, x.shape, "dx", where, names="the shape of x (N, C, H, W)")
    if np.allclose(got, want, rtol=1e-7, atol=1e-9):
        return
    for name, mistake in _BACKWARD_MISTAKES.items():
        if np.allclose(got, _naive_backward(dout, x, F, S, name)):
            raise CheckFailure(f"wrong dx on {where}: {mistake}")
    expect_close(got, want, "dx", where)


_TIES_RULE = ("the gradient of a window goes to ONE element, its first maximum in row-major "
              "order (top row first, then leftmost), as torch does; np.argmax on the "
              "flattened window finds it")
_BACKWARD_MISTAKES = {
    "all": "you sent the window's gradient to EVERY element equal to its maximum (the mask "
           f"x == max does that); {_TIES_RULE}",
    "split": f"you split the window's gradient between its tied maxima; {_TIES_RULE}",
    "column": "you sent the gradient to the first maximum in column-major order (down the "
              f"first column first); {_TIES_RULE}",
    "last": f"you sent the gradient to the LAST maximum of the window; {_TIES_RULE}",
    "overwrite": "where two overlapping windows (S < F) share their maximum, that element "
                 "must receive the SUM of both gradients (+=), not the last one (=)",
}


def _naive_backward(dout, x, F, S, mistake):
    """dx with one of the usual mistakes (for diagnosis only; never the reference)."""
    dx = np.zeros_like(x, dtype=float)
    N, C, H2, W2 = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(H2):
                for j in range(W2):
                    win = x[n, c, i * S:i * S + F, j * S:j * S + F]
                    target = dx[n, c, i * S:i * S + F, j * S:j * S + F]
                    g = dout[n, c, i, j]
                    is_max = win == win.max()
                    if mistake == "all":
                        target += g * is_max
                    elif mistake == "split":
                        target += g * is_max / is_max.sum()
                    elif mistake == "last":
                        k = win.size - 1 - int(np.argmax(win.ravel()[::-1]))
                        target[np.unravel_index(k, win.shape)] += g
                    elif mistake == "column":
                        q, p = np.unravel_index(int(np.argmax(win.T)), win.T.shape)
                        target[p, q] += g
                    else:  # overwrite
                        target[np.unravel_index(int(np.argmax(win)), win.shape)] = g
    return dx


check_max_pool_backward = Check("pool.max_pool_backward", "max_pool_backward",
                                _max_backward_cases, _max_backward_judge)


# --------------------------------------------------------------------------- internals

def _judge_forward(case, got, want, what, mistakes):
    x, F, S = case.args
    where = case.description
    got = as_array(got, what, where)
    N, C, H2, W2 = want.shape
    if got.shape != want.shape:
        hint = ""
        if got.shape == (N, C, W2, H2):
            hint = " (rows and columns swapped?)"
        elif got.shape == (H2, W2):
            hint = " (keep the N and C axes: pool every map of every image)"
        raise CheckFailure(f"{what} should have shape (N, C, H2, W2) = {want.shape} with "
                           f"H2 = ({x.shape[2]} - {F})/{S} + 1 = {H2} and "
                           f"W2 = ({x.shape[3]} - {F})/{S} + 1 = {W2}, got {got.shape}{hint} "
                           f"on {where}")
    if np.allclose(got, want, rtol=1e-7, atol=1e-9):
        return
    hint = mistakes(x, F, S, got)
    if hint:
        raise CheckFailure(f"wrong values on {where}: {hint}")
    expect_close(got, want, what, where)


def _is_raised(got):
    return isinstance(got, str) and got == RAISED


def _is_number(got):
    if isinstance(got, bool | np.bool_):
        return False
    if isinstance(got, numbers.Real):
        return True
    arr = np.asarray(got) if isinstance(got, np.ndarray) else None
    return arr is not None and arr.ndim == 0 and arr.dtype.kind in "iuf"


def _is_integer(got):
    if isinstance(got, numbers.Integral):
        return True
    return isinstance(got, np.ndarray) and got.dtype.kind in "iu"


def _show(got):
    if isinstance(got, np.ndarray) and got.ndim == 0:
        got = got.item()
    return repr(got)


def _g(v):
    return f"{round(v, 2):g}"
