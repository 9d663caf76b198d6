"""How long a presenter waits, and how long the kernel is busy, for every control of every
explorer: the time from a control change (or a button click) to the end of the
synchronous Agg redraw, which is also how long the kernel cannot answer anything else.

Every slider is moved through six values, every menu and toggle through all its options,
every button clicked three times (a live room clicks again and again), with 2,000 points
where an explorer shows points. Targets: a slider move under 50 ms (issue 2), and no
callback ever holding the kernel for a second or more (issue 8). ``Play`` widgets tick in
the browser and move a slider, which is measured as that slider. In a browser the PNG
transfer adds a little.

    python benchmarks/bench_widgets.py
"""

from __future__ import annotations

import statistics
import time

import ipywidgets as w

import helpers.widgets as widgets

# Constructor arguments that make each explorer heavy (2,000 points where points apply).
HEAVY = {"KMeansExplorer": {"n": 2000}, "DBSCANExplorer": {"n": 2000}}
SLIDE_MS = 50
BLOCK_MS = 1000
SLIDERS = (w.IntSlider, w.FloatSlider, w.FloatLogSlider)
CHOICES = (w.Dropdown, w.ToggleButtons, w.RadioButtons, w.SelectionSlider)


def _timed(action):
    t = time.perf_counter()
    action()
    return (time.perf_counter() - t) * 1000


def _set(control, value):
    return lambda: setattr(control, "value", value)


def control_times(explorer):
    """{(kind, name): [ms, ...]} for every control and button of ``explorer``."""
    times = {}
    for name, control in explorer.controls.items():
        if isinstance(control, w.Play) or getattr(control, "disabled", False):
            continue
        start = control.value
        if isinstance(control, SLIDERS):
            lo, hi = control.min, control.max
            values = [lo + (hi - lo) * f for f in (0.2, 0.4, 0.6, 0.8, 0.5, 0.3)]
            if isinstance(control, w.FloatLogSlider):  # min and max are exponents there
                values = [control.base ** v for v in values]
            if isinstance(control, w.IntSlider):
                values = [int(round(v)) for v in values]
            kind = "slider"
        elif isinstance(control, CHOICES):
            values = [v for _, v in control._options_labels and zip(control._options_labels,
                                                                    control._options_values)]
            values = [v for v in values if v != start] + [start]
            kind = "menu"
        elif isinstance(control, w.Checkbox | w.ToggleButton):
            values = [not start, start]
            kind = "toggle"
        else:
            continue
        times[(kind, name)] = [_timed(_set(control, v)) for v in values]
        control.value = start
    for name, button in getattr(explorer, "buttons", {}).items():
        samples = []
        for _ in range(3):
            if button.disabled:
                break
            samples.append(_timed(button.click))
        if samples:
            times[("button", name)] = samples
    return times


def main():
    print("explorer / control: median and worst ms from change to redrawn figure "
          "(= kernel busy)")
    slow, blocking = [], []
    for cls_name in widgets.__all__:
        cls = getattr(widgets, cls_name)
        t = time.perf_counter()
        explorer = cls(**HEAVY.get(cls_name, {}))
        explorer.fig.canvas.draw()
        build = (time.perf_counter() - t) * 1000
        print(f"{cls_name:22s} {'(build + first draw)':24s}          {build:7.1f} ms")
        for (kind, control), samples in control_times(explorer).items():
            worst = max(samples)
            print(f"{cls_name:22s} {kind:7s} {control:16s} median {statistics.median(samples):7.1f}"
                  f" ms   worst {worst:7.1f} ms")
            if kind == "slider" and statistics.median(samples) >= SLIDE_MS:
                slow.append(f"{cls_name}.{control}")
            if worst >= BLOCK_MS:
                blocking.append(f"{cls_name}.{control} ({worst:.0f} ms)")
        if build >= BLOCK_MS:
            blocking.append(f"{cls_name} construction ({build:.0f} ms)")
    print(f"\nsliders with median >= {SLIDE_MS} ms: {', '.join(slow) or 'none'}")
    print(f"callbacks holding the kernel >= {BLOCK_MS} ms: {', '.join(blocking) or 'none'}")


if __name__ == "__main__":
    main()
