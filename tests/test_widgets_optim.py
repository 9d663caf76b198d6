"""OptimizerRace driven like a presenter drives it, its trajectories checked against
torch.optim and scipy, and helpers.optim.run_rule (the loop the race runs) against torch."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
import scipy.optimize
import torch
from matplotlib.backend_bases import MouseEvent
from matplotlib.figure import Figure

from helpers import optim
from helpers.surfaces import SURFACES, long_valley, rosenbrock
from helpers.widgets import OptimizerRace, _base
from helpers.widgets.optim import OPTIMIZERS


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _torch_path(make_opt, f_torch, start, steps):
    """Iterates of a torch optimiser on f (autograd gradient), start included."""
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_opt([p])
    path = [p.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        f_torch(p).backward()
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.array(path)


def _rosenbrock_torch(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def _valley_torch(p):  # long_valley: (x^2 + 20 y^2) / 2
    return 0.5 * (p[0] ** 2 + 20 * p[1] ** 2)


# ---------------------------------------------------------------------------------- protocol

def test_protocol_controls_fig_static():
    race = OptimizerRace(steps=30)
    assert {"surface", "x0", "y0", "learning_rate", "adaptive_lr", "momentum", "beta1",
            "beta2", "steps", "optimizers", "step", "play"} <= set(race.controls)
    assert set(race.controls["surface"].options) == set(SURFACES)
    assert set(race.controls["optimizers"].options) == {"SGD", "Momentum", "Nesterov",
                                                        "RMSProp", "Adam", "L-BFGS"}
    assert type(race.controls["play"]).__name__ == "Play"
    assert race.controls["play"].max == race.controls["step"].max == 30
    assert isinstance(race.fig, Figure)
    bundle = race._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    fig = OptimizerRace.static(surface="beale", steps=40)
    assert isinstance(fig, Figure)
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    contour_ax, loss_ax = fig.axes
    assert loss_ax.get_yscale() == "log"
    # The static figure shows every trajectory to the end, as an ordinary (not blitted) figure.
    drawn = [line for line in contour_ax.lines if len(line.get_xdata()) > 1]
    assert len(drawn) == 6 and not any(line.get_animated() for line in drawn)


def test_contour_levels_are_log_spaced():
    race = OptimizerRace(surface="rosenbrock", steps=5)
    gaps = np.asarray(race.contours.levels) - rosenbrock.min_value
    ratios = gaps[1:] / gaps[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
    assert ratios[0] > 1.5


# ---------------------------------------------------------------------------------- trajectories

def test_trajectories_equal_torch_optim_on_rosenbrock():
    race = OptimizerRace(surface="rosenbrock", learning_rate=1e-3, adaptive_lr=0.05,
                         momentum=0.8, beta1=0.85, beta2=0.99, steps=60)
    start = list(rosenbrock.start)
    want = {
        "SGD": lambda ps: torch.optim.SGD(ps, lr=1e-3),
        "Momentum": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.8),
        "Nesterov": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.8, nesterov=True),
        "RMSProp": lambda ps: torch.optim.RMSprop(ps, lr=0.05, alpha=0.99, eps=1e-8),
        "Adam": lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.85, 0.99), eps=1e-8),
    }
    for name, make_opt in want.items():
        ref = _torch_path(make_opt, _rosenbrock_torch, start, 60)
        np.testing.assert_allclose(race.paths[name], ref, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(race.losses[name], rosenbrock.value(ref), rtol=1e-9)


def test_lbfgs_reaches_scipys_minimum():
    race = OptimizerRace(surface="rosenbrock", steps=100)
    sp = scipy.optimize.minimize(rosenbrock.f_and_grad, rosenbrock.start, jac=True,
                                 method="L-BFGS-B", options={"gtol": 1e-10})
    path = race.paths["L-BFGS"]
    np.testing.assert_array_equal(path[0], rosenbrock.start)
    np.testing.assert_allclose(path[-1], sp.x, atol=1e-5)
    assert race.losses["L-BFGS"][-1] < 1e-10
    assert len(path) - 1 < 100  # it stopped on its own, converged
    assert "evals" in race.lines["L-BFGS"].get_label()


def test_run_rule_equals_torch_and_copies_config():
    config = {"learning_rate": 0.03, "momentum": 0.9}
    run = optim.run_rule(optim.nesterov, long_valley.f_and_grad, long_valley.start, config,
                         steps=40)
    ref = _torch_path(lambda ps: torch.optim.SGD(ps, lr=0.03, momentum=0.9, nesterov=True),
                      _valley_torch, list(long_valley.start), 40)
    np.testing.assert_allclose(run.path, ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(run.fun_path, long_valley.value(ref), rtol=1e-10)
    assert run.n_steps == 40 and not run.diverged
    assert config == {"learning_rate": 0.03, "momentum": 0.9}  # no state leaked in
    with pytest.raises(ValueError, match="steps"):
        optim.run_rule(optim.sgd, long_valley.f_and_grad, long_valley.start, steps=-1)
    with pytest.raises(TypeError, match="rule"):
        optim.run_rule("sgd", long_valley.f_and_grad, long_valley.start)
    with pytest.raises(TypeError, match="config"):
        optim.run_rule(optim.sgd, long_valley.f_and_grad, long_valley.start, config=0.1)


def test_divergence_stops_cleanly_without_warnings():
    # SGD on the long valley is stable only for lr < 2 / 20 = 0.1; at 1.0 the y error grows
    # by |1 - 20| = 19 per step until it overflows.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        race = OptimizerRace(surface="long_valley", learning_rate=1.0, steps=400)
        race.controls["step"].value = 400
    n = race.diverged["SGD"]
    assert n is not None and 100 < n < 400
    assert np.all(np.isfinite(race.paths["SGD"])) and len(race.paths["SGD"]) == n + 1
    last = race.paths["SGD"][-1]
    with np.errstate(over="ignore"):  # the next step is where f overflows
        nxt, _ = optim.sgd(last, long_valley.grad(last), {"learning_rate": 1.0})
        assert np.isinf(long_valley.value(nxt))
    y = race.paths["SGD"][:, 1]
    np.testing.assert_allclose(y[1:6] / y[:5], -19.0)  # the textbook growth factor 1 - lr * 20
    assert "diverged" in race.status.value
    run = optim.run_rule(optim.sgd, long_valley.f_and_grad, long_valley.start,
                         {"learning_rate": 1.0}, steps=400)
    assert run.diverged and run.n_steps == n


def test_saddle_has_no_minimum_and_lbfgs_overflow_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        race = OptimizerRace(surface="saddle", steps=100)
    assert race.ax_loss.get_yscale() == "linear"
    assert not race.min_mark.get_visible()
    for name in OPTIMIZERS:
        assert np.all(np.isfinite(race.paths[name])), name
    # Plain SGD from near the ridge line lingers by the saddle point before escaping:
    # x shrinks by (1 - 2 lr) per step while y grows by (1 + 2 lr).
    lr = race.controls["learning_rate"].value
    path = race.paths["SGD"]
    np.testing.assert_allclose(path[10], np.array(SURFACES["saddle"].start)
                               * [(1 - 2 * lr) ** 10, (1 + 2 * lr) ** 10])


# ---------------------------------------------------------------------------------- presenter

def test_step_control_play_and_buttons_drive_the_frame():
    race = OptimizerRace(surface="long_valley", steps=50)
    race.controls["step"].value = 20
    assert race.frame == 20
    for name in OPTIMIZERS:
        line, head, loss = race.lines[name], race.heads[name], race.loss_lines[name]
        k = min(20, len(race.paths[name]) - 1)
        np.testing.assert_array_equal(np.column_stack(line.get_data()), race.paths[name][:k + 1])
        np.testing.assert_array_equal(np.column_stack(head.get_data()), race.paths[name][k:k + 1])
        np.testing.assert_allclose(loss.get_ydata(),
                                   np.maximum(race.losses[name][:k + 1], 1e-12))
    assert race.step_text.get_text() == "step 20 of 50"
    race.buttons["Step"].click()
    assert race.frame == 21 and race.controls["step"].value == 21
    race.controls["play"].value = 35  # what a tick of the Play widget does
    assert race.frame == 35 and race.controls["step"].value == 35
    race.buttons["Reset"].click()
    assert race.frame == 0 and race.controls["play"].value == 0
    assert not race.controls["play"].playing
    for _ in range(60):
        race.step()
    assert race.frame == 50  # never past the last computed step


def test_parameter_changes_recompute_with_the_reference_rules():
    race = OptimizerRace(surface="long_valley", steps=40)
    race.controls["step"].value = 40
    race.controls["learning_rate"].value = 0.02
    assert race.frame == 0
    ref = optim.run_rule(optim.sgd, long_valley.f_and_grad, long_valley.start,
                         {"learning_rate": 0.02}, steps=40)
    np.testing.assert_array_equal(race.paths["SGD"], ref.path)
    race.controls["beta2"].value = 0.95
    adam = _torch_path(lambda ps: torch.optim.Adam(ps, lr=race.controls["adaptive_lr"].value,
                                                   betas=(0.9, 0.95)),
                       _valley_torch, list(long_valley.start), 40)
    np.testing.assert_allclose(race.paths["Adam"], adam, rtol=1e-9, atol=1e-12)
    race.controls["steps"].value = 25
    assert race.controls["play"].max == race.controls["step"].max == 25
    assert len(race.paths["SGD"]) == 26
    assert race.configs()["Momentum"] == {"learning_rate": 0.02, "momentum": 0.9}


def test_surface_change_applies_window_start_and_presets():
    race = OptimizerRace(surface="long_valley", steps=20)
    race.controls["surface"].value = "beale"
    c = race.controls
    assert (c["x0"].value, c["y0"].value) == SURFACES["beale"].start
    assert ((c["x0"].min, c["x0"].max), (c["y0"].min, c["y0"].max)) == SURFACES["beale"].bounds
    assert race.ax.get_xlim() == SURFACES["beale"].bounds[0]
    np.testing.assert_array_equal(race.paths["Adam"][0], SURFACES["beale"].start)
    assert "beale" in race.ax.get_title() and race.frame == 0
    race.controls["surface"].value = "rosenbrock"  # a window that would clamp beale's start
    assert (c["x0"].value, c["y0"].value) == rosenbrock.start


def test_click_sets_the_start_point_in_a_kernel(monkeypatch):
    # Inside a kernel the figure gets an ipympl canvas; a click on the contours moves the start.
    monkeypatch.setattr(_base, "in_kernel", lambda: True)
    race = OptimizerRace(surface="rosenbrock", steps=30)
    assert race.canvas_widget is not None and race.fig.canvas is race.canvas_widget
    race.controls["step"].value = 10  # frames blit on the ipympl canvas without a browser
    x_pix, y_pix = race.ax.transData.transform((0.5, 2.0))
    MouseEvent("button_press_event", race.fig.canvas, x_pix, y_pix, button=1)._process()
    assert race.controls["x0"].value == pytest.approx(0.5, abs=0.02)
    assert race.controls["y0"].value == pytest.approx(2.0, abs=0.02)
    assert race.frame == 0
    np.testing.assert_allclose(race.paths["SGD"][0],
                               [race.controls["x0"].value, race.controls["y0"].value])
    n_before = len(race.paths["SGD"])
    race._on_click(types.SimpleNamespace(inaxes=race.ax_loss, xdata=1.0, ydata=1.0))
    assert len(race.paths["SGD"]) == n_before and race.controls["x0"].value != 1.0


def test_importing_ipympl_does_not_switch_pyplots_backend(monkeypatch):
    import matplotlib

    monkeypatch.setattr(_base, "in_kernel", lambda: True)
    before = matplotlib.get_backend()
    OptimizerRace(surface="saddle", steps=5)
    assert matplotlib.get_backend() == before


def test_selecting_optimizers_hides_the_others():
    race = OptimizerRace(surface="long_valley", steps=20)
    race.controls["optimizers"].value = ("SGD", "Adam")
    assert race.lines["SGD"].get_visible() and race.loss_lines["Adam"].get_visible()
    assert not race.lines["L-BFGS"].get_visible() and not race.heads["Momentum"].get_visible()
    assert "RMSProp" not in race.status.value and "Adam" in race.status.value
    labels = [t.get_text() for t in race.ax_loss.get_legend().get_texts()]
    assert labels[:2] == ["SGD", "Adam"] and not any("Nesterov" in t for t in labels)


def test_blitted_frame_equals_a_full_redraw():
    race = OptimizerRace(surface="rosenbrock", steps=80)
    for t in (5, 40, 80):
        race.controls["step"].value = t
        blitted = np.asarray(race.fig.canvas.buffer_rgba()).copy()
        race.redraw()
        full = np.asarray(race.fig.canvas.buffer_rgba()).copy()
        np.testing.assert_array_equal(blitted, full)
    race.controls["optimizers"].value = ("Adam",)
    race.controls["step"].value = 10
    blitted = np.asarray(race.fig.canvas.buffer_rgba()).copy()
    race.redraw()
    np.testing.assert_array_equal(blitted, np.asarray(race.fig.canvas.buffer_rgba()))
    race.blit = False  # the fallback for a browser that shows stale frames: full redraws
    race.controls["step"].value = 30
    np.testing.assert_array_equal(race.lines["Adam"].get_xydata(), race.paths["Adam"][:31])
    assert race._background is not None  # a full draw saves a fresh one every frame


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="surface"):
        OptimizerRace(surface="himmelblau")
    with pytest.raises(ValueError, match="learning_rate"):
        OptimizerRace(learning_rate=0.0)
    with pytest.raises(ValueError, match="adaptive_lr"):
        OptimizerRace(adaptive_lr=5.0)
    with pytest.raises(ValueError, match="momentum"):
        OptimizerRace(momentum=1.0)
    with pytest.raises(ValueError, match="beta2"):
        OptimizerRace(beta2=1.0)
    with pytest.raises(ValueError, match="steps"):
        OptimizerRace(steps=0)
    with pytest.raises(ValueError, match="start"):
        OptimizerRace(surface="rosenbrock", start=(10.0, 0.0))
    with pytest.raises(ValueError, match="start"):
        OptimizerRace(start="here")
    with pytest.raises(ValueError, match="optimizers"):
        OptimizerRace(optimizers=("SGD", "AdaGrad"))
