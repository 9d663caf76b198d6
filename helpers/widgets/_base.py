"""What every explorer shares: the figure, its canvas, display, and colours.

The figure is a plain ``matplotlib.figure.Figure`` (no pyplot state, no global backend
switch). Inside a Jupyter kernel it gets an ipympl canvas, a real widget that redraws in
place and reports clicks; elsewhere (tests, scripts, nbconvert) it keeps the Agg canvas and
every update still runs, so a test can drive an explorer exactly like a presenter does.
"""

from __future__ import annotations

import io

# Okabe & Ito's palette: distinguishable with the common forms of colour blindness.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # green
    "#CC79A7",  # purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
NOISE_COLOR = "#999999"


def cluster_colors(labels):
    """RGBA colour per label (label -1, noise, is grey); the palette cycles past 8 clusters."""
    import numpy as np
    from matplotlib.colors import to_rgba

    palette = np.array([to_rgba(c) for c in OKABE_ITO])
    labels = np.asarray(labels)
    colors = palette[np.mod(labels, len(palette))]
    colors[labels < 0] = to_rgba(NOISE_COLOR)
    return colors


def new_figure(figsize=(10, 4.5), ncols=1, width_ratios=None, wspace=0.3):
    """A Figure with ``ncols`` axes side by side, sized for a projector.

    Margins are fixed rather than computed by a layout engine on every draw: constrained
    layout would double the cost of each redraw, and live demos redraw a lot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)  # a real renderer, so draw() costs what it costs on screen
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12, top=0.9, wspace=wspace)
    axes = fig.subplots(1, ncols, width_ratios=width_ratios) if ncols > 1 else [fig.subplots()]
    return fig, list(axes)


def in_kernel() -> bool:
    """True inside a running Jupyter kernel (where widgets can be displayed)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _ipympl_keeping_backend():
    """Import ipympl's canvas without letting it switch pyplot's backend.

    Importing the ``ipympl`` package calls ``matplotlib.use("module://ipympl...")`` when
    matplotlib is already loaded, so after the first explorer every later ``plt.subplots``
    in the notebook would become an interactive widget instead of an inline picture.
    Explorers never use pyplot, so put the backend back (read raw, so that matplotlib's
    "resolve automatically" sentinel survives too).
    """
    import matplotlib

    before = dict.__getitem__(matplotlib.rcParams, "backend")
    from ipympl.backend_nbagg import Canvas, FigureManager

    if dict.__getitem__(matplotlib.rcParams, "backend") != before:
        if isinstance(before, str):
            matplotlib.use(before)
        else:
            dict.__setitem__(matplotlib.rcParams, "backend", before)

    class FixedCanvas(Canvas):
        """ipympl 0.10's canvas, with its initial image fixed.

        Until the browser has connected, every draw stores the figure as the widget's
        initial image, but without the ``data:image/png;base64,`` prefix that
        ``_repr_mimebundle_`` uses: the browser then shows a broken image a few pixels wide
        instead of the figure (seen in the browser tests whenever a draw happened before
        the page connected)."""

        def send_binary(self, data):
            super().send_binary(data)
            url = self._data_url
            if self.syncing_data_url and url and not url.startswith("data:"):
                self._data_url = "data:image/png;base64," + url

    return FixedCanvas, FigureManager


class Explorer:
    """Base class: subclasses build ``self.fig`` and ``self.controls`` and call ``_finish``."""

    fig = None
    controls: dict = {}

    def _finish(self, rows):
        """Attach an interactive canvas (in a kernel) and lay out ``rows`` of controls."""
        import ipywidgets as w

        self.canvas_widget = None
        if in_kernel():
            Canvas, FigureManager = _ipympl_keeping_backend()
            canvas = Canvas(self.fig)
            canvas.header_visible = False
            canvas.toolbar_visible = False
            canvas.footer_visible = False
            canvas.resizable = False
            FigureManager(canvas, 0)
            self.canvas_widget = canvas
        self.status = w.HTML()
        children = [w.HBox(list(r)) for r in rows] + [self.status]
        if self.canvas_widget is not None:
            children.append(self.canvas_widget)
        self.widget = w.VBox(children)

    def redraw(self):
        """Redraw the figure in place (synchronously on the Agg canvas, idle in a browser)."""
        if self.canvas_widget is not None:
            self.canvas_widget.draw_idle()
        else:
            self.fig.canvas.draw()

    # ---------------------------------------------------------------- blitting
    # Explorers whose frames change only a few artists (a sliding window, racing lines)
    # mark those artists animated, list them in ``_moving()``, call ``_track_background()``
    # once, and draw frames with ``blit_frame()``: the rest of the figure is restored from
    # the last full draw instead of being drawn again (several times cheaper).
    blit = True
    _background = None
    _background_size = None

    def _moving(self):
        """The animated artists a frame redraws, bottom to top (none by default)."""
        return ()

    def _track_background(self):
        self._background = None
        self.fig.canvas.mpl_connect("draw_event", self._on_draw)

    def _on_draw(self, event):
        """After every full draw: keep the background, then draw the moving artists on it."""
        canvas = self.fig.canvas
        if canvas.is_saving():  # savefig draws animated artists itself (and at its own dpi)
            return
        if event.renderer is getattr(canvas, "renderer", None):  # not a vector savefig
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            self._background_size = (event.renderer.width, event.renderer.height)
        for artist in self._moving():
            artist.draw(event.renderer)

    def blit_frame(self):
        """Draw the moving artists on the saved background and show the frame; a full
        :meth:`redraw` when there is no valid background yet (first frame, or the canvas
        size or pixel ratio changed)."""
        canvas = self.fig.canvas
        renderer = canvas.get_renderer()
        if (not self.blit or self._background is None
                or self._background_size != (renderer.width, renderer.height)):
            self.redraw()
            return
        canvas.restore_region(self._background)
        for artist in self._moving():
            artist.draw(renderer)
        self._send_frame()

    def _send_frame(self):
        """Show a blitted frame. ipympl before its frontend has connected (or under
        nbconvert) would turn a frame sent now into a broken initial image a few pixels
        wide; ask for a full draw instead, which the frontend makes when it connects."""
        canvas = self.fig.canvas
        if getattr(canvas, "syncing_data_url", False):
            canvas.draw_idle()
        else:
            canvas.blit(self.fig.bbox)  # ipympl: send the new frame; plain Agg: nothing to do

    def png(self, dpi=100) -> bytes:
        """The current figure as PNG bytes."""
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        # The widget when a frontend can show it, and a PNG of the current state for
        # nbconvert / GitHub, which cannot.
        import base64

        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        bundle = dict(bundle)
        bundle["image/png"] = base64.b64encode(self.png()).decode("ascii")
        bundle["text/plain"] = f"<{type(self).__name__}: {self.describe()}>"
        return bundle

    def describe(self) -> str:
        return ""
