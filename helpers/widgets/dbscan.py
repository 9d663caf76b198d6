"""DBSCANExplorer: eps and min_samples live, core / border / noise, eps circles, step-by-step
expansion, the k-distance plot, and K-Means on the same data for comparison.

Three panels (DBSCAN and K-Means side by side, the k-distance curve under them):

1. **DBSCAN**: core points as large circles, border points as small diamonds (both in their
   cluster's colour), noise as grey crosses. Click a point to draw its eps circle and ring its
   region query (the points within eps, itself included). **Step** / **Next cluster** /
   **Finish** / **Restart** walk through :func:`helpers.clustering.dbscan_steps`, the
   expansion in scikit-learn's visiting order; points not reached yet are hollow.
2. **K-Means** with its own ``k`` on the same points (:func:`helpers.clustering.kmeans`).
3. **k-distance** for ``k = min_samples`` (:func:`helpers.clustering.k_distance`), sorted,
   with a horizontal line at ``eps``: a point is core exactly when its k-distance is at most
   eps, so the line splits the curve into core points (left) and the rest (right).

Compare with mine (``mine=dict(my_dbscan=...)``): the student's ``my_dbscan(X, eps,
min_samples)`` runs on the same data whenever eps, min_samples or the data change; clusters are
compared up to renumbering (noise -1 stays -1), :meth:`DBSCANExplorer.mismatch` names the first
point that differs with both labels, and the DBSCAN panel rings every point that differs.

Colours come from the Okabe-Ito palette (``cluster_colors``) and marker shape and size carry
the point type too, so nothing depends on telling colours apart.
"""

from __future__ import annotations

import ipywidgets as w
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from matplotlib.ticker import MaxNLocator

from helpers._validation import check_float, check_int
from helpers.clustering import dbscan, dbscan_steps, k_distance, kmeans, region_query
from helpers.data import toy_2d
from helpers.widgets._base import (
    NOISE_COLOR,
    OKABE_ITO,
    Explorer,
    cluster_colors,
    fixed_titles,
    new_figure,
)
from helpers.widgets._mine import TIME_LIMIT, as_labels, same_partition

DATASETS = ("moons", "smiley", "density_bars", "blobs_noise", "rings")
EPS_RANGE = (0.01, 1.0)
MAX_MIN_SAMPLES = 30
N_RANGE = (100, 2000)

# Marker size (points^2) and shape per point type: shape and size, not only colour, differ.
CORE_STYLE = {"marker": "o", "s": 30}
BORDER_STYLE = {"marker": "D", "s": 13}
NOISE_STYLE = {"marker": "x", "s": 22}
PENDING_STYLE = {"marker": "o", "s": 10}
PENDING_COLOR = "#c8c8c8"
PANELS = ("dbscan", "kmeans", "kdist")
FIGSIZE = (8.2, 5.8)  # inches at 100 dpi


class DBSCANExplorer(Explorer):
    """Move eps and min_samples and watch DBSCAN, K-Means and the k-distance curve.

    Parameters
    ----------
    dataset : one of "moons", "smiley", "density_bars", "blobs_noise", "rings"
    eps : float > 0, the neighbourhood radius
    min_samples : int >= 1, points within eps (itself included) that make a point core
    k : int, the number of clusters for the K-Means panel
    n : number of points (100 .. 2000 on the slider)
    seed : seed of the data (and of K-Means' initialisation)
    mine : dict or None
        Compare with mine: ``dict(my_dbscan=my_dbscan)``, your ``my_dbscan(X, eps,
        min_samples) -> labels`` (noise -1) from the notebook, run on the current data,
        eps and min_samples; :meth:`mismatch` names the first point whose cluster differs
        (up to renumbering) with both labels, and the DBSCAN panel rings the points that do.
    mine_time_limit : float
        Seconds one call of your function may take before it is stopped.

    Examples
    --------
    >>> ex = DBSCANExplorer(dataset="moons", eps=0.15, min_samples=5, n=300, seed=0)
    >>> ex.result.n_clusters
    2
    >>> ex.controls["eps"].value = 0.05        # a slider move re-runs DBSCAN and redraws
    >>> ex.result.n_clusters > 2
    True
    >>> ex.step(); ex.step_index               # enter step mode: one point at a time
    1
    >>> from helpers.clustering import dbscan
    >>> strict = lambda X, eps, m: dbscan(X, eps, m + 1).labels  # "count > min_samples"
    >>> DBSCANExplorer(n=300, min_samples=8, mine=dict(my_dbscan=strict)).mismatch()[:61]
    'your my_dbscan (eps=0.15, min_samples=8) parts from the refer'
    """

    MINE = {"my_dbscan": "my_dbscan(X, eps, min_samples) -> labels (n,), noise -1"}

    def __init__(self, dataset="moons", eps=0.15, min_samples=5, k=2, n=500, seed=0, *,
                 mine=None, mine_time_limit=TIME_LIMIT):
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {dataset!r}")
        eps = check_float(eps, "eps", min_value=0.0, min_inclusive=False)
        min_samples = check_int(min_samples, "min_samples", min_value=1)
        k = check_int(k, "k", min_value=1, max_value=10)
        n = check_int(n, "n", min_value=20, max_value=20000)
        seed = check_int(seed, "seed", min_value=0)
        self._set_mine(mine)
        self.mine_time_limit = check_float(mine_time_limit, "mine_time_limit",
                                           min_value=1e-3, max_value=60.0)
        self._mismatch = None
        self._mine_off = False  # your function failed on these data: reference only
        self.mine_bad = None    # boolean (n,): the points whose label differs
        self.controls = {
            "dataset": w.Dropdown(options=DATASETS, value=dataset, description="data"),
            "eps": w.FloatSlider(value=eps, min=min(EPS_RANGE[0], eps),
                                 max=max(EPS_RANGE[1], eps), step=0.01, description="eps",
                                 readout_format=".2f"),
            "min_samples": w.IntSlider(value=min_samples, min=1,
                                       max=max(MAX_MIN_SAMPLES, min_samples),
                                       description="min_samples",
                                       style={"description_width": "initial"}),
            "k": w.IntSlider(value=k, min=1, max=10, description="K-Means k",
                             style={"description_width": "initial"}),
            "n": w.IntSlider(value=n, min=min(N_RANGE[0], n), max=max(N_RANGE[1], n), step=50,
                             description="points", continuous_update=False),
            "seed": w.IntText(value=seed, description="seed", layout=w.Layout(width="140px")),
        }
        self.buttons = {
            name: w.Button(description=name, layout=w.Layout(width="110px"))
            for name in ("Step", "Next cluster", "Finish", "Restart")
        }
        self.buttons["Step"].on_click(lambda _: self.step())
        self.buttons["Next cluster"].on_click(lambda _: self.next_cluster())
        self.buttons["Finish"].on_click(lambda _: self.finish())
        self.buttons["Restart"].on_click(lambda _: self.restart())
        self.controls["dataset"].observe(lambda _: self._new_data(new_dataset=True),
                                         names="value")
        self.controls["n"].observe(lambda _: self._new_data(), names="value")
        self.controls["seed"].observe(lambda _: self._new_data(), names="value")
        self.controls["eps"].observe(lambda _: self._new_dbscan(), names="value")
        self.controls["min_samples"].observe(lambda _: self._new_min_samples(), names="value")
        self.controls["k"].observe(lambda _: self._new_kmeans(), names="value")

        # Two rows, 820 px wide: DBSCAN and K-Means side by side, the k-distance curve
        # under them (three panels in one row do not fit a laptop's notebook).
        self.fig, _ = new_figure(FIGSIZE)
        self.fig.clear()
        grid = self.fig.add_gridspec(2, 2, height_ratios=[1.3, 1], left=0.08, right=0.98,
                                     bottom=0.09, top=0.95, wspace=0.25, hspace=0.45)
        with fixed_titles():
            self.ax = self.fig.add_subplot(grid[0, 0])
            self.ax_km = self.fig.add_subplot(grid[0, 1])
            self.ax_kd = self.fig.add_subplot(grid[1, :])
        self._setup_axes()
        rows = [
            [self.controls["dataset"], self.controls["eps"], self.controls["min_samples"]],
            [self.controls["k"], self.controls["n"], self.controls["seed"]],
            list(self.buttons.values()),
        ]
        self._finish(rows)
        if self.canvas_widget is not None:
            self.canvas_widget.mpl_connect("button_press_event", self._on_click)
        self._track_background()
        self.query = None
        self._drawing = True  # one redraw at the end of construction, not one per step
        self._new_data()
        self._drawing = False
        self._draw()

    # ------------------------------------------------------------------ parameters
    @property
    def eps(self) -> float:
        return float(self.controls["eps"].value)

    @property
    def min_samples(self) -> int:
        return int(self.controls["min_samples"].value)

    # ------------------------------------------------------------------ step-by-step
    def step(self, count=1):
        """Show ``count`` more events of the expansion (enters step mode from the start)."""
        if self.events is None:
            self._start_steps()
        self.step_index = min(self.step_index + int(count), len(self.events["kind"]))
        self._draw(("dbscan",))

    def next_cluster(self):
        """Step until the cluster being grown is complete (or the next one, if it is)."""
        if self.events is None:
            self._start_steps()
        later = self.events["boundaries"][self.events["boundaries"] > self.step_index]
        self.step_index = int(later[0]) if later.size else len(self.events["kind"])
        self._draw(("dbscan",))

    def finish(self):
        """Show every event: the labels are then exactly ``dbscan(...)``'s."""
        if self.events is None:
            self._start_steps()
        self.step_index = len(self.events["kind"])
        self._draw(("dbscan",))

    def restart(self):
        """Step mode at step 0: nothing labelled yet."""
        self._start_steps()
        self._draw(("dbscan",))

    @property
    def n_steps(self) -> int:
        """Number of events of the expansion (0 before step mode is entered)."""
        return 0 if self.events is None else len(self.events["kind"])

    def labels_at(self, t):
        """Labels after the first ``t`` events (-1 = not in a cluster yet, or noise)."""
        if self.events is None:
            self._start_steps()
        labels = np.full(len(self.X), -1, dtype=np.int64)
        labels[self.events["point"][:t]] = self.events["cluster"][:t]
        return labels

    # ------------------------------------------------------------------ compare with mine
    def mismatch(self):
        """``None`` when your ``my_dbscan`` (``mine=``) gives the reference's clusters (up to
        renumbering; noise stays -1) on the current data, eps and min_samples; else one
        sentence: the first point that differs, both labels and what the point is in the
        reference (core, border or noise), or what went wrong calling yours."""
        return self._mismatch if self.mine else None

    @property
    def mine_points(self):
        """Coordinates of the points whose label differs (ringed in the DBSCAN panel)."""
        if self.mine_bad is None:
            return np.empty((0, 2))
        return self.X[self.mine_bad]

    def _compare_mine(self):
        self.mine_bad = None
        if self._mine_off:
            return
        name = "my_dbscan"
        ref = self.result.labels
        res = self._call_mine(name, self.X.copy(), self.eps, self.min_samples,
                              time_limit=self.mine_time_limit)
        problem = None if res.ok else res.message
        if res.ok:
            got, problem = as_labels(name, res.value, ref.shape)
        if problem:
            self._mine_off = True  # not again until the data change: sliders stay quick
            self._mismatch = problem
            self._show_mine(problem)
            return
        self.mine_bad = _differ(got, ref)
        first = same_partition(got, ref)
        if first is None:
            self._mismatch = None
        else:
            i, yours, theirs = first
            core = self.result.core_mask
            kind = "core" if core[i] else "border" if ref[i] >= 0 else "noise"
            self._mismatch = (
                f"your {name} (eps={self.eps:.2f}, min_samples={self.min_samples}) parts from "
                f"the reference first at point {i}: yours labels it {_label(yours)}, the "
                f"reference {_label(theirs)} (a {kind} point; clusters compared up to "
                f"renumbering; {int(self.mine_bad.sum())} of {len(ref)} points differ, ringed)")
        self._show_mine(self._mismatch)

    # ------------------------------------------------------------------ click
    def select(self, index):
        """Draw the eps circle around point ``index`` (None removes it)."""
        if index is not None:
            index = check_int(index, "index", min_value=0, max_value=len(self.X) - 1)
        self.query = index
        self._draw(("dbscan",))

    def _on_click(self, event):
        if event.inaxes is not self.ax or event.xdata is None:
            return
        d2 = (self.X[:, 0] - event.xdata) ** 2 + (self.X[:, 1] - event.ydata) ** 2
        nearest = int(np.argmin(d2))
        self.select(None if nearest == self.query else nearest)  # a second click clears it

    def describe(self):
        c = self.controls
        r = self.result
        return (f"dataset={c['dataset'].value}, eps={self.eps:.2f}, "
                f"min_samples={self.min_samples}: {r.n_clusters} clusters, "
                f"{int(r.noise_mask.sum())} noise points")

    # ------------------------------------------------------------------ static path
    @classmethod
    def static(cls, dataset="moons", eps=0.15, min_samples=5, k=2, n=500, seed=0, query=None,
               steps=None):
        """One figure, no frontend.

        ``query``: index of a point whose eps circle and region query are drawn.
        ``steps``: show the expansion after this many events (None: the final result).
        """
        ex = cls(dataset=dataset, eps=eps, min_samples=min_samples, k=k, n=n, seed=seed)
        if steps is not None:
            steps = check_int(steps, "steps", min_value=0)
            ex._drawing = True
            ex.restart()
            ex.step(steps)
            ex._drawing = False
        if query is not None:
            ex.select(query)
        else:
            ex._draw()
        return ex.fig

    # ------------------------------------------------------------------ drawing fast
    def redraw(self, panels=PANELS):
        """Redraw in place.

        Axes, ticks, labels and the legend rarely change, so a full draw keeps them as the
        background (Explorer's blitting); a slider move draws only the points, circles,
        lines and titles on top: several times cheaper than a full draw of three panels.
        Axis limits changing (new data) forces a full draw (``_invalidate``).
        """
        if self._background is None:
            super().redraw()
        else:
            self.blit_frame()

    def _moving(self):
        return [artist for panel in PANELS for artist in self._panel_artists[panel]]

    def _invalidate(self):
        """Axes limits or labels changed: the next redraw is a full one."""
        self._background = None

    # ------------------------------------------------------------------ internals: state
    def _new_data(self, new_dataset=False):
        c = self.controls
        self.X, self.y = toy_2d(c["dataset"].value, n=c["n"].value, seed=c["seed"].value)
        self.query = None
        span = np.ptp(self.X, axis=0)
        lo, hi = self.X.min(axis=0) - 0.1 * span, self.X.max(axis=0) + 0.1 * span
        (x0, x1), (y0, y1) = self.ax.get_xlim(), self.ax.get_ylim()
        # Keep the limits (and the background: a fast redraw) when the new points still fit
        # them snugly, as after most changes of n or seed; new limits need a full draw.
        inner_lo, inner_hi = self.X.min(axis=0) - 0.02 * span, self.X.max(axis=0) + 0.02 * span
        snug = (x0 <= inner_lo[0] and inner_hi[0] <= x1 and y0 <= inner_lo[1]
                and inner_hi[1] <= y1 and (x1 - x0) <= 1.3 * span[0]
                and (y1 - y0) <= 1.3 * span[1])
        if not snug:
            for ax in (self.ax, self.ax_km):
                ax.set_xlim(lo[0], hi[0])
                ax.set_ylim(lo[1], hi[1])
            self._invalidate()

        self._mine_off = False
        self._kd_cache = {}
        self._kd_top = getattr(self, "_kd_top", 0.0)
        self._kd_new_data = new_dataset or not self._kd_top
        self._new_kmeans(draw=False)
        self._new_min_samples()

    def _new_min_samples(self):
        ms = self.min_samples
        if ms > len(self.X):
            kd = np.full(len(self.X), np.inf)  # nobody has min_samples points: no core point
        else:
            if ms not in self._kd_cache:
                self._kd_cache[ms] = k_distance(self.X, ms)
            kd = self._kd_cache[ms]
        self.kdist = kd
        # x in % of the points: the axis stays the same when n changes (a fast redraw)
        self.kd_line.set_data(100.0 * np.arange(1, len(kd) + 1) / len(kd),
                              np.where(np.isfinite(kd), kd, np.nan))
        # The limit fits the largest min_samples on the slider (k-distances grow with k),
        # set when the data change, in "nice" steps: a min_samples move, and most changes
        # of n, then keep the background and redraw fast (an eps above it is in the text).
        if self._kd_new_data:
            self._kd_new_data = False
            k_max = min(self.controls["min_samples"].max, len(self.X))
            self._kd_cache.setdefault(k_max, k_distance(self.X, k_max))
            top_kd = self._kd_cache[k_max]
            finite = top_kd[np.isfinite(top_kd)]
            top = _nice_ceil(1.05 * float(finite.max()) if finite.size else 1.0)
        else:
            finite = kd[np.isfinite(kd)]
            top = max(self._kd_top, _nice_ceil(1.05 * float(finite.max()) if finite.size
                                               else 1.0))
        if top != self._kd_top:
            self._kd_top = top
            self.ax_kd.set_ylim(0.0, top)
            self._invalidate()
        self._new_dbscan()

    def _new_dbscan(self):
        self.result = dbscan(self.X, self.eps, self.min_samples)
        if self.mine:
            self._compare_mine()
        self.events = None  # a parameter changed: leave step mode, show the final result
        self.step_index = 0
        self._draw()

    def _new_kmeans(self, draw=True):
        k = min(self.controls["k"].value, len(self.X))
        self.km = kmeans(self.X, k, seed=self.controls["seed"].value)
        self.km_scatter.set_offsets(self.X)
        self.km_scatter.set_facecolors(cluster_colors(self.km.labels))
        self.km_centers.set_offsets(self.km.centers)
        self.km_centers.set_facecolors(cluster_colors(np.arange(k)))
        self.ax_km.set_title(f"K-Means, k = {k}: ARI {_ari(self.y, self.km.labels):.2f}",
                             fontsize=10)
        if draw:
            self.redraw(panels=("kmeans",))

    def _start_steps(self):
        """Record dbscan_steps' events as arrays (kind, point, cluster) for fast replay."""
        kinds, points, clusters = [], [], []
        for s in dbscan_steps(self.X, self.eps, self.min_samples):
            kinds.append(s.kind)
            points.append(s.point)
            clusters.append(s.cluster)
        kind = np.array(kinds, dtype=object)
        starts = np.flatnonzero((kind == "new_cluster") | (kind == "noise"))
        # A cluster is complete just before the next one starts (or before the noise report).
        boundaries = np.unique(np.r_[starts[starts > 0], np.flatnonzero(kind == "noise")[:1],
                                     len(kind)])
        self.events = {"kind": kind, "point": np.array(points, dtype=np.int64),
                       "cluster": np.array(clusters, dtype=np.int64), "boundaries": boundaries}
        self.step_index = 0

    # ------------------------------------------------------------------ internals: drawing
    def _setup_axes(self):
        ax = self.ax
        self.pending_sc = ax.scatter([], [], facecolors="none", edgecolors=PENDING_COLOR,
                                     linewidths=0.8, **PENDING_STYLE)
        self.noise_sc = ax.scatter([], [], color=NOISE_COLOR, linewidths=1.0, **NOISE_STYLE)
        self.border_sc = ax.scatter([], [], linewidths=0.4, edgecolors="black", **BORDER_STYLE)
        self.core_sc = ax.scatter([], [], linewidths=0, **CORE_STYLE)
        self.ring_sc = ax.scatter([], [], s=45, facecolors="none", edgecolors="black",
                                  linewidths=0.8, zorder=4)
        self.circle = Circle((0, 0), 1.0, fill=False, lw=2, ls="--", color="black", zorder=4,
                             visible=False)
        ax.add_patch(self.circle)
        self.query_sc = ax.scatter([], [], s=200, marker="*", color="black", zorder=5)
        if self.mine:  # black rings round the points where your labels differ
            self.mine_sc = ax.scatter([], [], s=90, facecolors="none", edgecolors="black",
                                      linewidths=1.4, zorder=4.5)
        ax.set_xlabel("feature 1")
        ax.set_ylabel("feature 2")
        ax.set_aspect("equal", adjustable="box")
        ax.locator_params(nbins=5)  # fewer tick labels: text is most of a redraw's cost
        handles = [
            Line2D([], [], ls="", color=OKABE_ITO[0], markersize=7, marker="o", label="core"),
            Line2D([], [], ls="", color=OKABE_ITO[0], markeredgecolor="black", markersize=4.5,
                   marker="D", label="border"),
            Line2D([], [], ls="", color=NOISE_COLOR, markersize=6, marker="x", label="noise"),
        ]
        ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.85,
                  handletextpad=0.2, borderpad=0.3)

        km = self.ax_km
        self.km_scatter = km.scatter([], [], s=12, linewidths=0)
        self.km_centers = km.scatter([], [], s=200, marker="X", edgecolors="black",
                                     linewidths=1.5, zorder=3)
        km.set_xlabel("feature 1")
        km.set_ylabel("feature 2")
        km.set_aspect("equal", adjustable="box")
        km.locator_params(nbins=5)

        kd = self.ax_kd
        (self.kd_line,) = kd.plot([], [], "-", color=OKABE_ITO[0], lw=2)
        self.eps_line = kd.axhline(0.0, color=OKABE_ITO[5], ls="--", lw=1.5)
        self.core_vline = kd.axvline(0.0, color="black", ls=":", lw=1)
        kd.set_xlabel("% of the points, sorted by k-distance (the distance to a point's k-th "
                      "nearest point, itself = 1st)")
        kd.set_ylabel("k-distance")
        kd.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        kd.set_xlim(0, 100)
        kd.yaxis.set_major_locator(MaxNLocator(nbins=4))

        # Everything that changes with eps, min_samples, k, a step or a click is drawn on
        # top of a cached background (see redraw), panel by panel, in this order.
        self._panel_artists = {
            "dbscan": [self.pending_sc, self.noise_sc, self.border_sc, self.core_sc,
                       self.ring_sc, self.circle, self.query_sc, ax.title],
            "kmeans": [self.km_scatter, self.km_centers, km.title],
            "kdist": [self.kd_line, self.eps_line, self.core_vline, kd.title],
        }
        if self.mine:
            self._panel_artists["dbscan"].insert(-2, self.mine_sc)
        for artists in self._panel_artists.values():
            for artist in artists:
                artist.set_animated(True)

    def _draw(self, panels=("dbscan", "kdist")):
        """Update the DBSCAN panel (and the k-distance panel's eps line) and redraw them."""
        if getattr(self, "_drawing", False) or not hasattr(self, "result"):
            return
        X = self.X
        core = self.result.core_mask
        stepping = self.events is not None
        if stepping:
            t = self.step_index
            labels = self.labels_at(t)
            noise = np.zeros(len(X), dtype=bool)
            noise[self.events["point"][:t][self.events["kind"][:t] == "noise"]] = True
            pending = (labels < 0) & ~noise
            current = int(self.events["point"][t - 1]) if t else None
        else:
            labels = self.result.labels
            noise = labels < 0
            pending = np.zeros(len(X), dtype=bool)
            current = None
        placed = labels >= 0
        is_core = placed & core
        is_border = placed & ~core
        colors = cluster_colors(labels)
        self.core_sc.set_offsets(X[is_core])
        self.core_sc.set_facecolors(colors[is_core])
        self.border_sc.set_offsets(X[is_border])
        self.border_sc.set_facecolors(colors[is_border])
        self.noise_sc.set_offsets(X[noise])
        self.pending_sc.set_offsets(X[pending])
        if self.mine:  # the final result's differences (not shown while stepping)
            self.mine_sc.set_offsets(np.empty((0, 2)) if stepping else self.mine_points)

        focus = current if current is not None else self.query
        self._draw_query(focus)
        self._draw_kdist()
        title = self._title(stepping, current)
        self.ax.set_title(title, fontsize=10)
        self.status.value = (f"<b>eps = {self.eps:.2f}, min_samples = {self.min_samples} - "
                             f"{title}</b><br>{self._kd_text}" + self._query_text(focus))
        done = stepping and self.step_index >= self.n_steps
        for name in ("Step", "Next cluster", "Finish"):
            self.buttons[name].disabled = done
        self.redraw(panels)

    def _draw_query(self, i):
        if i is None:
            self.circle.set_visible(False)
            self.ring_sc.set_offsets(np.empty((0, 2)))
            self.query_sc.set_offsets(np.empty((0, 2)))
            return
        self.circle.set_center(self.X[i])
        self.circle.set_radius(self.eps)
        self.circle.set_visible(True)
        self.ring_sc.set_offsets(self.X[region_query(self.X, i, self.eps)])
        self.query_sc.set_offsets(self.X[i:i + 1])

    def _draw_kdist(self):
        eps = self.eps
        self.eps_line.set_ydata([eps, eps])
        n_core = int(self.result.core_mask.sum())
        x = 100.0 * (n_core + 0.5) / len(self.X)
        self.core_vline.set_xdata([x, x])
        where = ("at or below the eps line" if eps <= self.ax_kd.get_ylim()[1]
                 else f"below eps = {eps:.2f} (above this plot)")
        self.ax_kd.set_title(f"k-distance, k = min_samples = {self.min_samples}: "
                             f"{n_core} core", fontsize=10)
        self._kd_text = f"{n_core} of {len(self.X)} points have a k-distance {where}: core"

    def _title(self, stepping, current):
        r = self.result
        if not stepping:
            return (f"DBSCAN: {r.n_clusters} clusters, {int(r.noise_mask.sum())} noise, "
                    f"ARI {_ari(self.y, r.labels):.2f}")
        t, total = self.step_index, self.n_steps
        if t == 0:
            return f"step 0 of {total}: press Step"
        kind = self.events["kind"][t - 1]
        cluster = int(self.events["cluster"][t - 1])
        what = {
            "new_cluster": f"core point {current} starts cluster {cluster}",
            "core": f"core point {current} joins cluster {cluster}",
            "border": f"border point {current} joins cluster {cluster}",
            "noise": f"point {current} was reached by no cluster: noise",
        }[kind]
        return f"step {t} of {total}: {what}"

    def _query_text(self, i):
        if i is None:
            return ""
        m = len(region_query(self.X, i, self.eps))
        kind = ("core" if self.result.core_mask[i]
                else "border" if self.result.labels[i] >= 0 else "noise")
        return (f"<br>point {i}: {m} points within eps = {self.eps:.2f} (itself included); "
                f"min_samples = {self.min_samples} -> {kind}")


def _differ(mine, ref):
    """Boolean (n,): the points whose label differs, clusters matched up to renumbering as
    ``same_partition`` matches them (each cluster to the one it first meets)."""
    bad = (mine == -1) != (ref == -1)
    forward, backward = {}, {}
    both = np.flatnonzero((mine != -1) & (ref != -1))
    for i in both.tolist():
        forward.setdefault(int(mine[i]), int(ref[i]))
        backward.setdefault(int(ref[i]), int(mine[i]))
    for i in both.tolist():
        m, r = int(mine[i]), int(ref[i])
        bad[i] = forward[m] != r or backward[r] != m
    return bad


def _label(value):
    return f"{value} (noise)" if value == -1 else str(value)


def _ari(y, labels):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(y, labels)


def _nice_ceil(x):
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 (times a power of ten) >= x."""
    if x <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(x))
    for m in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if m * power >= x * (1 - 1e-12):
            return float(m * power)
    return float(10 * power)  # pragma: no cover
