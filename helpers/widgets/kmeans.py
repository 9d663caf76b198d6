"""KMeansExplorer: Lloyd's algorithm one Assign / Update at a time, on toy 2-D data."""

from __future__ import annotations

import ipywidgets as w
import numpy as np
from matplotlib.ticker import MaxNLocator

from helpers.clustering import INITS, inertia, init_centers, kmeans_step
from helpers.data import TOY_2D, toy_2d
from helpers.widgets._base import OKABE_ITO, Explorer, cluster_colors, new_figure

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

    Examples
    --------
    >>> ex = KMeansExplorer(dataset="blobs", k=3, n=200, seed=0)
    >>> ex.assign(); ex.update(); ex.iteration
    1
    >>> ex.controls["k"].value = 4          # a slider move re-initialises and redraws
    >>> ex.centers.shape, ex.iteration
    ((4, 2), 0)
    """

    def __init__(self, dataset="blobs", k=3, init="k-means++", n=300, seed=0):
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
        self._finish(rows)
        if self.canvas_widget is not None:
            self.canvas_widget.mpl_connect("button_press_event", self._on_click)
        self._new_data()

    # ------------------------------------------------------------------ the algorithm
    def assign(self):
        """Assign every point to its nearest center (first half of a Lloyd step)."""
        if not self._ready() or self.pending is not None:
            return
        labels, new_centers = kmeans_step(self.X, self.centers)
        self.labels, self.pending = labels, new_centers
        self.inertias.append(inertia(self.X, self.centers, labels))
        self._draw()

    def update(self):
        """Move every center to the mean of its points (second half of a Lloyd step)."""
        if self.pending is None:
            return
        moved = not np.allclose(self.pending, self.centers)
        self.trail.append(self.pending.copy())
        self.centers, self.pending = self.pending, None
        self.iteration += 1
        self.converged = not moved
        self._draw()

    def run(self, max_steps=MAX_RUN_STEPS):
        """Assign and update until the centers stop moving (or ``max_steps``), then draw."""
        if not self._ready():
            return
        for _ in range(max_steps):
            if self.pending is None:
                labels, self.pending = kmeans_step(self.X, self.centers)
                self.labels = labels
                self.inertias.append(inertia(self.X, self.centers, labels))
            moved = not np.allclose(self.pending, self.centers)
            self.trail.append(self.pending.copy())
            self.centers, self.pending = self.pending, None
            self.iteration += 1
            if not moved:
                self.converged = True
                break
        self._draw()

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
        self._draw()

    def describe(self):
        c = self.controls
        return (f"dataset={c['dataset'].value}, k={c['k'].value}, init={c['init'].value}, "
                f"iteration {self.iteration}")

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
