"""OptimizerRace: SGD, momentum, Nesterov, RMSProp, Adam and L-BFGS racing on a 2-D surface.

The animations the slides credit to Alec Radford, rebuilt so a presenter can change them:
pick a surface (long valley, Rosenbrock, Beale, saddle), click or set a start point, set the
learning rates, momentum and Adam's betas, then play, pause, step or reset. Every trajectory
comes from the reference update rules in :mod:`helpers.optim` (through
:func:`helpers.optim.run_rule`, and :func:`helpers.optim.lbfgs` for L-BFGS); the widget
only draws them. The trajectories are computed once per parameter change; a frame only
moves the lines' data (``set_data``) and blits: the contours, axes, ticks and legend are
drawn once into a saved background, and each frame restores it and draws just the moving
artists on top (Matplotlib's "faster rendering by using blitting"), several times cheaper
than redrawing the whole figure, whose tick labels, legend and contours cost the most.
A parameter change (surface, start, rates...) recomputes the trajectories and redraws all.

Learning rates: the SGD family (SGD, momentum, Nesterov) takes steps of ``lr * gradient``,
so its rate must suit the size of the gradient (tiny on Rosenbrock, whose gradient is 200
at the start); RMSProp and Adam take steps of about ``lr`` per coordinate whatever the
gradient's size. One rate cannot suit both, so there are two controls, ``learning_rate``
(SGD family) and ``adaptive_lr`` (RMSProp, Adam), with a preset per surface. L-BFGS has no
learning rate: its line search picks each step (one race step = one L-BFGS iteration,
which may cost several gradient evaluations; the legend says how many in all).

Compare with mine (``mine=dict(sgd=sgd, sgd_momentum=sgd_momentum, adam=adam)``, any of
them): each of the student's update rules races beside the reference one it replaces (SGD,
Momentum, Adam), from the same start with the same config, as lazily as the race itself.
``mismatch()`` names the first step where a student's path leaves the reference's (both
positions); the figure draws the student's path dashed and rings both points at that step.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import ipywidgets as w
import numpy as np
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

from helpers import optim
from helpers._validation import check_float, check_int
from helpers.surfaces import SURFACES
from helpers.widgets._base import OKABE_ITO, Explorer, new_figure
from helpers.widgets._mine import TIME_LIMIT, call_mine

OPTIMIZERS = ("SGD", "Momentum", "Nesterov", "RMSProp", "Adam", "L-BFGS")
RULES = {
    "SGD": optim.sgd,
    "Momentum": optim.sgd_momentum,
    "Nesterov": optim.nesterov,
    "RMSProp": optim.rmsprop,
    "Adam": optim.adam,
}
COLORS = dict(zip(OPTIMIZERS, OKABE_ITO, strict=False))
RMSPROP_DECAY = 0.99  # torch's default alpha; RMSProp is shown with it, not with beta2
LBFGS_HISTORY = 10
MAX_STEPS = 1000
LOSS_FLOOR = 1e-12  # f - f* below this is drawn on the bottom edge of the log-scale plot
RACE_CHUNK = 40  # steps computed ahead of the one shown (a few ms for all racers)
# mine=: the notebook's exercise name -> the racer it runs beside
MINE_RULES = {"sgd": "SGD", "sgd_momentum": "Momentum", "adam": "Adam"}
MINE_RTOL, MINE_ATOL = 1e-6, 1e-9  # a student's iterate equals the reference's within these
MINE_COLOR = "black"  # the rings that mark where the paths part (no racer is black)

# Rates that make each surface's race worth watching (the SGD family stays stable; the
# adaptive methods get there or visibly struggle in the default number of steps).
PRESETS = {
    "long_valley": {"learning_rate": 0.05, "adaptive_lr": 0.1, "steps": 150},
    "rosenbrock": {"learning_rate": 1e-3, "adaptive_lr": 0.1, "steps": 300},
    "beale": {"learning_rate": 1e-3, "adaptive_lr": 0.05, "steps": 300},
    "saddle": {"learning_rate": 0.05, "adaptive_lr": 0.05, "steps": 150},
}
LR_RANGE = (1e-5, 1.0)
ADAPTIVE_LR_RANGE = (1e-4, 1.0)


class OptimizerRace(Explorer):
    """Race first-order update rules and L-BFGS on one contour plot, with loss vs step.

    Parameters
    ----------
    surface : "long_valley", "rosenbrock", "beale" or "saddle"
        A surface of :data:`helpers.surfaces.SURFACES`.
    start : (x0, y0) or None
        Start point inside the surface's plot window (None: the surface's own start).
        In a kernel, clicking on the contour plot moves it.
    learning_rate : float or None
        Rate of SGD, momentum and Nesterov, in [1e-5, 1] (None: the surface's preset).
    adaptive_lr : float or None
        Rate of RMSProp and Adam, in [1e-4, 1] (None: the surface's preset).
    momentum : float
        Momentum of SGD+momentum and Nesterov, in [0, 0.99].
    beta1, beta2 : float
        Adam's decay rates, in [0, 0.99] and [0.9, 0.9999].
    steps : int or None
        Steps computed (the play bar's length), 1..1000 (None: the surface's preset).
    optimizers : iterable of str
        Which of "SGD", "Momentum", "Nesterov", "RMSProp", "Adam", "L-BFGS" to show.
    mine : dict or None
        Compare with mine: your update rules, any of ``sgd``, ``sgd_momentum``, ``adam``
        (each ``rule(w, dw, config) -> (w, config)``), raced beside SGD, Momentum and Adam;
        ``mismatch()`` names the first step where your path leaves the reference's.
    mine_time_limit : float
        Seconds your rule may take, per call and over the whole race.

    Attributes
    ----------
    paths, losses : dict
        Optimiser name -> iterates (n + 1, 2) and f along them (n + 1,), computed by
        :mod:`helpers.optim` (n can be shorter than ``steps``: divergence, or L-BFGS
        converging).
    frame : int
        The step shown (the ``step`` control).

    Examples
    --------
    >>> race = OptimizerRace(surface="long_valley", steps=50)
    >>> race.controls["step"].value = 50            # what the play button does
    >>> race.frame, race.paths["Adam"].shape
    (50, (51, 2))
    >>> fig = OptimizerRace.static(surface="rosenbrock", steps=100)
    >>> def sgd(w, dw, config):                      # a student's rule, with a sign slip
    ...     return w + config["learning_rate"] * dw, config
    >>> OptimizerRace(surface="long_valley", steps=20, mine=dict(sgd=sgd)).mismatch()[:52]
    "your sgd leaves the reference SGD's path at step 1: "
    """

    MINE = {name: f"{name}(w, dw, config) -> (w, config)" for name in MINE_RULES}

    # Blitting draws a frame in a few ms. Matplotlib calls blitting on its web canvases
    # (which ipympl uses) not fully trusted; set ``OptimizerRace.blit = False`` (or on one
    # race) to redraw the whole figure every frame instead, if a browser shows stale frames.
    blit = True

    def __init__(self, surface="rosenbrock", start=None, learning_rate=None, adaptive_lr=None,
                 momentum=0.9, beta1=0.9, beta2=0.999, steps=None, optimizers=OPTIMIZERS,
                 mine=None, mine_time_limit=TIME_LIMIT):
        surf = _check_surface(surface)
        preset = PRESETS[surface]
        learning_rate = preset["learning_rate"] if learning_rate is None else learning_rate
        adaptive_lr = preset["adaptive_lr"] if adaptive_lr is None else adaptive_lr
        steps = preset["steps"] if steps is None else steps
        learning_rate = check_float(learning_rate, "learning_rate", min_value=LR_RANGE[0],
                                    max_value=LR_RANGE[1])
        adaptive_lr = check_float(adaptive_lr, "adaptive_lr", min_value=ADAPTIVE_LR_RANGE[0],
                                  max_value=ADAPTIVE_LR_RANGE[1])
        momentum = check_float(momentum, "momentum", min_value=0.0, max_value=0.99)
        beta1 = check_float(beta1, "beta1", min_value=0.0, max_value=0.99)
        beta2 = check_float(beta2, "beta2", min_value=0.9, max_value=0.9999)
        steps = check_int(steps, "steps", min_value=1, max_value=MAX_STEPS)
        start = _check_start(start, surf)
        optimizers = _check_optimizers(optimizers)
        self._set_mine(mine)
        self.mine_time_limit = check_float(mine_time_limit, "mine_time_limit",
                                           min_value=1e-3, max_value=60.0)

        self.controls, self.buttons = _build_controls(
            surf, surface, start, learning_rate, adaptive_lr, momentum, beta1, beta2, steps,
            optimizers)
        self.buttons["Step"].on_click(lambda _: self.step())
        self.buttons["Reset"].on_click(lambda _: self.reset())
        self._quiet = False  # True while one change sets several controls
        self.controls["surface"].observe(lambda _: self._new_surface(), names="value")
        for name in ("x0", "y0", "learning_rate", "adaptive_lr", "momentum", "beta1", "beta2",
                     "steps"):
            self.controls[name].observe(lambda _: self._changed(), names="value")
        self.controls["optimizers"].observe(lambda _: self._show_selected(), names="value")
        self.controls["step"].observe(lambda change: self.show_step(change["new"]),
                                      names="value")

        self.fig, (self.ax, self.ax_loss) = new_figure((8.4, 4.0), ncols=2,
                                                       width_ratios=[1.1, 1], wspace=0.34)
        # 840 px wide; room for the legend on the right
        self.fig.subplots_adjust(left=0.08, right=0.76, bottom=0.13, top=0.9)
        self.frame = 0
        self._build_artists()
        rows = [
            [self.controls["surface"], self.controls["x0"], self.controls["y0"]],
            [self.controls["learning_rate"], self.controls["adaptive_lr"],
             self.controls["steps"]],
            [self.controls["momentum"], self.controls["beta1"], self.controls["beta2"]],
            [self.controls["optimizers"], w.VBox([
                w.HBox([self.controls["play"], *self.buttons.values()]),
                self.controls["step"],
            ])],
        ]
        self._finish(rows)
        if self.canvas_widget is not None:
            self.canvas_widget.mpl_connect("button_press_event", self._on_click)
        self._background = None
        self._draw_cid = self.fig.canvas.mpl_connect("draw_event", self._on_draw)
        self._deferred = True  # no drawing while building: a figure is drawn when it is shown
        self._draw_surface()
        self._race = None  # computed when a step past 0 is first shown (see _race_data)
        self.show_step(0)
        self._deferred = False
        if self.canvas_widget is not None:
            self.redraw()

    # ------------------------------------------------------------------ presenter actions
    def show_step(self, t):
        """Draw every selected optimiser after ``t`` steps (moves lines in place)."""
        t = int(min(max(t, 0), self.controls["steps"].value))
        self.frame = t
        if self.controls["step"].value != t:
            self.controls["step"].value = t  # its observer calls back here; that is cheap
            return
        race = self._ensure(t) if t > 0 else self._start_only()
        for name in OPTIMIZERS:
            path, loss = race["paths"][name], race["losses"][name]
            k = min(t, len(path) - 1)
            self.lines[name].set_data(path[: k + 1, 0], path[: k + 1, 1])
            self.heads[name].set_data(path[k : k + 1, 0], path[k : k + 1, 1])
            self.loss_lines[name].set_data(np.arange(k + 1), self._plotted_loss(loss[: k + 1]))
        if self.mine:
            self._draw_mine(race, t)
        self.step_text.set_text(f"step {t} of {self.controls['steps'].value}")
        self.status.value = self._status_html(t)
        self.draw_frame()

    def step(self):
        """One step forward (the Step button)."""
        self.show_step(self.frame + 1)

    def reset(self):
        """Back to step 0 and stop playing (the Reset button); parameters stay."""
        self.controls["play"].playing = False
        self.show_step(0)

    def describe(self):
        c = self.controls
        return (f"surface={c['surface'].value}, start=({c['x0'].value:g}, {c['y0'].value:g}), "
                f"step {self.frame} of {c['steps'].value}")

    @property
    def paths(self) -> dict:
        return self._race_data()["paths"]

    @property
    def losses(self) -> dict:
        return self._race_data()["losses"]

    @property
    def diverged(self) -> dict:
        return self._race_data()["diverged"]

    @property
    def lbfgs_evals(self) -> int:
        return self._race_data()["lbfgs_evals"]

    def final_losses(self) -> dict:
        """Optimiser name -> f at the last computed iterate."""
        return {name: float(loss[-1]) for name, loss in self.losses.items()}

    # ------------------------------------------------------------------ compare with mine
    def mismatch(self):
        """``None`` when each of your rules (``mine=``) follows the reference's path over
        the whole race (the ``steps`` control) from the current start with the current
        rates, else one sentence: the first step where a path parts, with both positions
        (or what went wrong with your rule at that step)."""
        if not self.mine:
            return None
        parting = self._parting(self._race_data())
        return None if parting is None else parting.sentence

    def _parting(self, race):
        """The earliest step (over the steps computed so far) where one of the student's
        racers leaves the reference's path, as a ``_Parting``; None if none does."""
        found = None
        for key, run in race["mine"].items():
            name = MINE_RULES[key]
            p = _parting_of(key, name, run, race["paths"][name], race["diverged"][name])
            if p is not None and (found is None or p.step < found.step):
                found = p
        return found

    def _draw_mine(self, race, t):
        """The student's paths up to step ``t``; the parting ring once ``t`` reaches it."""
        for key, run in race["mine"].items():
            k = min(t, len(run.path) - 1)
            self.mine_lines[key].set_data(run.path[: k + 1, 0], run.path[: k + 1, 1])
            self.mine_loss_lines[key].set_data(np.arange(k + 1),
                                               self._plotted_loss(run.fun[: k + 1]))
        parting = self._parting(race) if t > 0 else None
        if parting is not None and parting.step > t:
            parting = None  # not reached yet: the race shows it when it gets there
        self.mine_parting = parting
        if parting is None:
            self.mine_mark.set_visible(False)
            self.mine_step_line.set_visible(False)
            racers = self._race["mine"].values() if self._race is not None else ()
            failed = [r.failed for r in racers if r.failed]
            self._show_mine(failed[0] if failed else None)
            return
        points = np.array([p for p in (parting.mine_xy, parting.ref_xy) if p is not None])
        self.mine_mark.set_data(points[:, 0], points[:, 1])
        self.mine_mark.set_visible(True)
        self.mine_step_line.set_xdata([parting.step, parting.step])
        self.mine_step_line.set_visible(True)
        self._show_mine(parting.sentence)

    def _mine_artists(self, visible_only=False):
        artists = [*self.mine_lines.values(), *self.mine_loss_lines.values()]
        if self.mine:
            artists += [self.mine_mark, self.mine_step_line]
        return [a for a in artists if a.get_visible() or not visible_only]

    # ------------------------------------------------------------------ static path
    @classmethod
    def static(cls, surface="rosenbrock", steps=None, **params):
        """One figure, no frontend: the race on ``surface`` after ``steps`` steps.

        ``params`` are the constructor's other arguments (start, learning_rate, ...).
        """
        race = cls(surface=surface, steps=steps, **params)
        race._deferred = True  # whoever shows the figure draws it
        race.show_step(race.controls["steps"].value)
        race._freeze()
        return race.fig

    # ------------------------------------------------------------------ drawing frames
    def draw_frame(self):
        """Show the current step: blit the racing lines (see Explorer.blit_frame)."""
        if not self._deferred:
            self.blit_frame()

    def redraw(self):
        """Redraw the whole figure; the draw saves a fresh background for the frames.

        In a kernel this asks the frontend for a draw (Explorer.redraw) rather than drawing
        at once: an ipympl frame sent before the browser has connected becomes a broken
        initial image (a figure a few pixels wide)."""
        self._background = None
        super().redraw()

    def _moving(self):
        """The artists a frame changes, drawn by blitting (animated: left out of draws)."""
        for name in OPTIMIZERS:
            for artist in (self.lines[name], self.heads[name], self.loss_lines[name]):
                if artist.get_visible():
                    yield artist
        yield from self._mine_artists(visible_only=True)
        yield self.start_mark
        legend = self.ax_loss.get_legend()
        if legend is not None:
            yield legend
        yield self.step_text

    _frozen = False

    def _freeze(self):
        """Make the figure an ordinary one (no blitting): what ``static`` returns."""
        self._frozen = True
        self.fig.canvas.mpl_disconnect(self._draw_cid)
        for artist in self._moving():
            artist.set_animated(False)
        for name in OPTIMIZERS:  # hidden ones too, in case someone shows them later
            for artist in (self.lines[name], self.heads[name], self.loss_lines[name]):
                artist.set_animated(False)
        for artist in self._mine_artists():
            artist.set_animated(False)

    # ------------------------------------------------------------------ computing
    def configs(self) -> dict:
        """The hyperparameters each update rule gets, from the controls."""
        c = self.controls
        lr, alr, mu = c["learning_rate"].value, c["adaptive_lr"].value, c["momentum"].value
        return {
            "SGD": {"learning_rate": lr},
            "Momentum": {"learning_rate": lr, "momentum": mu},
            "Nesterov": {"learning_rate": lr, "momentum": mu},
            "RMSProp": {"learning_rate": alr, "decay_rate": RMSPROP_DECAY},
            "Adam": {"learning_rate": alr, "beta1": c["beta1"].value,
                     "beta2": c["beta2"].value},
        }

    def _race_data(self):
        """Paths, losses, divergence of every racer over all ``steps`` steps."""
        return self._ensure(self.controls["steps"].value)

    def _start_only(self):
        """Step 0 of every racer: the start point (no need to run the race to show it)."""
        c = self.controls
        x0 = np.array([[c["x0"].value, c["y0"].value]])
        f0 = np.array([float(self._surface.f_and_grad(x0[0])[0])])
        return {"paths": dict.fromkeys(OPTIMIZERS, x0), "losses": dict.fromkeys(OPTIMIZERS, f0),
                "diverged": dict.fromkeys(OPTIMIZERS),
                "mine": {key: _MineRun(x0, f0, False, None, None) for key in self.mine}}

    def _ensure(self, t):
        """Run the race at least to step ``t`` (in chunks of RACE_CHUNK steps, as far as it is
        shown: a parameter change costs nothing until the race is played); its arrays."""
        c = self.controls
        steps = c["steps"].value
        if self._race is None:
            self._race = self._new_race()
        racers, mine = self._race["racers"], self._race["mine"]
        if any(r.n_steps < min(t, steps) and not r.diverged
               for r in (*racers.values(), *mine.values())):
            goal = min(steps, max(t, 0) + RACE_CHUNK)
            for racer in (*racers.values(), *mine.values()):
                racer.extend(goal)
            self._race["arrays"] = None
        if self._race["arrays"] is None:
            arrays = {"paths": {}, "losses": {}, "diverged": {},
                      "lbfgs_evals": self._race["lbfgs_evals"]}
            for name, racer in racers.items():
                arrays["paths"][name] = np.array(racer.path)
                arrays["losses"][name] = np.array(racer.fun)
                arrays["diverged"][name] = racer.n_steps if racer.diverged else None
            arrays["paths"]["L-BFGS"], arrays["losses"]["L-BFGS"], arrays["diverged"][
                "L-BFGS"] = self._race["lbfgs"]
            arrays["mine"] = {key: _MineRun(np.array(r.path), np.array(r.fun), r.diverged,
                                            r.failed, r.bad_w) for key, r in mine.items()}
            self._race["arrays"] = arrays
            self._scale_loss_axis(arrays["losses"])
        return self._race["arrays"]

    def _new_race(self):
        """Racers for the update rules (run lazily) and the whole L-BFGS run (cheap)."""
        c = self.controls
        surf, steps = self._surface, c["steps"].value
        x0 = np.array([c["x0"].value, c["y0"].value])
        configs = self.configs()
        racers = {name: _Racer(RULES[name], surf.f_and_grad, x0, config)
                  for name, config in configs.items()}
        mine = {}
        if self.mine:
            self._show_mine(None)  # a new race: the last one's problems are gone
            mine = {key: _MineRacer(key, fn, surf.f_and_grad, x0, configs[MINE_RULES[key]],
                                    self.mine_time_limit, self._show_mine)
                    for key, fn in self.mine.items()}
        # L-BFGS on an unbounded surface (the saddle) extrapolates until it overflows:
        # that is what it does, so the numbers' warnings are not worth a traceback.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = optim.lbfgs(surf.f_and_grad, x0, history=LBFGS_HISTORY, max_iter=steps,
                              tol=1e-10)
        finite = np.all(np.isfinite(res.path), axis=1) & np.isfinite(res.fun_path)
        n = len(finite) if finite.all() else int(np.argmin(finite))
        lbfgs = (res.path[:n], res.fun_path[:n], None if finite.all() else n - 1)
        self.lines["L-BFGS"].set_label(f"L-BFGS ({res.n_iter} it.,\n{res.n_evals} evals)")
        self._legend()
        return {"racers": racers, "mine": mine, "lbfgs": lbfgs, "lbfgs_evals": res.n_evals,
                "arrays": None}

    def _plotted_loss(self, loss):
        if self._surface.min_value is None:
            return loss
        return np.maximum(loss - self._surface.min_value, LOSS_FLOOR)

    def _scale_loss_axis(self, losses):
        """Limits of the loss plot for the race run so far. They change only when they must
        (by whole decades, three at a time downwards), since a change costs a full redraw
        instead of a blitted frame."""
        ax, surf = self.ax_loss, self._surface
        if surf.min_value is None:  # the saddle: f itself, over the range of the window
            limits = self._Z_range
        else:
            shown = np.concatenate([self._plotted_loss(v) for v in losses.values()])
            first = float(self._plotted_loss(losses["SGD"][:1])[0])  # f(start) - f*
            bottom = max(float(np.min(shown)) / 3.0, LOSS_FLOOR / 3.0)
            top = max(10.0 * first, 100.0 * bottom)
            lo, hi = ax.get_ylim()
            if lo <= bottom and top <= hi:
                limits = (lo, hi)  # still fits: keep it (and the background)
            else:
                limits = (min(lo, 10.0 ** (np.floor(np.log10(bottom)) - 3)),
                          max(hi, 10.0 ** np.ceil(np.log10(top))))
        xlim = (0, max(self.controls["steps"].value, 1))
        if tuple(ax.get_ylim()) != limits or tuple(ax.get_xlim()) != xlim:
            ax.set_ylim(*limits)
            ax.set_xlim(*xlim)
            self._background = None  # the axis changed: the next frame is a full draw

    # ------------------------------------------------------------------ controls
    @property
    def _surface(self):
        return SURFACES[self.controls["surface"].value]

    def _changed(self):
        if self._quiet:
            return
        self._race = None
        self._set_play_range()
        self.show_step(0)

    def _new_surface(self):
        """A new surface: its window, its start point, its preset rates; back to step 0."""
        surf, c = self._surface, self.controls
        preset = PRESETS[surf.name]
        (xlo, xhi), (ylo, yhi) = surf.bounds
        self._quiet = True
        try:
            # Widen before moving the value, so the slider never clamps the new start.
            c["x0"].min, c["x0"].max = min(xlo, c["x0"].min), max(xhi, c["x0"].max)
            c["y0"].min, c["y0"].max = min(ylo, c["y0"].min), max(yhi, c["y0"].max)
            c["x0"].value, c["y0"].value = surf.start
            c["x0"].min, c["x0"].max, c["y0"].min, c["y0"].max = xlo, xhi, ylo, yhi
            for name in ("learning_rate", "adaptive_lr", "steps"):
                c[name].value = preset[name]
        finally:
            self._quiet = False
        self._draw_surface()
        self._race = None
        self._set_play_range()
        self.show_step(0)

    def _set_play_range(self):
        n = self.controls["steps"].value
        self.controls["play"].playing = False
        for name in ("play", "step"):
            ctl = self.controls[name]
            if ctl.value > n:
                ctl.value = 0
            ctl.max = n

    def _show_selected(self):
        self._show_selected_silently()
        self._legend()
        self.status.value = self._status_html(self.frame)
        self.redraw()

    def _on_click(self, event):
        """A click on the contour plot moves the start point there and restarts the race."""
        if event.inaxes is not self.ax or event.xdata is None or event.ydata is None:
            return
        c = self.controls
        x = min(max(float(event.xdata), c["x0"].min), c["x0"].max)
        y = min(max(float(event.ydata), c["y0"].min), c["y0"].max)
        self._quiet = True
        try:
            c["x0"].value, c["y0"].value = x, y
        finally:
            self._quiet = False
        self._changed()

    # ------------------------------------------------------------------ drawing
    def _build_artists(self):
        ax, al = self.ax, self.ax_loss
        self.lines, self.heads, self.loss_lines = {}, {}, {}
        for name in OPTIMIZERS:
            color = COLORS[name]
            (self.lines[name],) = ax.plot([], [], "-", color=color, lw=2, label=name, zorder=3,
                                          animated=True)
            (self.heads[name],) = ax.plot([], [], "o", color=color, ms=7, mec="black",
                                          mew=0.8, zorder=4, animated=True)
            (self.loss_lines[name],) = al.plot([], [], "-", color=color, lw=2, label=name,
                                               animated=True)
        (self.start_mark,) = ax.plot([], [], "X", color="black", ms=10, zorder=5,
                                     label="start", animated=True)
        (self.min_mark,) = ax.plot([], [], "*", color="black", ms=14, zorder=5,
                                   label="minimum")
        self.step_text = ax.text(0.98, 0.02, "", transform=ax.transAxes, ha="right",
                                 va="bottom", fontsize=11, zorder=6, animated=True,
                                 bbox={"facecolor": "white", "alpha": 0.85, "lw": 0})
        self.contours = None
        self._contour_sets = {}
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.locator_params(nbins=5)
        al.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        al.set_xlabel("step")
        al.set_title("Loss per step")
        self.mine_lines, self.mine_loss_lines = {}, {}
        for key in self.mine:
            color = COLORS[MINE_RULES[key]]
            (self.mine_lines[key],) = ax.plot([], [], "--", color=color, lw=1.6, zorder=3.5,
                                              label=f"your {key}", animated=True,
                                              dashes=(3, 2))
            (self.mine_loss_lines[key],) = al.plot([], [], "--", color=color, lw=1.6,
                                                   label=f"your {key}", animated=True,
                                                   dashes=(3, 2))
        self.mine_mark = self.mine_step_line = self.mine_parting = None
        if self.mine:
            # where the first of the student's paths leaves the reference's: both points
            # ringed on the contours, the step as a vertical line on the loss plot
            (self.mine_mark,) = ax.plot([], [], "o", ms=13, mfc="none", mec=MINE_COLOR,
                                        mew=2.2, zorder=6, animated=True, visible=False,
                                        label="paths part")
            self.mine_step_line = al.axvline(0, color=MINE_COLOR, lw=1.2, ls=":",
                                             animated=True, visible=False)
        self._show_selected_silently()

    def _legend(self):
        shown = [self.lines[n] for n in OPTIMIZERS if n in self.controls["optimizers"].value]
        handles = [*shown, *(self.mine_lines[k] for k in self.mine), self.start_mark]
        if self.min_mark.get_visible():
            handles.append(self.min_mark)
        # Outside the axes: the moving lines are drawn last, so they would cross it.
        legend = self.ax_loss.legend(handles=handles, loc="upper left",
                                     bbox_to_anchor=(1.02, 1.0), fontsize=9, frameon=False)
        legend.set_animated(not self._frozen)  # the L-BFGS entry changes with the race

    def _show_selected_silently(self):
        shown = set(self.controls["optimizers"].value)
        for name in OPTIMIZERS:
            for artist in (self.lines[name], self.heads[name], self.loss_lines[name]):
                artist.set_visible(name in shown)

    def _draw_surface(self):
        """Contours of the surface (log-spaced levels where it has a minimum)."""
        self._background = None
        surf, ax = self._surface, self.ax
        # One contour set per surface, all made with the first (hidden but the one shown):
        # a surface change then costs a redraw, not a contouring of the grid.
        for contours in self._contour_sets.values():
            contours.set_visible(False)
        for name in (surf.name, *(() if self._contour_sets else SURFACES)):
            if name in self._contour_sets:
                continue
            surf_ = SURFACES[name]
            X, Y, Z = surf_.grid(160)
            if surf_.min_value is not None:
                gap = Z - surf_.min_value
                lo = max(float(np.min(gap[gap > 0])), float(gap.max()) * 1e-7)
                levels = surf_.min_value + np.logspace(np.log10(lo), np.log10(gap.max()), 24)
            else:
                levels = np.linspace(Z.min(), Z.max(), 24)
            contours = ax.contour(X, Y, Z, levels=levels, cmap="Greys_r", linewidths=0.7,
                                  alpha=0.8, zorder=1, visible=False)
            contours.z_range = (float(Z.min()), float(Z.max()))
            self._contour_sets[name] = contours
        self.contours = self._contour_sets[surf.name]
        self.contours.set_visible(True)
        self._Z_range = self.contours.z_range
        (x0, x1), (y0, y1) = surf.bounds
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        x_start, y_start = self.controls["x0"].value, self.controls["y0"].value
        self.start_mark.set_data([x_start], [y_start])
        if surf.minimum is not None:
            self.min_mark.set_data([surf.minimum[0]], [surf.minimum[1]])
            self.min_mark.set_visible(True)
        else:
            self.min_mark.set_visible(False)
        al = self.ax_loss
        if surf.min_value is None:
            al.set_yscale("linear")
            al.set_ylabel("f(w)  (no minimum: unbounded below)")
            al.set_ylim(*self._Z_range)
        else:
            al.set_yscale("log")
            al.set_ylabel("f(w) − f*  (log scale)")
            # a label every few decades and no minor ticks: a hundred tick artists would
            # be most of a full redraw
            al.yaxis.set_major_locator(LogLocator(base=10, numticks=6))
            al.yaxis.set_minor_locator(NullLocator())
            # from the floor to above f(start): a race then rarely changes them (a full redraw)
            first = max(float(surf.f_and_grad(np.array([x_start, y_start]))[0])
                        - surf.min_value, LOSS_FLOOR)
            top = 10.0 ** np.ceil(np.log10(10.0 * first))
            al.set_ylim(LOSS_FLOOR / 10, top)
        al.set_xlim(0, max(self.controls["steps"].value, 1))
        ax.set_title(f"{surf.name}: {surf.formula}", fontsize=11)

    def _status_html(self, t):
        shown = [n for n in OPTIMIZERS if n in self.controls["optimizers"].value]
        race = self._ensure(t) if t > 0 else self._start_only()
        cells = []
        for name in shown:
            loss = race["losses"][name]
            k = min(t, len(loss) - 1)
            note = ""
            if race["diverged"][name] is not None and t > race["diverged"][name]:
                note = " (diverged)"
            elif name == "L-BFGS" and k < t:
                note = " (stopped)"
            cells.append(f"<span style='color:{COLORS[name]}'>&#9679;</span> "
                         f"{name}: f = {loss[k]:.3g}{note}")
        return f"<b>step {t}</b> &nbsp; " + " &nbsp;|&nbsp; ".join(cells)


class _Racer:
    """One update rule's run, computed as far as it is needed: the loop of
    :func:`helpers.optim.run_rule` (same steps, same stop on divergence), resumable because
    the rule's state stays in ``config``."""

    def __init__(self, rule, f_and_grad, x0, config):
        self.rule, self.f_and_grad = rule, f_and_grad
        self.config = dict(config)
        x = np.array(x0, dtype=np.float64)
        f, self.g = f_and_grad(x)
        self.path, self.fun, self.diverged = [x], [float(f)], False

    @property
    def n_steps(self):
        return len(self.path) - 1

    def extend(self, n):
        """Step until ``n`` steps are done (or the run diverges)."""
        with np.errstate(over="ignore", invalid="ignore"):
            while not self.diverged and self.n_steps < n:
                x_next, self.config = self.rule(self.path[-1], self.g, self.config)
                x_next = np.asarray(x_next, dtype=np.float64)
                if not np.all(np.isfinite(x_next)):
                    self.diverged = True
                    break
                f, g = self.f_and_grad(x_next)
                if not np.isfinite(f):
                    self.diverged = True
                    break
                self.g = g
                self.path.append(x_next)
                self.fun.append(float(f))


class _MineRacer(_Racer):
    """The student's rule racing like a ``_Racer``, each call through ``call_mine`` (time
    limit, no traceback) and its answer checked; a problem stops it with one sentence
    (``failed``), given to ``report`` (the explorer's mine status line)."""

    def __init__(self, key, rule, f_and_grad, x0, config, time_limit, report):
        super().__init__(rule, f_and_grad, x0, config)
        self.key, self.time_limit, self.report = key, time_limit, report
        self.failed, self.bad_w, self.seconds = None, None, 0.0

    def _fail(self, sentence):
        self.failed, self.diverged = sentence, True
        self.report(sentence)

    def extend(self, n):
        key = self.key
        while not self.diverged and self.n_steps < n:
            step = self.n_steps + 1
            w = self.path[-1]
            with np.errstate(all="ignore"):
                res = call_mine(key, self.rule, w.copy(), np.array(self.g, dtype=np.float64),
                                self.config, time_limit=self.time_limit)
            self.seconds += res.seconds
            if not res.ok:
                self._fail(f"step {step}: {res.message}")
                return
            if self.seconds > self.time_limit:
                self._fail(f"your {key} took {self.seconds:.1f} s for its first {step} steps "
                           f"(limit {self.time_limit:g} s for the race): it was stopped")
                return
            value = res.value
            if not (isinstance(value, tuple | list) and len(value) == 2):
                self._fail(f"step {step}: your {key} returned {_kind(value)}; it must return "
                           f"the pair (w, config)")
                return
            try:
                x_next = np.array(value[0], dtype=np.float64)
            except (TypeError, ValueError):
                self._fail(f"step {step}: your {key} returned w as {_kind(value[0])}, not an "
                           f"array of numbers")
                return
            if x_next.shape != w.shape:
                self._fail(f"step {step}: your {key} returned w of shape {x_next.shape}; it "
                           f"must keep w's shape {w.shape}")
                return
            if not isinstance(value[1], dict):
                self._fail(f"step {step}: your {key} returned config as {_kind(value[1])}; "
                           f"return the dict it was given (with your state in it)")
                return
            self.config = value[1]
            if not np.all(np.isfinite(x_next)):
                self.diverged, self.bad_w = True, x_next
                return
            with np.errstate(all="ignore"):
                f, g = self.f_and_grad(x_next)
            if not np.isfinite(f):
                self.diverged, self.bad_w = True, x_next
                return
            self.g = g
            self.path.append(x_next)
            self.fun.append(float(f))


class _MineRun(NamedTuple):
    """A student's racer as far as it ran: iterates (n + 1, 2), f along them, whether it
    stopped early, the sentence if a problem stopped it, the non-finite w if any."""

    path: np.ndarray
    fun: np.ndarray
    stopped: bool
    failed: str | None
    bad_w: np.ndarray | None


class _Parting(NamedTuple):
    key: str
    step: int
    mine_xy: np.ndarray | None  # the student's point at ``step`` (its last one if it stopped)
    ref_xy: np.ndarray | None   # the reference's point at ``step`` (None if it diverged there)
    sentence: str


def _parting_of(key, name, run, ref_path, ref_diverged):
    """Where the student's ``run`` leaves the reference's ``ref_path``; None while they agree
    (as far as both are computed)."""
    mine = run.path
    n = min(len(mine), len(ref_path))
    bad = ~np.all(np.isclose(mine[:n], ref_path[:n], rtol=MINE_RTOL, atol=MINE_ATOL), axis=1)
    if bad.any():
        k = int(np.argmax(bad))
        a, b = _pair(mine[k], ref_path[k])
        return _Parting(key, k, mine[k], ref_path[k],
                        f"your {key} leaves the reference {name}'s path at step {k}: yours is "
                        f"at {a}, the reference's at {b}")
    if len(mine) < len(ref_path) and run.stopped:
        k = len(mine)  # the step the student's rule could not take
        ref = ref_path[k]
        if run.failed:
            sentence = run.failed
        else:
            what = "f is not finite" if run.bad_w is not None and np.all(
                np.isfinite(run.bad_w)) else "w is not finite"
            shown = run.bad_w.tolist() if run.bad_w is not None else "?"
            sentence = (f"your {key} leaves the reference {name}'s path at step {k}: {what} "
                        f"(w = {shown}), the reference's is at {_pair(ref, ref)[1]}")
        return _Parting(key, k, mine[-1], ref, sentence)
    if len(ref_path) < len(mine) and ref_diverged is not None:
        k = len(ref_path)
        return _Parting(key, k, mine[k], None,
                        f"your {key} leaves the reference {name}'s path at step {k}: the "
                        f"reference diverges there (w or f not finite), yours is at "
                        f"{_pair(mine[k], mine[k])[0]}")
    return None


def _pair(a, b):
    """Two points as '(x, y)' strings, with as many digits as it takes to tell them apart."""
    for digits in (4, 6, 9, 12, 17):
        sa, sb = (f"({p[0]:.{digits}g}, {p[1]:.{digits}g})" for p in (a, b))
        if sa != sb or np.array_equal(a, b):
            return sa, sb
    return sa, sb


def _kind(value):
    return f"{type(value).__name__} {value!r:.40}"


def _build_controls(surf, surface, start, learning_rate, adaptive_lr, momentum, beta1, beta2,
                    steps, optimizers):
    """The race's controls (name -> widget) and buttons, set to these (checked) values."""
    (xlo, xhi), (ylo, yhi) = surf.bounds
    slider = {"continuous_update": False, "style": {"description_width": "initial"}}
    controls = {
        "surface": w.Dropdown(options=tuple(SURFACES), value=surface, description="surface",
                              style=slider["style"]),
        "x0": w.FloatSlider(value=start[0], min=xlo, max=xhi, step=0.01,
                            description="start x", **slider),
        "y0": w.FloatSlider(value=start[1], min=ylo, max=yhi, step=0.001,
                            description="start y", readout_format=".3f", **slider),
        "learning_rate": w.FloatLogSlider(value=learning_rate, base=10,
                                          min=np.log10(LR_RANGE[0]),
                                          max=np.log10(LR_RANGE[1]), step=0.1,
                                          description="lr (SGD fam.)",
                                          readout_format=".1e", **slider),
        "adaptive_lr": w.FloatLogSlider(value=adaptive_lr, base=10,
                                        min=np.log10(ADAPTIVE_LR_RANGE[0]),
                                        max=np.log10(ADAPTIVE_LR_RANGE[1]), step=0.1,
                                        description="lr (Adam, RMSP)",
                                        readout_format=".1e", **slider),
        "momentum": w.FloatSlider(value=momentum, min=0.0, max=0.99, step=0.01,
                                  description="momentum", **slider),
        "beta1": w.FloatSlider(value=beta1, min=0.0, max=0.99, step=0.01,
                               description="beta1", **slider),
        "beta2": w.FloatSlider(value=beta2, min=0.9, max=0.9999, step=0.0001,
                               description="beta2", readout_format=".4f", **slider),
        "steps": w.IntSlider(value=steps, min=1, max=MAX_STEPS, step=1,
                             description="steps", **slider),
        "optimizers": w.SelectMultiple(options=OPTIMIZERS, value=optimizers, rows=6,
                                       description="show", style=slider["style"]),
        # max width leaves room for the widget's 2 px margin on each side (else it pokes
        # out of a narrow output area, e.g. 1024 px at 150 % zoom)
        "step": w.IntSlider(value=0, min=0, max=steps, description="step",
                            style=slider["style"], continuous_update=True,
                            layout=w.Layout(width="420px", max_width="calc(100% - 4px)")),
        "play": w.Play(value=0, min=0, max=steps, step=1, interval=50,
                       description="play / pause"),
    }
    # The Play widget ticks in the browser; linking it to the step slider in Python
    # means a frame is drawn for every tick, and a test can drive either control.
    w.link((controls["play"], "value"), (controls["step"], "value"))
    buttons = {
        name: w.Button(description=name, layout=w.Layout(width="80px"))
        for name in ("Step", "Reset")
    }
    return controls, buttons


def _check_surface(surface):
    if not isinstance(surface, str) or surface not in SURFACES:
        raise ValueError(f"surface must be one of {', '.join(SURFACES)}; got {surface!r}")
    return SURFACES[surface]


def _check_start(start, surf):
    if start is None:
        return surf.start
    try:
        x, y = (float(v) for v in start)
    except (TypeError, ValueError):
        raise ValueError(f"start must be a pair (x0, y0) of numbers, got {start!r}") from None
    (xlo, xhi), (ylo, yhi) = surf.bounds
    if not (xlo <= x <= xhi and ylo <= y <= yhi):
        raise ValueError(f"start must lie in the plot window of {surf.name}, x in "
                         f"[{xlo:g}, {xhi:g}] and y in [{ylo:g}, {yhi:g}]; got {start!r}")
    return (x, y)


def _check_optimizers(optimizers):
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    optimizers = tuple(optimizers)
    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    if unknown:
        raise ValueError(f"optimizers must be chosen from {', '.join(OPTIMIZERS)}; "
                         f"got {unknown}")
    return optimizers
