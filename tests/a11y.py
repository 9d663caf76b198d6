"""Accessibility audit of a matplotlib figure, as issue 8 asks: "colour maps and cluster
colours that colour-blind viewers can tell apart, and every plot has axis labels and a
title".

Rules, per axes that shows something (lines, markers, bars, images):
- a title: its own, or the figure's suptitle (a grid of small images shares one);
- x and y labels wherever that axis shows tick labels (image panels with the axis turned
  off need none; shared axes label only where the ticks are);
- colour maps from a colour-blind-safe set (perceptually uniform viridis family,
  single-hue sequential, grey, and the two diverging maps PuOr / RdBu);
- when two or more hues are told apart on one axes, they come from Okabe & Ito's palette
  (a shade or tint of one counts; so do neutral greys, black and white).

This file is also sent, as text, into the kernels of the notebook tests
(tests/test_notebooks_run.py), so it imports nothing from the test suite.
"""

from __future__ import annotations

SAFE_CMAPS = {
    "viridis", "cividis", "magma", "inferno", "plasma",
    "gray", "Greys", "binary", "bone", "Blues", "Oranges", "Purples",
    "PuOr", "RdBu",
}
OKABE_ITO_HEX = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                 "#F0E442", "#000000")


def _cmap_ok(name):
    return name.removesuffix("_r") in SAFE_CMAPS


def _is_neutral(rgb, tol=0.02):
    return max(rgb) - min(rgb) <= tol


def _hues(ax):
    """The distinct non-neutral RGB colours that tell things apart on ``ax``."""
    import numpy as np
    from matplotlib.colors import to_rgb

    colours = set()

    def add(c):
        rgb = tuple(round(v, 2) for v in to_rgb(c))
        if not _is_neutral(rgb):
            colours.add(rgb)

    for line in ax.lines:
        if line.get_visible() and len(line.get_xdata()):
            add(line.get_color())
    for coll in ax.collections:
        if not coll.get_visible() or coll.get_array() is not None:
            continue  # colour-mapped: checked through its colour map
        for c in np.atleast_2d(coll.get_facecolor())[:50]:
            if len(c) and c[-1] > 0:
                add(c)
    for patch in ax.patches:
        if patch.get_visible() and patch.get_fill() and patch.get_facecolor()[-1] > 0:
            add(patch.get_facecolor())
    return colours


def _okabe_ito(rgb, tol=0.02):
    """An Okabe-Ito colour, or a shade or tint of one (same hue: a 3-D face in shadow)."""
    from colorsys import rgb_to_hsv

    from matplotlib.colors import to_rgb

    hue = rgb_to_hsv(*rgb)[0]
    for c in OKABE_ITO_HEX[:-1]:
        ref = rgb_to_hsv(*to_rgb(c))[0]
        if min(abs(hue - ref), 1 - abs(hue - ref)) <= tol:
            return True
    return False


def _shows_ticklabels(axis):
    return axis.get_visible() and any(t.get_visible() and t.get_text()
                                      for t in axis.get_ticklabels())


def audit(fig, name="figure"):
    """A list of problems (empty when the figure passes)."""
    fig.draw_without_rendering()  # lays out tick labels without touching the canvas
    problems = []
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or getattr(ax, "_colorbar", None) is not None:
            continue
        if not (ax.lines or ax.collections or ax.images or ax.patches):
            continue  # an empty panel, a table or text only
        title = " ".join(t for t in (ax.get_title(loc) for loc in ("left", "center", "right")) if t)
        where = f"{name}, axes {i} ({title or suptitle or 'untitled'})"
        if not title and not suptitle:
            problems.append(f"{where}: no title")
        if ax.axison:
            if _shows_ticklabels(ax.xaxis) and not ax.get_xlabel():
                problems.append(f"{where}: no x-axis label")
            if _shows_ticklabels(ax.yaxis) and not ax.get_ylabel():
                problems.append(f"{where}: no y-axis label")
        for mappable in [*ax.images, *(c for c in ax.collections if c.get_array() is not None)]:
            cmap = mappable.get_cmap().name
            if not _cmap_ok(cmap):
                problems.append(f"{where}: colour map {cmap!r} is not colour-blind safe")
        hues = _hues(ax)
        if len(hues) >= 2:
            off = sorted(h for h in hues if not _okabe_ito(h))
            if off:
                problems.append(f"{where}: colours {off[:3]} are not Okabe-Ito")
    return problems
