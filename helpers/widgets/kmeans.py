"""KMeansExplorer: Lloyd's algorithm one Assign / Update at a time, on toy 2-D data."""

from __future__ import annotations

import ipywidgets as w
import numpy as np
from matplotlib.ticker import MaxNLocator

from helpers._validation import check_float
from helpers.clustering import INITS, inertia, init_centers, kmeans_step, update_centers
from helpers.data import TOY_2D, toy_2d
from helpers.widgets._base import OKABE_ITO, Explorer, cluster_colors, new_figure
from helpers.widgets._mine import TIME_LIMIT, as_array, as_labels, first_difference, fmt

DATASETS = ("blobs", "moons", "smiley", "uniform", "anisotropic", "density_bars")
INIT_CHOICES = (*INITS, "click")
MAX_RUN_STEPS = 100


class KMeansExplorer(Explorer):
    """Step through K-Means: pick data, k and an initialisation, then Assign and Update.

    Parameters
    ----------
    dataset : one of "blobs", "moons", "smiley", "uniform", "anisotropic", "density_bars"
    k : int, 1..10
    init : "k-means++", "random", "farthest" or "click" (click on the plot to place centers)
    n : number of points
    seed : seed for the data and the initialisation
    mine : dict or None
        Compare with mine: your functions from the notebook, any of ``assign_clusters(X,
        centers) -> labels`` and ``update_centers(X, labels, k) -> centers``. Each Assign /
        Update (and Run) then uses yours and compares it with the reference on the same
        state; :meth:`mismatch` names the first iteration, point (both labels) or center
        (both positions) where they part, the plot rings the points whose labels differ and
        the reference's position of a center yours misplaced, and Run stops there.
    mine_time_limit : float
        Seconds one call of your function may take before it is stopped.

    Examples
    --------
    >>> ex = KMeansExplorer(dataset="blobs", k=3, n=200, seed=0)
    >>> ex.assign(); ex.update(); ex.iteration
    1
    >>> ex.controls["k"].value = 4          # a slider move re-initialises and redraws
    >>> ex.centers.shape, ex.iteration
    ((4, 2), 0)
    >>> far = lambda X, c: ((X[:, None] - c[None]) ** 2).sum(axis=2).argmax(axis=1)
    >>> KMeansExplorer(mine=dict(assign_clusters=far)).mismatch()[:60]
    'iteration 1, Assign: your assign_clusters parts from the ref'
    """

    MINE = {"assign_clusters": "assign_clusters(X, centers) -> labels (n,)",
            "update_centers": "update_centers(X, labels, k) -> centers (k, d)"}

    def __init__(self, dataset="blobs", k=3, init="k-means++", n=300, seed=0, *, mine=None,
                 mine_time_limit=TIME_LIMIT):
        if dataset not in TOY_2D:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")
        if init not in INIT_CHOICES:
            raise ValueError(f"init must be one of {', '.join(INIT_CHOICES)}; got {init!r}")
        self.controls = {
            "dataset": w.Dropdown(options=DATASETS, value=dataset, description="data"),
            "k": w.IntSlider(value=k, min=1, max=10, description="k", continuous_update=False),
            "init": w.Dropdown(options=INIT_CHOICES, value=init, description="init"),
            "n": w.IntSlider(value=n, min=50, max=2000, step=50, description="points",
                             continuous_update=False),
            "seed": w.IntText(value=seed, description="seed", layout=w.Layout(width="140px")),
        }
        self.buttons = {
            name: w.Button(description=name, layout=w.Layout(width="90px"))
            for name in ("Assign", "Update", "Run", "Reset")
        }
        self.buttons["Assign"].on_click(lambda _: self.assign())
        self.buttons["Update"].on_click(lambda _: self.update())
        self.buttons["Run"].on_click(lambda _: self.run())
        self.buttons["Reset"].on_click(lambda _: self.reset())
        for name in ("dataset", "n", "seed"):
            self.controls[name].observe(lambda _: self._new_data(), names="value")
        for name in ("k", "init"):
            self.controls[name].observe(lambda _: self.reset(), names="value")

        # 820 px wide: inside a 1280-px JupyterLab's output area (see Explorer._finish)
        self.fig, (self.ax, self.ax_inertia) = new_figure((8.2, 4.0), ncols=2,
                                                          width_ratios=[3, 2])
        self.fig.subplots_adjust(left=0.09, right=0.98, bottom=0.12, top=0.9, wspace=0.35)
        self._setup_axes()
        rows = [
            [self.controls["dataset"], self.controls["k"], self.controls["init"]],
            [self.controls["n"], self.controls["seed"], *self.buttons.values()],
        ]
        self._set_mine(mine)
        self.mine_time_limit = check_float(mine_time_limit, "mine_time_limit",
                                           min_value=1e-3, max_value=60.0)
        self._setup_mine()
        self._finish(rows)
        if self.canvas_widget is not None:
            self.canvas_widget.mpl_connect("button_press_event", self._on_click)
        self._new_data()

    # ------------------------------------------------------------------ the algorithm
    def assign(self):
        """Assign every point to its nearest center (first half of a Lloyd step)."""
        if not self._ready() or self.pending is not None:
            return
        self._assign()
        self._draw()

    def update(self):
        """Move every center to the mean of its points (second half of a Lloyd step)."""
        if self.pending is None:
            return
        self._update()
        self._draw()

    def run(self, max_steps=MAX_RUN_STEPS):
        """Assign and update until the centers stop moving (or ``max_steps``), then draw.

        With ``mine=``, Run also stops at the step where your functions first part from the
        reference, so that the plot shows that step."""
        if not self._ready():
            return
        for _ in range(max_steps):
            if self.pending is None:
                if self.mine:
                    if self._assign():
                        break
                else:
                    labels, self.pending = kmeans_step(self.X, self.centers)
                    self.labels = labels
                    self.inertias.append(inertia(self.X, self.centers, labels))
            if self.mine:
                parted = self._update()
                if parted or self.converged:
                    break
                continue
            moved = not np.allclose(self.pending, self.centers)
            self.trail.append(self.pending.copy())
            self.centers, self.pending = self.pending, None
            self.iteration += 1
            if not moved:
                self.converged = True
                break
        self._draw()

    def _assign(self):
        """The Assign step without drawing; True when it is where mine= first parts."""
        labels, new_centers = kmeans_step(self.X, self.centers)
        parted = False
        if "assign_clusters" in self.mine:
            got, sentence = self._mine_labels(labels)
            parted = self._record(sentence)
            if got is not None:  # your labels drive the explorer from here on
                labels = got
                new_centers = _relocated(self.X, labels, self.centers)
        self.labels, self.pending = labels, new_centers
        self.inertias.append(inertia(self.X, self.centers, labels))
        return parted

    def _update(self):
        """The Update step without drawing; True when it is where mine= first parts."""
        new = self.pending
        parted = False
        if "update_centers" in self.mine:
            got, sentence = self._mine_centers(new)
            parted = self._record(sentence)
            if got is not None:
                new = got
        elif self.mine:
            self.mine_centers = np.empty((0, 2))
        moved = not np.allclose(new, self.centers)
        self.trail.append(new.copy())
        self.centers, self.pending = new, None
        self.iteration += 1
        self.converged = not moved
        return parted

    def reset(self):
        """New initial centers for the current data, k and init; iteration 0."""
        k = self.controls["k"].value
        init = self.controls["init"].value
        if init == "click":
            self.centers = np.empty((0, 2))
        else:
            self.centers = init_centers(self.X, k, init=init, seed=self.controls["seed"].value)
        self.labels = None
        self.pending = None
        self.iteration = 0
        self.converged = False
        self.inertias = []
        self.trail = [self.centers.copy()]
        self._reset_mine()
        self._draw()

    def describe(self):
        c = self.controls
        return (f"dataset={c['dataset'].value}, k={c['k'].value}, init={c['init'].value}, "
                f"iteration {self.iteration}")

    # ------------------------------------------------------------------ compare with mine
    def mismatch(self):
        """``None`` when your functions (``mine=``) agree with the reference at every step
        since the last reset and on the next Assign / Update from the current state; else
        one sentence: the iteration and step, and the first point (both labels) or center
        (both positions) where yours parts from the reference, or what went wrong calling
        yours. The next step is tried on a copy: the explorer's state does not change."""
        if not self.mine:
            return None
        if self._first_mismatch is not None or not self._ready():
            return self._first_mismatch
        keep = {name: getattr(self, name) for name in _STATE}
        keep["inertias"], keep["trail"] = list(self.inertias), list(self.trail)
        keep["_mine_off"] = set(self._mine_off)
        try:
            if self.pending is None:
                self._assign()
            if self._first_mismatch is None:
                self._update()
            return self._first_mismatch
        finally:
            for name, value in keep.items():
                setattr(self, name, value)

    def _setup_mine(self):
        self.mine_points = np.empty((0, 2))   # points whose labels differ (last Assign)
        self.mine_centers = np.empty((0, 2))  # the reference's centers yours misplaced
        self._first_mismatch = None
        self._mine_off = set()  # functions that failed since the reset: reference only
        if not self.mine:
            return
        self.mine_point_marks = self.ax.scatter([], [], s=70, facecolors="none",
                                                edgecolors="black", linewidths=1.3, zorder=4)
        self.mine_center_marks = self.ax.scatter([], [], s=520, facecolors="none",
                                                 edgecolors="black", linewidths=2,
                                                 linestyles="--", zorder=4)

    def _reset_mine(self):
        self.mine_points = np.empty((0, 2))
        self.mine_centers = np.empty((0, 2))
        self._first_mismatch = None
        self._mine_off = set()
        if self.mine:
            self._show_mine(None)

    def _record(self, sentence):
        """Keep the first sentence since the reset; True when ``sentence`` is that one."""
        if sentence is None or self._first_mismatch is not None:
            return False
        self._first_mismatch = sentence
        self._show_mine(sentence)
        return True

    def _mine_call(self, name, *args):
        if name in self._mine_off:
            return None
        res = self._call_mine(name, *args, time_limit=self.mine_time_limit)
        if not res.ok:
            self._mine_off.add(name)  # not again until a reset: Run must stay quick
        return res

    def _mine_labels(self, ref):
        """Your assign_clusters on the current centers: (labels or None, sentence or None)."""
        name, where = "assign_clusters", f"iteration {self.iteration + 1}, Assign"
        self.mine_points = np.empty((0, 2))
        res = self._mine_call(name, self.X.copy(), self.centers.copy())
        if res is None:
            return None, None
        if not res.ok:
            return None, f"{where}: {res.message}"
        got, problem = as_labels(name, res.value, ref.shape)
        if problem:
            self._mine_off.add(name)
            self._show_mine(problem)
            return None, f"{where}: {problem}"
        bad = got != ref
        self.mine_points = self.X[bad]
        diff = first_difference(got, ref)
        if diff is None:
            return got, None
        (i,), yours, theirs = diff
        k = len(self.centers)
        outside = got.min() < 0 or got.max() >= k
        sentence = (f"{where}: your {name} parts from the reference first at point {i}: "
                    f"yours labels it {yours}, the reference {theirs} ({int(bad.sum())} of "
                    f"{len(got)} labels differ, ringed)")
        if outside:  # labels the Update cannot use: the reference's drive the explorer
            return None, sentence + f"; labels are 0..{k - 1}"
        return got, sentence

    def _mine_centers(self, relocated):
        """Your update_centers on the current labels: (centers or None, sentence or None).
        A cluster with no points has no mean: any row there is accepted (the explorer
        moves it as the reference does)."""
        name, where = "update_centers", f"iteration {self.iteration + 1}, Update"
        self.mine_centers = np.empty((0, 2))
        k = len(self.centers)
        res = self._mine_call(name, self.X.copy(), self.labels.copy(), k)
        if res is None:
            return None, None
        if not res.ok:
            return None, f"{where}: {res.message}"
        got, problem = as_array(name, res.value, self.centers.shape)
        if problem is None:
            try:
                got = got.astype(float)
            except (TypeError, ValueError):
                problem = f"your {name} returned {got.dtype} values, not numbers"
        if problem:
            self._mine_off.add(name)
            self._show_mine(problem)
            return None, f"{where}: {problem}"
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = update_centers(self.X, self.labels, k)  # NaN rows: empty clusters
        empty = np.isnan(ref).any(axis=1)
        bad = ~np.isclose(got, ref, rtol=1e-6, atol=1e-8).all(axis=1) & ~empty
        # yours drive the explorer, but an empty cluster or a NaN row moves as the reference's
        new = np.where((empty | ~np.isfinite(got).all(axis=1))[:, None], relocated, got)
        self.mine_centers = ref[bad]
        if not bad.any():
            return new, None
        j = int(np.flatnonzero(bad)[0])
        return new, (f"{where}: your {name} parts from the reference first at center {j}: "
                     f"yours {_point(got[j])}, the reference's {_point(ref[j])} "
                     f"({int(bad.sum())} of {k} centers differ; the reference's ringed)")

    # ------------------------------------------------------------------ static path
    @classmethod
    def static(cls, dataset="blobs", k=3, init="k-means++", n=300, seed=0, steps=None):
        """One figure, no frontend: the state after ``steps`` Lloyd steps (None = converged)."""
        ex = cls(dataset=dataset, k=k, init=init, n=n, seed=seed)
        if steps is None:
            ex.run()
        else:
            for _ in range(steps):
                ex.assign()
                ex.update()
        return ex.fig

    # ------------------------------------------------------------------ internals
    def _ready(self):
        return len(self.centers) == self.controls["k"].value

    def _new_data(self):
        c = self.controls
        self.X, self.y = toy_2d(c["dataset"].value, n=c["n"].value, seed=c["seed"].value)
        self.scatter.set_offsets(self.X)
        pad = 0.1 * np.ptp(self.X, axis=0)
        self.ax.set_xlim(self.X[:, 0].min() - pad[0], self.X[:, 0].max() + pad[0])
        self.ax.set_ylim(self.X[:, 1].min() - pad[1], self.X[:, 1].max() + pad[1])
        self.reset()

    def _on_click(self, event):
        if (event.inaxes is not self.ax or self.controls["init"].value != "click"
                or self._ready() or event.xdata is None):
            return
        self.centers = np.vstack([self.centers, [event.xdata, event.ydata]])
        self.trail = [self.centers.copy()]
        self._draw()

    def _setup_axes(self):
        ax = self.ax
        self.scatter = ax.scatter([], [], s=12, linewidths=0)
        self.center_marks = ax.scatter([], [], s=220, marker="X", edgecolors="black",
                                       linewidths=1.5, zorder=3)
        self.pending_marks = ax.scatter([], [], s=220, marker="X", facecolors="none",
                                        edgecolors="black", linewidths=1.5, zorder=3)
        self.trail_lines = []
        ax.set_xlabel("feature 1")
        ax.set_ylabel("feature 2")
        ax.set_aspect("equal", adjustable="box")
        ax.locator_params(nbins=5)  # fewer tick labels: text is most of a redraw's cost
        ai = self.ax_inertia
        (self.inertia_line,) = ai.plot([], [], "o-", color=OKABE_ITO[0])
        ai.set_xlabel("iteration")
        ai.set_ylabel("inertia (sum of squared distances)")
        ai.set_title("Inertia per iteration")
        ai.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ai.yaxis.set_major_locator(MaxNLocator(nbins=5))

    def _draw(self):
        k = self.controls["k"].value
        if self.labels is None:
            self.scatter.set_facecolors("#bbbbbb")
        else:
            self.scatter.set_facecolors(cluster_colors(self.labels))
        colors = cluster_colors(np.arange(len(self.centers)))
        self.center_marks.set_offsets(self.centers if len(self.centers) else np.empty((0, 2)))
        self.center_marks.set_facecolors(colors)
        self.center_marks.set_edgecolors("black")
        pending = self.pending if self.pending is not None else np.empty((0, 2))
        self.pending_marks.set_offsets(pending)
        for line in self.trail_lines:
            line.remove()
        self.trail_lines = []
        if len(self.trail) > 1 and len(self.centers):
            path = np.stack(self.trail)  # (steps, k, 2)
            for j in range(path.shape[1]):
                (line,) = self.ax.plot(path[:, j, 0], path[:, j, 1], "-", color="black",
                                       lw=1, alpha=0.6)
                self.trail_lines.append(line)
        if self.mine:
            self.mine_point_marks.set_offsets(self.mine_points)
            self.mine_center_marks.set_offsets(self.mine_centers)
        self.inertia_line.set_data(np.arange(1, len(self.inertias) + 1), self.inertias)
        self.ax_inertia.relim()
        self.ax_inertia.autoscale_view()
        self.ax_inertia.set_xlim(0.5, max(5, len(self.inertias)) + 0.5)
        title = self._title(k)
        # the state on a line of its own: a long title would run past the figure's edge
        self.ax.set_title(title.replace(" - assigned", "\nassigned")
                          .replace(" - converged", "\nconverged"), fontsize=10)
        self.status.value = f"<b>{title}</b>"
        for name, button in self.buttons.items():
            if name == "Assign":
                button.disabled = not self._ready() or self.pending is not None
            elif name == "Update":
                button.disabled = self.pending is None
            elif name == "Run":
                button.disabled = not self._ready() or self.converged
        self.redraw()

    def _title(self, k):
        if not self._ready():
            return f"Click to place center {len(self.centers) + 1} of {k}"
        text = f"Iteration {self.iteration}"
        if self.inertias:
            text += f" - inertia {self.inertias[-1]:.1f}"
        if self.pending is not None:
            text += " - assigned; press Update to move the centers"
        elif self.converged:
            text += " - converged: the centers did not move"
        return text


_STATE = ("labels", "pending", "centers", "iteration", "converged", "mine_points",
          "mine_centers", "_first_mismatch")


def _relocated(X, labels, centers):
    """The reference's Update on ``labels`` (an empty cluster moved, never NaN)."""
    from helpers.clustering import _update

    return _update(X, labels, centers)


def _point(row):
    return "(" + ", ".join(fmt(float(v)) for v in row) + ")"
