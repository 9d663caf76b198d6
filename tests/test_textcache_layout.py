"""CachedTextRenderer measures text (width, height, descent; font-height metrics) exactly
as matplotlib's Agg renderer does, from the layout it keeps for drawing."""

import logging
import random
import warnings

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from helpers.widgets import _textcache
from helpers.widgets._textcache import CachedTextCanvasAgg, CachedTextRenderer

_RNG = random.Random(14)  # its own generator: the global one is left alone
CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-−()[]:;/%+=_'\"Äéß"
STRINGS = (["lp", " ", "  x ", "Ag", "−0.5", "AVAV", "Tj", "fi ffl", "WAVE To", "conv 3×3",
            "e\u0301", "ab\u0301", "שלום", "a\tb", "日本", "x\u200by", "ΣλΩ→·", "1e-05"]
           + ["".join(_RNG.choice(CHARS) for _ in range(_RNG.randint(1, 30)))
              for _ in range(40)])
FONTS = [dict(family="DejaVu Sans"), dict(family="DejaVu Serif", weight="bold"),
         dict(family="DejaVu Sans Mono", style="italic"), dict(family="sans-serif"),
         dict(family="STIXGeneral"), dict(family="cmr10")]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("dpi", [72, 100, 144.5])
@pytest.mark.parametrize("font", FONTS)
def test_width_height_descent_are_matplotlibs(font, dpi):
    ours, theirs = CachedTextRenderer(50, 50, dpi), RendererAgg(50, 50, dpi)
    for size in (6, 8.5, 10, 23.7):
        prop = FontProperties(size=size, **font)
        for s in STRINGS:
            for _ in range(2):  # first from a fresh layout, then from the kept one
                assert ours.get_text_width_height_descent(s, prop, False) == \
                    theirs.get_text_width_height_descent(s, prop, False), (s, font, size)


def test_measuring_after_drawing_and_mathtext():
    fig = Figure(figsize=(3, 2), dpi=100)
    ours = CachedTextCanvasAgg(fig).get_renderer()
    theirs = RendererAgg(ours.width, ours.height, ours.dpi)
    prop = FontProperties(size=9)
    gc = ours.new_gc()
    for s in STRINGS[:20]:
        ours.draw_text(gc, 10.3, 20.7, s, prop, 30)  # lays out s (and keeps it) first
        assert ours.get_text_width_height_descent(s, prop, False) == \
            theirs.get_text_width_height_descent(s, prop, False)
    for s in [r"\alpha^2 + x_i", r"\frac{1}{2}\sum_k w_k", r"\mathrm{ReLU}(x)"]:
        assert ours.get_text_width_height_descent(s, prop, True) == \
            theirs.get_text_width_height_descent(s, prop, True)


def test_font_height_metrics_are_matplotlibs():
    """Text layouts (extents of rotated, multi-line and mathtext labels) are the same."""
    def extents(canvas_class):
        _textcache._HEIGHTS.clear()
        fig = Figure(figsize=(4, 3), dpi=100)
        canvas_class(fig)
        texts = []
        for i, (angle, s) in enumerate([(0, "lp"), (30, "Ag\ny"), (90, "ticks −1.5"),
                                        (-45, r"$\sigma(x)$ and x"), (12.5, "AVAV\nTj"),
                                        (0, r"$\frac{a}{b}$")]):
            for j, font in enumerate(FONTS):
                texts.append(fig.text(0.1 + 0.1 * i, 0.1 + 0.1 * j, s, rotation=angle,
                                      fontproperties=FontProperties(size=7 + j, **font),
                                      linespacing=1.2 if j % 2 else "normal"))
        fig.canvas.draw()
        return [t.get_window_extent().bounds for t in texts]
    assert extents(CachedTextCanvasAgg) == extents(FigureCanvasAgg)
