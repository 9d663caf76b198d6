"""How long a presenter waits: control change -> figure redrawn, for every explorer.

Each slider of each explorer is moved through a few values; the time from setting the value
to the end of the synchronous Agg redraw is what a projector shows (in a browser the PNG
transfer adds a little). Target: under 50 ms at 2,000 points.

    python benchmarks/bench_widgets.py
"""

from __future__ import annotations

import statistics
import time

import ipywidgets as w

import helpers.widgets as widgets

# Constructor arguments that make each explorer heavy (2,000 points where points apply).
HEAVY = {"KMeansExplorer": {"n": 2000}, "DBSCANExplorer": {"n": 2000}}


def slider_moves(explorer):
    times = {}
    for name, control in explorer.controls.items():
        if not isinstance(control, w.IntSlider | w.FloatSlider) or name in ("n",):
            continue
        lo, hi = control.min, control.max
        values = [lo + (hi - lo) * f for f in (0.2, 0.4, 0.6, 0.8, 0.5, 0.3)]
        if isinstance(control, w.IntSlider):
            values = [int(round(v)) for v in values]
        start = control.value
        samples = []
        for v in values:
            t = time.perf_counter()
            control.value = v
            samples.append((time.perf_counter() - t) * 1000)
        control.value = start
        times[name] = samples
    return times


def main():
    print("explorer / control: median and worst ms from value change to redrawn figure")
    for cls_name in widgets.__all__:
        try:
            cls = getattr(widgets, cls_name)
        except (ImportError, AttributeError):
            print(f"{cls_name:22s} (not built yet)")
            continue
        explorer = cls(**HEAVY.get(cls_name, {}))
        explorer.fig.canvas.draw()
        for control, samples in slider_moves(explorer).items():
            print(f"{cls_name:22s} {control:14s} median {statistics.median(samples):6.1f} ms"
                  f"   worst {max(samples):6.1f} ms")


if __name__ == "__main__":
    main()
