"""The pieces every checker is made of: call the student safely, compare, explain."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np


class CheckFailure(AssertionError):
    """A student's answer differs from the reference (the message says how)."""


@contextlib.contextmanager
def quiet():
    """Silence warnings and numpy floating-point chatter inside a test cell."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            yield


def call(fn, *args, what, case="", **kwargs):
    """Call the student's ``fn``; turn "not implemented yet" and crashes into clear failures."""
    if not callable(fn):
        raise CheckFailure(f"{what} should be a function, got {type(fn).__name__}")
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        with quiet():
            result = fn(*copies, **kwargs)
    except NotImplementedError:
        raise CheckFailure(f"{what} is not implemented yet: write your code in the cell above "
                           "(replace `raise NotImplementedError()`)") from None
    except Exception as exc:
        raise CheckFailure(f"{what} raised {type(exc).__name__}: {exc}{_on(case)}") from exc
    for original, passed in zip(args, copies):
        if isinstance(original, np.ndarray) and not np.array_equal(original, passed, equal_nan=True):
            raise CheckFailure(f"{what} modified its input array in place{_on(case)}; "
                               "work on a copy instead")
    return result


def as_array(value, what, case="", dtype=float):
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise CheckFailure(f"{what} should be a numeric array, got {type(value).__name__}"
                           f"{_on(case)}") from None


def expect_shape(arr, shape, what, case="", names=""):
    """``names`` spells the shape out, e.g. "(k, d)", for the message."""
    if tuple(np.shape(arr)) != tuple(shape):
        spelled = f"{names} = " if names else ""
        raise CheckFailure(f"{what} should have shape {spelled}{tuple(shape)}, "
                           f"got {tuple(np.shape(arr))}{_on(case)}")


def expect_close(got, want, what, case="", *, rtol=1e-7, atol=1e-9):
    got = as_array(got, what, case)
    want = np.asarray(want, dtype=float)
    expect_shape(got, want.shape, what, case)
    if np.isnan(got).any() and not np.isnan(want).any():
        raise CheckFailure(f"{what} contains NaN{_on(case)}")
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        err = np.abs(got - want)
        idx = np.unravel_index(int(np.nanargmax(err)), err.shape) if err.ndim else ()
        where = f" at index {tuple(int(i) for i in idx)}" if idx else ""
        raise CheckFailure(
            f"wrong values in {what}{_on(case)}: largest difference {float(np.nanmax(err)):.3g}"
            f"{where}: got {_fmt(got[idx])}, expected {_fmt(want[idx])}"
        )


def expect_equal(got, want, what, case=""):
    got_arr = np.asarray(got)
    want_arr = np.asarray(want)
    expect_shape(got_arr, want_arr.shape, what, case)
    if not np.array_equal(got_arr, want_arr):
        if want_arr.ndim == 0:
            raise CheckFailure(f"{what} should be {_fmt(want)}, got {_fmt(got)}{_on(case)}")
        bad = np.argwhere(got_arr != want_arr)
        first = tuple(int(i) for i in bad[0])
        raise CheckFailure(
            f"{what} differs at {len(bad)} of {want_arr.size} positions{_on(case)}; first at "
            f"index {first}: got {_fmt(got_arr[first])}, expected {_fmt(want_arr[first])}"
        )


def _on(case):
    return f" on {case}" if case else ""


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=6)
    return repr(value.item() if isinstance(value, np.generic) else value)
