"""Input checks shared by every module.

Each check raises ``ValueError`` (or ``TypeError`` for the wrong kind of object) with a
message that names the parameter, shows the value and says what would be valid, so a
student never meets a bare numpy traceback from deep inside a function.
"""

from __future__ import annotations

import numbers

import numpy as np


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_array(
    value,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    dtype=np.float64,
    min_samples: int = 0,
    finite: bool = True,
    shape_hint: str = "",
) -> np.ndarray:
    """Return ``value`` as a numpy array of ``dtype``, or raise naming ``name``.

    ``ndim`` may be one number or several allowed ones; ``min_samples`` is a lower bound
    on ``len(array)``; ``finite`` rejects NaN and inf; ``shape_hint`` (e.g. "(n, d)")
    goes into the messages.
    """
    hint = f" {shape_hint}" if shape_hint else ""
    if value is None:
        raise TypeError(f"{name} must be an array{hint}, got None")
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a numeric array{hint}, got {_describe(value)} ({exc})"
        ) from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}{hint}, got a {arr.ndim}-D array of shape {arr.shape}")
    if arr.ndim >= 1 and arr.shape[0] < min_samples:
        raise ValueError(
            f"{name} must have at least {min_samples} row(s){hint}, got shape {arr.shape}"
        )
    if arr.size == 0 and min_samples > 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); it needs at least one value")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); remove or impute them")
    return arr


def check_int(value, name: str, *, min_value: int | None = None, max_value: int | None = None) -> int:
    """Return ``value`` as an int within [min_value, max_value], or raise naming ``name``.

    Booleans and non-integral floats are refused (``k=2.5`` is a mistake, not a 2).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    value = int(value)
    _check_range(value, name, min_value, max_value)
    return value


def check_float(
    value,
    name: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite float within the given bounds, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if min_value is not None:
        ok = value >= min_value if min_inclusive else value > min_value
        if not ok:
            op = ">=" if min_inclusive else ">"
            raise ValueError(f"{name} must be {op} {min_value}, got {value}")
    if max_value is not None:
        ok = value <= max_value if max_inclusive else value < max_value
        if not ok:
            op = "<=" if max_inclusive else "<"
            raise ValueError(f"{name} must be {op} {max_value}, got {value}")
    return value


def check_choice(value, name: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``, or raise naming ``name`` and listing them."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {_describe(value)}")
    return value


def _check_range(value, name, min_value, max_value):
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
