"""The course in a real browser: JupyterLab + headless Chromium (Debian's) driven by Playwright.

For every notebook in notebooks/ (solutions filled in from solutions/): open it, run all
cells, and check there is no error output, every widget rendered, and that moving a slider
or pressing a button changes the figure. Then, issue 14:

- at window widths 1024, 1280 and 1920 px, at JupyterLab's default zoom and at 150%
  (the page laid out as in a window 1.5x narrower, as the browser's zoom does; JupyterLab's
  default layout, file browser open), the explorer's canvas and every control lie inside its output area (no panel off
  screen, no label cut), with a screenshot per width in test-artifacts/browser/;
- for one control per explorer, the time from the input event in the page to the next
  painted frame of the figure is printed (median of several presses; no assertion: speed
  is not a test, see benchmarks/bench_widgets.py for the kernel's side).

Run with `make test-browser` (also run by .ci/run).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "browser"
RUN_TIMEOUT_MS = 420_000
WIDTHS = (1024, 1280, 1920)
ZOOMS = (1.0, 1.5)
WINDOW_HEIGHT = 900
# Per unit: the buttons pressed, in turn, to time input -> painted frame.
LATENCY_BUTTONS = {
    "01-kmeans": ("Assign", "Update"),
    "02-dbscan": ("Step",),
    "03-convolution": ("step ▶",),
    "04-pooling": ("Step", "Reset"),
    "05-optimisers": ("Step",),
    "06-case-study-cnns": ("log", "linear"),
}
LATENCY_PRESSES = 6

if not Path(CHROMIUM).exists():
    pytest.skip(f"browser tests skipped: {CHROMIUM} is not installed (make browser installs it "
                "with apt-get as root)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests skipped: no playwright")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _solved_notebooks(dest: Path):
    """Copy each release notebook with its solution cells filled in from solutions/."""
    out = []
    for release in sorted((REPO / "notebooks").glob("[0-9][0-9]-*/*.ipynb")):
        source = REPO / "solutions" / release.parent.name / release.name
        if not source.exists():
            continue
        src = nbformat.read(source, as_version=4)
        sols = {}
        for cell in src.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution"):
                sols[meta["grade_id"]] = "\n".join(
                    ln for ln in cell.source.splitlines() if "### " not in ln or "SOLUTION" not in ln)
        nb = nbformat.read(release, as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in sols:
                cell.source = sols[gid]
        path = dest / release.parent.name / release.name
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
        out.append(path.relative_to(dest))
    return out


def _write_setting(settings_dir, plugin, values):
    import json

    package, name = plugin.rsplit("/", 1)
    path = settings_dir / package / f"{name}.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    notebooks = _solved_notebooks(root)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline")
    env.pop("NBGRADER_EXECUTION", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    # Render every cell (JupyterLab 4 virtualises long notebooks, leaving off-screen cells
    # out of the page) and keep the news pop-up away.
    settings = root / "settings"
    _write_setting(settings, "@jupyterlab/notebook-extension/tracker", {"windowingMode": "none"})
    _write_setting(settings, "@jupyterlab/apputils-extension/notification", {"fetchNews": "false"})
    env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--notebook-dir={root}",
         "--ServerApp.open_browser=False", "--LabApp.news_url=", "--allow-root",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
    yield base, token, notebooks
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def _notebook_ids():
    return sorted(p.parent.name for p in (REPO / "notebooks").glob("[0-9][0-9]-*/*.ipynb"))


@pytest.mark.parametrize("nb_unit", _notebook_ids())
def test_notebook_in_jupyterlab(lab, browser, nb_unit):
    unit = nb_unit
    base, token, notebooks = lab
    rel = next(p for p in notebooks if p.parts[0] == unit)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(f"{base}/lab/tree/{rel.as_posix()}?token={token}&reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)

    _run_all_and_wait(page)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    texts = [errors.nth(i).inner_text() for i in range(errors.count())]
    page.screenshot(path=str(ARTIFACTS / f"{unit}.png"), full_page=False)
    assert not [t for t in texts if "Traceback" in t or "Error" in t], f"error outputs: {texts[:2]}"
    body = page.inner_text("body")
    assert "Error displaying widget" not in body
    assert "Loading widget..." not in body, "a widget never rendered"

    figures = page.locator(".jupyter-matplotlib-figure canvas:visible")
    try:  # a widget's view can come a moment after the kernel went idle on a busy machine
        figures.first.wait_for(state="visible", timeout=60_000)
    except sync_api.TimeoutError:
        page.screenshot(path=str(ARTIFACTS / f"{unit}-no-figure.png"), full_page=True)
    assert figures.count() >= 1, "no live figure (ipympl canvas) rendered"
    figure = figures.last  # the live demo comes after the static figures
    figure.scroll_into_view_if_needed()
    changed = _poke_until_figure_changes(page, figure)
    page.screenshot(path=str(ARTIFACTS / f"{unit}-after-control.png"))
    assert changed, "no button or menu of the live widget changed its figure"

    _time_input_to_frame(page, unit)
    problems = _check_fit_at_each_size(page, unit)
    page.close()
    assert not problems, "explorer outside its output area:\n" + "\n".join(problems[:12])


@pytest.fixture(autouse=True)
def _one_kernel_at_a_time(lab):
    """Shut down the notebook's kernel after each test, so that a notebook left running
    does not take the cores from the next one (2 cores in CI)."""
    yield
    import json
    import urllib.request

    base, token, _ = lab
    headers = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions", headers=headers)) as r:
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(f"{base}/api/sessions/{s['id']}", headers=headers,
                                     method="DELETE")
        urllib.request.urlopen(req).close()


def _run_all_and_wait(page):
    """Run all cells; done when every code cell shows an execution count ("[12]:").

    The kernel may still be starting when the notebook opens; if nothing has started
    after a while, run all again (it is idempotent for these notebooks)."""
    prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt")
    deadline = time.time() + RUN_TIMEOUT_MS / 1000
    last_click = 0.0
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    while time.time() < deadline:
        if any("Traceback" in t or "Error" in t for t in errors.all_inner_texts()):
            return  # the caller reports the error output
        texts = [t.strip() for t in prompts.all_inner_texts()]
        if texts and all(t.startswith("[") and t[1:-2].isdigit() for t in texts):
            # every cell ran; let the kernel finish what the widgets asked of it
            for _ in range(60):
                if "Idle" in page.locator(".jp-StatusBar-Widget").all_inner_texts().__str__():
                    break
                page.wait_for_timeout(1000)
            return
        started = any(t.startswith("[") and (t[1:-2].isdigit() or t[1] == "*") for t in texts)
        if not started and time.time() - last_click > 20:
            page.click(".jp-NotebookPanel .jp-Notebook")
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            last_click = time.time()
        page.wait_for_timeout(1000)
    pytest.fail("running all cells did not finish in time")


def _poke_until_figure_changes(page, figure, tries=8):
    """Press the live widget's enabled buttons (then pick another entry of its menus) one
    at a time until the figure's pixels change, as a presenter exploring it would."""
    box = figure.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][last()]")
    before = figure.screenshot()
    buttons = box.locator("button.jupyter-button:not([disabled])")
    for i in range(min(buttons.count(), tries)):
        buttons.nth(i).click()
        page.wait_for_timeout(1500)
        if figure.screenshot() != before:
            return True
    selects = box.locator("select")
    for i in range(min(selects.count(), tries)):
        options = selects.nth(i).locator("option")
        if options.count() > 1:
            selects.nth(i).select_option(index=1)
            page.wait_for_timeout(2500)
            if figure.screenshot() != before:
                return True
    return False


# Everything of an explorer that must lie inside its output area: the figure and the
# controls (a label that its box cuts off counts as outside).
_FIT_JS = """
() => [...document.querySelectorAll('.dk-explorer')].map(root => {
  const out = root.closest('.jp-OutputArea-output') || root.parentElement;
  const panel = root.closest('.jp-NotebookPanel') || document.body;
  const ob = out.getBoundingClientRect(), pb = panel.getBoundingClientRect();
  const bad = [];
  const name = el => (el.className.baseVal === undefined ? el.className : 'svg') + ' "' +
      (el.textContent || '').trim().slice(0, 30) + '"';
  if (ob.left < pb.left - 1 || ob.right > pb.right + 1)
    bad.push('output area [' + ob.left + ', ' + ob.right + '] outside the notebook [' +
             pb.left + ', ' + pb.right + ']');
  const sel = '.jupyter-matplotlib-canvas-div, .widget-inline-hbox, button, ' +
      '.widget-toggle-buttons, .widget-play, .widget-html, .widget-select-multiple, ' +
      '.widget-label, .widget-readout';
  for (const el of root.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;  // not shown
    if (r.left < ob.left - 1 || r.right > ob.right + 1)
      bad.push(name(el) + ' spans [' + Math.round(r.left) + ', ' + Math.round(r.right) +
               '], output area [' + Math.round(ob.left) + ', ' + Math.round(ob.right) + ']');
    if (el.classList.contains('widget-label') && el.scrollWidth > el.clientWidth + 1)
      bad.push('cut label ' + name(el));
  }
  const canvas = root.querySelector('.jupyter-matplotlib-canvas-div');
  const cb = canvas ? canvas.getBoundingClientRect() : null;
  return {bad, out: Math.round(ob.width), canvas: cb ? Math.round(cb.width) : null};
})
"""


def _check_fit_at_each_size(page, unit):
    """Resize the window (and zoom) through WIDTHS x ZOOMS; a screenshot at each; the list
    of what lies outside an explorer's output area."""
    problems = []
    viewport = page.viewport_size
    try:
        for width in WIDTHS:
            for zoom in ZOOMS:
                # the browser's zoom lays the page out as a window 1/zoom as wide
                page.set_viewport_size({"width": round(width / zoom),
                                        "height": round(WINDOW_HEIGHT / zoom)})
                page.wait_for_timeout(1500)  # JupyterLab lays out again
                explorers = page.locator(".dk-explorer")
                if explorers.count():
                    explorers.last.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / f"{unit}-{width}px-{zoom:g}x.png"))
                for i, result in enumerate(page.evaluate(_FIT_JS)):
                    print(f"{unit} {width}px at {zoom:g}x: explorer {i} output area "
                          f"{result['out']} px, canvas {result['canvas']} px")
                    problems += [f"{unit} {width}px at {zoom:g}x: {b}" for b in result["bad"]]
    finally:
        page.set_viewport_size(viewport)
    return problems


# Time from an input event to the first frame painted after the figure's canvas was drawn
# on: every 2-D canvas drawImage inside an explorer is noted, with the time of the next
# animation frame (the frame that shows it).
_FRAME_HOOK_JS = """
() => {
  if (window.__dk) return;
  window.__dk = {draws: [], input: 0};
  const draw = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (...args) {
    const c = this.canvas;
    if (c && c.isConnected && c.closest && c.closest('.dk-explorer')) {
      const t = performance.now();
      requestAnimationFrame(frame => window.__dk.draws.push({t, frame}));
    }
    return draw.apply(this, args);
  };
  document.addEventListener('click', e => { window.__dk.input = e.timeStamp; }, true);
}
"""


def _time_input_to_frame(page, unit):
    """Press the unit's buttons in turn; print the median time from the click event to the
    next painted frame of the figure."""
    labels = LATENCY_BUTTONS.get(unit)
    explorers = page.locator(".dk-explorer")
    if not labels or not explorers.count():
        return None
    root = explorers.last
    root.scroll_into_view_if_needed()
    page.evaluate(_FRAME_HOOK_JS)
    times = []
    for i in range(LATENCY_PRESSES):
        button = root.locator("button", has_text=labels[i % len(labels)]).first
        if button.is_disabled():
            continue
        page.evaluate("() => { window.__dk.draws = []; }")
        button.click()
        try:
            page.wait_for_function(
                "() => window.__dk.draws.some(d => d.t >= window.__dk.input)", timeout=15_000)
        except sync_api.TimeoutError:
            continue
        times.append(page.evaluate(
            "() => { const d = window.__dk.draws.find(d => d.t >= window.__dk.input);"
            " return d.frame - window.__dk.input; }"))
        page.wait_for_timeout(300)
    if times:
        times.sort()
        median = times[len(times) // 2] if len(times) % 2 else sum(
            times[len(times) // 2 - 1:len(times) // 2 + 1]) / 2
        print(f"{unit}: input -> painted frame, median {median:.0f} ms over {len(times)} "
              f"presses of {' / '.join(labels)} (all: {', '.join(f'{t:.0f}' for t in times)})")
        return median
    print(f"{unit}: no painted frame seen after pressing {' / '.join(labels)}")
    return None


def teardown_module():
    shutil.rmtree(REPO / ".ipynb_checkpoints", ignore_errors=True)
