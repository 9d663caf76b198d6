"""Agg text drawing with a cache of rendered strings, for the explorers' canvases.

Matplotlib's Agg renderer rasterises every glyph of every text on every draw (about 50-90
microseconds a glyph here): a live figure with titles, labels, tick labels and a formula
redraws 500-800 glyphs, most of a redraw's time, although nearly all of that text is the
same as in the frame before. ``CachedTextRenderer`` keeps the rendered bitmap of each
(string, font, size, dpi, angle, sub-pixel position) and draws it again in one call: the
pixels are FreeType's own (the same glyph bitmaps, placed at the same 1/64-pixel
position), composited per string. Mathtext and TeX go the ordinary way.

A string seen for the first time at a new position (a tick label that moved by a fraction
of a pixel, a label at a new angle) is rasterised again from cached glyph bitmaps, and its
FreeType/raqm layout (which depends only on string, font, size and dpi) is kept too, so it
is laid out once, not once per position. The font-height metrics that ``Text._get_layout``
asks for on every layout (the "lp" line metrics from the font's OS/2 or hhea table: a font
look-up and three table reads each time) are kept per font, size and dpi, computed exactly
as matplotlib computes them, at the renderer's dpi (which is the figure's in every draw:
the canvas makes a new renderer whenever the figure's dpi changes).
"""

from __future__ import annotations

import math
import unicodedata
from collections import OrderedDict

import matplotlib as mpl
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.ft2font import RenderMode

MAX_ENTRIES = 3000  # strings kept (a few MB): several explorers' worth of labels
MAX_GLYPHS = 20000  # glyph bitmaps kept (small: a few hundred bytes each)
MAX_LAYOUTS = 3000  # laid-out strings kept (glyph indices and positions)
_GENERIC = ("serif", "sans-serif", "cursive", "fantasy", "monospace", "sans", "sans serif")


class _Recorder:
    """Stands in for the C renderer while a string is rasterised: keeps the glyphs."""

    def __init__(self):
        self.glyphs = []

    def draw_text_image(self, image, x, y, angle, gc):
        self.glyphs.append((np.array(image, dtype=np.uint8), int(x), int(y)))


_CACHE: OrderedDict = OrderedDict()
_GLYPHS: dict = {}
_LAYOUTS: dict = {}
_HEIGHTS: dict = {}
_METRICS: dict = {}  # glyph -> (FreeType's control box, hinted advance), in 1/64 pixel
# Measured from the layout only where that is known to give set_text's numbers: letters,
# digits, punctuation, symbols and spaces written left to right (no combining marks, no
# controls, no right-to-left script); anything else is measured the ordinary way.
_LTR = frozenset({"L", "EN", "ES", "ET", "CS", "ON", "WS"})
_SIMPLE: dict = {}


def _simple(ch):
    ok = _SIMPLE.get(ch)
    if ok is None:
        ok = _SIMPLE[ch] = (unicodedata.category(ch)[0] in "LNPS" or ch == " ") and \
            unicodedata.bidirectional(ch) in _LTR and unicodedata.combining(ch) == 0
    return ok


def _font_key(prop):
    """A snapshot of what picks the font file(s) and size (FontProperties are mutable)."""
    family = tuple(prop.get_family())
    rc = mpl.rcParams
    generic = tuple(tuple(rc["font." + f]) for f in family if f.lower() in _GENERIC
                    and "font." + f in rc)
    return (family, generic, prop.get_slant(), prop.get_variant(), prop.get_weight(),
            prop.get_stretch(), prop.get_size(), prop.get_file(), prop.get_math_fontfamily(),
            id(font_manager.fontManager))


class CachedTextRenderer(RendererAgg):
    def _get_font_height_metrics(self, prop):
        """(ascent, descent, line gap) in pixels, as ``Text._get_layout`` computes them
        from the font's OS/2 or hhea table; None, None, None where it would measure "lp"."""
        key = (_font_key(prop), self.dpi)
        metrics = _HEIGHTS.get(key)
        if metrics is None:
            metrics = None, None, None
            font = font_manager.get_font(font_manager.fontManager._find_fonts_by_props(prop))
            possible = [
                ('OS/2', 'sTypoLineGap', 'sTypoAscender', 'sTypoDescender'),
                ('hhea', 'lineGap', 'ascent', 'descent')
            ]
            for table_name, linegap_key, ascent_key, descent_key in possible:
                table = font.get_sfnt_table(table_name)
                if table is None:
                    continue
                fontsize = prop.get_size_in_points()
                units_per_em = font.get_sfnt_table('head')['unitsPerEm']
                scale = 1 / units_per_em * fontsize * self.dpi / 72
                metrics = (table[ascent_key] * scale, -table[descent_key] * scale,
                           table[linegap_key] * scale)
                break
            if len(_HEIGHTS) > MAX_ENTRIES:
                _HEIGHTS.clear()
            _HEIGHTS[key] = metrics
        return metrics

    def get_text_width_height_descent(self, s, prop, ismath):
        """RendererAgg's, from the kept layout of ``s`` (the one drawing uses) and kept
        glyph boxes, where that gives the same numbers; otherwise RendererAgg's own."""
        if ismath or not s or not all(map(_simple, s)):
            return super().get_text_width_height_descent(s, prop, ismath)
        size = prop.get_size_in_points()
        items = self._layout(s, prop, size, None, None)
        if not items or len(items) > len(s) or not all(item[1] for item in items):
            return super().get_text_width_height_descent(s, prop, ismath)
        flags = get_hinting_flag()
        x0 = y0 = 32000
        x1 = y1 = -32000
        width = 0
        for ft_object, glyph_index, gx, gy in items:
            key = (ft_object, size, self.dpi, glyph_index, flags)
            metrics = _METRICS.get(key)
            if metrics is None:
                ft_object.set_size(size, self.dpi)
                glyph = ft_object.load_glyph(glyph_index, flags)
                metrics = _METRICS[key] = (glyph.bbox, glyph.horiAdvance)
                if len(_METRICS) > MAX_GLYPHS:
                    _METRICS.pop(next(iter(_METRICS)))
            (a, b, c, d), advance = metrics
            px, py = round(gx * 64), round(gy * 64)
            x0, y0 = min(x0, a + px), min(y0, b + py)
            x1, y1 = max(x1, c + px), max(y1, d + py)
            width = max(width, px + advance)
        if x0 > x1:
            y0 = y1 = 0
        return width / 64.0, (y1 - y0) / 64.0, -y0 / 64.0

    def _layout(self, s, prop, size, features, language):
        """The glyphs of ``s`` as (FT2Font, glyph index, x, y): RendererAgg.draw_text's
        ``font._layout``, kept (it does not depend on position or angle)."""
        font = font_manager.get_font(font_manager.fontManager._find_fonts_by_props(prop))
        flags = get_hinting_flag()
        key = (s, font, size, self.dpi, flags, tuple(features) if features else None,
               language if not isinstance(language, list) else tuple(language))
        items = _LAYOUTS.get(key)
        if items is None:
            font = self._prepare_font(prop)
            items = tuple((item.ft_object, item.glyph_index, item.x, item.y)
                          for item in font._layout(s, flags=flags, features=features,
                                                   language=language))
            _LAYOUTS[key] = items
            if len(_LAYOUTS) > MAX_LAYOUTS:
                _LAYOUTS.pop(next(iter(_LAYOUTS)))
        return items

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath:
            return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
        # Whole pixels plus a 1/64-pixel fraction (FreeType's 26.6 fixed point).
        xi, yi = math.floor(x), math.floor(y)
        qx, qy = round(64 * (x - xi)), round(64 * (y - yi))
        if qx == 64:
            xi, qx = xi + 1, 0
        if qy == 64:
            yi, qy = yi + 1, 0
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        font = (tuple(prop.get_family()), prop.get_slant(), prop.get_variant(),
                prop.get_weight(), prop.get_stretch(), prop.get_size(), prop.get_file(),
                prop.get_math_fontfamily())  # a snapshot: FontProperties are mutable
        key = (s, font, self.dpi, self.height, angle, qx, qy, bool(gc.get_antialiased()),
               get_hinting_flag(), tuple(features) if features else None, language)
        entry = _CACHE.get(key)
        if entry is None:
            entry = self._rasterise(gc, xi + qx / 64, yi + qy / 64, s, prop, angle, mtext,
                                    xi, yi)
            _CACHE[key] = entry
            if len(_CACHE) > MAX_ENTRIES:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key)
        if entry is not None:
            image, dx, dy = entry
            self._renderer.draw_text_image(image, xi + dx, yi + dy, 0, gc)

    def _rasterise(self, gc, x, y, s, prop, angle, mtext, xi, yi):
        """One bitmap of the whole string, and where its bottom-left goes from (xi, yi)."""
        recorder, real = _Recorder(), self._renderer
        self._renderer = recorder
        try:
            # RendererAgg.draw_text, with the layout (independent of x, y and angle) kept
            features = mtext.get_fontfeatures() if mtext is not None else None
            language = mtext.get_language() if mtext is not None else None
            size = prop.get_size_in_points()
            items = self._layout(s, prop, size, features, language)
            self._draw_text_glyphs_and_boxes(
                gc, x, y, angle,
                ((ft_object, size, glyph_index, 0, 1, gx, gy)
                 for ft_object, glyph_index, gx, gy in items),
                [])
        finally:
            self._renderer = real
        glyphs = [(img, gx, gy) for img, gx, gy in recorder.glyphs if img.size]
        if not glyphs:
            return None
        # draw_text_image's (x, y): left column and bottom row (y downwards) of the bitmap
        left = min(gx for _, gx, _ in glyphs)
        right = max(gx + img.shape[1] for img, gx, _ in glyphs)
        bottom = max(gy for _, _, gy in glyphs)
        top = min(gy - img.shape[0] for img, _, gy in glyphs)
        out = np.zeros((bottom - top, right - left), dtype=np.uint8)
        for img, gx, gy in glyphs:
            r0, c0 = gy - img.shape[0] - top, gx - left
            region = out[r0:r0 + img.shape[0], c0:c0 + img.shape[1]]
            np.maximum(region, img, out=region)
        return out, left - xi, bottom - yi

    def _draw_text_glyphs_and_boxes(self, gc, x, y, angle, glyphs, boxes):
        """Agg's glyph loop, with each glyph's bitmap cached per font, size, dpi, angle and
        quarter-pixel position (a new string is then mostly glyphs seen before)."""
        if boxes or not isinstance(self._renderer, _Recorder):
            return super()._draw_text_glyphs_and_boxes(gc, x, y, angle, glyphs, boxes)
        cos = math.cos(math.radians(angle))
        sin = math.sin(math.radians(angle))
        load_flags = get_hinting_flag()
        aa = bool(gc.get_antialiased())
        for font, size, glyph_index, slant, extend, dx, dy in glyphs:  # dy is upwards.
            px = round(0x40 * (x + dx * cos - dy * sin))
            py = round(0x40 * (self.height - y + dx * sin + dy * cos))
            fx, fy = (px & 63) >> 4 << 4, (py & 63) >> 4 << 4  # quarter pixels
            key = (font.fname, size, self.dpi, glyph_index, slant, extend, angle, fx, fy,
                   load_flags, aa)
            cached = _GLYPHS.get(key)
            if cached is None:
                font.set_size(size, self.dpi)
                font._set_transform(
                    (0x10000 * np.array([[cos, -sin], [sin, cos]])
                     @ [[extend, extend * slant], [0, 1]]).round().astype(int), [fx, fy])
                bitmap = font._render_glyph(
                    glyph_index, load_flags, RenderMode.NORMAL if aa else RenderMode.MONO)
                buffer = np.array(bitmap.buffer, dtype=np.uint8)
                if not aa:
                    buffer *= 0xff
                cached = (buffer, bitmap.left, bitmap.top)
                _GLYPHS[key] = cached
                if len(_GLYPHS) > MAX_GLYPHS:
                    _GLYPHS.pop(next(iter(_GLYPHS)))
            buffer, left, top = cached
            self._renderer.draw_text_image(
                buffer, left + (px >> 6), int(self.height) - (top + (py >> 6)) + buffer.shape[0],
                0, gc)


class CachedTextCanvasMixin:
    """A canvas whose renderer is a :class:`CachedTextRenderer` (same reuse rule as Agg)."""

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key or not isinstance(getattr(self, "renderer", None),
                                                  CachedTextRenderer):
            self.renderer = CachedTextRenderer(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer


class CachedTextCanvasAgg(CachedTextCanvasMixin, FigureCanvasAgg):
    """FigureCanvasAgg with cached text."""
