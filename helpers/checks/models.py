"""Checkers for unit 06-case-study-cnns. Each compares a student's answer with ``helpers``.

Exercises and what is compared:

* ``check_shape_table(shape_table)``: the output (H, W, C) of every layer of AlexNet (and,
  hidden, LeNet-5 and random stacks) against :func:`helpers.models.layer_shapes`;
* ``check_count_params(count_params)``: parameters per layer against
  :func:`helpers.models.layer_params` (and torch's count for the built models);
* ``check_lenet5(LeNet5)``, ``check_residual_block(ResidualBlock)``,
  ``check_bottleneck(BottleneckBlock)``: the student's ``nn.Module`` class is built, its
  parameters are listed, the reference's weights (random, from a seed) are copied into it
  and its output on a fixed input is computed, in eval mode, in float64. What is recorded
  and judged is plain data: the parameter count, the parameter shapes and the output
  array; the judge builds the reference from the same seed and compares;
* ``check_fit(fit)``: the student's training loop trains a fresh LeNet-5 on the digits;
  the recorded answer is the loss per epoch and the predicted class of every test image;
  the judge computes the accuracy and applies a threshold (the answer is a measurement,
  so it cannot be compared digit for digit);
* ``check_predict_classes(predict_classes)``: class indices of a model left in training
  mode (with dropout), compared exactly with the eval-mode argmax.

Every check takes the student's function or class as its only positional argument and
literal keyword parameters, as the grading harness requires.

Examples
--------
>>> from helpers.models import layer_shapes, layer_params
>>> check_shape_table(layer_shapes)     # the references pass their own checks
>>> check_count_params(layer_params)
"""

from __future__ import annotations

import copy

import numpy as np

from helpers.checks._core import (
    Case,
    Check,
    CheckFailure,
    as_array,
    expect_close,
    expect_shape,
)
from helpers.models import ALEXNET_LAYERS, LENET5_LAYERS, describe_layer, layer_params, layer_shapes

__all__ = [
    "FIT_MIN_ACCURACY",
    "check_bottleneck",
    "check_count_params",
    "check_fit",
    "check_lenet5",
    "check_predict_classes",
    "check_residual_block",
    "check_shape_table",
    "fit_model",
    "layer_problem",
]

# The fit check trains LeNet-5 (ReLU, max pooling) for 5 epochs with Adam (lr 2e-3, batch
# 64) on the digits. Measured on seeds 0-9 (tests/test_models_checks.py re-measures one):
# an honest loop gets 92.0-95.1% test accuracy on seeds 0-9 (one that never shuffles, 92%);
# loops that do not learn the digits get at most 64% (no zero_grad: 10-34%; one batch
# only: 18%; one full batch per epoch: 39-64%). 85% sits between, with room on both sides.
FIT_MIN_ACCURACY = 0.85


# --------------------------------------------------------------------------- problems

def layer_problem(net):
    """(layers, input_shape, description) for ``net``: "alexnet", "lenet5" or "random<seed>".

    Random stacks are made from the seed: an input of 16..64 pixels and 1..3 channels,
    then 2..5 conv/pool/norm layers whose filters always fit (stride and padding are chosen
    so that ``(n - f + 2p)`` divides by the stride), then 1..2 fc layers.
    """
    if net == "alexnet":
        return [dict(layer) for layer in ALEXNET_LAYERS], (227, 227, 3), "AlexNet (227x227x3)"
    if net == "lenet5":
        return [dict(layer) for layer in LENET5_LAYERS], (32, 32, 1), "LeNet-5 (32x32x1)"
    if not (isinstance(net, str) and net.startswith("random") and net[6:].isdigit()):
        raise ValueError(f"net must be 'alexnet', 'lenet5' or 'random<seed>'; got {net!r}")
    seed = int(net[6:])
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(16, 65)), int(rng.integers(1, 4))
    size, layers = n, []
    for i in range(int(rng.integers(2, 6))):
        kind = ("conv", "conv", "pool", "norm")[int(rng.integers(4))] if i else "conv"
        if kind == "norm":
            layers.append(dict(name=f"norm{i + 1}", kind="norm"))
            continue
        f = int(rng.choice([1, 2, 3, 5])) if kind == "conv" else int(rng.choice([2, 3]))
        f = min(f, size)
        pad = int(rng.integers(0, f // 2 + 1)) if kind == "conv" else 0
        strides = [s for s in (1, 2, 3) if (size - f + 2 * pad) % s == 0]
        stride = int(rng.choice(strides))
        if kind == "conv":
            layers.append(dict(name=f"conv{i + 1}", kind="conv",
                               filters=int(rng.integers(2, 65)), size=f, stride=stride,
                               pad=pad))
        else:
            layers.append(dict(name=f"pool{i + 1}", kind="pool", size=f, stride=stride))
        size = (size - f + 2 * pad) // stride + 1
    for j in range(int(rng.integers(1, 3))):
        layers.append(dict(name=f"fc{j + 1}", kind="fc", units=int(rng.integers(2, 200))))
    return layers, (n, n, c), f"a random stack ({net}: input {n}x{n}x{c})"


def _layer_cases(nets=("alexnet",)):
    cases = []
    for net in nets:
        layers, shape, what = layer_problem(net)
        # the judge reads its own copy: a function that edits `layers` cannot move the target
        cases.append(Case((layers, shape), what, layers=copy.deepcopy(layers)))
    return cases


# --------------------------------------------------------------------------- shapes

def _shape_judge(case, got):
    layers, input_shape = case.extra["layers"], case.args[1]
    where = case.description
    want = layer_shapes(layers, input_shape)
    rows = _as_rows(got, len(layers), 3, "shape_table(layers, input_shape)", where,
                    "one (H, W, C) per layer")
    for i, (row, expected) in enumerate(zip(rows, want)):
        if tuple(row) != expected:
            coming = input_shape if i == 0 else want[i - 1]
            raise CheckFailure(
                f"layer {i} ({describe_layer(layers[i])}) on an input of "
                f"{_fmt_volume(coming)} should give {_fmt_volume(expected)}, got "
                f"{_fmt_volume(tuple(row))} on {where}"
                + _shape_hint(layers[i], coming, tuple(row), expected))


def _shape_hint(layer, coming, got, want):
    kind = layer["kind"]
    if kind == "fc":
        return "; an fc layer gives (1, 1, units)"
    if kind in ("pool", "norm") and got[2] != want[2]:
        return f"; {kind} layers keep the depth ({coming[2]})"
    if kind == "conv" and got[2] != want[2]:
        return "; a conv layer's depth is its number of filters"
    if kind in ("conv", "pool"):
        pad = layer.get("pad", 0)
        return (f"; use (N - F + 2P)/S + 1 = ({coming[0]} - {layer['size']} + 2*{pad})/"
                f"{layer['stride']} + 1")
    return ""


check_shape_table = Check("models.shape_table", "shape_table", _layer_cases, _shape_judge)


# --------------------------------------------------------------------------- params

def _params_judge(case, got):
    layers, input_shape = case.extra["layers"], case.args[1]
    where = case.description
    want = layer_params(layers, input_shape)
    got = _as_rows(got, len(layers), None, "count_params(layers, input_shape)", where,
                   "one count per layer")
    shapes = [tuple(input_shape), *layer_shapes(layers, input_shape)]
    for i, (count, expected) in enumerate(zip(got, want)):
        if count != expected:
            layer = layers[i]
            H, W, C = shapes[i]
            hint = ""
            if layer["kind"] == "conv":
                f, k = layer["size"], layer["filters"]
                hint = (f"; each of the {k} filters has {f}*{f}*{C} weights and 1 bias: "
                        f"({f}*{f}*{C})*{k} + {k}")
                if count == expected - k:
                    hint = f"; did you forget the {k} biases?"
            elif layer["kind"] == "fc":
                u = layer["units"]
                hint = (f"; every one of the {u} neurons sees all {H}*{W}*{C} inputs and has "
                        f"a bias: ({H}*{W}*{C})*{u} + {u}")
                if count == expected - u:
                    hint = f"; did you forget the {u} biases?"
            else:
                hint = f"; a {layer['kind']} layer has nothing to learn"
            raise CheckFailure(f"layer {i} ({describe_layer(layer)}) on an input of "
                               f"{_fmt_volume(shapes[i])} has {expected:,} parameters, you "
                               f"counted {count:,} on {where}{hint}")


check_count_params = Check("models.count_params", "count_params", _layer_cases,
                           _params_judge)


# --------------------------------------------------------------------------- nn.Modules

class ModuleCheck(Check):
    """A check whose answer is an ``nn.Module`` class: ``check(StudentClass, **params)``.

    For each case the student's class is built, the reference's weights are copied into
    it, and only plain data is recorded: ``(n_params, shapes, output)`` with ``shapes``
    the parameter (and buffer) shapes in order and ``output`` the float64 array it
    computes on the case's input in eval mode, or None when the weights could not be
    copied (the judge then explains why from ``shapes``).
    """

    def __init__(self, name, what, cases, build_reference, hint):
        self.build_reference = build_reference
        self.hint = hint
        super().__init__(name, what, cases, self._judge)

    def __call__(self, cls, **params):
        if not isinstance(cls, type):
            raise CheckFailure(f"{self.what} should be a class (class {self.what}(nn.Module): "
                               f"...), got {type(cls).__name__}")
        super().__call__(lambda *args: self._probe(cls, *args), **params)

    def _probe(self, cls, init_args, input_shape, seed):
        import torch

        reference = self.build_reference(init_args, seed)
        model = cls(*init_args)
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{self.what}(...) should build a torch.nn.Module, got "
                            f"{type(model).__name__}")
        model = model.double()
        n_params = int(sum(p.numel() for p in model.parameters()))
        shapes = _state_shapes(model)
        if not _copy_state(reference, model):
            return n_params, shapes, None
        model.eval()
        with torch.no_grad():
            out = model(_fixed_input(input_shape, seed))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"forward should return a tensor, got {type(out).__name__}")
        return n_params, shapes, out.detach().cpu().numpy().astype(np.float64)

    def _judge(self, case, got):
        import torch

        init_args, input_shape, seed = case.args
        where = case.description
        if not isinstance(got, tuple | list) or len(got) != 3:
            raise CheckFailure(f"expected the recorded (n_params, shapes, output) on {where}")
        n_params, shapes, output = got
        reference = self.build_reference(init_args, seed)
        want_n = int(sum(p.numel() for p in reference.parameters()))
        want_shapes = _state_shapes(reference)
        if int(n_params) != want_n:
            raise CheckFailure(f"{self.what}{_call(init_args)} has {int(n_params):,} "
                               f"parameters; it should have {want_n:,} on {where}. "
                               f"{self.hint}")
        if output is None:
            listed = ", ".join(f"{n} {tuple(s)}" for n, s in want_shapes)
            raise CheckFailure(
                f"could not copy the reference weights into {self.what}{_call(init_args)} on "
                f"{where}: its layers should hold, in this order (or with these names), "
                f"{listed}; yours hold "
                f"{', '.join(f'{n} {tuple(s)}' for n, s in _pairs(shapes))}")
        with torch.no_grad():
            want = reference(_fixed_input(input_shape, seed)).numpy()
        output = as_array(output, f"the output of {self.what}", where)
        expect_shape(output, want.shape, f"the output of {self.what}{_call(init_args)}",
                     where)
        try:
            expect_close(output, want, f"the output of {self.what}{_call(init_args)} "
                         f"(same weights as the reference, eval mode)", where,
                         rtol=1e-6, atol=1e-8)
        except CheckFailure as exc:
            raise CheckFailure(f"{exc}. {self.hint}") from None


def _fixed_input(input_shape, seed):
    import torch

    g = torch.Generator().manual_seed(10_000 + seed)
    return torch.randn((2, *input_shape), generator=g, dtype=torch.float64)


def _randomise(model, seed):
    """Random weights (and batch-norm statistics) from ``seed``: a float64 model in eval
    mode in which every parameter changes the output."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)

    def randn(t, scale, shift=0.0):
        t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype) * scale + shift)

    model = model.double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                randn(m.weight, 1.0 / np.sqrt(m.weight[0].numel()))
                if m.bias is not None:
                    randn(m.bias, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                randn(m.weight, 0.2, 1.0)
                randn(m.bias, 0.2)
                randn(m.running_mean, 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g,
                                               dtype=torch.float64) + 0.5)
    return model.eval()


def _state_shapes(model):
    """[(name, shape)] of the parameters and float buffers, in registration order (the
    integer ``num_batches_tracked`` counters do not matter to the output)."""
    out = []
    for name, t in model.state_dict().items():
        if t.is_floating_point():
            out.append((name, tuple(int(d) for d in t.shape)))
    return out


def _pairs(shapes):
    return [(n, tuple(s)) for n, s in shapes]


def _copy_state(reference, model):
    """Copy the reference's float tensors into ``model``: by name when the names agree,
    otherwise by order when the shapes agree in order. False when neither works."""
    import torch

    ref = {k: v for k, v in reference.state_dict().items() if v.is_floating_point()}
    mine = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    if set(ref) == set(mine) and all(ref[k].shape == mine[k].shape for k in ref):
        pairs = [(mine[k], ref[k]) for k in ref]
    elif [v.shape for v in ref.values()] == [v.shape for v in mine.values()]:
        pairs = list(zip(mine.values(), ref.values()))
    else:
        return False
    with torch.no_grad():
        for dst, src in pairs:
            dst.copy_(src)
    return True


def _call(init_args):
    return "(" + ", ".join(repr(a) for a in init_args) + ")"


# LeNet-5 ------------------------------------------------------------------------------

def _lenet_reference(init_args, seed):
    from helpers.models import lenet5

    num_classes, in_channels = init_args
    return _randomise(lenet5(num_classes, in_channels=in_channels), seed)


def _lenet_cases(configs=((10, 1),), seeds=(0,)):
    cases = []
    for num_classes, in_channels in configs:
        for seed in seeds:
            cases.append(Case(((num_classes, in_channels), (in_channels, 32, 32), seed),
                              f"LeNet5({num_classes}, {in_channels}) on 32x32 inputs "
                              f"(seed {seed})"))
    return cases


check_lenet5 = ModuleCheck(
    "models.lenet5", "LeNet5", _lenet_cases, _lenet_reference,
    hint="Expected: conv 5x5 (6 maps), tanh, 2x2 average pool, conv 5x5 (16), tanh, "
         "average pool, conv 5x5 (120), tanh, flatten, linear 120->84, tanh, "
         "linear 84->num_classes, with layers created in that order.")


# Residual blocks ---------------------------------------------------------------------

def _basic_reference(init_args, seed):
    from helpers.models import BasicBlock

    in_channels, out_channels, stride = init_args
    return _randomise(BasicBlock(in_channels, out_channels, stride, shortcut="B"), seed)


def _basic_cases(configs=((8, 8, 1), (8, 16, 2)), seeds=(0,), size=8):
    cases = []
    for in_c, out_c, stride in configs:
        for seed in seeds:
            cases.append(Case(((in_c, out_c, stride), (in_c, size, size), seed),
                              f"ResidualBlock({in_c}, {out_c}, stride={stride}) on "
                              f"{size}x{size} inputs (seed {seed})"))
    return cases


check_residual_block = ModuleCheck(
    "models.residual_block", "ResidualBlock", _basic_cases, _basic_reference,
    hint="Expected: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), conv1 3x3 "
         "with the stride and pad 1, conv2 3x3 pad 1, both bias=False; shortcut = identity "
         "when the shape is unchanged, else a 1x1 conv with the stride (bias=False) and a "
         "batch norm. Name them conv1, bn1, conv2, bn2, shortcut.")


def _bottleneck_reference(init_args, seed):
    from helpers.models import Bottleneck

    in_channels, mid_channels, out_channels, stride = init_args
    return _randomise(Bottleneck(in_channels, mid_channels, out_channels, stride,
                                 shortcut="B", stride_on="1x1"), seed)


def _bottleneck_cases(configs=((16, 4, 16, 1), (16, 8, 32, 2)), seeds=(0,), size=8):
    cases = []
    for in_c, mid_c, out_c, stride in configs:
        for seed in seeds:
            cases.append(Case(((in_c, mid_c, out_c, stride), (in_c, size, size), seed),
                              f"BottleneckBlock({in_c}, {mid_c}, {out_c}, stride={stride}) "
                              f"on {size}x{size} inputs (seed {seed})"))
    return cases


check_bottleneck = ModuleCheck(
    "models.bottleneck", "BottleneckBlock", _bottleneck_cases, _bottleneck_reference,
    hint="Expected: 1x1 conv to mid_channels WITH THE STRIDE (the paper's design), bn, "
         "relu; 3x3 conv pad 1, bn, relu; 1x1 conv to out_channels, bn; add the shortcut "
         "(identity, or 1x1 conv with the stride + bn when the shape changes); relu. "
         "Convs have bias=False. Name them conv1, bn1, conv2, bn2, conv3, bn3, shortcut.")


# --------------------------------------------------------------------------- fit, predict

def fit_model(seed):
    """The model the fit check trains: LeNet-5 with ReLU and max pooling for the 8x8
    digits, its initial weights drawn from ``seed`` (the caller's random state is kept)."""
    import torch

    from helpers.models import lenet5

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return lenet5(10, input_size=8, activation="relu", pool="max")


def _digits():
    from helpers.data import load_digits_images

    return load_digits_images(seed=0)


def _fit_cases(seeds=(0,), epochs=5):
    d = _digits()
    return [Case((seed, epochs, d.X_train, d.y_train),
                 f"LeNet-5 (ReLU, max pool) on the digits, {epochs} epochs, seed {seed}",
                 X_test=d.X_test, y_test=d.y_test) for seed in seeds]


class FitCheck(Check):
    """``check(fit, **params)``: the student's ``fit`` trains a fresh :func:`fit_model`
    (lr=2e-3, batch_size=64, the case's epochs and seed); recorded: the losses it returns
    and the class :func:`helpers.train.predict` gives each test image afterwards."""

    def __init__(self):
        super().__init__("models.fit", "fit", _fit_cases, _fit_judge)

    def __call__(self, fit, **params):
        if not callable(fit):
            raise CheckFailure(f"fit should be a function, got {type(fit).__name__}")
        X_test = _digits().X_test

        def probe(seed, epochs, X_train, y_train):
            from helpers.train import predict

            model = fit_model(seed)
            losses = fit(model, X_train, y_train, epochs=epochs, lr=2e-3, batch_size=64,
                         seed=seed)
            if losses is None:
                raise TypeError("fit should return the list of mean losses, one per epoch "
                                "(it returned None)")
            return (np.asarray(losses, dtype=np.float64).ravel(),
                    predict(model, X_test, device="cpu"))

        super().__call__(probe, **params)


def _fit_judge(case, got):
    seed, epochs = case.args[:2]
    y_test = case.extra["y_test"]
    where = case.description
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailure(f"expected the recorded (losses, predictions) on {where}")
    losses = as_array(got[0], "the losses fit returned", where)
    expect_shape(losses, (epochs,), "the losses fit returned (one mean loss per epoch)",
                 where, names="(epochs,)")
    if not np.all(np.isfinite(losses)):
        raise CheckFailure(f"the losses contain NaN or inf on {where}: {losses}; is the "
                           "learning rate too large?")
    if not losses[-1] < losses[0]:
        raise CheckFailure(f"the loss did not go down on {where}: {np.round(losses, 4)}; "
                           "does each step call optimizer.zero_grad(), loss.backward() and "
                           "optimizer.step()?")
    predictions = as_array(got[1], "the predicted classes", where)
    expect_shape(predictions, y_test.shape, "the predicted classes", where, names="(N,)")
    accuracy = float(np.mean(predictions == y_test))
    if accuracy < FIT_MIN_ACCURACY:
        raise CheckFailure(
            f"after your fit, the model gets {100 * accuracy:.1f}% of the test digits right "
            f"on {where}; an honest loop reaches 92-95% (at least "
            f"{100 * FIT_MIN_ACCURACY:.0f}% needed). Check that fit shuffles with the seed, "
            "uses mini-batches of batch_size, the cross-entropy of the model's scores, and "
            "Adam with the given lr")


check_fit = FitCheck()


def _predict_cases(seeds=(0,), n=50):
    import torch
    from torch import nn

    d = _digits()
    cases = []
    for seed in seeds:
        # dropout after the scores: in training mode the answers would be random
        model = _randomise(nn.Sequential(fit_model(seed), nn.Dropout(0.5)), seed).float()
        X = d.X_test[seed % 7: seed % 7 + n]
        with torch.no_grad():
            want = model.eval()(torch.as_tensor(X)).argmax(dim=1).numpy()
        model.train()  # as a model is after training: predict_classes must switch to eval
        cases.append(Case((model, X), f"{n} test digits, a LeNet-5 with random weights "
                          f"(seed {seed}) left in training mode", want=want))
    return cases


def _predict_judge(case, got):
    want = case.extra["want"]
    where = case.description
    got = as_array(got, "predict_classes(model, X)", where)
    if got.shape == (len(want), 10):
        raise CheckFailure(f"predict_classes should return one class index per image, shape "
                           f"(N,) = ({len(want)},), not the (N, 10) scores: take the argmax "
                           f"over the classes (dim=1) on {where}")
    expect_shape(got, want.shape, "predict_classes(model, X)", where, names="(N,)")
    wrong = np.flatnonzero(got != want)
    if wrong.size:
        raise CheckFailure(
            f"{wrong.size} of {len(want)} predicted classes differ on {where} (first at "
            f"image {wrong[0]}: got {got[wrong[0]]}, expected {want[wrong[0]]}); call "
            "model.eval() before predicting (dropout is on in training mode) and take the "
            "argmax of the scores")


check_predict_classes = Check("models.predict_classes", "predict_classes", _predict_cases,
                              _predict_judge)


# --------------------------------------------------------------------------- internals

def _as_rows(got, n, width, what, where, spelled):
    if isinstance(got, np.ndarray):
        got = got.tolist()
    if not isinstance(got, tuple | list):
        raise CheckFailure(f"{what} should return a list ({spelled}), got "
                           f"{type(got).__name__} on {where}")
    if len(got) != n:
        raise CheckFailure(f"{what} should return {n} entries ({spelled}), got {len(got)} "
                           f"on {where}")
    rows = []
    for i, row in enumerate(got):
        if width is None:
            value = as_array(row, f"entry {i}", where)
            if value.shape != () or value != np.round(value):
                raise CheckFailure(f"entry {i} should be a whole number, got {row!r} on "
                                   f"{where}")
            rows.append(int(value))
            continue
        arr = as_array(row, f"entry {i}", where)
        if arr.shape != (width,):
            raise CheckFailure(f"entry {i} should be a triple (H, W, C), got {row!r} on "
                               f"{where} (an fc layer gives (1, 1, units))")
        if not np.all(arr == np.round(arr)):
            raise CheckFailure(f"entry {i} should hold whole numbers, got {row!r} on {where}")
        rows.append(tuple(int(v) for v in arr))
    return rows


def _fmt_volume(shape):
    return "x".join(str(d) for d in shape)

