"""ConvExplorer: a filter sliding over a zero-padded input, the output filling in, and why
some strides "don't fit".

Four panels:

1. **Input** (one depth slice, ``channel``), zero-padded by P: the numbers in the cells,
   padding cells grey and hatched, the filter window (F x F) at the current output position.
2. **Filter** ``filter`` (its weights for that depth slice) and its bias.
3. **Output** (activation map number ``filter``): the cells computed so far, the current one
   outlined. Every number comes from :func:`helpers.conv.conv2d`; nothing is recomputed here.
4. **Depth view**: the input volume N x N x D, the K filters (each F x F x D: a filter always
   spans the full input depth) and the output volume N' x N' x K (one activation map per
   filter), with the receptive field of the current output number drawn through the input.

Above them, the slides' formula with the current numbers, ``(N - F + 2P)/S + 1 = ...``. When
the filter doesn't fit (the result is not an integer, or F > N + 2P) the formula turns red and
shows :func:`helpers.conv.output_size`'s explanation; the output panel then shows, greyed out,
what torch would compute by flooring, and the input rows/columns torch would silently drop
are hatched in red.

The numbers are small integers (inputs 1..9, weights -1/0/1, biases -2..2) so that a room can
check a dot product by eye. Inputs come from ``seed``; changing S or P keeps them, so only the
arithmetic changes.

Compare with mine (``mine=dict(conv2d_forward=..., conv_output_size=...)``): the student's
functions from the notebook run on the same numbers; :meth:`ConvExplorer.mismatch` names the
first output cell (filter, row, column) whose value differs, with both values, or the output
size the student's formula gives against the reference's; the output panel outlines the
cells of the shown activation map that differ.
"""

from __future__ import annotations

import numbers
import textwrap

import ipywidgets as w
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle

from helpers._validation import check_float, check_int
from helpers.conv import conv2d, output_size
from helpers.widgets._base import OKABE_ITO, Explorer, NumberGrid, fixed_titles, new_figure
from helpers.widgets._mine import TIME_LIMIT, call_mine, cell_squares, compare_array, fmt

# Ranges of the sliders (the constructor accepts the same ranges).
LIMITS = {"N": (1, 32), "F": (1, 11), "S": (1, 6), "P": (0, 5), "D": (1, 4), "K": (1, 8)}
MAX_NUMBERED = 15  # grids wider than this are drawn as colours only (text would be unreadable)
FILTER_COLORS = tuple(c for c in OKABE_ITO if c != "#F0E442")  # no yellow on white
ERROR_COLOR = "#D55E00"
PAD_COLOR = "#d9d9d9"
INPUT_COLOR = "#56B4E9"
VOLUME_COLOR = "#d4d4d4"
POS_COLOR, NEG_COLOR = "#E69F00", "#0072B2"
DEPTH_STEP = np.array([0.42, 0.3])  # oblique projection: one depth slice moves up and right
PLAY_INTERVAL_MS = 700
MINE_COLOR = "black"  # dashed outlines of the output cells where the student's output differs
# (black: the cells are orange/blue, and vermillion already means "doesn't fit")
FIGSIZE = (8.2, 6.6)  # inches at 100 dpi: 820 px wide, inside a 1280-px JupyterLab's output


class ConvExplorer(Explorer):
    """Slide a filter over a padded input and watch the output (and "doesn't fit") appear.

    Parameters
    ----------
    N : int, 1..32
        Input width and height (the slides' N; a square N x N input).
    F : int, 1..11
        Filter size (F x F).
    S : int, 1..6
        Stride.
    P : int, 0..5
        Zero padding on each side.
    D : int, 1..4
        Input depth (channels); every filter has this depth too.
    K : int, 1..8
        Number of filters = number of activation maps (output depth).
    position : int or None
        Output position (row-major index) where the window stands; the output is filled up
        to it. None: the last position (everything filled).
    filter : int
        Which filter (and activation map) the number panels show, 0..K-1.
    channel : int
        Which depth slice of the input (and of the filter) the number panels show, 0..D-1.
    seed : int
        Seed of the input numbers and of the filter weights.
    mine : dict or None
        Compare with mine: your functions from the notebook, any of ``conv2d_forward(x, w,
        b, stride=1, pad=0)`` and ``conv_output_size(N, F, S=1, P=0)``, run on the
        explorer's current numbers; :meth:`mismatch` names the first place they part from
        the reference and the output panel outlines the cells that differ.
    mine_time_limit : float
        Seconds one call of your function may take before it is stopped.

    Attributes
    ----------
    x, w, b : ndarray
        The input (1, D, N, N), filters (K, D, F, F) and biases (K,).
    out : ndarray (1, K, N', N') or None
        ``helpers.conv.conv2d(x, w, b, S, P)``; None when the filter doesn't fit.
    error : str or None
        :func:`helpers.conv.output_size`'s message when the filter doesn't fit.
    floor_out : ndarray or None
        What torch computes (``conv2d(..., floor=True)``) when the filter doesn't fit; None
        when it fits, or when F > N + 2P (nothing fits at all).

    Examples
    --------
    >>> ex = ConvExplorer(N=7, F=3, S=2, P=0, D=1, K=1)
    >>> ex.out.shape, ex.n_positions
    ((1, 1, 3, 3), 9)
    >>> ex.controls["S"].value = 3                  # the slides' stride 3: doesn't fit
    >>> ex.out is None, ex.floor_out.shape
    (True, (1, 1, 2, 2))
    >>> ex.error.split(":")[0]
    '(7 - 3 + 2*0)/3 + 1 = 2.33 is not an integer'
    >>> floors = lambda N, F, S=1, P=0: (N - F + 2 * P) // S + 1   # torch's formula
    >>> ConvExplorer(N=7, F=3, S=3, P=0, mine=dict(conv_output_size=floors)).mismatch()[:47]
    'your conv_output_size(7, 3, 3, 0) returned 2, b'
    """

    MINE = {"conv2d_forward": "conv2d_forward(x, w, b, stride=1, pad=0) -> (N, K, H', W')",
            "conv_output_size": "conv_output_size(N, F, S=1, P=0) -> int, ValueError when "
                                "the filter doesn't fit"}

    def __init__(self, N=7, F=3, S=2, P=0, D=3, K=2, *, position=0, filter=0, channel=0,
                 seed=0, mine=None, mine_time_limit=TIME_LIMIT):
        sizes = {name: check_int(value, name, min_value=lo, max_value=hi)
                 for (name, (lo, hi)), value in zip(LIMITS.items(), (N, F, S, P, D, K))}
        filter = check_int(filter, "filter", min_value=0, max_value=sizes["K"] - 1)
        channel = check_int(channel, "channel", min_value=0, max_value=sizes["D"] - 1)
        seed = check_int(seed, "seed", min_value=0)
        if position is not None:
            position = check_int(position, "position", min_value=0)
        self._set_mine(mine)
        self.mine_time_limit = check_float(mine_time_limit, "mine_time_limit",
                                           min_value=1e-3, max_value=60.0)
        self.mine_out = self.mine_cells = None
        self._mismatch = None
        self._busy = True  # no redraws while the controls are being built
        names = {"N": "input N", "F": "filter F", "S": "stride S", "P": "padding P",
                 "D": "depth D", "K": "filters K"}
        self.controls = {
            name: w.IntSlider(value=sizes[name], min=lo, max=hi, description=names[name],
                              continuous_update=False, style={"description_width": "70px"})
            for name, (lo, hi) in LIMITS.items()
        }
        self.controls["position"] = w.IntSlider(value=0, min=0, max=0, description="position",
                                                style={"description_width": "70px"})
        self.controls["play"] = w.Play(value=0, min=0, max=0, step=1, interval=PLAY_INTERVAL_MS,
                                       description="play")
        # The Play widget ticks in the browser; a Python-side link moves the position slider
        # (and so the figure) with it, and works without a browser too.
        w.link((self.controls["play"], "value"), (self.controls["position"], "value"))
        self.controls["filter"] = w.Dropdown(options=list(range(sizes["K"])), value=filter,
                                             description="show filter",
                                             style={"description_width": "80px"},
                                             layout=w.Layout(width="160px"))
        self.controls["channel"] = w.Dropdown(options=list(range(sizes["D"])), value=channel,
                                              description="depth slice",
                                              style={"description_width": "80px"},
                                              layout=w.Layout(width="160px"))
        self.controls["seed"] = w.IntText(value=seed, description="seed",
                                          layout=w.Layout(width="140px"))
        self.buttons = {
            key: w.Button(description=label, layout=w.Layout(width="80px"))
            for key, label in (("first", "|◀ first"), ("back", "◀ back"), ("step", "step ▶"),
                               ("all", "all ▶|"))
        }
        self.buttons["first"].on_click(lambda _: self.go_to(0))
        self.buttons["back"].on_click(lambda _: self.step_back())
        self.buttons["step"].on_click(lambda _: self.step())
        self.buttons["all"].on_click(lambda _: self.go_to(self.n_positions - 1))
        for name in (*LIMITS, "seed"):
            self.controls[name].observe(lambda _: self._rebuild(), names="value")
        for name in ("filter", "channel"):
            self.controls[name].observe(lambda _: self._restyle(), names="value")
        self.controls["position"].observe(lambda _: self._on_position(), names="value")

        self.fig, (self.ax_in, self.ax_w, self.ax_out) = new_figure(
            FIGSIZE, ncols=3, width_ratios=[1.45, 0.75, 1.1], wspace=0.24)
        self.fig.subplots_adjust(left=0.055, right=0.99, bottom=0.44, top=0.79)
        with fixed_titles():
            self.ax_depth = self.fig.add_axes((0.02, 0.03, 0.96, 0.34))
        self.formula_text = self.fig.text(0.5, 0.98, "", ha="center", va="top", fontsize=12,
                                          fontweight="bold")
        self.detail_text = self.fig.text(0.5, 0.935, "", ha="center", va="top", fontsize=9)
        self._artists = []     # rebuilt with the grid: patches, images, cell lines
        self.out_image = None
        self.in_numbers = NumberGrid(self.ax_in, zorder=3)
        self.w_numbers = NumberGrid(self.ax_w, zorder=3)
        self.out_numbers = NumberGrid(self.ax_out, zorder=3)
        self.window_rect = self.ax_in.add_patch(Rectangle((-0.5, -0.5), 1, 1, fill=False,
                                                          lw=3.5, zorder=5))
        self.cell_rect = self.ax_out.add_patch(Rectangle((-0.5, -0.5), 1, 1, fill=False, lw=3,
                                                         zorder=5))
        self._setup_depth_axes()
        self.mine_marks = None
        if self.mine:  # outlines of the output cells where the student's output differs
            self.mine_marks = self.ax_out.add_collection(PolyCollection(
                [], facecolors="none", edgecolors=MINE_COLOR, linewidths=2.2, linestyles="--",
                zorder=4.5,
                animated=True))
        self._track_background()
        c = self.controls
        rows = [
            [c["N"], c["F"], c["S"]],
            [c["P"], c["D"], c["K"]],
            [c["position"], c["play"], *self.buttons.values()],
            [c["filter"], c["channel"], c["seed"]],
        ]
        self._finish(rows)
        self._busy = False
        self._rebuild(position=position)

    # ------------------------------------------------------------------ stepping
    @property
    def n_positions(self) -> int:
        """Number of filter positions (output cells of one map; torch's when it doesn't fit)."""
        grid = self.out if self.out is not None else self.floor_out
        return 0 if grid is None else grid.shape[2] * grid.shape[3]

    @property
    def position(self) -> int:
        return self.controls["position"].value

    def go_to(self, position):
        """Put the window at output position ``position`` (row-major), clipped to the grid."""
        last = max(self.n_positions - 1, 0)
        self.controls["position"].value = int(min(max(position, 0), last))

    def step(self):
        """Move the window to the next output position (stays at the last one)."""
        self.go_to(self.position + 1)

    def step_back(self):
        self.go_to(self.position - 1)

    def window(self):
        """(top, left) of the window in padded-input coordinates and the output cell (i, j)."""
        grid = self.out if self.out is not None else self.floor_out
        if grid is None:
            return None
        i, j = divmod(self.position, grid.shape[3])
        S = self.controls["S"].value
        return (i * S, j * S), (i, j)

    def describe(self):
        p = self._params()
        shape = (f"output {self.out.shape[2]}x{self.out.shape[3]}x{p['K']}"
                 if self.out is not None else "doesn't fit")
        return (f"N={p['N']}, F={p['F']}, S={p['S']}, P={p['P']}, D={p['D']}, K={p['K']}: "
                f"{shape}, position {self.position + 1} of {self.n_positions}")

    # ------------------------------------------------------------------ compare with mine
    def mismatch(self):
        """``None`` when your functions (``mine=``) agree with the reference on the current
        N, F, S, P and numbers; else one sentence: the output size your conv_output_size
        gives against the reference's, or the first output cell (filter, row, column) where
        your conv2d_forward differs, with both values, or what went wrong calling yours.
        conv2d_forward is compared where the filter fits (the exercise's cases)."""
        return self._mismatch if self.mine else None

    def _compare_mine(self):
        """Run the student's functions on the current state; keep the first sentence."""
        p = self._params()
        N, F, S, P = p["N"], p["F"], p["S"], p["P"]
        self.mine_out = self.mine_bad = None
        self._show_mine(None)
        sentences = []
        if "conv_output_size" in self.mine:
            sentences.append(self._compare_output_size(N, F, S, P))
        if "conv2d_forward" in self.mine and self.out is not None:
            sentences.append(self._compare_forward(N, F, S, P))
        self._mismatch = next((s for s in sentences if s), None)
        self._show_mine(self._mismatch)

    def _compare_output_size(self, N, F, S, P):
        res = call_mine("conv_output_size", _refusing(self.mine["conv_output_size"]),
                        N, F, S, P, time_limit=self.mine_time_limit)
        if not res.ok:
            return res.message
        refused, got = res.value
        call = f"your conv_output_size({N}, {F}, {S}, {P})"
        formula = f"(N - F + 2P)/S + 1 = ({N} - {F} + 2*{P})/{S} + 1"
        if refused:
            if self.error is not None:
                return None
            return (f"{call} raised ValueError ({got[:100]}), but the filter fits: "
                    f"{formula} = {self.out.shape[2]}")
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            return f"{call} returned {type(got).__name__} {got!r:.40}, not a number"
        if self.error is not None:
            return (f"{call} returned {fmt(got)}, but the filter doesn't fit and the "
                    f"reference raises ValueError: {self.error}")
        want = self.out.shape[2]
        if got != want:
            return f"{call} returned {fmt(got)}; the reference's {formula} = {want}"
        return None

    def _compare_forward(self, N, F, S, P):
        # copies: a function that writes into its input must not change the explorer's
        res = self._call_mine("conv2d_forward", self.x.copy(), self.w.copy(), self.b.copy(),
                              S, P, time_limit=self.mine_time_limit)
        if not res.ok:
            return res.message
        got, bad, diff, problem = compare_array("conv2d_forward", res.value, self.out)
        if problem:
            return problem
        self.mine_out, self.mine_bad = got, bad[0]
        if diff is None:
            return None
        (_, k, i, j), yours, ref = diff
        return (f"your conv2d_forward parts from the reference first at filter {k}, row {i}, "
                f"column {j} of the output (N={N}, F={F}, S={S}, P={P}): yours {fmt(yours)}, "
                f"the reference's {fmt(ref)} ({int(self.mine_bad.sum())} of "
                f"{self.mine_bad.size} output numbers differ)")

    def _mark_mine(self, k):
        """Outline the cells of activation map ``k`` where the student's output differs;
        True when there are any."""
        if self.mine_marks is None or self.mine_out is None or self.out is None:
            return False
        self.mine_cells = np.argwhere(self.mine_bad[k])  # (row, column) pairs
        self.mine_marks.set_verts(cell_squares(self.mine_cells))
        return len(self.mine_cells) > 0

    # ------------------------------------------------------------------ static path
    @classmethod
    def static(cls, N=7, F=3, S=2, P=0, D=3, K=2, *, position=None, filter=0, channel=0,
               seed=0):
        """One figure, no frontend. ``position=None``: the whole output filled in."""
        ex = cls(N=N, F=F, S=S, P=P, D=D, K=K, position=position, filter=filter,
                 channel=channel, seed=seed)
        return ex.fig

    # ------------------------------------------------------------------ the numbers
    def _params(self):
        return {name: self.controls[name].value for name in LIMITS}

    def _compute(self):
        """New numbers for the current sizes: x, w, b, and conv2d's output (or its refusal)."""
        p = self._params()
        seed = self.controls["seed"].value
        # Separate streams: changing F keeps the input, changing N keeps the filters.
        self.x = np.random.default_rng([seed, 0, p["N"], p["D"]]).integers(
            1, 10, size=(1, p["D"], p["N"], p["N"])).astype(float)
        rng_w = np.random.default_rng([seed, 1, p["F"], p["D"], p["K"]])
        self.w = rng_w.integers(-1, 2, size=(p["K"], p["D"], p["F"], p["F"])).astype(float)
        self.b = rng_w.integers(-2, 3, size=p["K"]).astype(float)
        self.out = self.floor_out = self.error = None
        try:
            output_size(p["N"], p["F"], p["S"], p["P"])
        except ValueError as exc:
            self.error = str(exc)
        floor = self.error is not None
        if p["F"] > p["N"] + 2 * p["P"]:
            self.partial = None
            return
        result = conv2d(self.x, self.w, self.b, p["S"], p["P"], floor=floor)
        # The contribution of each depth slice: the same conv2d on that slice alone.
        self.partial = np.stack([
            conv2d(self.x[:, [c]], self.w[:, [c]], None, p["S"], p["P"], floor=floor)
            for c in range(p["D"])
        ])  # (D, 1, K, N', N')
        if floor:
            self.floor_out = result
        else:
            self.out = result

    # ------------------------------------------------------------------ drawing
    def _rebuild(self, position=None):
        if self._busy:
            return
        self._busy = True
        try:
            p = self._params()
            self._compute()
            if self.mine:
                self._compare_mine()
            for name, count in (("filter", p["K"]), ("channel", p["D"])):
                control = self.controls[name]
                keep = min(control.value, count - 1)
                control.options = list(range(count))
                control.value = keep
            last = max(self.n_positions - 1, 0)
            for name in ("position", "play"):
                control = self.controls[name]
                control.max = last
                control.disabled = self.n_positions == 0
            if position is None and self._artists == []:
                pos = last  # static path / first draw without a position
            elif position is None:
                pos = min(self.position, last)
            else:
                pos = min(position, last)
            self.controls["position"].value = pos
            self.controls["play"].value = pos
        finally:
            self._busy = False
        self._draw_grids()
        self._draw_depth()
        self._draw_position(full=True)

    def _restyle(self):
        if self._busy:
            return
        self._draw_grids()
        self._draw_depth()
        self._draw_position(full=True)

    def _on_position(self):
        if not self._busy:
            self._draw_position()

    def _draw_grids(self):
        """Everything that depends on the sizes, the shown filter and the shown slice."""
        for artist in self._artists:
            artist.remove()
        self._artists = []
        self._draw_input()
        self._draw_filter()
        self._draw_output()
        self._draw_formula()
        for artist in self._moving():
            artist.set_animated(True)

    def _draw_input(self):
        """Panel 1: the input slice, zero-padded, with its numbers and what torch drops."""
        p = self._params()
        c = self.controls["channel"].value
        N, F, P = p["N"], p["F"], p["P"]
        xp = np.pad(self.x[0, c], P)
        Np = N + 2 * P
        rgba = _shade(xp, INPUT_COLOR, lo=1, hi=9)
        pad_mask = np.ones((Np, Np), bool)
        pad_mask[P:P + N, P:P + N] = False
        rgba[pad_mask] = to_rgba(PAD_COLOR)
        ax = self.ax_in
        self._artists.append(ax.imshow(rgba, extent=(-0.5, Np - 0.5, Np - 0.5, -0.5),
                                       interpolation="nearest"))
        if P:
            for xy, wd, ht in (((-0.5, -0.5), Np, P), ((-0.5, Np - P - 0.5), Np, P),
                               ((-0.5, P - 0.5), P, N), ((Np - P - 0.5, P - 0.5), P, N)):
                self._artists.append(ax.add_patch(Rectangle(
                    xy, wd, ht, fill=False, hatch="///", edgecolor="#9a9a9a", lw=0)))
        if Np <= MAX_NUMBERED:
            rows, cols = np.indices(xp.shape)
            self.in_numbers.set(np.c_[cols.ravel(), rows.ravel()],
                                [f"{v:g}" for v in xp.ravel()],
                                _font_size(self.fig, ax, Np, xp),
                                np.where(pad_mask.ravel()[:, None],
                                         to_rgba("#6f6f6f"), to_rgba("black")),
                                italic=pad_mask.ravel())
        else:
            self.in_numbers.set([], [], 1)
        self._artists.append(_cell_grid(ax, Np, Np))
        title = (f"input slice {c} of D={p['D']}: {N}x{N}"
                 + (f", zero-padded (P={P}) -> {Np}x{Np}" if P else ", no padding"))
        if self.floor_out is not None:
            title += "\nred: the rows/columns torch's floor would drop"
        ax.set_title(title, fontsize=10, color="black" if self.error is None else ERROR_COLOR)
        ax.set_xlabel("column of the padded input")
        ax.set_ylabel("row of the padded input")
        # rows and columns torch would drop (floor) when the filter doesn't fit
        if self.floor_out is not None:
            used = (self.floor_out.shape[2] - 1) * p["S"] + F  # padded rows the windows cover
            if used < Np:
                for xy, wd, ht in (((used - 0.5, -0.5), Np - used, Np),
                                   ((-0.5, used - 0.5), Np, Np - used)):
                    self._artists.append(ax.add_patch(Rectangle(
                        xy, wd, ht, facecolor=to_rgba(ERROR_COLOR, 0.18), hatch="xx",
                        edgecolor=ERROR_COLOR, lw=1)))
        self.window_rect.set_width(F)
        self.window_rect.set_height(F)
        self.window_rect.set_edgecolor(self._color())

    def _draw_filter(self):
        """Panel 2: the shown filter's weights for the shown depth slice, and its bias."""
        p = self._params()
        k, c = self.controls["filter"].value, self.controls["channel"].value
        F = p["F"]
        ax = self.ax_w
        wk = self.w[k, c]
        self._artists.append(ax.imshow(_diverging(wk), extent=(-0.5, F - 0.5, F - 0.5, -0.5),
                                       interpolation="nearest"))
        if F <= MAX_NUMBERED:
            rows, cols = np.indices(wk.shape)
            self.w_numbers.set(np.c_[cols.ravel(), rows.ravel()],
                               [f"{v:g}" for v in wk.ravel()],
                               _font_size(self.fig, ax, max(F, 4), wk))
        else:
            self.w_numbers.set([], [], 1)
        self._artists.append(_cell_grid(ax, F, F))
        for spine in ax.spines.values():
            spine.set_edgecolor(self._color())
            spine.set_linewidth(3)
        ax.set_title(f"filter {k} of K={p['K']}, slice {c}\n({F}x{F}x{p['D']}, "
                     f"bias b={self.b[k]:g})", fontsize=10)
        ax.set_xlabel("filter column")
        ax.set_ylabel("filter row")

    def _draw_output(self):
        """Panel 3: the activation map (or torch's floor, greyed out); numbers fill in with
        the position (see _draw_position)."""
        p = self._params()
        k = self.controls["filter"].value
        ax = self.ax_out
        grid = self.out if self.out is not None else self.floor_out
        self.out_image = None
        self.out_xy, self.out_strings = np.empty((0, 2)), []
        if self.mine_marks is not None:
            self.mine_cells = np.empty((0, 2), int)
            self.mine_marks.set_verts([])
        if grid is None:
            rows = cols = 1
            self._artists.append(ax.text(0, 0, "no output:\nthe filter is larger\nthan the "
                                         "padded input", ha="center", va="center",
                                         color=ERROR_COLOR, fontsize=11))
            ax.set_title("activation map: none", fontsize=10, color=ERROR_COLOR)
        else:
            rows, cols = grid.shape[2:]
            self.out_map = grid[0, k]
            self.out_image = ax.imshow(np.ones((rows, cols, 4)), interpolation="nearest",
                                       extent=(-0.5, cols - 0.5, rows - 0.5, -0.5))
            self._artists.append(self.out_image)
            if max(rows, cols) <= MAX_NUMBERED:
                r, q = np.indices(self.out_map.shape)
                self.out_xy = np.c_[q.ravel(), r.ravel()]
                self.out_strings = [f"{v:g}" for v in self.out_map.ravel()]
                self.out_size = _font_size(self.fig, ax, max(rows, cols, 4), self.out_map)
                self.out_color = "black" if self.out is not None else "#8a8a8a"
            if self.out is not None:
                marked = self._mark_mine(k)
                ax.set_title(f"activation map {k} of K={p['K']}: {rows}x{cols}"
                             + ("\ndashed: yours differs" if marked else ""),
                             fontsize=10, color="black")
            else:
                ax.set_title(f"doesn't fit: no output\n(torch would floor to {rows}x{cols},"
                             " shown in grey)", fontsize=10, color=ERROR_COLOR)
        self.out_numbers.set([], [], 1)
        self.cell_rect.set_edgecolor(self._color())
        self.cell_rect.set_visible(grid is not None)
        self.out_lines = _cell_grid(ax, rows, cols)
        self._artists.append(self.out_lines)
        ax.set_xlabel("output column j")
        ax.set_ylabel("output row i")

    def _draw_formula(self):
        """Above the panels: the slides' formula with the current numbers."""
        p = self._params()
        N_, F_, S_, P_ = p["N"], p["F"], p["S"], p["P"]
        exact = (N_ - F_ + 2 * P_) / S_ + 1
        lhs = f"(N - F + 2P)/S + 1 = ({N_} - {F_} + 2·{P_})/{S_} + 1 = {round(exact, 2):g}"
        if self.error is None:
            n_out = self.out.shape[2]
            self.formula_text.set_text(f"{lhs}   ->   output {n_out}x{n_out}x{p['K']}   "
                                       f"(depth D2 = K = {p['K']})")
            self.formula_text.set_color("black")
            self.detail_text.set_color("black")
        else:
            self.formula_text.set_text(f"{lhs}   ->   doesn't fit!")
            self.formula_text.set_color(ERROR_COLOR)
            self.detail_text.set_color(ERROR_COLOR)

    def _color(self):
        k = self.controls["filter"].value
        return FILTER_COLORS[k % len(FILTER_COLORS)]

    def _draw_position(self, full=False):
        """What moves with the window: its rectangle, the filled cells, the sum, the link.

        ``full``: redraw the whole figure (after a change of sizes); otherwise only these
        artists are drawn again over the saved background (blitting), so that stepping and
        playing stay fast even with a hundred numbers on screen.
        """
        p = self._params()
        k = self.controls["filter"].value
        where = self.window()
        if where is None:
            self.detail_text.set_text(_wrap(self.error))
            self.status.value = self._status_html()
            self._move_depth_window(None)
            self._enable_buttons()
            self._show(full)
            return
        (top, left), (i, j) = where
        self.window_rect.set_xy((left - 0.5, top - 0.5))
        rows, cols = self.out_map.shape
        filled = np.arange(rows * cols).reshape(rows, cols) <= self.position
        rgba = _diverging(self.out_map)
        if self.out is None:
            rgba[..., :3] = rgba[..., :3] * 0.35 + 0.65  # torch's floor: greyed out
        rgba[~filled] = 1.0
        self.out_image.set_data(rgba)
        keep = filled.ravel()[: len(self.out_strings)]
        self.out_numbers.set(self.out_xy[keep], np.asarray(self.out_strings, dtype=object)[keep],
                             self.out_size if len(self.out_strings) else 1,
                             getattr(self, "out_color", "black"))
        self.cell_rect.set_xy((j - 0.5, i - 0.5))
        if self.out is None:
            self.detail_text.set_text(_wrap(self.error))
        else:
            terms = self.partial[:, 0, k, i, j]
            value = self.out[0, k, i, j]
            sums = " + ".join(f"({t:g})" for t in terms)
            how = ("window · filter" if p["D"] == 1 else
                   f"a window · filter dot product per depth slice (D={p['D']}), summed")
            yours = ""
            if self.mine_out is not None and self.mine_bad[k, i, j]:
                yours = f"   (your conv2d_forward: {fmt(self.mine_out[0, k, i, j])})"
            self.detail_text.set_text(
                f"out[filter {k}][i={i}, j={j}] = {sums} + bias ({self.b[k]:g}) = {value:g}"
                f"{yours}\n"
                f"{how}; window: rows {top}..{top + p['F'] - 1}, columns "
                f"{left}..{left + p['F'] - 1} of the padded input")
        self.status.value = self._status_html()
        self._move_depth_window(where)
        self._enable_buttons()
        self._show(full)

    def _enable_buttons(self):
        last = self.n_positions - 1
        for key in ("first", "back"):
            self.buttons[key].disabled = self.position <= 0
        for key in ("step", "all"):
            self.buttons[key].disabled = self.position >= last

    # ------------------------------------------------------------------ blitting
    def _moving(self):
        """What a position step changes, in the order of a full draw (see Explorer)."""
        artists = [self.detail_text, self.window_rect, *self.rf_patches, *self.link_lines,
                   *self.cell_patches, self.cell_rect, self.out_numbers.collection]
        if self.out_image is not None:
            # the image is drawn over the axes frame, so the frame is drawn again after it
            artists += [self.out_image, self.out_lines, *self.ax_out.spines.values()]
        if self.mine_marks is not None:
            artists.append(self.mine_marks)
        return sorted(artists, key=lambda a: a.get_zorder())  # the order of a full draw

    def _show(self, full):
        """A full draw (sizes changed: it keeps a new background), or a blitted frame."""
        if full:
            self.redraw()
        else:
            self.blit_frame()

    def _status_html(self):
        """The formula (and why it doesn't fit) above the figure, as text a screen reader or
        a search can find; the per-position sum stays in the figure."""
        if self.error is None:
            return f"<b>{_html(self.formula_text.get_text())}</b>"
        return (f"<div style='color:{ERROR_COLOR}'><b>{_html(self.formula_text.get_text())}</b>"
                f"<br>{_html(self.error)}</div>")

    # ------------------------------------------------------------------ depth view
    def _setup_depth_axes(self):
        ax = self.ax_depth
        ax.set_aspect("equal", adjustable="box")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel("width and depth (schematic: spatial sizes to scale, depth one slab "
                      "per channel)", fontsize=8, color="#777777")
        ax.set_ylabel("height", fontsize=8, color="#777777")
        self._depth_artists = []
        self.rf_patches = [ax.add_patch(Polygon(np.zeros((4, 2)), closed=True, zorder=20,
                                                visible=False)) for _ in range(3)]
        self.cell_patches = [ax.add_patch(Polygon(np.zeros((4, 2)), closed=True, zorder=21,
                                                  visible=False)) for _ in range(3)]
        self.link_lines = [ax.add_line(Line2D([], [], lw=1.2, ls="--", zorder=19,
                                              visible=False)) for _ in range(2)]

    def _draw_depth(self):
        """The three volumes: input N x N x D, K filters F x F x D, output N' x N' x K."""
        for artist in self._depth_artists:
            artist.remove()
        self._depth_artists = []
        ax = self.ax_depth
        p = self._params()
        N, F, P, D, K = p["N"], p["F"], p["P"], p["D"], p["K"]
        k = self.controls["filter"].value
        grid = self.out if self.out is not None else self.floor_out
        n_out = 0 if grid is None else grid.shape[2]
        s = 3.4 / max(N + 2 * P, n_out, F)  # data units per pixel, shared by all volumes
        t = 1.0  # one slab per channel / per activation map
        dz = DEPTH_STEP * t

        # input, with its padding outlined
        x0, y0 = 0.6, 0.6
        self._geometry = {"s": s, "input": (x0 + P * s, y0 + P * s)}
        add = self._depth_artists.append
        slabs = []  # (faces, colours, line style), back to front
        for z in reversed(range(D)):
            slabs.append(_slab(x0 + P * s, y0 + P * s, N * s, N * s, z, z + 1, dz,
                               VOLUME_COLOR))
        if P:
            add(ax.add_patch(Rectangle((x0, y0), (N + 2 * P) * s, (N + 2 * P) * s, fill=False,
                                       ls=":", edgecolor="#777777", lw=1.2, zorder=1.5)))
        label_y = y0 - 0.35
        add(ax.text(x0 + (N + 2 * P) * s / 2, label_y, f"{N}x{N}x{D} input"
                    + (f"\n(padded to {N + 2 * P}x{N + 2 * P})" if P else ""),
                    ha="center", va="top", fontsize=11))

        # the K filters, fanned out, each spanning the full depth D
        fx = x0 + (N + 2 * P) * s + D * dz[0] + 1.2
        # a column of K filters, as far apart as the input's height allows (they may overlap)
        step = min(F * s + D * dz[1] + 0.3, max((N + 2 * P) * s - F * s, 0.4) / max(K - 1, 1))
        for kk in reversed(range(K)):  # back to front: filter 0 on top, drawn last
            fy = y0 + (K - 1 - kk) * step
            fxx = fx + kk * 0.25
            col = FILTER_COLORS[kk % len(FILTER_COLORS)]
            for z in reversed(range(D)):
                slabs.append(_slab(fxx, fy, F * s, F * s, z, z + 1, dz, col,
                                   lighten=0.0 if kk == k else 0.55))
        filters_w = F * s + (K - 1) * 0.25 + D * dz[0]
        add(ax.text(fx + filters_w / 2, label_y, f"{F}x{F}x{D} filter" + ("s" if K > 1 else "")
                    + f" (x K={K})\nfull depth D={D}", ha="center", va="top", fontsize=11))

        # the output volume: K activation maps
        ox = fx + filters_w + 1.2
        self._geometry["output"] = (ox, y0)
        if grid is not None:
            fits = self.out is not None
            for z in reversed(range(K)):
                col = FILTER_COLORS[z % len(FILTER_COLORS)]
                slabs.append(_slab(ox, y0, n_out * s, n_out * s, z, z + 1, dz,
                                   col if fits else "#eeeeee", lighten=0.45 if fits else 0.0,
                                   ls="-" if fits else "--"))
            text = (f"{n_out}x{n_out}x{K} output\n({K} activation map{'s' if K > 1 else ''})"
                    if fits else f"doesn't fit\n(torch: {n_out}x{n_out}x{K})")
            add(ax.text(ox + (n_out * s + K * dz[0]) / 2, label_y, text, ha="center", va="top",
                        fontsize=11, color="black" if fits else ERROR_COLOR))
            right = ox + n_out * s + K * dz[0]
        else:
            add(ax.text(ox + 1, y0 + 1, "no output", color=ERROR_COLOR, fontsize=12))
            right = ox + 3
        add(_add_slabs(ax, slabs, zorder=1))
        top = y0 + max((N + 2 * P) * s + D * dz[1], F * s + (K - 1) * step + D * dz[1],
                       n_out * s + K * dz[1])
        ax.set_xlim(0, right + 0.6)
        ax.set_ylim(label_y - 1.2, top + 0.3)
        ax.set_title(f"Depth view: each filter spans the full input depth D={D}; K={K} "
                     f"filter{'s' if K > 1 else ''} -> K={K} activation map"
                     f"{'s' if K > 1 else ''} stacked into the output", fontsize=10)

    def _move_depth_window(self, where):
        """The receptive field (F x F x D, through the whole input depth) and its output cell."""
        patches = [*self.rf_patches, *self.cell_patches, *self.link_lines]
        if where is None:
            for artist in patches:
                artist.set_visible(False)
            return
        p = self._params()
        N, F, P, D = p["N"], p["F"], p["P"], p["D"]
        k = self.controls["filter"].value
        color = FILTER_COLORS[k % len(FILTER_COLORS)]
        s = self._geometry["s"]
        dz = DEPTH_STEP
        (top, left), (i, j) = where
        ix, iy = self._geometry["input"]
        # padded coordinates -> the unpadded input's front face (row 0 at the top)
        rx = ix + (left - P) * s
        ry = iy + (N - (top - P) - F) * s
        rf = _faces(rx, ry, F * s, F * s, 0, D, dz)
        ox, oy = self._geometry["output"]
        n_out = (self.out if self.out is not None else self.floor_out).shape[2]
        cx, cy = ox + j * s, oy + (n_out - 1 - i) * s
        cell = _faces(cx, cy, s, s, k, k + 1, dz)
        for patch, xy in zip(self.rf_patches, rf):
            patch.set_xy(xy)
            patch.set(facecolor=to_rgba(color, 0.3), edgecolor=color, lw=1.5, visible=True)
        for patch, xy in zip(self.cell_patches, cell):
            patch.set_xy(xy)
            patch.set(facecolor=to_rgba(color, 0.95), edgecolor="black", lw=1, visible=True)
        # two lines from the receptive field to the output cell, as on the slides
        corners_rf = [rx + F * s + D * dz[0], ry + F * s + D * dz[1]], [rx + F * s, ry]
        corners_cell = [cx + k * dz[0], cy + s + k * dz[1]], [cx + k * dz[0], cy + k * dz[1]]
        for line, a, b in zip(self.link_lines, corners_rf, corners_cell):
            line.set_data([a[0], b[0]], [a[1], b[1]])
            line.set(color=color, visible=True)


# ---------------------------------------------------------------------- drawing helpers

def _faces(x, y, wd, ht, z0, z1, dz):
    """Front, top and right faces of a box whose front face is (x, y, wd, ht) at depth z0."""
    ax0, ay0 = x + z0 * dz[0], y + z0 * dz[1]
    ax1, ay1 = x + z1 * dz[0], y + z1 * dz[1]
    front = [(ax0, ay0), (ax0 + wd, ay0), (ax0 + wd, ay0 + ht), (ax0, ay0 + ht)]
    top = [(ax0, ay0 + ht), (ax0 + wd, ay0 + ht), (ax1 + wd, ay1 + ht), (ax1, ay1 + ht)]
    side = [(ax0 + wd, ay0), (ax1 + wd, ay1), (ax1 + wd, ay1 + ht), (ax0 + wd, ay0 + ht)]
    return front, top, side


def _slab(x, y, wd, ht, z0, z1, dz, color, lighten=0.0, ls="-"):
    """One opaque slab (one channel, or one activation map): three faces, their colours
    (front, top, side: a little darker each, for a sense of depth) and a line style."""
    base = np.array(to_rgba(color))
    base[:3] = 1 - (1 - lighten) * (1 - base[:3])  # mix with white
    colors = []
    for shade in (1.0, 0.88, 0.75):
        rgba = base.copy()
        rgba[:3] *= shade
        colors.append(rgba)
    return _faces(x, y, wd, ht, z0, z1, dz), colors, ls


def _add_slabs(ax, slabs, zorder):
    """All slabs as one collection, in the order given (later ones on top)."""
    faces = [face for f, _, _ in slabs for face in f]
    colors = [c for _, cs, _ in slabs for c in cs]
    styles = [ls for _, _, ls in slabs for _ in range(3)]
    return ax.add_collection(PolyCollection(faces, facecolors=colors, edgecolors="#333333",
                                            linewidths=0.8, linestyles=styles, zorder=zorder))


def _shade(values, color, lo, hi):
    """RGBA per cell: white mixed with ``color`` in proportion to the value (text stays black)."""
    frac = np.clip((values - lo) / max(hi - lo, 1e-12), 0, 1)
    mix = 0.12 + 0.5 * frac
    rgb = np.array(to_rgba(color)[:3])
    out = np.ones(values.shape + (4,))
    out[..., :3] = 1 - mix[..., None] * (1 - rgb)
    return out


def _diverging(values):
    """Orange for positive, blue for negative, white for zero, light enough for black text."""
    scale = max(float(np.abs(values).max()), 1e-12)
    frac = np.abs(values) / scale * 0.6
    pos, neg = np.array(to_rgba(POS_COLOR)[:3]), np.array(to_rgba(NEG_COLOR)[:3])
    rgb = np.where((values >= 0)[..., None], pos, neg)
    out = np.ones(values.shape + (4,))
    out[..., :3] = 1 - frac[..., None] * (1 - rgb)
    return out


def _cell_grid(ax, rows, cols):
    """Cell borders as one line collection (no ticks: an axis full of ticks draws slowly)."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_aspect("equal")
    segments = [[(x, -0.5), (x, rows - 0.5)] for x in np.arange(0.5, cols - 1)]
    segments += [[(-0.5, y), (cols - 0.5, y)] for y in np.arange(0.5, rows - 1)]
    return ax.add_collection(LineCollection(segments, colors="#999999", lw=0.6, zorder=2))


def _font_size(fig, ax, cells, values):
    """A font that fits the widest number of ``values`` into a cell of ``ax`` (in points)."""
    box = ax.get_position()
    side = min(box.width * fig.get_figwidth(), box.height * fig.get_figheight()) * 72
    chars = max(len(f"{v:g}") for v in np.ravel(values))
    return float(np.clip(side / cells / max(chars, 2) * 1.2, 5, 12))


def _refusing(fn):
    """``fn`` (the student's conv_output_size) with its ValueError turned into a value, so
    that refusing a filter that doesn't fit is an answer, not a failure: (refused, value or
    message)."""
    def call(*args):
        try:
            return False, fn(*args)
        except ValueError as exc:
            return True, str(exc)
    return call


def _wrap(text, width=110):
    """Wrap a long message onto lines, never between an arrow and its number."""
    return "\n".join(textwrap.wrap(text.replace("-> ", "->\u00a0"), width)) if text else ""


def _html(text):
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", "<br>"))
