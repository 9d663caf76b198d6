"""How long the kernel is busy after each control change of every explorer: the time from
a control change (or a button click) to the end of the synchronous Agg redraw, which is
also how long the kernel cannot answer anything else (issue 14: every control within a
frame budget, 50 ms median and 150 ms worst, at the explorers' default sizes).

Every slider is moved through six values, every menu and toggle through all its options,
every button clicked three times (a live room clicks again and again). ``Play`` widgets
tick in the browser and move a slider, which is measured as that slider. In a browser the
PNG transfer adds a little, and a HiDPI screen draws 2.25-4x the pixels: the browser test
(tests/browser/test_lab.py) prints the time from input event to painted frame.

    python benchmarks/bench_widgets.py [ExplorerName ...]
"""

from __future__ import annotations

import statistics
import sys
import time

import ipywidgets as w

import helpers.widgets as widgets

MEDIAN_MS = 50  # a frame budget (issue 14)
WORST_MS = 150
SLIDERS = (w.IntSlider, w.FloatSlider, w.FloatLogSlider)
CHOICES = (w.Dropdown, w.ToggleButtons, w.RadioButtons, w.SelectionSlider)


def _timed(action):
    """Wall-clock ms; the kernel's own CPU ms go to CPU_MS (on a shared machine, wall time
    also counts the other processes' turns)."""
    t, c = time.perf_counter(), time.thread_time()
    action()
    CPU_MS.append((time.thread_time() - c) * 1000)
    return (time.perf_counter() - t) * 1000


CPU_MS: list = []


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
        CPU_MS.clear()
        times[(kind, name)] = [_timed(_set(control, v)) for v in values]
        times[(kind, name, "cpu")] = list(CPU_MS)
        control.value = start
    for name, button in getattr(explorer, "buttons", {}).items():
        samples = []
        CPU_MS.clear()
        for _ in range(3):
            if button.disabled:
                break
            samples.append(_timed(button.click))
        if samples:
            times[("button", name)] = samples
            times[("button", name, "cpu")] = list(CPU_MS)
    return times


def main(names=()):
    print("explorer / control: median and worst ms from change to redrawn figure "
          "(= kernel busy; in brackets the kernel thread's CPU ms), default sizes")
    over = []
    for cls_name in names or widgets.__all__:
        cls = getattr(widgets, cls_name)
        t = time.perf_counter()
        explorer = cls()
        explorer.fig.canvas.draw()
        build = (time.perf_counter() - t) * 1000
        print(f"{cls_name:22s} {'(build + first draw)':24s}          {build:7.1f} ms")
        times = control_times(explorer)
        for key, samples in times.items():
            if len(key) == 3:
                continue
            kind, control = key
            cpu = times[(kind, control, "cpu")]
            median, worst = statistics.median(samples), max(samples)
            flag = "  OVER" if median > MEDIAN_MS or worst > WORST_MS else ""
            print(f"{cls_name:22s} {kind:7s} {control:16s} median {median:6.1f} ms"
                  f" (cpu {statistics.median(cpu):5.1f})   worst {worst:6.1f} ms"
                  f" (cpu {max(cpu):5.1f}){flag}")
            if flag:
                over.append(f"{cls_name}.{control} ({median:.0f}/{worst:.0f})")
    print(f"\ncontrols over {MEDIAN_MS} ms median or {WORST_MS} ms worst: "
          f"{', '.join(over) or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1:])
