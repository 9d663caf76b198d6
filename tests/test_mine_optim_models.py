"""'Compare with mine' (issue 13) in units 05 and 06: OptimizerRace(mine=dict(sgd=...,
sgd_momentum=..., adam=...)) and ArchitectureExplorer(mine=dict(model=...)).

The reference each student's function is judged against is computed here independently:
torch.optim on the surface written in torch (05), forward hooks on torch modules (06); the
plausible mistakes come from helpers.checks.optim.MISTAKES and tests/units/."""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from torch import nn

from helpers import optim
from helpers.checks.optim import MISTAKES
from helpers.models import lenet5, resnet
from helpers.surfaces import SURFACES
from helpers.widgets import ArchitectureExplorer, OptimizerRace
from helpers.widgets.models import MINE_COLOR

_spec = importlib.util.spec_from_file_location("a11y", Path(__file__).with_name("a11y.py"))
a11y = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(a11y)
audit = a11y.audit  # issue 8's accessibility rules, as tests/test_accessibility.py applies them


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def _points(sentence):
    """The '(x, y)' pairs in a sentence, as float arrays."""
    return [np.array([float(a), float(b)])
            for a, b in re.findall(rf"\(({NUMBER}), ({NUMBER})\)", sentence)]


# ---------------------------------------------------------------------- OptimizerRace
TORCH_SURFACES = {
    "rosenbrock": lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2,
    "long_valley": lambda p: 0.5 * (p[0] ** 2 + 20 * p[1] ** 2),
    "beale": lambda p: ((1.5 - p[0] + p[0] * p[1]) ** 2 + (2.25 - p[0] + p[0] * p[1] ** 2) ** 2
                        + (2.625 - p[0] + p[0] * p[1] ** 3) ** 2),
}
KEYS = {"sgd": "SGD", "sgd_momentum": "Momentum", "adam": "Adam"}


def _torch_path(key, race, steps):
    """The reference racer's iterates by torch.optim on the torch surface (start included)."""
    c = race.configs()[KEYS[key]]
    p = torch.tensor([race.controls["x0"].value, race.controls["y0"].value],
                     dtype=torch.float64, requires_grad=True)
    opt = {"sgd": lambda: torch.optim.SGD([p], lr=c["learning_rate"]),
           "sgd_momentum": lambda: torch.optim.SGD([p], lr=c["learning_rate"],
                                                   momentum=c["momentum"]),
           "adam": lambda: torch.optim.Adam([p], lr=c["learning_rate"],
                                            betas=(c["beta1"], c["beta2"]))}[key]()
    f = TORCH_SURFACES[race.controls["surface"].value]
    path = [p.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        f(p).backward()
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.array(path)


def _rule_path(rule, race, key, steps):
    """The student's rule run by a plain loop (no explorer), NaN rows once it blows up."""
    surf = SURFACES[race.controls["surface"].value]
    w = np.array([race.controls["x0"].value, race.controls["y0"].value])
    config = dict(race.configs()[KEYS[key]])
    path = [w]
    with np.errstate(all="ignore"):
        for _ in range(steps):
            w, config = rule(w.copy(), surf.f_and_grad(w)[1], config)
            path.append(np.asarray(w, dtype=float))
    return np.array(path)


def _first_parting(mine, ref):
    bad = ~np.all(np.isclose(mine, ref, rtol=1e-6, atol=1e-9), axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def _notebook_rules():
    """sgd, sgd_momentum, adam as written in the solutions notebook."""
    import json

    nb = json.loads(Path(__file__).parents[1].joinpath(
        "solutions/05-optimisers/optimisers.ipynb").read_text())
    ns = {"np": np}
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade_id") in KEYS:
            exec("".join(cell["source"]), ns)  # noqa: S102 - the course's own solution cells
    return {key: ns[key] for key in KEYS}


REFERENCE_RULES = {"sgd": optim.sgd, "sgd_momentum": optim.sgd_momentum, "adam": optim.adam}


@pytest.mark.parametrize("rules", ["helpers", "notebook"])
def test_race_reference_rules_agree_on_several_states(rules):
    mine = REFERENCE_RULES if rules == "helpers" else _notebook_rules()
    race = OptimizerRace(surface="long_valley", steps=60, mine=dict(mine))
    assert race.mismatch() is None
    race.show_step(60)
    assert race.mismatch() is None and race.mine_problem is None
    for key, name in KEYS.items():  # the student's dashed path lies on the reference's
        np.testing.assert_allclose(np.array(race.mine_lines[key].get_data()).T,
                                   race.paths[name][:61], rtol=1e-9)
    race.controls["surface"].value = "rosenbrock"
    race.controls["steps"].value = 150
    assert race.mismatch() is None
    race.controls["learning_rate"].value = 2e-3
    race.controls["adaptive_lr"].value = 0.05
    race.controls["momentum"].value = 0.5
    race.controls["beta1"].value = 0.8
    race.controls["x0"].value = 0.5
    assert race.mismatch() is None
    race.controls["surface"].value = "beale"
    race.show_step(40)
    assert race.mismatch() is None and not race.mine_mark.get_visible()


MISTAKE_CASES = [(key, i) for key in ("sgd", "sgd_momentum", "adam")
                 for i in range(len(MISTAKES[key]))]


@pytest.mark.parametrize("surface", ["rosenbrock", "long_valley"])
@pytest.mark.parametrize(("key", "i"), MISTAKE_CASES)
def test_race_mistake_named_at_the_first_parting_step(surface, key, i):
    rule = MISTAKES[key][i][0]
    race = OptimizerRace(surface=surface, steps=120, mine={key: rule})
    ref = _torch_path(key, race, 120)
    np.testing.assert_allclose(race.paths[KEYS[key]], ref, rtol=1e-7, atol=1e-10)
    theirs = _rule_path(rule, race, key, 120)
    step = _first_parting(theirs, ref)
    sentence = race.mismatch()
    if step is None:  # some mistakes do not show on some states (eps inside the sqrt)
        assert sentence is None
        return
    assert sentence is not None and f"at step {step}:" in sentence, sentence
    assert f"your {key}" in sentence
    points = _points(sentence)
    if np.all(np.isfinite(theirs[step])):
        mine_xy, ref_xy = points
        np.testing.assert_allclose(mine_xy, theirs[step], rtol=2e-3, atol=1e-6)
    else:  # Adam with t used before it is incremented: NaN after step 1
        assert "not finite" in sentence
        (ref_xy,) = points
    np.testing.assert_allclose(ref_xy, ref[step], rtol=2e-3, atol=1e-6)

    # the figure: nothing marked before that step, both points ringed from it on
    if step > 1:
        race.show_step(step - 1)
        assert not race.mine_mark.get_visible()
    race.show_step(step)
    assert race.mine_mark.get_visible() and race.mine_step_line.get_visible()
    ringed = np.array(race.mine_mark.get_data()).T
    want = [ref[step]] + ([theirs[step]] if np.all(np.isfinite(theirs[step]))
                          else [theirs[step - 1]])
    for point in want:
        assert np.min(np.abs(ringed - point).max(axis=1)) < 1e-9 * max(1, np.abs(point).max())
    assert list(race.mine_step_line.get_xdata()) == [step, step]
    assert race.mine_problem == sentence  # the same sentence on the mine status line
    assert audit(race.fig, "OptimizerRace with a parting") == []
    assert "your " + key in race.mine_status.value


def test_race_is_lazy_and_mine_none_is_unchanged():
    calls = []

    def counting_sgd(w, dw, config):
        calls.append(1)
        return optim.sgd(w, dw, config)

    race = OptimizerRace(surface="rosenbrock", steps=300, mine=dict(sgd=counting_sgd))
    assert calls == []  # building the explorer runs nothing
    race.show_step(5)
    assert 5 <= len(calls) < 300  # a chunk ahead of the frame, not the whole race
    assert race.mismatch() is None and len(calls) == 300

    plain = OptimizerRace(surface="rosenbrock", steps=300)
    assert plain.mine == {} and plain.mismatch() is None
    labels = [a.get_label() for ax in plain.fig.axes for a in ax.get_children()]
    assert not any(str(label).startswith(("your ", "paths part")) for label in labels)
    assert plain.mine_mark is None


def _broken(kind):
    def rule(w, dw, config):
        if kind == "raise":
            return [][1], config
        if kind == "shape":
            return w[:1], config
        if kind == "single":
            return w - 0.01 * dw
        if kind == "config":
            return w - 0.01 * dw, None
        if kind == "slow":
            time.sleep(1.0)
        if kind == "drip":
            time.sleep(0.03)
        return w - config["learning_rate"] * dw, config
    return rule


@pytest.mark.parametrize(("kind", "words"), [
    ("raise", ["step 1", "raised IndexError"]),
    ("shape", ["step 1", "shape (1,)", "(2,)"]),
    ("single", ["step 1", "pair (w, config)"]),
    ("config", ["step 1", "config as NoneType"]),
    ("slow", ["step 1", "longer than 0.2 s"]),
    ("drip", ["took", "limit 0.2 s for the race"]),
])
def test_race_broken_rule_gives_a_sentence_and_the_explorer_keeps_working(kind, words):
    race = OptimizerRace(surface="long_valley", steps=50, mine=dict(sgd=_broken(kind)),
                         mine_time_limit=0.2)
    race.show_step(50)
    assert race.mine_problem is not None
    for word in words:
        assert word in race.mine_problem, race.mine_problem
    assert "Traceback" not in race.mine_status.value and words[-1] in race.mine_status.value
    assert race.mismatch() == race.mine_problem or kind == "drip"
    # the reference race goes on: controls still recompute and redraw
    race.controls["learning_rate"].value = 0.02
    race.show_step(30)
    assert race.frame == 30 and len(race.paths["SGD"]) == 51
    assert race.png()[:4] == b"\x89PNG"


def test_race_bad_mine_is_a_value_error_naming_the_key():
    with pytest.raises(ValueError, match="nesterov"):
        OptimizerRace(mine=dict(nesterov=optim.nesterov))
    with pytest.raises(ValueError, match="adam"):
        OptimizerRace(mine=dict(adam="adam"))
    with pytest.raises(ValueError, match="mine_time_limit"):
        OptimizerRace(mine=dict(sgd=optim.sgd), mine_time_limit=0)


def test_race_static_draws_the_students_path():
    fig = OptimizerRace.static(surface="long_valley", steps=40,
                               mine=dict(sgd=MISTAKES["sgd"][0][0]))
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "your sgd" in labels and "paths part" in labels
    assert not any(line.get_animated() for line in fig.axes[0].get_lines())
    assert audit(fig, "OptimizerRace.static with mine") == []


# ---------------------------------------------------------------- ArchitectureExplorer
def _weighted_outputs(model, input_shape):
    """(qualified name, output shape, own parameters) of every module holding parameters,
    in the order the forward pass runs them: forward hooks, independent of helpers.summary."""
    names = {m: n for n, m in model.named_modules()}
    seen = []

    def hook(module, inputs, output):
        own = sum(p.numel() for p in module.parameters(recurse=False))
        if own:
            seen.append((names[module], tuple(output.shape[1:]), own))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return seen


def _first_layer_parting(mine, ref):
    for i, (m, r) in enumerate(zip(mine, ref)):
        if m[1:] != r[1:]:
            return i, m, r
    return None


class StudentLeNet5(nn.Module):
    """The notebook's LeNet5 exercise, as a student writes it (functional tanh)."""

    def __init__(self, num_classes=10, in_channels=1, bias=True, c5_size=5, flatten=True):
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5, bias=bias)
        self.s2 = nn.AvgPool2d(2, stride=2)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5, bias=bias)
        self.s4 = nn.AvgPool2d(2, stride=2)
        self.c5 = nn.Conv2d(16, 120, kernel_size=c5_size)
        self.f6 = nn.Linear(120 * (6 - c5_size) ** 2, 84)
        self.output = nn.Linear(84, num_classes)
        self.flatten = flatten

    def forward(self, x):
        x = self.s2(torch.tanh(self.c1(x)))
        x = self.s4(torch.tanh(self.c3(x)))
        x = torch.tanh(self.c5(x))
        x = x.flatten(1) if self.flatten else x
        return self.output(torch.tanh(self.f6(x)))


def test_arch_reference_models_agree_on_several_states():
    ex = ArchitectureExplorer("LeNet-5", mine=dict(model=StudentLeNet5()))
    assert ex.mismatch() is None and ex.mine_layer is None and ex.mine_problem is None
    ex.controls["scale"].value = "log"
    ex.controls["group"].value = "block"
    assert ex.mismatch() is None
    for model, name in ((lenet5(pool="max", activation="relu"), "LeNet-5"),
                        (resnet(18), "ResNet-18")):
        ex = ArchitectureExplorer(name, mine=dict(model=model))
        assert ex.mismatch() is None, ex.mismatch()
        ex.controls["view"].value = "compare"
        assert ex.mismatch() is None
    # a class (or builder) works as well as an instance
    assert ArchitectureExplorer("LeNet-5", mine=dict(model=StudentLeNet5)).mismatch() is None


@pytest.mark.parametrize(("model", "reference", "input_shape"), [
    (lambda: StudentLeNet5(bias=False), "LeNet-5", (1, 32, 32)),      # biases forgotten
    (lambda: StudentLeNet5(c5_size=4), "LeNet-5", (1, 32, 32)),       # C5 is 5x5, not 4x4
    (lambda: StudentLeNet5(num_classes=100), "LeNet-5", (1, 32, 32)),
    # tests/units/06: the stride on the 3x3 conv of the bottleneck (torchvision's v1.5)
    (lambda: resnet(50, stride_on="3x3"), "ResNet-50", (3, 224, 224)),
])
@pytest.mark.parametrize("group", ["layer", "block"])
def test_arch_mistake_named_at_the_first_differing_layer(model, reference, input_shape, group):
    import helpers.models as hm
    from helpers.widgets.models import MODELS

    theirs = model()
    builder, kwargs, shape = MODELS[reference]
    assert shape == input_shape
    ref_model = getattr(hm, builder)(**kwargs)
    want = _first_layer_parting(_weighted_outputs(theirs, input_shape),
                                _weighted_outputs(ref_model, input_shape))
    i, (m_name, m_shape, m_params), (r_name, r_shape, r_params) = want

    ex = ArchitectureExplorer(reference, group=group, mine=dict(model=theirs))
    sentence = ex.mismatch()
    assert sentence is not None
    assert f"layer {i + 1} with parameters, {m_name!r}" in sentence
    assert f"{reference}'s {r_name!r}" in sentence
    for dims, params in ((m_shape, m_params), (r_shape, r_params)):
        assert "(" + ", ".join(map(str, dims)) in sentence and f"{params:,}" in sentence
    assert ex.mine_problem == sentence

    # the figure: a band on both axes across exactly the bar of that layer (or its block)
    want_bar = r_name if group == "layer" else r_name.split(".")[0] + (
        "." + r_name.split(".")[1] if "." in r_name and r_name.split(".")[1].isdigit() else "")
    bar = ex.names.index(want_bar) if want_bar in ex.names else None
    if bar is None:  # a batch norm: the bar of the conv before it
        assert group == "layer"
    else:
        assert ex.mine_layer == bar
    for ax in (ex.ax_params, ex.ax_macs):
        bands = [p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx(
            to_rgb(MINE_COLOR))]
        assert len(bands) == 1
        ys = bands[0].get_patch_transform().transform(bands[0].get_path().vertices)[:, 1]
        assert (ys.min(), ys.max()) == (ex.mine_layer - 0.5, ex.mine_layer + 0.5)
    assert f"background:{MINE_COLOR}" in ex.table.value  # the table highlights the row too
    assert audit(ex.fig, "ArchitectureExplorer with a difference") == []


def test_arch_extra_or_missing_layers_are_named():
    class Shorter(StudentLeNet5):
        def forward(self, x):
            x = self.s2(torch.tanh(self.c1(x)))
            x = self.s4(torch.tanh(self.c3(x)))
            return torch.tanh(self.c5(x)).flatten(1)

    sentence = ArchitectureExplorer("LeNet-5", mine=dict(model=Shorter())).mismatch()
    assert "your model has 3 layers with parameters, LeNet-5 has 5" in sentence
    assert "'f6'" in sentence and "(84,)" in sentence and "10,164" in sentence  # 120*84+84
    longer = nn.Sequential(lenet5(), nn.Linear(10, 10))
    sentence = ArchitectureExplorer("LeNet-5", mine=dict(model=longer)).mismatch()
    assert "your layer 6, '1' (Linear, output (10,), 110 parameters)" in sentence


@pytest.mark.parametrize(("model", "words"), [
    (lambda: StudentLeNet5(in_channels=3), ["first conv takes 3 input channels",
                                            "in_channels=1"]),
    (lambda: StudentLeNet5(flatten=False), ["raised RuntimeError", "1x32x32"]),
    (lambda: "not a model", ["returned str"]),
])
def test_arch_broken_model_gives_a_sentence_and_the_explorer_keeps_working(model, words):
    ex = ArchitectureExplorer("LeNet-5", mine=dict(model=model))
    assert ex.mismatch() == ex.mine_problem
    for word in words:
        assert word in ex.mine_problem, ex.mine_problem
    assert "Traceback" not in ex.mine_status.value
    assert "Your model" in ex.table.value
    ex.controls["model"].value = "AlexNet"  # redraws
    assert ex.names[0] == "conv1" and len(ex.bar_collections["params"].get_paths()) == 8
    ex.controls["view"].value = "compare"
    assert ex.names[0] == "AlexNet"


def test_arch_slow_or_raising_builder():
    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            time.sleep(2.0)
            return self.conv(x)

    ex = ArchitectureExplorer("LeNet-5", mine=dict(model=Slow()), mine_time_limit=0.2)
    assert "longer than 0.2 s" in ex.mine_problem
    assert ex.names[0] == "c1"

    class NotYet(nn.Module):
        def __init__(self):
            raise NotImplementedError()

    ex = ArchitectureExplorer("LeNet-5", mine=dict(model=NotYet))
    assert "building your model raised NotImplementedError" in ex.mismatch()


def test_arch_bad_mine_is_a_value_error_naming_the_key():
    with pytest.raises(ValueError, match="'net'"):
        ArchitectureExplorer(mine=dict(net=lenet5()))
    with pytest.raises(ValueError, match="model"):
        ArchitectureExplorer(mine=dict(model=3))


def test_arch_mine_none_is_unchanged():
    ex = ArchitectureExplorer("LeNet-5")
    assert ex.mismatch() is None and ex.mine_layer is None
    assert not ex.ax_params.patches and "Your model" not in ex.table.value
