"""PoolExplorer: a pooling window sliding over the slides' 4x4 example, and pooling a photo.

Two kinds of input, one figure of three panels:

- **grids** ("slide": the slides' 4x4 single depth slice; "random": a W1 x W1 grid of
  digits): the input with its numbers, the F x F window at the current position and, in
  max mode, the element it selects; the output map filling in window by window; and the
  arithmetic: ``W2 = (W1 - F)/S + 1`` with the current numbers and what the current window
  computes. When the window doesn't fit, the output panel says so, the window that would
  hang over the edge is drawn in vermillion, and the helpers' own error message says
  which stride would fit. Nothing is floored silently.
- **photos** ("china", "flower": scikit-learn's sample images, grayscale, 128 x 192):
  the input, its max-pooled and its average-pooled version side by side, shapes in the
  titles. A window that doesn't fit a photo is floored as torch does, and the figure
  says so.

Every number comes from :mod:`helpers.pool` (the output, and the position of the maximum
that gets the gradient: :func:`helpers.pool.max_pool2d_backward` of a one-hot ``dout``);
the widget never pools by itself.

Compare with mine (``mine=dict(max_pool_forward=..., avg_pool_forward=...)``): the
student's function for the current mode runs on the same input, F and S;
:meth:`PoolExplorer.mismatch` names the first output cell (row, column) where it differs,
with both values, and the output panel outlines the cells that differ (on a photo, both
given functions are compared and the first differing pixel is ringed).
"""

from __future__ import annotations

import html
import textwrap
from functools import lru_cache

import ipywidgets as w
import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.patches import Rectangle
from matplotlib.ticker import FixedLocator, MaxNLocator

from helpers._validation import check_choice, check_float, check_int
from helpers.conv import output_size
from helpers.data import sample_image
from helpers.pool import avg_pool2d, max_pool2d, max_pool2d_backward
from helpers.widgets._base import OKABE_ITO, Explorer, new_figure
from helpers.widgets._mine import TIME_LIMIT, cell_squares, compare_array, fmt

SLIDE_EXAMPLE = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=float)
GRIDS = ("slide", "random")
PHOTOS = ("china", "flower")
DATA = GRIDS + PHOTOS
MODES = ("max", "avg")
W1_RANGE = (2, 10)
MAX_F = 6
MAX_S = 6
IMAGE_SIZE = (128, 192)  # (H, W): F=2,S=2 fits, F=3,S=2 doesn't (the photo gets floored)

WINDOW_COLOR = OKABE_ITO[0]  # blue: the current window
SELECTED_COLOR = OKABE_ITO[1]  # orange: the element max pooling keeps
MISFIT_COLOR = OKABE_ITO[5]  # vermillion: doesn't fit
CELL_CMAP = "Blues"
MINE_COLOR = "black"  # dashed outlines of the output cells where the student's output differs
RING_COLOR = OKABE_ITO[5]  # vermillion rings on the grayscale photos


class PoolExplorer(Explorer):
    """Slide a pooling window: F, S, max/avg, step by step, on the slides' grid or a photo.

    Parameters
    ----------
    data : "slide", "random", "china" or "flower"
        "slide" is the slides' 4x4 example; "random" a W1 x W1 grid of digits 0..9 from
        ``seed``; "china" and "flower" are grayscale photos (128 x 192).
    W1 : int, 2..10
        Input width (and height) of the "random" grid; "slide" is always 4.
    F : int, 1..6
        Window size (windows are F x F).
    S : int, 1..6
        Stride.
    mode : "max" or "avg"
        Which pooling the grid view computes (a photo shows both).
    position : int
        Window number in row-major order, 0 .. W2*H2 - 1 (grids only).
    seed : int
        Seed of the "random" grid.
    mine : dict or None
        Compare with mine: your functions from the notebook, any of ``max_pool_forward(x,
        F, S)`` and ``avg_pool_forward(x, F, S)`` (x: (N, C, H, W)), run by the current
        mode on the current input where the window fits; :meth:`mismatch` names the first
        output cell where yours differs and the output panel outlines the cells that do.
    mine_time_limit : float
        Seconds one call of your function may take before it is stopped.

    Examples
    --------
    >>> ex = PoolExplorer()                     # the slides' example, max pool 2x2 stride 2
    >>> ex.out
    array([[6., 8.],
           [3., 4.]])
    >>> ex.step(); ex.window, ex.selected       # second window: top-left (0, 2), max at (1, 3)
    ((0, 2), (1, 3))
    >>> ex.controls["F"].value = 3              # (4 - 3)/2 + 1 = 1.5
    >>> ex.fits, ex.out is None
    (False, True)
    >>> by_F = lambda x, F, S: x.reshape(1, 1, 2, 2, 2, 2).sum(axis=(3, 5)) / F  # not F*F
    >>> PoolExplorer(mode="avg", mine=dict(avg_pool_forward=by_F)).mismatch()[:76]
    'your avg_pool_forward parts from the reference first at row 0, column 0 of t'
    """

    MINE = {"max_pool_forward": "max_pool_forward(x, F, S) -> (N, C, H2, W2)",
            "avg_pool_forward": "avg_pool_forward(x, F, S) -> (N, C, H2, W2)"}

    def __init__(self, data="slide", W1=4, F=2, S=2, mode="max", position=0, seed=0, *,
                 mine=None, mine_time_limit=TIME_LIMIT):
        data = check_choice(data, "data", DATA)
        mode = check_choice(mode, "mode", MODES)
        W1 = check_int(W1, "W1", min_value=W1_RANGE[0], max_value=W1_RANGE[1])
        F = check_int(F, "F", min_value=1, max_value=MAX_F)
        S = check_int(S, "S", min_value=1, max_value=MAX_S)
        position = check_int(position, "position", min_value=0)
        seed = check_int(seed, "seed", min_value=0)
        self._set_mine(mine)
        self.mine_time_limit = check_float(mine_time_limit, "mine_time_limit",
                                           min_value=1e-3, max_value=60.0)
        self._mismatch = None
        self.mine_bad = None  # {"max"/"avg": boolean (H2, W2) of the cells that differ}
        self.mine_cells = None
        self._first = {}  # mode -> (row, column) of the first differing output cell
        narrow = w.Layout(width="230px")
        self.controls = {
            "data": w.Dropdown(options=DATA, value=data, description="input",
                               layout=w.Layout(width="200px")),
            "W1": w.IntSlider(value=4 if data == "slide" else W1, min=W1_RANGE[0],
                              max=W1_RANGE[1], description="W1 (input)",
                              continuous_update=False, layout=narrow),
            "F": w.IntSlider(value=F, min=1, max=MAX_F, description="F (window)",
                             continuous_update=False, layout=narrow),
            "S": w.IntSlider(value=S, min=1, max=MAX_S, description="S (stride)",
                             continuous_update=False, layout=narrow),
            "mode": w.ToggleButtons(options=MODES, value=mode, description="pooling",
                                    style={"button_width": "60px"}),
            "position": w.IntSlider(value=0, min=0, max=0, description="window",
                                    continuous_update=True, layout=narrow),
            "seed": w.IntText(value=seed, description="seed", layout=w.Layout(width="140px")),
        }
        self.buttons = {name: w.Button(description=name, layout=w.Layout(width="80px"))
                        for name in ("Step", "All", "Reset")}
        self.buttons["Step"].on_click(lambda _: self.step())
        self.buttons["All"].on_click(lambda _: self.show_all())
        self.buttons["Reset"].on_click(lambda _: self.reset())
        c = self.controls
        c["data"].observe(lambda _: self._new_data(), names="value")
        c["W1"].observe(lambda _: self._new_data(), names="value")
        c["seed"].observe(lambda _: self._new_data(), names="value")
        c["F"].observe(lambda _: self._recompute(), names="value")
        c["S"].observe(lambda _: self._recompute(), names="value")
        c["mode"].observe(lambda _: self._recompute(keep_position=True, fast=True),
                          names="value")
        c["position"].observe(lambda _: self._draw(fast=True), names="value")

        self._quiet = False
        # 820 px wide: inside a 1280-px JupyterLab's output area (see Explorer._finish)
        self.fig, self.axes = new_figure((8.2, 3.7), ncols=3, width_ratios=[1, 1, 1],
                                         wspace=0.32)
        self.fig.subplots_adjust(top=0.84, bottom=0.13, left=0.07, right=0.99)
        self._setup_axes()
        self._setup_mine()
        rows = [  # stepping first: it is what a presenter presses most
            [*self.buttons.values(), c["position"]],
            [c["data"], c["mode"], c["seed"]],
            [c["W1"], c["F"], c["S"]],
        ]
        self._finish(rows)
        self._track_background()
        for photo in PHOTOS:  # loaded now, so that the menu answers within a frame
            _photo(photo)
        self._new_data(draw=False)
        if self.is_photo or not self.fits:
            if position:
                raise ValueError(f"position must be 0 when there is no window to step "
                                 f"through ({self._why_no_positions()}); got {position}")
        elif position > self.n_windows - 1:
            raise ValueError(f"position must be in 0..{self.n_windows - 1} (a {self.H2}x"
                             f"{self.W2} output has {self.n_windows} windows); got {position}")
        self._set_position(position)
        self._draw()

    # ------------------------------------------------------------------ presenter actions
    def step(self):
        """Move the window to the next position (row-major), filling one more output cell."""
        if self._can_step():
            self.controls["position"].value += 1

    def show_all(self):
        """Jump to the last window: the whole output map is filled in."""
        if self.fits and not self.is_photo:
            self.controls["position"].value = self.n_windows - 1

    def reset(self):
        """Back to the first window."""
        self.controls["position"].value = 0

    def describe(self):
        c = self.controls
        head = f"input={c['data'].value}, F={c['F'].value}, S={c['S'].value}"
        if self.is_photo:
            return f"{head}: {self.x.shape[0]}x{self.x.shape[1]} -> {self.H2}x{self.W2}"
        size = f"{self.x.shape[0]}x{self.x.shape[1]}"
        if not self.fits:
            return f"{head}, {c['mode'].value} pool on {size}: doesn't fit"
        return (f"{head}, {c['mode'].value} pool on {size} -> {self.H2}x{self.W2}, "
                f"window {c['position'].value + 1} of {self.n_windows}")

    # ------------------------------------------------------------------ static path
    @classmethod
    def static(cls, data="slide", W1=4, F=2, S=2, mode="max", position=None, seed=0):
        """One figure, no frontend. ``position=None``: every window done (output complete)."""
        if position is not None:
            return cls(data=data, W1=W1, F=F, S=S, mode=mode, position=position, seed=seed).fig
        ex = cls(data=data, W1=W1, F=F, S=S, mode=mode, seed=seed)
        ex.show_all()
        return ex.fig

    # ------------------------------------------------------------------ state
    @property
    def is_photo(self):
        return self.controls["data"].value in PHOTOS

    @property
    def window(self):
        """(row, col) of the current window's top-left input cell; None without windows."""
        if self.is_photo or not self.fits:
            return None
        return self._window_state()[1]

    @property
    def selected(self):
        """(row, col) of the input element max pooling keeps for the current window (the one
        that gets the gradient); None in avg mode, for a photo, or when nothing fits."""
        if self.is_photo or not self.fits or self.controls["mode"].value != "max":
            return None
        return self._window_state()[2]

    @property
    def n_windows(self):
        return self.H2 * self.W2 if self.fits else 0

    def _new_data(self, draw=True):
        c = self.controls
        data = c["data"].value
        self._quiet = True
        c["W1"].disabled = data != "random"
        c["seed"].disabled = data != "random"
        if data == "slide":
            c["W1"].value = 4
            self.x = SLIDE_EXAMPLE.copy()
        elif data == "random":
            rng = np.random.default_rng(c["seed"].value)
            n = c["W1"].value
            self.x = rng.integers(0, 10, size=(n, n)).astype(float)
        else:
            self.x = _photo(data)
        self._quiet = False
        self._recompute(draw=draw)

    def _recompute(self, keep_position=False, draw=True, fast=False):
        """Pool the current input with helpers.pool; record whether the window fits."""
        c = self.controls
        F, S = c["F"].value, c["S"].value
        x4 = self.x[None, None]
        H, W = self.x.shape
        self.fits, self.message = True, ""
        try:
            max_pool2d(x4, F, S)  # raises, with helpers' explanation, when it doesn't fit
        except ValueError as exc:
            self.fits, self.message = False, str(exc)
        self.max_out = self.avg_out = self.out = None
        self.H2 = self.W2 = None
        floor = self.is_photo and not self.fits
        if self.fits or (floor and F <= min(H, W)):
            self.H2 = output_size(H, F, S, floor=floor)
            self.W2 = output_size(W, F, S, floor=floor)
            self.max_out = max_pool2d(x4, F, S, floor=floor)[0, 0]
            self.avg_out = avg_pool2d(x4, F, S, floor=floor)[0, 0]
            if not self.is_photo:
                self.out = self.max_out if c["mode"].value == "max" else self.avg_out
        pos = c["position"]
        self._quiet = True
        pos.disabled = self.is_photo or not self.fits
        pos.max = max(self.n_windows - 1, 0)
        if not keep_position:
            pos.value = 0
        self._quiet = False
        if self.mine:
            self._compare_mine()
        if draw:
            self._draw(fast=fast)

    def _set_position(self, position):
        self._quiet = True
        self.controls["position"].value = position
        self._quiet = False

    def _can_step(self):
        return (self.fits and not self.is_photo
                and self.controls["position"].value < self.n_windows - 1)

    def _why_no_positions(self):
        return "a photo shows the whole result" if self.is_photo else "the window doesn't fit"

    def _window_state(self):
        """(i, j) output cell, its window's top-left input cell, and the element max keeps."""
        c = self.controls
        F, S = c["F"].value, c["S"].value
        i, j = divmod(c["position"].value, self.W2)
        dout = np.zeros((1, 1, self.H2, self.W2))
        dout[0, 0, i, j] = 1.0
        # The element that max pooling selects is the one that receives the gradient.
        dx = max_pool2d_backward(dout, self.x[None, None], F, S)[0, 0]
        r, q = (int(v) for v in np.argwhere(dx)[0])
        return (i, j), (i * S, j * S), (r, q)

    # ------------------------------------------------------------------ compare with mine
    def mismatch(self):
        """``None`` when your function for the current mode (``mine=``) agrees with the
        reference on the current input, F and S (or there is nothing to compare: the window
        doesn't fit, or you gave no function for this mode); else one sentence: the first
        output cell (row, column) where yours differs, with both values, or what went wrong
        calling yours. On a photo, both given functions are compared."""
        return self._mismatch if self.mine else None

    def _setup_mine(self):
        if not self.mine:
            return
        self.mine_marks = self.axes[1].add_collection(PolyCollection(
            [], facecolors="none", edgecolors=MINE_COLOR, linewidths=2.5, linestyles="--",
            zorder=3.9,
            animated=True))
        self.mine_rings = {}  # photos: the first differing pixel, per pooled panel
        for k, mode in ((1, "max"), (2, "avg")):
            (self.mine_rings[mode],) = self.axes[k].plot(
                [], [], "o", ms=16, mfc="none", mec=RING_COLOR, mew=2.5, zorder=5, clip_on=False,
                animated=True, visible=False)

    def _compare_mine(self):
        """Run the student's function(s) on the current state; keep the first sentence."""
        self.mine_bad, self._mismatch, self._first = {}, None, {}
        self._show_mine(None)
        if not self.fits:  # nothing to compare: no output (grid) or torch's floor (photo)
            return
        modes = MODES if self.is_photo else (self.controls["mode"].value,)
        for mode in modes:
            name = f"{mode}_pool_forward"
            if name in self.mine:
                sentence = self._compare_one(mode, name)
                self._mismatch = self._mismatch or sentence
        self._show_mine(self._mismatch)

    def _compare_one(self, mode, name):
        c = self.controls
        F, S = c["F"].value, c["S"].value
        ref = self.max_out if mode == "max" else self.avg_out
        # a copy: a function that writes into its input must not change the explorer's
        res = self._call_mine(name, self.x[None, None].copy(), F, S,
                              time_limit=self.mine_time_limit)
        if not res.ok:
            return res.message
        _, bad, diff, problem = compare_array(name, res.value, ref[None, None])
        if problem:
            return problem
        self.mine_bad[mode] = bad = bad[0, 0]
        if diff is None:
            return None
        (_, _, i, j), yours, theirs = diff
        self._first[mode] = (i, j)
        where = f"the pooled {c['data'].value} photo" if self.is_photo else "the output"
        return (f"your {name} parts from the reference first at row {i}, column {j} of "
                f"{where} (F={F}, S={S}): yours {fmt(yours)}, the reference's "
                f"{fmt(theirs)} ({int(bad.sum())} of {bad.size} output numbers differ)")

    def _mark_mine(self, mode):
        """Grid view: outline the output cells where the student's ``mode`` pooling differs
        (True when there are any); photos and misfits (``mode`` None): ring the first
        differing pixel of each pooled panel."""
        if not self.mine:
            return False
        bad = (self.mine_bad or {}).get(mode) if mode else None
        self.mine_cells = np.empty((0, 2), int) if bad is None else np.argwhere(bad)
        self.mine_marks.set_verts(cell_squares(self.mine_cells))
        self.mine_marks.set_visible(len(self.mine_cells) > 0)
        for key, ring in self.mine_rings.items():
            first = self._first.get(key) if self.is_photo and self.fits else None
            ring.set_data([first[1]] if first else [], [first[0]] if first else [])
            ring.set_visible(first is not None)
        return len(self.mine_cells) > 0

    # ------------------------------------------------------------------ drawing
    def _setup_axes(self):
        ax_in, ax_out, ax_txt = self.axes
        self.images = [ax.imshow(np.zeros((1, 1)), cmap=CELL_CMAP, vmin=0, vmax=1,
                                 interpolation="nearest") for ax in self.axes]
        self.in_texts, self.out_texts = [], []
        self._grid_shapes = {}
        self.cell_lines = [ax.add_collection(LineCollection([], colors="#444444", lw=1,
                                                            zorder=2.5))
                           for ax in self.axes[:2]]
        # Opaque and above the cell's own number, so a blitted step (drawn on top of the
        # background) gives the same pixels as a full draw (drawn in zorder).
        self.sel_patch = ax_in.add_patch(Rectangle((0, 0), 1, 1, facecolor=SELECTED_COLOR,
                                                   edgecolor="none", zorder=3.1))
        self.sel_text = ax_in.text(0, 0, "", ha="center", va="center", zorder=3.2,
                                   fontweight="bold")
        self.win_patch = ax_in.add_patch(Rectangle((0, 0), 1, 1, fill=False, lw=3.5,
                                                   edgecolor=WINDOW_COLOR, zorder=4))
        self.fit_patch = ax_in.add_patch(Rectangle((0, 0), 1, 1, fill=False, lw=2, ls="--",
                                                   edgecolor=WINDOW_COLOR, zorder=4))
        self.misfit_patch = ax_in.add_patch(Rectangle((0, 0), 1, 1, facecolor="none",
                                                      hatch="//", lw=3,
                                                      edgecolor=MISFIT_COLOR, zorder=4))
        self.misfit_label = ax_in.text(0, 0, "doesn't fit", color=MISFIT_COLOR,
                                       fontsize=11, fontweight="bold", ha="right",
                                       va="bottom", zorder=5)
        self.cur_patch = ax_out.add_patch(Rectangle((0, 0), 1, 1, fill=False, lw=3.5,
                                                    edgecolor=WINDOW_COLOR, zorder=4))
        self.nofit_text = ax_out.text(0.5, 0.5, "", transform=ax_out.transAxes,
                                      ha="center", va="center", fontsize=13,
                                      fontweight="bold", color=MISFIT_COLOR)
        self.math_text = ax_txt.text(0.0, 1.0, "", transform=ax_txt.transAxes, ha="left",
                                     va="top", fontsize=8.5, family="monospace",
                                     linespacing=1.5)
        self.formula = self.fig.text(0.5, 0.955, "", ha="center", va="center", fontsize=12)
        # What a window step changes is drawn on top of a saved background (blitting).
        for artist in (self.sel_patch, self.sel_text, self.win_patch, self.images[1],
                       *ax_out.spines.values(), self.cell_lines[1], self.cur_patch,
                       self.math_text, ax_out.title):
            artist.set_animated(True)

    def _draw(self, fast=False):
        if self._quiet:
            return
        if self.is_photo:
            self._draw_photo()
        else:
            self._draw_grid()
        self.status.value = f"<b>{html.escape(self.describe())}</b>"
        pos = self.controls["position"]
        self.buttons["Step"].disabled = not self._can_step()
        self.buttons["All"].disabled = pos.disabled or pos.value == pos.max
        self.buttons["Reset"].disabled = pos.disabled or pos.value == 0
        self.controls["mode"].disabled = self.is_photo
        if fast:
            self.blit_frame()
        else:
            self.redraw()

    # ------------------------------------------------------------------ drawing fast
    def redraw(self):
        """Redraw the whole figure; the draw saves a fresh background for window steps."""
        self._background = None
        super().redraw()

    def _moving(self):
        """The animated artists (left out of full draws), bottom to top, visible ones only."""
        # The order of a full draw: zorder, then an axes' own artists before its spines.
        artists = [self.sel_patch, self.sel_text, self.win_patch, self.images[1],
                   self.cell_lines[1], *self.axes[1].spines.values(), *self.out_texts,
                   self.cur_patch, self.math_text, self.axes[1].title]
        if self.mine:
            artists[-3:-3] = [self.mine_marks]  # over the numbers, under the current cell
            artists += list(self.mine_rings.values())
        return [a for a in artists if a.get_visible()]

    def _draw_grid(self):
        c = self.controls
        F, S, mode = c["F"].value, c["S"].value, c["mode"].value
        ax_in, ax_out, ax_txt = self.axes
        H, W = self.x.shape
        lo, hi = self.x.min(), self.x.max()
        # Pale cells: the shade hints at the value, the numbers stay readable.
        self._show_grid(ax_in, 0, self.x, self.in_texts, vmin=lo, vmax=hi + 1.5 * (hi - lo) + 1)
        ax_in.set_title(f"Input: {H}x{W} (one depth slice)", y=1.0)
        ax_txt.set_visible(True)
        self.images[2].set_visible(False)
        ax_txt.set_aspect("auto")
        ax_txt.set_axis_off()
        ax_txt.set_title("The arithmetic", y=1.0)
        ax_txt.set_xlabel("")
        ax_txt.set_ylabel("")
        exact = (W - F) / S + 1
        formula = f"W2 = (W1 - F)/S + 1 = ({W} - {F})/{S} + 1 = {_num(exact)}"
        lines = [
            "W2 = (W1 - F)/S + 1",
            f"   = ({W} - {F})/{S} + 1 = {_num(exact)}",
            f"H2 = ({H} - {F})/{S} + 1 = {_num((H - F) / S + 1)}",
        ]
        if self.fits:
            (i, j), (top, left), (r, q) = self._window_state()
            p = c["position"].value
            self.win_patch.set_bounds(left - 0.5, top - 0.5, F, F)
            self.win_patch.set_visible(True)
            self.sel_patch.set_bounds(q - 0.46, r - 0.46, 0.92, 0.92)  # inside the borders
            self.sel_patch.set_visible(mode == "max")
            self.sel_text.set_position((q, r))
            self.sel_text.set_text(_num(self.x[r, q]))
            self.sel_text.set_fontsize(_cell_fontsize(H, W))
            self.sel_text.set_visible(mode == "max")
            for patch in (self.fit_patch, self.misfit_patch, self.misfit_label):
                patch.set_visible(False)
            ax_in.set_xlim(-0.5, W - 0.5)
            shown = np.zeros(self.out.shape, dtype=bool)
            shown.flat[: p + 1] = True
            self._show_grid(ax_out, 1, self.out, self.out_texts, vmin=lo,
                            vmax=hi + 1.5 * (hi - lo) + 1, shown=shown)
            self.cur_patch.set_bounds(j - 0.5, i - 0.5, 1, 1)
            self.cur_patch.set_visible(True)
            self.nofit_text.set_text("")
            marked = self._mark_mine(mode)
            ax_out.set_title(f"{mode} pool F={F}, S={S} -> {self.H2}x{self.W2}"
                             + ("\ndashed: yours differs" if marked else ""), y=1.0)
            window = self.x[top:top + F, left:left + F]
            lines += ["D2 = D1 = 1", "parameters: 0", "",
                      f"window {p + 1} of {self.n_windows}: output[{i}, {j}]",
                      *_window_arithmetic(window, mode, self.out[i, j])]
            if mode == "max":
                lines.append(f"(the max sits at input[{r}, {q}])")
        else:
            self._mark_mine(None)
            formula += "  -> doesn't fit!"
            lines += ["", "-> doesn't fit!", *self._misfit_reason(F, S, W)]
            self._show_misfit(F, S, W)
            self._show_grid(ax_out, 1, None, self.out_texts)
            self.cur_patch.set_visible(False)
            self.nofit_text.set_text(f"doesn't fit:\n({W} - {F})/{S} + 1 = {_num(exact)}\n"
                                     "is not a whole number" if F <= W else
                                     f"doesn't fit:\nF = {F} > W1 = {W}")
            ax_out.set_title(f"{mode} pool F={F}, S={S}: no output", y=1.0)
        self.math_text.set_text("\n".join(lines))
        self.math_text.set_color(MISFIT_COLOR if not self.fits else "black")
        self.formula.set_text(formula)
        self.formula.set_color(MISFIT_COLOR if not self.fits else "black")

    def _misfit_reason(self, F, S, W):
        """Why it doesn't fit, and the helpers' suggestion of a stride that would."""
        if F > W:
            return [f"F = {F} is larger than W1 = {W}:", "not even one window fits."]
        left = (W - F) % S
        lines = [f"W1 - F = {W - F} is not a multiple", f"of S = {S}: {left} column"
                 f"{'s' if left > 1 else ''} left over", "at the edge."]
        _, _, hint = self.message.partition("; ")  # "stride=1 (-> 2) would fit, or ..."
        return lines + textwrap.wrap(f"helpers.pool: {hint}", 32) if hint else lines

    def _show_misfit(self, F, S, W):
        """The last window that fits (dashed) and the next one, hanging over the edge."""
        ax_in = self.axes[0]
        self.sel_patch.set_visible(False)
        self.sel_text.set_visible(False)
        self.win_patch.set_visible(False)
        fitting = (W - F) // S if F <= W else -1
        if fitting >= 0:
            self.fit_patch.set_bounds(fitting * S - 0.5, -0.5, F, F)
        self.fit_patch.set_visible(fitting >= 0)
        start = (fitting + 1) * S
        self.misfit_patch.set_bounds(start - 0.5, -0.5, F, F)
        self.misfit_patch.set_visible(True)
        self.misfit_label.set_position((start + F - 0.6, -0.6))
        self.misfit_label.set_visible(True)
        ax_in.set_xlim(-0.5, max(W, start + F) - 0.5)
        ax_in.set_ylim(max(self.x.shape[0], F) - 0.5, -1.3)

    def _show_grid(self, ax, k, values, texts, vmin=0.0, vmax=1.0, shown=None):
        """Cells with numbers on ``ax`` (values None: an empty panel)."""
        image = self.images[k]
        ax.set_visible(True)
        ax.set_axis_on()
        image.set_visible(values is not None)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        if values is None:
            for t in texts:
                t.set_visible(False)
            self.cell_lines[k].set_visible(False)
            self._grid_shapes.pop(k, None)  # the ticks below replace the grid's
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlim(-0.5, 0.5)
            ax.set_ylim(0.5, -0.5)
            return
        h, w_ = values.shape
        if shown is None:
            shown = np.ones(values.shape, dtype=bool)
        image.set_data(np.ma.masked_array(values, ~shown))
        image.set_cmap(CELL_CMAP)
        image.set_clim(vmin, vmax)
        image.set_extent((-0.5, w_ - 0.5, h - 0.5, -0.5))
        if self._grid_shapes.get(k) != (h, w_):
            self._layout_cells(ax, k, h, w_, texts)
        self.cell_lines[k].set_visible(True)
        size = _cell_fontsize(h, w_)
        for t, v, s in zip(texts, values.ravel(), shown.ravel()):
            t.set_text(_num(v) if s else "")
            t.set_fontsize(size)
            t.set_visible(True)
        ax.set_xlim(-0.5, w_ - 0.5)
        ax.set_ylim(h - 0.5, -0.5)

    def _layout_cells(self, ax, k, h, w_, texts):
        """New grid shape: cell lines, integer ticks and one text per cell."""
        for t in texts:
            t.remove()
        texts.clear()
        texts.extend(ax.text(q, r, "", ha="center", va="center", zorder=3,
                             animated=k == 1)  # the output's numbers move with the window
                     for r in range(h) for q in range(w_))
        ax.xaxis.set_major_locator(FixedLocator(range(w_)))
        ax.yaxis.set_major_locator(FixedLocator(range(h)))
        # Cell borders inside the grid only (gridlines would run past the edge too).
        edges = [[(q - 0.5, -0.5), (q - 0.5, h - 0.5)] for q in range(w_ + 1)]
        edges += [[(-0.5, r - 0.5), (w_ - 0.5, r - 0.5)] for r in range(h + 1)]
        self.cell_lines[k].set_segments(edges)
        self._grid_shapes[k] = (h, w_)

    def _draw_photo(self):
        c = self.controls
        F, S = c["F"].value, c["S"].value
        H, W = self.x.shape
        for patch in (self.sel_patch, self.sel_text, self.win_patch, self.fit_patch,
                      self.misfit_patch, self.misfit_label, self.cur_patch):
            patch.set_visible(False)
        self.nofit_text.set_text("")
        self.math_text.set_text("")
        self._mark_mine(None)
        name = c["data"].value
        panels = [(self.x, f"{name}: {H}x{W} (grayscale)"),
                  (self.max_out, "max pool"), (self.avg_out, "avg pool")]
        for k, (ax, (img, title)) in enumerate(zip(self.axes, panels)):
            if k < 2:
                for t in (self.in_texts, self.out_texts)[k]:
                    t.set_visible(False)
                self.cell_lines[k].set_visible(False)
            ax.set_visible(True)
            ax.set_axis_on()
            ax.set_aspect("equal")
            ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
            self._grid_shapes.pop(k, None)
            ax.set_xlabel("column (pixel)")
            ax.set_ylabel("row (pixel)")
            image = self.images[k]
            if img is None:
                image.set_visible(False)
                ax.set_title(f"{title} F={F}, S={S}: F > {min(H, W)}", y=1.0)
                continue
            image.set_visible(True)
            image.set_data(img)
            image.set_cmap("gray")
            image.set_clim(0.0, 1.0)
            h, w_ = img.shape
            image.set_extent((-0.5, w_ - 0.5, h - 0.5, -0.5))
            ax.set_xlim(-0.5, w_ - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            if k:
                ax.set_title(f"{title} F={F}, S={S} -> {h}x{w_}", y=1.0)
            else:
                ax.set_title(title, y=1.0)
        if self.fits:
            self.formula.set_text(f"W2 = ({W} - {F})/{S} + 1 = {self.W2},   "
                                  f"H2 = ({H} - {F})/{S} + 1 = {self.H2}")
            self.formula.set_color("black")
        else:
            bad = [f"({n} - {F})/{S} + 1 = {_num((n - F) / S + 1)}" for n in (W, H)
                   if (n - F) % S]
            self.formula.set_text(f"{' and '.join(bad)}: doesn't fit; floored as torch does "
                                  f"(the last rows/columns are ignored)")
            self.formula.set_color(MISFIT_COLOR)


# ---------------------------------------------------------------------- small helpers

@lru_cache(maxsize=len(PHOTOS))
def _photo(name):
    img = sample_image(name, gray=True, size=IMAGE_SIZE)
    img.setflags(write=False)
    return img


def _cell_fontsize(h, w_):
    return 14 if max(h, w_) <= 5 else 10 if max(h, w_) <= 7 else 8


def _num(v):
    """3 -> "3", 3.25 -> "3.25", 2.4444 -> "2.44"."""
    v = float(v)
    if v.is_integer():
        return str(int(v))
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _window_arithmetic(window, mode, result):
    """Lines that spell out what the current window computes."""
    vals = [_num(v) for v in window.ravel()]
    if mode == "max":
        if len(vals) <= 9:
            return [f"max({', '.join(vals)})", f"  = {_num(result)}"]
        return [f"max of {len(vals)} values = {_num(result)}"]
    if len(vals) <= 4:
        return [f"({' + '.join(vals)})/{len(vals)}", f"  = {_num(result)}"]
    return [f"sum {_num(window.sum())} / {len(vals)} values", f"  = {_num(result)}"]
