"""``summary(model, input_shape)``: per-layer output shapes, parameters and multiply-adds
of any ``torch.nn.Module``, traced with forward hooks, as the slides' tables list them.

Shapes are torch's ``(C, H, W)`` per image; the slides write ``W x H x D``: ``[55x55x96]``
is ``(96, 55, 55)`` here. :mod:`helpers.models` re-exports :func:`summary`,
:class:`Summary` and :class:`LayerRow`.

This module imports torch; ``import helpers`` does not import it.
"""

from __future__ import annotations

import copy
import html
import math
from dataclasses import dataclass

import torch
from torch import nn

from helpers._validation import check_int

__all__ = ["LayerRow", "Summary", "summary"]


@dataclass(frozen=True)
class LayerRow:
    """One row of a :class:`Summary`: a leaf layer and what one image costs in it.

    ``output_shape`` is per image (no batch dimension); ``params`` counts the layer's own
    parameters (0 on a second call of a shared layer, so rows add up to the total, unless
    a container module holds parameters of its own); ``macs`` are multiply-adds per
    image, non-zero for conv and linear layers only.
    """

    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int


@dataclass(frozen=True)
class Summary:
    """Per-layer table of a model for one input shape, as returned by :func:`summary`.

    Attributes
    ----------
    rows : tuple of LayerRow
        Leaf layers in the order the forward pass calls them.
    blocks : tuple of LayerRow
        The containers (``Sequential``, residual blocks, inception modules, ...) in the
        order they finish; ``summary["inception3a"]`` looks in both.
    input_shape, output_shape : tuple
        Per image, without the batch dimension.
    params : int
        All parameters of the model, each shared tensor once (as ``sum(p.numel())``).
    macs : int
        Multiply-adds per image of all conv and linear layers.
    """

    rows: tuple
    blocks: tuple
    input_shape: tuple
    output_shape: tuple
    params: int
    macs: int

    def __getitem__(self, name: str) -> LayerRow:
        """The row of the layer called ``name``, or of a block such as ``"inception3a"``
        or ``"conv3_x.0"`` (its own output shape, all its parameters, the multiply-adds
        of all its layers)."""
        for row in (*self.rows, *self.blocks):
            if row.name == name:
                return row
        known = ", ".join(dict.fromkeys(r.name.split(".")[0] for r in self.rows))
        raise KeyError(f"no layer or block named {name!r}; top-level names: {known}")

    def to_rows(self) -> list:
        """The rows as a list of dicts (``pandas.DataFrame(s.to_rows())`` if you like)."""
        return [dict(name=r.name, kind=r.kind, output_shape=r.output_shape, params=r.params,
                     macs=r.macs) for r in self.rows]

    def __str__(self) -> str:
        head = ("layer", "kind", "output shape", "params", "multiply-adds")
        body = [(r.name, r.kind, _fmt_shape(r.output_shape), f"{r.params:,}", f"{r.macs:,}")
                for r in self.rows]
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(5)]
        align = ("<", "<", "<", ">", ">")

        def line(cells):
            parts = zip(cells, align, widths, strict=True)
            return "  ".join(f"{c:{a}{w}}" for c, a, w in parts).rstrip()

        rule = "-" * len(line(head))
        lines = [f"input {_fmt_shape(self.input_shape)} per image", line(head), rule]
        lines += [line(b) for b in body]
        lines += [rule, f"total: {self.params:,} parameters ({_human(self.params)}), "
                        f"{self.macs:,} multiply-adds ({_human(self.macs)}) per image"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(
            "<tr>" + "".join(
                f'<td style="text-align:{a}">{html.escape(str(c))}</td>'
                for c, a in zip(
                    (r.name, r.kind, _fmt_shape(r.output_shape), f"{r.params:,}",
                     f"{r.macs:,}"),
                    ("left", "left", "left", "right", "right"), strict=True))
            + "</tr>"
            for r in self.rows)
        head = "".join(f"<th>{h}</th>" for h in
                       ("layer", "kind", "output shape", "params", "multiply-adds"))
        foot = (f"<tr><th colspan='3' style='text-align:left'>total</th>"
                f"<th style='text-align:right'>{self.params:,}</th>"
                f"<th style='text-align:right'>{self.macs:,}</th></tr>")
        return (f"<p>input {html.escape(_fmt_shape(self.input_shape))} per image: "
                f"{_human(self.params)} parameters, {_human(self.macs)} multiply-adds</p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody>"
                f"<tfoot>{foot}</tfoot></table>")


def summary(model, input_shape) -> Summary:
    """Per-layer output shapes, parameters and multiply-adds of ``model`` for one image.

    Runs one forward pass with a batch of one and records, with forward hooks on every
    leaf module, the output shape, the module's parameters and its multiply-adds:

    * ``Conv1d/2d/3d``: ``H_out * W_out * C_out * (C_in / groups) * kH * kW``
      (the product over all output positions and kernel dimensions for 1-D/3-D);
    * ``Linear``: ``in_features * out_features`` (times any extra leading positions);
    * everything else (ReLU, pooling, normalisation, additions): 0. Bias additions are not
      counted, as in the papers' "FLOPs"/"ops", which are multiply-adds.

    The pass runs on a copy of the model whose weights are empty tensors on the ``meta``
    device (shapes only, no arithmetic and no weight copied: ResNet-152 takes
    milliseconds, and the model itself is not touched). If a layer cannot run on
    ``meta`` (it reads values, e.g. ``.item()``), it falls back to a real pass of the
    model on its device with zeros, in eval mode, without gradients, and restores each
    module's training flag afterwards.

    Parameters
    ----------
    model : torch.nn.Module
    input_shape : tuple of int
        Shape of ONE input, without the batch dimension: ``(3, 224, 224)`` for an RGB
        image, ``(784,)`` for a flat vector.

    Returns
    -------
    Summary
        ``.rows`` (each ``.name .kind .output_shape .params .macs``), ``.params``,
        ``.macs``; ``s["conv1"]`` finds a row by name (or adds up a block's rows); prints
        as a text table and renders as an HTML table in a notebook.

    Examples
    --------
    >>> s = summary(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 30 * 30, 10)),
    ...             (3, 32, 32))
    >>> [(r.name, r.output_shape, r.params, r.macs) for r in s.rows]
    [('0', (8, 30, 30), 224, 194400), ('1', (7200,), 0, 0), ('2', (10,), 72010, 72000)]
    >>> s.params, s.macs
    (72234, 266400)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    input_shape = _check_shape(input_shape)
    try:
        rows, blocks, out = _trace(model, input_shape, meta=True)
    except Exception:  # some layer has no meta kernel: do it for real
        try:
            rows, blocks, out = _trace(model, input_shape, meta=False)
        except Exception as exc:
            raise ValueError(
                f"input_shape={input_shape} does not fit this model (give the shape of one "
                f"input without the batch dimension, e.g. (3, 224, 224)); the forward pass "
                f"failed with: {exc}") from exc
    total = sum(p.numel() for p in model.parameters())
    return Summary(rows=tuple(rows), blocks=tuple(blocks), input_shape=input_shape,
                   output_shape=_shape_of(out), params=int(total),
                   macs=int(sum(r.macs for r in rows)))


# --------------------------------------------------------------------------------------
# private helpers
# --------------------------------------------------------------------------------------


def _check_shape(input_shape):
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, tuple | list) or len(input_shape) == 0:
        raise ValueError(f"input_shape must be a tuple of positive ints such as (3, 224, 224) "
                         f"(one input, no batch dimension); got {input_shape!r}")
    return tuple(check_int(d, "input_shape", min_value=1) for d in input_shape)


def _trace(model, input_shape, *, meta):
    if meta:  # run a copy whose weights are meta tensors: the model itself is not touched
        # The first layer a process runs on the meta device imports torch._dynamo (3-5 s);
        # named here, it is one of the imports grading's warm kernels make once for all
        # the students of a class (grading/warm.py reads helpers' function-level imports).
        import torch._dynamo as _dynamo  # noqa: F401  (binds _dynamo only: not a local torch)
        model = _meta_copy(model)
        x = torch.empty((1, *input_shape), dtype=_float_dtype_of(model), device="meta")
    else:
        first = next(model.parameters(), None)
        device = first.device if first is not None else None
        x = torch.zeros((1, *input_shape), dtype=_float_dtype_of(model), device=device)
    names = {m: name for name, m in model.named_modules()}
    rows, blocks, seen = [], [], set()

    def leaf_hook(module, inputs, output):
        params = 0
        if module not in seen:  # a layer called twice has its parameters counted once
            seen.add(module)
            params = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append(LayerRow(name=names[module] or type(module).__name__,
                             kind=type(module).__name__, output_shape=_shape_of(output),
                             params=int(params), macs=int(_macs(module, output))))

    def block_hook(module, inputs, output):
        name = names[module]
        if not name:  # the model itself: its totals are the Summary's
            return
        inside = [r.macs for r in rows if r.name.startswith(name + ".")]
        blocks.append(LayerRow(name=name, kind=type(module).__name__,
                               output_shape=_shape_of(output),
                               params=int(sum(p.numel() for p in module.parameters())),
                               macs=int(sum(inside))))

    training = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(block_hook if any(True for _ in m.children())
                                       else leaf_hook)
               for m in names]
    try:
        model.eval()
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        for m, flag in training.items():
            m.training = flag
    return rows, blocks, out


def _meta_copy(model):
    # deepcopy, but every parameter and buffer is replaced (through deepcopy's memo) by an
    # empty meta tensor of the same shape: tied weights stay tied, no data is copied.
    memo = {}
    for t in [*model.parameters(), *model.buffers()]:
        empty = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(empty, t.requires_grad) if isinstance(t, nn.Parameter) \
            else empty
    return copy.deepcopy(model, memo)


def _float_dtype_of(model):
    first = next(model.parameters(), None)
    if first is not None and first.is_floating_point():
        return first.dtype
    return torch.get_default_dtype()


def _macs(module, output):
    if not isinstance(output, torch.Tensor):
        return 0
    per_image = output.numel() // max(output.shape[0], 1) if output.dim() else 0
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return per_image * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return per_image * module.in_features
    return 0


def _shape_of(output):
    if isinstance(output, torch.Tensor):
        return tuple(output.shape[1:])
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return tuple(output[0].shape[1:])
    return ()


def _fmt_shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")" if len(shape) != 1 else f"({shape[0]},)"


def _human(n):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)
