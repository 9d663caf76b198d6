"""The pieces every checker is made of: call the student safely, compare, explain."""

from __future__ import annotations

import base64
import contextlib
import math
import warnings

import numpy as np


class CheckFailure(AssertionError):
    """A student's answer differs from the reference (the message says how).

    In a notebook, IPython shows it as the message and the test-cell line that raised it,
    not the frames inside ``helpers.checks`` that found the mistake (IPython asks an
    exception for ``_render_traceback_`` before formatting the frames itself).
    """

    def _render_traceback_(self):
        lines = _outside_frames(self.__traceback__)
        cause = self.__cause__
        if cause is not None and not isinstance(cause, CheckFailure):
            inner = _outside_frames(cause.__traceback__)
            if inner:  # where the student's function raised: the line they need
                lines += [f"raised {type(cause).__name__} in your code at", *inner]
        return [*lines, f"\x1b[31mCheckFailure\x1b[0m: {self}"]


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


def _outside_frames(tb):
    """One line per traceback frame outside ``helpers.checks``: where, and the source line."""
    import linecache
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    lines = []
    while tb is not None:
        filename, lineno = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        folder = os.path.dirname(os.path.abspath(filename))
        if folder != here and os.sep + "IPython" + os.sep not in folder + os.sep:
            source = linecache.getline(filename, lineno).strip()
            lines.append(f"  {_where(filename)}, line {lineno}" + (f": {source}" if source else ""))
        tb = tb.tb_next
    return lines


def _where(filename):
    """IPython's name for a notebook cell ("Cell In[7]"), else the file's name."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            kind, name = shell.compile.format_code_name(filename) or (None, None)
            if kind:
                return f"{kind} {name}"
    except Exception:  # noqa: BLE001 - a plain file name will do
        pass
    return filename


def _on(case):
    return f" on {case}" if case else ""


def _fmt(value):
    """A value as a student wrote it: plain numbers and lists, never ``np.float64(...)``."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=6)
    if isinstance(value, list | tuple):
        try:
            return repr(plain(value))
        except (TypeError, ValueError):
            return repr(value)
    return repr(plain(value))


def plain(value):
    """``value`` with numpy scalars and arrays turned into Python numbers and lists."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    return value


# --------------------------------------------------------------------------- checks
#
# A check is three things: the problems (``cases``, made only from JSON-able parameters
# such as seeds, so anyone can make the same ones again), the student's function called on
# each, and a ``judge`` that compares one answer with the reference. The notebook runs all
# three in the student's kernel. During autograding the answers are also written into the
# cell's output (a JSON payload), so that the grading harness can judge them again in its
# own process, where a monkeypatched numpy or helpers cannot reach (see grading/).

RECORD_MIMETYPE = "application/vnd.day6.check+json"
REGISTRY: dict = {}


class Case:
    """One problem: the positional arguments for the student's function, a description
    for messages, and whatever else the judge needs (``extra``)."""

    def __init__(self, args, description, **extra):
        self.args = tuple(args)
        self.description = description
        self.extra = extra


class Check:
    """A named check, registered so the grading harness can look it up by name.

    Names are unique: a second check under a name already taken raises ``ValueError``
    (it would silently replace the first, and the harness would re-judge recorded answers
    with the wrong judge). Re-running the module that defined it (``importlib.reload``,
    autoreload) may register the same check again.
    """

    def __init__(self, name, what, cases, judge, call_kwargs=None):
        self.name = name          # "kmeans.assign_clusters"
        self.what = what          # the function's name, for messages
        self.cases = cases        # (**params) -> list[Case]
        self.judge = judge        # (case, answer) -> None or raise CheckFailure
        self.call_kwargs = call_kwargs or {}
        old = REGISTRY.get(name)
        if old is not None and _identity(old) != _identity(self):
            raise ValueError(f"a check named {name!r} is already registered (checking "
                             f"{old.what!r} with {_identity(old)[2]}); choose another name")
        REGISTRY[name] = self

    def __call__(self, fn, **params):
        params = {k: _jsonable(v) for k, v in params.items()}
        cases = self.cases(**params)
        answers = [call(fn, *case.args, what=self.what, case=case.description,
                        **self.call_kwargs) for case in cases]
        _record(self.name, params, answers)
        for case, answer in zip(cases, answers):
            with quiet():
                self.judge(case, answer)

    def rejudge(self, params, answers):
        """Judge recorded answers again (in a trusted process); raises CheckFailure."""
        cases = self.cases(**params)
        if len(answers) != len(cases):
            raise CheckFailure(f"{self.what}: expected {len(cases)} recorded answers, "
                               f"got {len(answers)}")
        for case, answer in zip(cases, answers):
            with quiet():
                self.judge(case, decode(answer))


def _identity(check):
    """What makes two registrations the same check: its class, its function and its judge."""
    judge = check.judge
    return (type(check).__qualname__, check.what,
            f"{getattr(judge, '__module__', '?')}.{getattr(judge, '__qualname__', repr(judge))}")


def _record(name, params, answers):
    import os

    if os.environ.get("NBGRADER_EXECUTION") != "autograde":
        return
    from IPython.display import display

    payload = {"check": name, "params": params, "answers": [encode(a) for a in answers]}
    display({RECORD_MIMETYPE: payload, "text/plain": f"[{name}: answers recorded]"}, raw=True)


def _jsonable(value):
    if isinstance(value, range | tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


MAX_RECORD_ELEMENTS = 50_000_000  # a recorded answer larger than this is refused when decoded


def encode(value):
    """JSON form of an answer, exact: numeric arrays keep dtype, shape and every bit (base64 of
    the raw bytes, so NaN and infinities survive JSON); floats round-trip exactly."""
    if isinstance(value, np.ndarray | np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf":
            arr = arr if arr.flags.c_contiguous else arr.copy(order="C")
            return {"__b64array__": base64.b64encode(arr.tobytes()).decode("ascii"),
                    "dtype": arr.dtype.str, "shape": list(arr.shape)}
        return {"__repr__": repr(value)}
    if isinstance(value, tuple | list):
        return {"__seq__": [encode(v) for v in value], "tuple": isinstance(value, tuple)}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "__array__"):  # a torch tensor, say
        try:
            return encode(np.asarray(value))
        except Exception:  # noqa: BLE001 - whatever it is, judge it by its repr
            return {"__repr__": repr(value)}
    return {"__repr__": repr(value)}


def decode(value, _depth=0):
    """Inverse of ``encode``. Runs in the grader on data the student's kernel produced, so it
    accepts only numeric dtypes, checks sizes, and never evaluates anything."""
    if _depth > 50:
        raise ValueError("recorded answer nested too deeply")
    if isinstance(value, dict):
        if "__b64array__" in value or "__array__" in value:
            dtype = np.dtype(str(value["dtype"]))
            if dtype.kind not in "biuf" or dtype.itemsize > 16:
                raise ValueError(f"recorded array has a non-numeric dtype {dtype}")
            shape = tuple(int(n) for n in value["shape"])
            if any(n < 0 for n in shape) or math.prod(shape) > MAX_RECORD_ELEMENTS:
                raise ValueError(f"recorded array has an invalid shape {shape}")
            if "__b64array__" in value:
                raw = base64.b64decode(value["__b64array__"], validate=True)
                if len(raw) != math.prod(shape) * dtype.itemsize:
                    raise ValueError("recorded array bytes do not match its shape")
                return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
            return np.array(value["__array__"], dtype=dtype).reshape(shape)
        if "__seq__" in value:
            items = [decode(v, _depth + 1) for v in value["__seq__"]]
            return tuple(items) if value.get("tuple") else items
        if "__float__" in value:
            return float(value["__float__"])
        if "__repr__" in value:
            return str(value["__repr__"])
        raise ValueError("unknown recorded value")
    if isinstance(value, list):
        raise ValueError("recorded lists must be encoded as sequences")
    return value
