"""Agg text drawing with a cache of rendered strings, for the explorers' canvases.

Matplotlib's Agg renderer rasterises every glyph of every text on every draw (about 50-90
microseconds a glyph here): a live figure with titles, labels, tick labels and a formula
redraws 500-800 glyphs, most of a redraw's time, although nearly all of that text is the
same as in the frame before. ``CachedTextRenderer`` keeps the rendered bitmap of each
(string, font, size, dpi, angle, sub-pixel position) and draws it again in one call: the
pixels are FreeType's own (the same glyph bitmaps, placed at the same 1/64-pixel
position), composited per string. Mathtext and TeX go the ordinary way.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.ft2font import RenderMode

MAX_ENTRIES = 3000  # strings kept (a few MB): several explorers' worth of labels
MAX_GLYPHS = 20000  # glyph bitmaps kept (small: a few hundred bytes each)


class _Recorder:
    """Stands in for the C renderer while a string is rasterised: keeps the glyphs."""

    def __init__(self):
        self.glyphs = []

    def draw_text_image(self, image, x, y, angle, gc):
        self.glyphs.append((np.array(image, dtype=np.uint8), int(x), int(y)))


_CACHE: OrderedDict = OrderedDict()
_GLYPHS: dict = {}


class CachedTextRenderer(RendererAgg):
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
            super().draw_text(gc, x, y, s, prop, angle, mtext=mtext)
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
