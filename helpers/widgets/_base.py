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
    from matplotlib.figure import Figure

    from helpers.widgets._textcache import CachedTextCanvasAgg

    fig = Figure(figsize=figsize)
    CachedTextCanvasAgg(fig)  # Agg with cached text: what the explorers draw with on screen
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12, top=0.9, wspace=wspace)
    with fixed_titles():
        axes = (fig.subplots(1, ncols, width_ratios=width_ratios) if ncols > 1
                else [fig.subplots()])
    return fig, list(axes)


def fixed_titles():
    """Axes made in this context put their titles at a fixed height instead of measuring
    the tick labels on every draw to avoid them (a fifth of a redraw; none of the
    explorers has ticks on top)."""
    import matplotlib

    return matplotlib.rc_context({"axes.titley": 1.0})


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

    from helpers.widgets._textcache import CachedTextCanvasMixin

    if dict.__getitem__(matplotlib.rcParams, "backend") != before:
        if isinstance(before, str):
            matplotlib.use(before)
        else:
            dict.__setitem__(matplotlib.rcParams, "backend", before)

    class FixedCanvas(CachedTextCanvasMixin, Canvas):
        """ipympl 0.10's canvas, with cached text (see _textcache) and its initial image
        fixed.

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


FIT_CSS = """
<style>
/* Explorers fit the output area: controls wrap onto more lines, labels keep their width,
   and a canvas wider than its output area is scaled down to fit (never cut off). */
.dk-explorer { max-width: 100%; min-width: 0; }
.dk-explorer .widget-hbox, .dk-explorer .widget-vbox { flex-wrap: wrap; max-width: 100%; }
.dk-explorer .jupyter-widgets { max-width: 100%; }
.dk-explorer .widget-toggle-buttons { flex-wrap: wrap; height: auto; }
.dk-explorer .widget-html-content { white-space: normal; overflow-wrap: anywhere; }
.dk-explorer .widget-label, .dk-explorer .widget-label-basic { overflow: visible; }
.dk-explorer .jupyter-matplotlib { align-self: stretch; min-width: 0; flex: 0 0 auto; }
.dk-explorer .jupyter-matplotlib-figure, .dk-explorer .jupyter-matplotlib-canvas-container {
  width: 100%; max-width: 100%; min-width: 0; margin: 0;
}
.dk-explorer .jupyter-matplotlib-canvas-div {
  width: 100% !important; max-width: var(--dk-fig-width); height: auto !important;
  aspect-ratio: var(--dk-fig-aspect); margin: 0;
}
.dk-explorer .jupyter-matplotlib-canvas-div canvas {
  width: 100% !important; height: 100% !important;
}
</style>"""


def _fit_style(fig):
    """The CSS above plus this figure's own size (its width in CSS pixels, its aspect)."""
    w_px = fig.get_figwidth() * fig.dpi
    h_px = fig.get_figheight() * fig.dpi
    return FIT_CSS.replace(
        "</style>",
        f".dk-fig-{id(fig)} {{ --dk-fig-width: {w_px:.0f}px; "
        f"--dk-fig-aspect: {w_px:.0f} / {h_px:.0f}; }}\n</style>")


def fit_controls(controls):
    """Give every control its full description (no "-Means k" cut off at the left)."""
    for control in controls:
        style = getattr(control, "style", None)
        if getattr(control, "description", "") and hasattr(style, "description_width"):
            if not style.description_width:
                style.description_width = "initial"


class Explorer:
    """Base class: subclasses build ``self.fig`` and ``self.controls`` and call ``_finish``.

    Blitting, one path for every explorer: an explorer whose updates change only some
    artists lists them in ``_moving()`` (bottom to top), marks them animated and calls
    ``_track_background()`` once. A full draw (:meth:`redraw`) leaves them out, keeps the
    rest as the background and draws them on top; :meth:`blit_frame` restores that
    background and draws only them (several times cheaper than a full draw). Anything
    else that changes (limits, ticks, titles outside ``_moving``) needs :meth:`redraw`.
    """

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
        fit_controls(c for r in rows for c in _leaves(r))
        self.status = w.HTML()
        self.mine_status = w.HTML(self._mine_html(self.mine_problem))  # mine= messages
        children = [w.HBox(list(r), layout=w.Layout(flex_flow="row wrap")) for r in rows]
        children += [self.status, self.mine_status]
        if self.canvas_widget is not None:
            children.append(self.canvas_widget)
        children.append(w.HTML(_fit_style(self.fig)))
        self.widget = w.VBox(children, layout=w.Layout(max_width="100%"))
        self.widget.add_class("dk-explorer")
        self.widget.add_class(f"dk-fig-{id(self.fig)}")

    # ---------------------------------------------------------------- drawing
    blit = True
    _background = None
    _background_size = None

    def redraw(self):
        """Redraw the whole figure in place (synchronously on the Agg canvas, idle in a
        browser); the draw keeps a fresh background for :meth:`blit_frame`."""
        self._background = None
        if self.canvas_widget is not None:
            self.canvas_widget.draw_idle()
        else:
            self.fig.canvas.draw()

    def _moving(self):
        """The animated artists a frame redraws, bottom to top (none by default)."""
        return ()

    def _track_background(self):
        self._background = None
        self.fig.canvas.mpl_connect("draw_event", self._on_draw)

    def _on_draw(self, event):
        """After every full draw: keep the background, then draw the moving artists on it."""
        canvas = self.fig.canvas
        if canvas.is_saving():
            # savefig draws the axes' animated artists itself, but not the figure's own
            for artist in self._moving():
                if getattr(artist, "axes", None) is None:
                    artist.draw(event.renderer)
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

    # ---------------------------------------------------------------- compare with mine
    #: exercise name -> signature, the functions ``mine=`` accepts (helpers.widgets._mine)
    MINE: dict = {}
    mine: dict = {}
    mine_problem = None  # the last sentence about the student's functions, or None

    def _set_mine(self, mine):
        """Validate and keep ``mine`` (a ValueError naming the bad key or value)."""
        from helpers.widgets._mine import check_mine

        self.mine = check_mine(mine, self.MINE, type(self).__name__)

    def _call_mine(self, name, *args, **kwargs):
        """The student's ``name`` called safely (``_mine.call_mine``): a ``MineResult``.
        A failure is kept in ``mine_problem`` and shown on the status line."""
        from helpers.widgets._mine import call_mine

        res = call_mine(name, self.mine[name], *args, **kwargs)
        if not res.ok:
            self._show_mine(res.message)
        return res

    def _show_mine(self, sentence):
        """Put one sentence about the student's code on its status line (None clears)."""
        self.mine_problem = sentence
        status = getattr(self, "mine_status", None)
        if status is not None:
            status.value = self._mine_html(sentence)

    @staticmethod
    def _mine_html(sentence):
        import html

        return "" if not sentence else \
            f"<span class='dk-mine'>&#9888; {html.escape(sentence)}</span>"

    def mismatch(self):
        """``None`` when the student's functions (``mine=``) agree with the reference on
        the current state, else one sentence naming the first place they part."""
        raise NotImplementedError(f"{type(self).__name__} does not compare with mine= yet")


def _leaves(row):
    """The controls in a row, looking inside boxes."""
    for item in row:
        children = getattr(item, "children", None)
        if children:
            yield from _leaves(children)
        else:
            yield item


class NumberGrid:
    """Numbers at many places of one axes, drawn as a single collection of glyph outlines.

    A grid of numbers as one ``Text`` per cell costs about a millisecond per number on
    every draw (text layout and glyph rendering); this draws all of them as one
    ``PathCollection`` of cached glyph paths, sized in points like text, in one call. The
    numbers look the same (the default font's outlines) and stay centred on their cells.

    ``set(xy, strings, fontsize, colors, italic=None)`` replaces what is shown;
    ``strings`` lists what is shown, in the order given.
    """

    def __init__(self, ax, zorder=3, animated=False):
        import numpy as np
        from matplotlib.collections import PathCollection
        from matplotlib.transforms import IdentityTransform

        self.ax = ax
        self.strings: list[str] = []
        self.italic: list[bool] = []
        self.collection = PathCollection([], sizes=[], offsets=np.empty((0, 2)),
                                         offset_transform=ax.transData, zorder=zorder,
                                         linewidths=0, edgecolors="none", animated=animated)
        self.collection.set_transform(IdentityTransform())
        ax.add_collection(self.collection, autolim=False)

    def set(self, xy, strings, fontsize, colors="black", italic=None):
        import numpy as np

        strings = [str(s) for s in strings]
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        italic = np.zeros(len(strings), bool) if italic is None else np.asarray(italic)
        self.strings = strings
        self.italic = [bool(i) for i in italic]
        coll = self.collection
        coll.set_paths([_glyphs(s, bool(i)) for s, i in zip(strings, italic)])
        coll.set_offsets(xy if len(xy) else np.empty((0, 2)))
        sizes = np.broadcast_to(np.asarray(fontsize, dtype=float) ** 2, (len(strings),))
        coll.set_sizes(np.array(sizes))
        coll.set_facecolors(colors)

    def remove(self):
        self.collection.remove()


_GLYPHS: dict = {}


def _glyphs(text, italic=False):
    """The outline of ``text`` at 1 point, centred on the origin (digits' mid-height)."""
    key = (text, italic)
    path = _GLYPHS.get(key)
    if path is None:
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextPath
        from matplotlib.transforms import Affine2D

        prop = FontProperties(style="italic" if italic else "normal")
        raw = TextPath((0, 0), text, size=1, prop=prop)
        box = raw.get_extents()
        digit = TextPath((0, 0), "0", size=1, prop=prop).get_extents()
        path = Affine2D().translate(-(box.x0 + box.x1) / 2,
                                    -(digit.y0 + digit.y1) / 2).transform_path(raw)
        _GLYPHS[key] = path
    return path
