"""'Compare with mine': the student's own functions beside the reference, in every explorer.

One piece of plumbing for all six explorers (issue 13):

- ``check_mine(mine, allowed, explorer)`` validates ``Explorer(..., mine={...})``: a dict
  from the notebook's exercise names to callables; an unknown name or a value that is not
  callable is a ``ValueError`` naming the parameter and the valid names.
- ``call_mine(name, fn, *args, **kwargs)`` runs one student function under a time limit
  and returns a ``MineResult``: the value, or one readable sentence (what it raised, that
  it took too long) for the explorer's status line. It never raises: a student's bug must
  not kill the widget, and the explorer keeps showing the reference.
- ``first_difference(mine, ref, ...)`` names the first place two arrays part (index and
  both values) or says that the shapes differ; ``None`` when they agree.

An explorer's ``mismatch()`` returns ``None`` when the student's code agrees with the
reference on the explorer's current state, else one sentence naming the first place they
part; the figure marks that place.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

TIME_LIMIT = 2.0  # seconds per call of a student's function


class MineTimeout(BaseException):
    """Not an Exception: a student's ``except Exception`` (or a helper's, such as
    ``helpers.summary``'s fallback) must not swallow the time limit."""


@dataclass
class MineResult:
    ok: bool
    value: Any = None
    message: str | None = None  # when not ok: one sentence for the status line
    seconds: float = 0.0


def check_mine(mine, allowed, explorer):
    """``mine`` as a plain dict {exercise name: callable}; a clear ValueError otherwise.

    ``allowed``: {name: signature text}, e.g. {"assign_clusters": "assign_clusters(X,
    centers) -> labels"}."""
    if mine is None:
        return {}
    names = ", ".join(allowed)
    if not isinstance(mine, dict):
        raise ValueError(
            f"{explorer}(mine=...) takes a dict from exercise names to your functions, e.g. "
            f"mine=dict({next(iter(allowed))}={next(iter(allowed))}); got "
            f"{type(mine).__name__}. Names it knows: {names}")
    out = {}
    for name, fn in mine.items():
        if name not in allowed:
            raise ValueError(f"{explorer}(mine=...) has no exercise named {name!r}; use one "
                             f"of: {names}")
        if not callable(fn):
            raise ValueError(f"{explorer}(mine=...): {name} must be your function "
                             f"({allowed[name]}), got {type(fn).__name__} {fn!r:.60}")
        out[name] = fn
    return out


def call_mine(name, fn, *args, time_limit=TIME_LIMIT, **kwargs) -> MineResult:
    """Run the student's ``fn`` once; never raises (see module docs)."""
    start = time.perf_counter()
    alarm = threading.current_thread() is threading.main_thread() and time_limit
    previous = None
    if alarm:
        def _stop(signum, frame):
            raise MineTimeout()
        previous = signal.signal(signal.SIGALRM, _stop)
        signal.setitimer(signal.ITIMER_REAL, time_limit)
    try:
        value = fn(*args, **kwargs)
    except MineTimeout:
        return MineResult(False, message=f"your {name} took longer than {time_limit:g} s and "
                          "was stopped: the explorer shows the reference only",
                          seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - any student error becomes one sentence
        where = _student_line(exc)
        said = f": {str(exc)[:160]}" if str(exc) else ""  # NotImplementedError() says nothing
        return MineResult(False, message=f"your {name} raised {type(exc).__name__}"
                          f"{said}{where}: the explorer shows the reference only",
                          seconds=time.perf_counter() - start)
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    if not alarm and time_limit and seconds > time_limit:
        return MineResult(False, message=f"your {name} took {seconds:.1f} s (limit "
                          f"{time_limit:g} s): the explorer shows the reference only",
                          seconds=seconds)
    return MineResult(True, value=value, seconds=seconds)


def _student_line(exc):
    """' (line N of your cell)' for the innermost frame in notebook code, else ''."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<ipython-input") or "/ipykernel_" in filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line} of your cell)" if line else ""


def as_array(name, value, shape=None, what="an array"):
    """``value`` as a numpy array, or a sentence saying why it is not what ``name`` should
    return. Returns (array or None, message or None)."""
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001
        return None, f"your {name} returned {type(value).__name__}, not {what}"
    if arr.dtype == object or arr.dtype.kind in "USV":  # objects, strings, bytes
        return None, f"your {name} returned {type(value).__name__}, not {what} of numbers"
    if shape is not None and arr.shape != tuple(shape):
        return None, (f"your {name} returned shape {arr.shape}; the reference's is "
                      f"{tuple(shape)}")
    return arr, None


def as_labels(name, value, shape):
    """``value`` as an int64 array of cluster labels of ``shape``, or a sentence saying why
    it is not (not numbers, the wrong shape, or numbers that are not whole). Returns (array
    or None, message or None)."""
    arr, problem = as_array(name, value, shape)
    if problem:
        return None, problem
    whole = arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and np.isfinite(arr).all()
                                       and (arr == np.round(arr)).all())
    if not whole:
        return None, f"your {name} returned {arr.dtype} values, not whole-number labels"
    return arr.astype(np.int64), None


def first_difference(mine, ref, *, rtol=1e-6, atol=1e-8, labels=None):
    """``None`` when ``mine`` equals ``ref`` (numerically), else (index, mine value,
    reference value) of the first element that differs, in C order. ``labels``: a
    tuple naming the axes for the caller's sentence (unused here, kept with the index)."""
    mine, ref = np.asarray(mine), np.asarray(ref)
    if mine.shape != ref.shape:
        raise ValueError(f"shapes differ: {mine.shape} vs {ref.shape}")
    if np.issubdtype(ref.dtype, np.floating) or np.issubdtype(mine.dtype, np.floating):
        bad = ~np.isclose(mine, ref, rtol=rtol, atol=atol, equal_nan=True)
    else:
        bad = mine != ref
    if not bad.any():
        return None
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return idx, mine[idx].item(), ref[idx].item()


def compare_array(name, value, ref, *, rtol=1e-6, atol=1e-8):
    """The student's ``value`` (what ``name`` returned) against the reference array ``ref``:
    (array, boolean mask of the elements that differ, ``first_difference``, None), or
    (None, None, None, a sentence) when it is not an array of numbers of ``ref``'s shape."""
    got, problem = as_array(name, value, np.shape(ref))
    if problem:
        return None, None, None, problem
    try:
        got = got.astype(float)
    except (TypeError, ValueError):
        return None, None, None, f"your {name} returned {got.dtype} values, not numbers"
    bad = ~np.isclose(got, ref, rtol=rtol, atol=atol, equal_nan=True)
    return got, bad, first_difference(got, ref, rtol=rtol, atol=atol), None


def cell_squares(cells, inset=0.42):
    """Squares (four corners each) around grid cells given as (row, column) pairs, for a
    PolyCollection on an image whose cell (i, j) is centred at x=j, y=i."""
    return [[(j - inset, i - inset), (j + inset, i - inset), (j + inset, i + inset),
             (j - inset, i + inset)] for i, j in cells]


def same_partition(mine, ref):
    """Cluster labels compared up to renumbering (noise, -1, must stay -1). ``None`` when
    they agree, else (point index, mine label, reference label) of the first point whose
    cluster differs after matching each of ``mine``'s clusters to the reference cluster
    it first meets."""
    mine, ref = np.asarray(mine).ravel(), np.asarray(ref).ravel()
    if mine.shape != ref.shape:
        raise ValueError(f"shapes differ: {mine.shape} vs {ref.shape}")
    forward, backward = {}, {}
    for i, (m, r) in enumerate(zip(mine.tolist(), ref.tolist())):
        if (m == -1) != (r == -1):
            return i, m, r
        if m == -1:
            continue
        if forward.setdefault(m, r) != r or backward.setdefault(r, m) != m:
            return i, m, r
    return None


def fmt(value):
    """A number as a short string for a sentence (4 significant digits)."""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)
