"""Spatial arithmetic shared by :mod:`helpers.conv` and :mod:`helpers.pool`: the one
output-size formula (with its actionable "doesn't fit" messages), size and flag checks,
the float32-or-float64 rule, the slice a window offset touches, and how the torch methods
take their ``device``.

Private: students and notebooks use :func:`helpers.conv.output_size`.
"""

from __future__ import annotations

import numbers

import numpy as np

from helpers._validation import check_int


def _spatial_output_size(n, f, stride, pad, floor, *, dim="", f_name="f", kind="filter"):
    """The one output-size formula of the project, on validated ints.

    ``dim`` names the dimension in messages (e.g. "height H=7 (x.shape[2])"); ``f_name``
    and ``kind`` let pooling say ``size`` / "window" instead of ``f`` / "filter".
    """
    where = f"the input {dim}" if dim else f"a {n}x{n} input"
    span = n + 2 * pad
    if f > span:
        padded = f"the padded input: n + 2*pad = {n} + 2*{pad} = {span}" if pad else f"n = {n}"
        fixes = f"use {f_name} <= {span}"
        if kind == "filter":
            fixes += f" or pad >= {(f - n + 1) // 2}"
        raise ValueError(
            f"{f_name}={f} is larger than {padded}, so a {f}x{f} {kind} doesn't fit "
            f"{where} even once; {fixes}"
        )
    steps, rest = divmod(span - f, stride)
    if rest == 0 or floor:
        return steps + 1
    exact = (span - f) / stride + 1
    raise ValueError(
        f"({n} - {f} + 2*{pad})/{stride} + 1 = {round(exact, 2):g} is not an integer: "
        f"a {f}x{f} {kind} at stride {stride} doesn't fit {where}; "
        f"{_fit_suggestions(n, f, stride, pad, kind)}"
        f"or pass floor=True for torch's behaviour (-> {steps + 1})"
    )


def _fit_suggestions(n, f, stride, pad, kind):
    """Nearest pad above and stride below that make the window fit, as message text."""
    hints = []
    if kind == "filter":  # pooling is normally not padded, so do not suggest it there
        for p in range(pad + 1, pad + stride + 1):
            if (n - f + 2 * p) % stride == 0:
                hints.append(f"pad={p} (-> {(n - f + 2 * p) // stride + 1})")
                break
    span = n + 2 * pad - f
    for s in range(stride - 1, 0, -1):
        if span % s == 0:
            hints.append(f"stride={s} (-> {span // s + 1})")
            break
    return " or ".join(hints) + " would fit, " if hints else ""


def _check_size(value, name, *, min_value):
    """An integer >= min_value; a non-integral number is a ValueError naming ``name``."""
    if (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and not float(value).is_integer()
    ):
        raise ValueError(f"{name} must be an integer, got {value!r} (sizes count pixels)")
    return check_int(value, name, min_value=min_value)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _work_dtype(*arrays):
    """float32 when every given array is float32 (keeps torch-like speed), else float64."""
    given = [a for a in arrays if a is not None]
    if given and all(getattr(a, "dtype", None) == np.float32 for a in given):
        return np.float32
    return np.float64


def _taps(p, stride, n_out):
    """Slice of the padded input that filter offset ``p`` touches over all n_out positions."""
    return slice(p, p + stride * (n_out - 1) + 1, stride)


def _to_torch(a, device=None):
    """numpy -> tensor on ``device`` (CPU: sharing memory when possible; torch warns on
    read-only arrays)."""
    import torch

    a = np.ascontiguousarray(a)
    t = torch.from_numpy(a if a.flags.writeable else a.copy())
    return t if device is None or device.type == "cpu" else t.to(device)


def _check_device(device, method, torch_method="torch"):
    """``device`` is only for the torch method: elsewhere anything but the CPU is an error."""
    if method != torch_method and not (device == "cpu" or getattr(device, "type", None) == "cpu"):
        raise ValueError(f"device={device!r} needs method={torch_method!r}: method={method!r} "
                         f"runs on the CPU (leave device='cpu')")
