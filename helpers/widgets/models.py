"""ArchitectureExplorer: where the parameters and the multiply-adds of a CNN live.

Pick a model to see its per-layer table (``helpers.models.summary``) and two bar charts,
parameters and multiply-adds per layer or per block; or switch to the compare view, which
puts AlexNet, GoogLeNet and the ResNets side by side with the ratios the slides quote
("12x fewer params, 2x more compute") computed from the models.

The explorer reads each model's table from ``_model_tables.py``, written from
``helpers.models.summary`` by ``python -m helpers.widgets.models`` (a test checks that it
still equals the live summaries): the model menu then costs a redraw, neither torch nor a
trace. ``model_summary`` computes the live summary (on the ``meta`` device: shapes only, no
weights), cached.

Compare with mine (``mine=dict(model=LeNet5())``, a torch ``nn.Module``, or a class or
function that builds one): the student's model is traced on the selected model's input
(``helpers.models.summary``, under a time limit), its layers with parameters are listed
beside the reference's (output shape and parameter count each), ``mismatch()`` names the
first layer where they differ, and the figure marks that layer's bar.
"""

from __future__ import annotations

import functools
import html

import ipywidgets as w
import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullLocator,
    ScalarFormatter,
)

from helpers.widgets._base import OKABE_ITO, Explorer, new_figure
from helpers.widgets._mine import TIME_LIMIT, call_mine

# Display name -> (builder name, keyword arguments, input shape (C, H, W)).
MODELS = {
    "LeNet-5": ("lenet5", {}, (1, 32, 32)),
    "AlexNet": ("alexnet", {}, (3, 227, 227)),
    "AlexNet (2 towers)": ("alexnet", {"two_tower": True}, (3, 227, 227)),
    "GoogLeNet": ("googlenet", {}, (3, 224, 224)),
    "ResNet-18": ("resnet", {"depth": 18}, (3, 224, 224)),
    "ResNet-34": ("resnet", {"depth": 34}, (3, 224, 224)),
    "ResNet-50": ("resnet", {"depth": 50}, (3, 224, 224)),
    "ResNet-101": ("resnet", {"depth": 101}, (3, 224, 224)),
    "ResNet-152": ("resnet", {"depth": 152}, (3, 224, 224)),
}
COMPARED = ("AlexNet", "AlexNet (2 towers)", "GoogLeNet", "ResNet-18", "ResNet-34",
            "ResNet-50", "ResNet-101", "ResNet-152")
VIEWS = ("layers", "compare")
GROUPS = ("layer", "block")
SCALES = ("linear", "log")
MAX_LABELS = 26  # more bars than this: label every k-th so the names stay readable

# What the GoogLeNet paper and the slides claim against AlexNet.
PAPER_PARAMS_RATIO = 12.0
PAPER_COMPUTE_RATIO = 2.0

_KIND_COLORS = {"Conv2d": OKABE_ITO[0], "Linear": OKABE_ITO[1], "block": OKABE_ITO[2]}
MINE_COLOR = OKABE_ITO[5]  # vermillion (no bar has it): the band at the first differing layer
_FAMILY_COLORS = {"AlexNet": OKABE_ITO[1], "GoogLeNet": OKABE_ITO[2], "ResNet": OKABE_ITO[0],
                  "LeNet": OKABE_ITO[3]}


@functools.cache
def model_summary(name: str):
    """``helpers.models.summary`` of the model called ``name`` (see ``MODELS``), cached.

    The model is built on the meta device, so even ResNet-152 costs no memory.

    Examples
    --------
    >>> model_summary("AlexNet")["conv1"].output_shape
    (96, 55, 55)
    """
    import torch

    from helpers import models

    builder, kwargs, shape = MODELS[canonical_name(name)]
    with torch.device("meta"):
        model = getattr(models, builder)(**kwargs)
    return models.summary(model, shape)


class ModelTable:
    """What the explorer shows of one model's summary: ``rows`` (LayerRow-like: name, kind,
    output_shape, params, macs), ``params``, ``macs``, ``input_shape`` and the HTML table
    (``_repr_html_``), precomputed from ``helpers.models.summary``."""

    def __init__(self, entry):
        from collections import namedtuple

        row = namedtuple("Row", "name kind output_shape params macs")
        self.rows = [row(n, k, tuple(shape), p, m) for n, k, shape, p, m in entry["rows"]]
        self.params, self.macs = entry["params"], entry["macs"]
        self.input_shape = tuple(entry["input_shape"])
        self._html = None

    def _repr_html_(self):
        """The table ``helpers.summary.Summary._repr_html_`` makes (a test keeps them equal),
        built once per model (the model menu shows it on every switch)."""
        if self._html is None:
            self._html = self._make_html()
        return self._html

    def _make_html(self):
        def shape(s):
            return "(" + ", ".join(str(d) for d in s) + ")" if len(s) != 1 else f"({s[0]},)"

        def human(n):
            for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
                if n >= scale:
                    return f"{n / scale:.2f}{unit}"
            return str(n)

        cells = "".join(
            "<tr>" + "".join(
                f'<td style="text-align:{a}">{html.escape(str(c))}</td>'
                for c, a in zip((r.name, r.kind, shape(r.output_shape), f"{r.params:,}",
                                 f"{r.macs:,}"), ("left", "left", "left", "right", "right")))
            + "</tr>" for r in self.rows)
        head = "".join(f"<th>{h}</th>" for h in
                       ("layer", "kind", "output shape", "params", "multiply-adds"))
        foot = (f"<tr><th colspan='3' style='text-align:left'>total</th>"
                f"<th style='text-align:right'>{self.params:,}</th>"
                f"<th style='text-align:right'>{self.macs:,}</th></tr>")
        return (f"<p>input {html.escape(shape(self.input_shape))} per image: "
                f"{human(self.params)} parameters, {human(self.macs)} multiply-adds</p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody>"
                f"<tfoot>{foot}</tfoot></table>")


@functools.cache
def model_table(name: str) -> ModelTable:
    """The precomputed table of ``name`` (see ``MODELS``), no torch needed.

    Examples
    --------
    >>> model_table("AlexNet").rows[0].output_shape
    (96, 55, 55)
    """
    from helpers.widgets._model_tables import TABLES

    return ModelTable(TABLES[canonical_name(name)])


def table_entry(summary) -> dict:
    """The part of a summary ``_model_tables.py`` keeps (plain numbers and strings)."""
    return {"input_shape": list(summary.input_shape), "params": int(summary.params),
            "macs": int(summary.macs),
            "rows": [[r.name, r.kind, list(r.output_shape), int(r.params), int(r.macs)]
                     for r in summary.rows]}


def write_tables(path=None):
    """Write ``_model_tables.py`` from the live summaries (after a change to helpers.models
    or helpers.summary; the tests say when)."""
    import pprint
    from pathlib import Path

    path = Path(path or Path(__file__).with_name("_model_tables.py"))
    tables = {name: table_entry(model_summary(name)) for name in MODELS}
    path.write_text(
        '"""Per-model tables for ArchitectureExplorer, written by `python -m '
        'helpers.widgets.models`\nfrom helpers.models.summary (do not edit by hand)."""\n\n'
        f"TABLES = {pprint.pformat(tables, width=100, compact=True)}\n")
    return path


def canonical_name(name) -> str:
    """"resnet50", "ResNet 50", "resnet-50" -> "ResNet-50"; raises naming ``model``."""
    def key(s):
        return "".join(ch for ch in str(s).lower() if ch.isalnum())

    for known in MODELS:
        if key(known) == key(name):
            return known
    raise ValueError(f"model must be one of {', '.join(MODELS)}; got {name!r}")


def bars(summary, group: str = "layer"):
    """(names, kinds, params, macs) for the bar charts of one summary.

    ``group="layer"``: every layer with parameters or multiply-adds (convs and linear
    layers; batch norms are folded into nothing: their parameters are listed in the
    table but they do no multiply-adds and hold under 1% of the parameters).
    ``group="block"``: the rows added up per block: a residual block ("conv3_x.1"), an
    inception module ("inception4a"), or a top-level layer ("conv1", "fc").
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}; got {group!r}")
    names, kinds, params, macs = [], [], [], []
    for row in summary.rows:
        if not (row.params or row.macs):
            continue
        if group == "layer":
            if row.kind not in ("Conv2d", "Linear"):
                continue
            names.append(row.name)
            kinds.append(row.kind)
            params.append(row.params)
            macs.append(row.macs)
            continue
        key = _block_of(row.name)
        if names and names[-1] == key:
            params[-1] += row.params
            macs[-1] += row.macs
            kinds[-1] = "block" if kinds[-1] != row.kind else row.kind
        else:
            names.append(key)
            kinds.append(row.kind if key == row.name else "block")
            params.append(row.params)
            macs.append(row.macs)
    return names, kinds, np.array(params, dtype=float), np.array(macs, dtype=float)


def compare_table(names=COMPARED):
    """Rows (name, params, macs) for the compare view, from the precomputed tables."""
    return [(n, model_table(n).params, model_table(n).macs) for n in names]


def googlenet_vs_alexnet():
    """The slides' "12x fewer params, 2x more compute", computed: a dict with the ratios
    against the paper's two-tower AlexNet and against the slides' one-tower version."""
    g = model_table("GoogLeNet")
    out = {}
    for label, name in (("two_tower", "AlexNet (2 towers)"), ("one_tower", "AlexNet")):
        a = model_table(name)
        out[label] = {"fewer_params": a.params / g.params, "more_compute": g.macs / a.macs}
    return out


class ArchitectureExplorer(Explorer):
    """Per-layer parameters and multiply-adds of the case-study CNNs, or all side by side.

    Parameters
    ----------
    model : str
        One of ``MODELS``: "LeNet-5", "AlexNet", "AlexNet (2 towers)", "GoogLeNet",
        "ResNet-18", "ResNet-34", "ResNet-50", "ResNet-101", "ResNet-152" (case and
        punctuation do not matter: "resnet50" works).
    view : {"layers", "compare"}
        One model's layers, or the ImageNet models side by side.
    group : {"layer", "block"}
        Bars per conv/linear layer, or per block (residual block, inception module).
    scale : {"linear", "log"}
        Bar length scale. Linear shows where the bulk is (AlexNet's fc6); log shows the
        small layers too.
    mine : dict or None
        Compare with mine: ``dict(model=...)``, your torch ``nn.Module`` (or a class or
        function that builds one with no arguments). Its layers with parameters (output
        shape, parameter count) are listed beside the selected model's; ``mismatch()``
        names the first that differs and the figure marks it.
    mine_time_limit : float
        Seconds your model may take to build and to run one input.

    Examples
    --------
    >>> ex = ArchitectureExplorer(model="AlexNet")
    >>> ex.names[:2], int(ex.param_bars[0])       # conv1: (11*11*3)*96 + 96
    (['conv1', 'conv2'], 34944)
    >>> ex.controls["model"].value = "ResNet-50"  # redraws in place
    >>> ex.controls["view"].value = "compare"
    >>> ex.names[:3]
    ['AlexNet', 'AlexNet (2 towers)', 'GoogLeNet']
    >>> from helpers.models import lenet5
    >>> ArchitectureExplorer("LeNet-5", mine=dict(model=lenet5(pool="max"))).mismatch() is None
    True
    >>> ArchitectureExplorer("LeNet-5", mine=dict(model=lenet5(num_classes=9))).mismatch()[:40]
    "your model's layer 5 with parameters, 'o"
    """

    MINE = {"model": "model: your torch nn.Module (or a class that builds it), e.g. LeNet5()"}

    def __init__(self, model="AlexNet", view="layers", group="layer", scale="linear",
                 mine=None, mine_time_limit=TIME_LIMIT):
        model = canonical_name(model)
        _check_option(view, "view", VIEWS)
        _check_option(group, "group", GROUPS)
        _check_option(scale, "scale", SCALES)
        self._set_mine(mine)
        if self.mine:
            from helpers._validation import check_float

            self.mine_time_limit = check_float(mine_time_limit, "mine_time_limit",
                                               min_value=1e-3, max_value=600.0)
            self._mine_model = None  # built on first use (a class or builder is called once)
            self._mine_summaries = {}  # input shape -> (Summary or None, problem or None)
        self.mine_layer = None  # the bar index marked (the first differing layer), or None
        self.controls = {
            "model": w.Dropdown(options=list(MODELS), value=model, description="model"),
            "view": w.ToggleButtons(options=VIEWS, value=view, description="view"),
            "group": w.ToggleButtons(options=GROUPS, value=group, description="bars per"),
            "scale": w.ToggleButtons(options=SCALES, value=scale, description="scale"),
        }
        for control in self.controls.values():
            control.observe(lambda _: self.update(), names="value")
            if isinstance(control, w.ToggleButtons):
                control.style.button_width = "80px"

        self.fig, (self.ax_params, self.ax_macs) = new_figure((8.2, 5.6), ncols=2, wspace=0.1)
        self.fig.subplots_adjust(left=0.23, right=0.97, bottom=0.1, top=0.86)  # 820 px wide
        # The multiply-adds chart has the parameters chart's rows (_draw sets both y limits)
        # and no names of its own: the names are on the left. Not a shared y axis: that
        # formats every name again on each draw for tick labels that are never shown, and
        # measures the shown ones again to place this chart's (empty) y label.
        self.ax_macs.yaxis.set_major_locator(NullLocator())
        self.ax_macs.tick_params(labelleft=False, left=False)
        # One PolyCollection of bars per chart (ResNet-152 has 156 bars: a Rectangle per
        # bar costs more than the rest of a redraw), kept: a switch sets its rectangles and
        # colours instead of building and adding a new one.
        self.bar_collections = {
            key: ax.add_collection(PolyCollection([], edgecolors="none"), autolim=False)
            for key, ax in (("params", self.ax_params), ("macs", self.ax_macs))}
        self._artists = []  # what the last draw added besides the bars (values, marks)
        self.table = w.HTML(layout=w.Layout(max_height="320px", overflow="auto"))
        rows = [[self.controls["model"], self.controls["view"]],
                [self.controls["group"], self.controls["scale"]]]
        self._finish(rows)
        self.widget.children = (*self.widget.children, self.table)
        self.update()

    # ------------------------------------------------------------------ state
    @property
    def summary(self):
        """The live summary of the selected model (cached; traced on first use)."""
        return model_summary(self.controls["model"].value)

    @property
    def _table(self):
        return model_table(self.controls["model"].value)

    def update(self):
        """Recompute the bars for the current controls and redraw the figure in place."""
        c = self.controls
        if c["view"].value == "compare":
            rows = compare_table()
            self.names = [r[0] for r in rows]
            self.kinds = [_family(n) for n in self.names]
            self.param_bars = np.array([r[1] for r in rows], dtype=float)
            self.mac_bars = np.array([r[2] for r in rows], dtype=float)
            self.table.value = _compare_html(rows)
        else:
            s = self._table
            self.names, self.kinds, self.param_bars, self.mac_bars = _bars_of(
                c["model"].value, c["group"].value)
            self.table.value = s._repr_html_()
            if self.mine:
                self.table.value = self._mine_html_table() + self.table.value
        self._draw()

    def describe(self):
        c = self.controls
        if c["view"].value == "compare":
            return "compare: " + self._compare_title().replace("\n", " ")
        s = self._table
        return (f"{c['model'].value}: {s.params:,} parameters, {s.macs:,} multiply-adds "
                f"per image")

    # ------------------------------------------------------------------ static path
    @classmethod
    def static(cls, model="AlexNet", view="layers", group="layer", scale="linear"):
        """One figure, no frontend: the bar charts for these settings."""
        return cls(model=model, view=view, group=group, scale=scale).fig

    # ------------------------------------------------------------------ drawing
    def _draw(self):
        c = self.controls
        compare = c["view"].value == "compare"
        for artist in self._artists:
            artist.remove()
        self._artists = []
        y = np.arange(len(self.names))
        palette = _FAMILY_COLORS if compare else _KIND_COLORS
        colors = _rgba(tuple(palette.get(k, OKABE_ITO[4]) for k in self.kinds))
        unit_p, scale_p = ("M", 1e6) if compare or self.param_bars.max() >= 1e6 else ("K", 1e3)
        unit_m, scale_m = ("G", 1e9) if compare or self.mac_bars.max() >= 1e9 else ("M", 1e6)
        log = c["scale"].value == "log"
        for key, ax, values, scale, unit, what in (
                ("params", self.ax_params, self.param_bars, scale_p, unit_p, "parameters"),
                ("macs", self.ax_macs, self.mac_bars, scale_m, unit_m,
                 "multiply-adds per image")):
            ax.set_xscale("log" if log else "linear")
            if log:  # a label per decade, no minor ticks (dozens of tick artists per draw)
                ax.xaxis.set_major_locator(LogLocator(base=10, numticks=5))
                ax.xaxis.set_minor_locator(NullLocator())
                # "0.01", "100": plain text, not mathtext's 10^k (parsed on every new label)
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
                ax.xaxis.set_major_formatter(ScalarFormatter())
            shown = values / scale
            if log:  # a bar of 0 has no place on a log axis: draw it as nothing
                shown = np.where(shown > 0, shown, np.nan)
            positive = shown[np.isfinite(shown) & (shown > 0)]
            top = positive.max() if positive.size else 1.0
            if log:
                low = positive.min() / 2 if positive.size else 0.1
                ax.set_xlim(low, top * (4 if compare or len(y) <= 20 else 1.5))
            else:
                low = 0.0
                ax.set_xlim(0, top * (1.3 if compare or len(y) <= 20 else 1.05))
            # one rectangle per bar, (low, y - 0.375) to (value, y + 0.375), in the chart's
            # one PolyCollection
            keep = np.isfinite(shown)
            verts = np.empty((int(keep.sum()), 4, 2))
            verts[:, :, 0] = low
            verts[:, 1:3, 0] = shown[keep, None]
            verts[:, :, 1] = y[keep, None] + np.array([-0.375, -0.375, 0.375, 0.375])
            bars_ = self.bar_collections[key]
            bars_.set_verts(verts)
            bars_.set_facecolor(colors[keep])
            ax.set_xlabel(f"{what} ({unit})" if unit else what)
            if compare or len(y) <= 20:
                for yi, v, raw in zip(y, shown, values):
                    if np.isfinite(v):
                        self._artists.append(ax.text(v, yi, f" {_human(raw)}", va="center",
                                                     fontsize=8))
        step = max(1, int(np.ceil(len(y) / MAX_LABELS)))
        self.ax_params.set_yticks(y[::step], [self.names[i] for i in y[::step]],
                                  fontsize=8 if len(y) > 20 else 9)
        for ax in (self.ax_params, self.ax_macs):
            ax.set_ylim(len(y) - 0.5, -0.5)  # first layer on top
        self.ax_params.set_ylabel("model" if compare else
                                  ("block" if c["group"].value == "block" else "layer")
                                  + (f" (1 in {step} labelled)" if step > 1 else ""))
        if compare:
            self.ax_params.set_title("Parameters")
            self.ax_macs.set_title("Multiply-adds per image")
            self.fig.suptitle(self._compare_title(), fontsize=11)
        else:
            s = self._table
            name = c["model"].value
            self.ax_params.set_title(f"Parameters: {s.params:,} in all")
            self.ax_macs.set_title(f"Multiply-adds: {_human(s.macs)} per image")
            self.fig.suptitle(f"{name}, input {_fmt_chw(s.input_shape)}: where the "
                              f"parameters and the compute are", fontsize=11)
        self.status.value = f"<b>{html.escape(self.describe())}</b>"
        if self.mine:
            self._mark_mine(compare)
        self.redraw()

    # ------------------------------------------------------------------ compare with mine
    def mismatch(self):
        """``None`` when your model's layers with parameters have the selected model's
        output shapes and parameter counts, one for one; else one sentence naming the first
        layer that differs (both shapes and counts), or what went wrong with your model."""
        if not self.mine:
            return None
        return self._mine_parting()[1]

    def mine_rows(self):
        """Your model's layers with parameters (name, kind, output_shape, params), or None
        when it could not be traced (``mine_problem`` says why)."""
        summary, _ = self._mine_summary()
        return None if summary is None else _weighted(summary.rows)

    def _mine_summary(self):
        """The student's model traced on the selected model's input, cached per input."""
        shape = self._table.input_shape
        if shape not in self._mine_summaries:
            self._mine_summaries[shape] = self._trace_mine(shape)
        return self._mine_summaries[shape]

    def _trace_mine(self, shape):
        import torch

        model = self._mine_model
        if model is None:
            given = self.mine["model"]
            if isinstance(given, torch.nn.Module):
                model = given
            else:  # a class or a function that builds the model
                res = call_mine("model", given, time_limit=self.mine_time_limit)
                if not res.ok:
                    return None, res.message.replace("your model raised",
                                                     "building your model raised")
                if not isinstance(res.value, torch.nn.Module):
                    return None, (f"your model builder returned {type(res.value).__name__}, "
                                  f"not a torch nn.Module")
                model = res.value
            self._mine_model = model
        # The first layer a process runs on the meta device makes torch import sympy and
        # torch._dynamo (torch._check -> torch.fx.experimental.symbolic_shapes, ~3 s on a
        # busy machine): paid here, outside the student's time limit, not by their model.
        import torch.fx.experimental.symbolic_shapes  # noqa: F401
        res = call_mine("model", _summarise, model, shape, time_limit=self.mine_time_limit)
        if res.ok:
            return res.value, None
        first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
        if first is not None and first.in_channels != shape[0]:
            return None, (f"your model's first conv takes {first.in_channels} input "
                          f"channels, but {self.controls['model'].value}'s input is "
                          f"{_fmt_chw(shape)} ({shape[0]} channel{'s' * (shape[0] != 1)}): "
                          f"build it with in_channels={shape[0]}")
        return None, res.message.replace(": the explorer shows", f" (on a {_fmt_chw(shape)} "
                                         "input): the explorer shows")

    def _mine_parting(self):
        """(index into the reference's layers with parameters or None, sentence or None)."""
        summary, problem = self._mine_summary()
        if summary is None:
            return None, problem
        name = self.controls["model"].value
        ref, mine = _weighted(self._table.rows), _weighted(summary.rows)
        for i, (r, m) in enumerate(zip(ref, mine)):
            if r.output_shape != m.output_shape or r.params != m.params:
                return i, (f"your model's layer {i + 1} with parameters, {m.name!r} "
                           f"({m.kind}), gives output {_fmt_shape(m.output_shape)} with "
                           f"{m.params:,} parameters; {name}'s {r.name!r} ({r.kind}) gives "
                           f"{_fmt_shape(r.output_shape)} with {r.params:,}")
        if len(mine) < len(ref):
            r, i = ref[len(mine)], len(mine)
            return i, (f"your model has {len(mine)} layers with parameters, {name} has "
                       f"{len(ref)}: its layer {i + 1}, {r.name!r} ({r.kind}, output "
                       f"{_fmt_shape(r.output_shape)}, {r.params:,} parameters), is missing "
                       f"from yours")
        if len(mine) > len(ref):
            m, i = mine[len(ref)], len(ref)
            return i, (f"your model has {len(mine)} layers with parameters, {name} has "
                       f"{len(ref)}: your layer {i + 1}, {m.name!r} ({m.kind}, output "
                       f"{_fmt_shape(m.output_shape)}, {m.params:,} parameters), has no "
                       f"counterpart")
        return None, None

    def _mark_mine(self, compare):
        """Band across both bar charts at the first differing layer (its bar, or the bar of
        its block, or the last bar if the layer has none); the sentence on the status line."""
        index, sentence = self._mine_parting()
        self._show_mine(sentence)
        self.mine_layer = None
        if compare or index is None or not self.names:
            return
        ref = _weighted(self._table.rows)
        layer = ref[min(index, len(ref) - 1)].name
        group = self.controls["group"].value
        want = _block_of(layer) if group == "block" else layer
        bar = len(self.names) - 1
        if want in self.names:
            bar = self.names.index(want)
        else:  # a batch norm (no bar of its own): the bar of the layer before it
            before = [r.name for r in ref[:index + 1]]
            for name in reversed(before):
                if name in self.names:
                    bar = self.names.index(name)
                    break
        self.mine_layer = bar
        for ax in (self.ax_params, self.ax_macs):
            band = ax.axhspan(bar - 0.5, bar + 0.5, color=MINE_COLOR, alpha=0.22, lw=0,
                              zorder=0.5)
            self._artists.append(band)
        self.mine_band = band
        self._artists.append(self.ax_macs.text(
            0.98, bar, "first difference with yours", ha="right", va="center", fontsize=8,
            color=MINE_COLOR, transform=self.ax_macs.get_yaxis_transform(),
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0}))

    def _mine_html_table(self):
        """The reference's and the student's layers with parameters, side by side."""
        summary, problem = self._mine_summary()
        if summary is None:
            return f"<p><b>Your model</b>: {html.escape(problem)}</p>"
        index, _ = self._mine_parting()
        ref, mine = _weighted(self._table.rows), _weighted(summary.rows)
        head = "".join(f"<th>{h}</th>" for h in (
            "#", "layer", "output shape", "params", "your layer", "your output shape",
            "your params"))
        body = []
        for i in range(max(len(ref), len(mine))):
            cells = [str(i + 1)]
            for rows in (ref, mine):
                if i < len(rows):
                    r = rows[i]
                    cells += [html.escape(r.name), _fmt_shape(r.output_shape), f"{r.params:,}"]
                else:
                    cells += ["", "", ""]
            style = f" style='background:{MINE_COLOR}33'" if i == index else ""
            body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        verdict = ("the same, layer for layer" if index is None else
                   f"they part at layer {index + 1} (highlighted)")
        return (f"<p><b>Your model beside {html.escape(self.controls['model'].value)}</b> "
                f"(layers with parameters): {verdict}</p><table><thead><tr>{head}</tr>"
                f"</thead><tbody>{''.join(body)}</tbody></table>")

    def _compare_title(self):
        r = googlenet_vs_alexnet()["two_tower"]
        return (f"GoogLeNet vs AlexNet (2 towers): {r['fewer_params']:.1f}x fewer "
                f"parameters, {r['more_compute']:.1f}x more compute\n(the paper says "
                f"{PAPER_PARAMS_RATIO:.0f}x and {PAPER_COMPUTE_RATIO:.0f}x)")


# --------------------------------------------------------------------------- internals

def _block_of(name):
    """'conv3_x.2.conv1' -> 'conv3_x.2'; 'inception4a.branch2.conv' -> 'inception4a';
    'conv1.conv' -> 'conv1'; 'fc6' -> 'fc6'."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[1].isdigit():
        return ".".join(parts[:2])
    return parts[0]


def _family(name):
    for family in _FAMILY_COLORS:
        if name.startswith(family):
            return family
    return "other"


@functools.cache
def _bar_table(name, group):
    """``bars`` of the precomputed table of ``name``, computed once per model and group."""
    names, kinds, params, macs = bars(model_table(name), group)
    params.flags.writeable = macs.flags.writeable = False  # shared by every explorer
    return tuple(names), tuple(kinds), params, macs


def _bars_of(name, group):
    """(names, kinds, params, macs) of the bar charts: the explorer's own lists and arrays."""
    names, kinds, params, macs = _bar_table(name, group)
    return list(names), list(kinds), params.copy(), macs.copy()


@functools.cache
def _rgba(colors):
    """(n, 4) RGBA array of a tuple of colours (the bars' colours, once per list)."""
    from matplotlib.colors import to_rgba_array

    rgba = to_rgba_array(colors) if colors else np.empty((0, 4))
    rgba.flags.writeable = False
    return rgba


def _check_option(value, name, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")


def _human(n):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{int(n)}"


def _weighted(rows):
    """The rows of layers that hold parameters (conv, linear, batch norm): what a student's
    model is compared on (its activations and pooling may be functions, not modules)."""
    return [r for r in rows if r.params > 0]


def _summarise(model, shape):
    """``helpers.models.summary``, but a forward pass that fails raises the model's own
    error (with its line in the student's cell), not summary's ValueError around it."""
    from helpers.models import summary

    try:
        return summary(model, shape)
    except ValueError as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise


def _fmt_shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _fmt_chw(shape):
    return "x".join(str(d) for d in shape)


def _compare_html(rows):
    base = dict((n, (p, m)) for n, p, m in rows).get("AlexNet (2 towers)")
    head = "".join(f"<th>{h}</th>" for h in (
        "model", "parameters", "multiply-adds", "params vs AlexNet (2 towers)",
        "compute vs AlexNet (2 towers)"))
    body = []
    for name, params, macs in rows:
        cells = [html.escape(name), f"{params:,}", f"{macs:,}"]
        if base:
            cells += [f"{params / base[0]:.2f}x", f"{macs / base[1]:.2f}x"]
        body.append("<tr>" + "".join(
            f'<td style="text-align:{"left" if i == 0 else "right"}">{c}</td>'
            for i, c in enumerate(cells)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


if __name__ == "__main__":
    print(f"wrote {write_tables()}")
