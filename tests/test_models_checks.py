"""The unit 06 checkers: every check passes the reference (and a student-style solution)
and rejects plausible mistakes with a message a student can act on. Answers survive the
record -> rejudge round trip the grading harness uses, as plain data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.checks import models as check
from helpers.checks._core import REGISTRY, CheckFailure, decode, encode
from helpers.conv import output_size
from helpers.models import (
    ALEXNET_LAYERS,
    BasicBlock,
    Bottleneck,
    alexnet,
    layer_params,
    layer_shapes,
    lenet5,
    summary,
)

# Tiny models: one torch thread (the shared fixture in conftest.py says why).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------- student-style solutions


def shape_table(layers, input_shape):
    H, W, C = input_shape
    out = []
    for layer in layers:
        if layer["kind"] == "conv":
            H = output_size(H, layer["size"], layer["stride"], layer["pad"])
            W = output_size(W, layer["size"], layer["stride"], layer["pad"])
            C = layer["filters"]
        elif layer["kind"] == "pool":
            H = output_size(H, layer["size"], layer["stride"])
            W = output_size(W, layer["size"], layer["stride"])
        elif layer["kind"] == "fc":
            H, W, C = 1, 1, layer["units"]
        out.append((H, W, C))
    return out


def count_params(layers, input_shape):
    shapes = [tuple(input_shape)] + shape_table(layers, input_shape)
    counts = []
    for (H, W, C), layer in zip(shapes, layers):
        if layer["kind"] == "conv":
            counts.append(layer["size"] ** 2 * C * layer["filters"] + layer["filters"])
        elif layer["kind"] == "fc":
            counts.append(H * W * C * layer["units"] + layer["units"])
        else:
            counts.append(0)
    return counts


class LeNet5(nn.Module):
    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, 6, 5)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.c1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.c3(x)), 2)
        x = torch.tanh(self.c5(x)).flatten(1)
        return self.output(torch.tanh(self.f6(x)))


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class BottleneckBlock(nn.Module):
    def __init__(self, in_channels, mid_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


def fit(model, X, y, *, epochs=5, lr=2e-3, batch_size=64, seed=0):
    X, y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(X), generator=g).split(batch_size):
            loss = F.cross_entropy(model(X[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(X))
    return losses


def predict_classes(model, X):
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32)).argmax(dim=1).numpy()


def fails(chk, fn, match, **params):
    with pytest.raises(CheckFailure, match=match):
        chk(fn, **params)


# ----------------------------------------------------------------- the layer arithmetic


def test_layer_arithmetic_equals_the_built_models_and_the_slides():
    s = summary(alexnet(), (3, 227, 227))
    shapes = layer_shapes(ALEXNET_LAYERS, (227, 227, 3))
    for layer, (H, W, C) in zip(ALEXNET_LAYERS, shapes):
        assert s[layer["name"]].output_shape in ((C, H, W), (C,)), layer["name"]
    assert shapes[0] == (55, 55, 96) and shapes[1] == (27, 27, 96)  # the slides' questions
    assert shapes[9] == (6, 6, 256)
    counts = layer_params(ALEXNET_LAYERS, (227, 227, 3))
    for layer, count in zip(ALEXNET_LAYERS, counts):
        assert s[layer["name"]].params == count, layer["name"]
    assert sum(counts) == s.params == 62_378_344
    assert counts[0] == (11 * 11 * 3) * 96 + 96 and counts[1] == 0


@pytest.mark.parametrize("seed", range(30))
def test_random_stacks_are_valid_and_match_torch(seed):
    layers, (H, W, C), _ = check.layer_problem(f"random{seed}")
    modules = []
    c_in = C
    for layer in layers:
        if layer["kind"] == "conv":
            modules.append(nn.Conv2d(c_in, layer["filters"], layer["size"], layer["stride"],
                                     layer["pad"]))
            c_in = layer["filters"]
        elif layer["kind"] == "pool":
            modules.append(nn.MaxPool2d(layer["size"], layer["stride"]))
        elif layer["kind"] == "norm":
            modules.append(nn.LocalResponseNorm(5))
        else:
            modules += [nn.Flatten(), nn.LazyLinear(layer["units"])]
            c_in = layer["units"]
    model = nn.Sequential(*modules)
    model(torch.zeros(1, C, H, W))  # materialise the lazy layers
    s = summary(model, (C, H, W))
    weighted = [r for r in s.rows if r.kind in ("Conv2d", "MaxPool2d", "LocalResponseNorm",
                                                "Linear")]
    assert [r.params for r in weighted] == layer_params(layers, (H, W, C))
    want = [(c, h, w) for h, w, c in layer_shapes(layers, (H, W, C))]
    got = [r.output_shape if len(r.output_shape) == 3 else (r.output_shape[0], 1, 1)
           for r in weighted]
    assert got == want


# ----------------------------------------------------------------- shapes and params


def test_shape_table_check():
    check.check_shape_table(layer_shapes)
    check.check_shape_table(shape_table, nets=("alexnet", "lenet5", "random1", "random7"))

    def no_pad(layers, input_shape):
        return shape_table([{**lay, "pad": 0} if lay["kind"] == "conv" else lay
                            for lay in layers], input_shape)

    fails(check.check_shape_table, no_pad, r"CONV2: 256 5x5 .* should give 27x27x256.*"
          r"\(N - F \+ 2P\)/S \+ 1")

    def flat_fc(layers, input_shape):
        rows = shape_table(layers, input_shape)
        return [r if lay["kind"] != "fc" else (r[2],) for r, lay in zip(rows, layers)]

    fails(check.check_shape_table, flat_fc, r"\(1, 1, units\)")

    def pool_depth(layers, input_shape):
        rows = shape_table(layers, input_shape)
        return [(h, w, 1) if lay["kind"] == "pool" else (h, w, c)
                for (h, w, c), lay in zip(rows, layers)]

    fails(check.check_shape_table, pool_depth, "keep the depth")
    fails(check.check_shape_table, lambda layers, s: shape_table(layers, s)[:-1],
          "13 entries")


def test_count_params_check():
    check.check_count_params(layer_params)
    check.check_count_params(count_params, nets=("alexnet", "lenet5", "random3", "random11"))

    def no_bias(layers, input_shape):
        return [c - lay.get("filters", lay.get("units", 0))
                for c, lay in zip(count_params(layers, input_shape), layers)]

    fails(check.check_count_params, no_bias, r"forget the 96 biases")

    def fc_channels_only(layers, input_shape):
        shapes = [tuple(input_shape)] + shape_table(layers, input_shape)
        counts = count_params(layers, input_shape)
        return [C * lay["units"] + lay["units"] if lay["kind"] == "fc" else n
                for n, (H, W, C), lay in zip(counts, shapes, layers)]

    fails(check.check_count_params, fc_channels_only, r"FC6.*37,752,832.*\(6\*6\*256\)")

    def pool_weights(layers, input_shape):
        return [lay["size"] ** 2 if lay["kind"] == "pool" else n
                for n, lay in zip(count_params(layers, input_shape), layers)]

    fails(check.check_count_params, pool_weights, "nothing to learn")


def test_layer_problem_rejects_unknown_nets():
    with pytest.raises(ValueError, match="net"):
        check.layer_problem("vgg16")


# ----------------------------------------------------------------- modules


def test_lenet5_check():
    check.check_lenet5(LeNet5, configs=((10, 1), (2, 3)), seeds=(0, 1))

    class Reference(nn.Module):  # the helpers model itself, wrapped in a class
        def __init__(self, num_classes=10, in_channels=1):
            super().__init__()
            self.net = lenet5(num_classes, in_channels=in_channels)

        def forward(self, x):
            return self.net(x)

    check.check_lenet5(Reference)

    class Modern(LeNet5):  # ReLU and max pooling: the same parameters, other outputs
        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c1(x)), 2)
            x = F.max_pool2d(F.relu(self.c3(x)), 2)
            x = F.relu(self.c5(x)).flatten(1)
            return self.output(F.relu(self.f6(x)))

    fails(check.check_lenet5, Modern, "wrong values in the output.*tanh")

    class NoC5(LeNet5):  # forgets C5: an fc straight from the 16x5x5 maps
        def __init__(self, num_classes=10, in_channels=1):
            super().__init__(num_classes, in_channels)
            self.c5 = nn.Conv2d(16, 84, 5)
            self.f6 = nn.Identity()

    fails(check.check_lenet5, NoC5, "parameters; it should have 61,706")

    class Flat(nn.Module):  # C5 as a Linear(400, 120): the same computation, other shapes
        def __init__(self, num_classes=10, in_channels=1):
            super().__init__()
            self.c1 = nn.Conv2d(in_channels, 6, 5)
            self.c3 = nn.Conv2d(6, 16, 5)
            self.c5 = nn.Linear(400, 120)
            self.f6 = nn.Linear(120, 84)
            self.output = nn.Linear(84, num_classes)

        def forward(self, x):
            x = F.avg_pool2d(torch.tanh(self.c1(x)), 2)
            x = F.avg_pool2d(torch.tanh(self.c3(x)), 2).flatten(1)
            return self.output(torch.tanh(self.f6(torch.tanh(self.c5(x)))))

    fails(check.check_lenet5, Flat, r"could not copy.*c5.weight \(120, 16, 5, 5\)")
    fails(check.check_lenet5, lenet5, "should be a class")


def test_residual_block_check():
    check.check_residual_block(ResidualBlock, configs=((8, 8, 1), (8, 16, 2), (4, 12, 2)),
                               seeds=(0, 3), size=9)
    check.check_residual_block(BasicBlock)  # the helpers block, shortcut "B" by default

    class ReluBeforeAdd(ResidualBlock):
        def forward(self, x):
            out = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
            return out + self.shortcut(x)

    fails(check.check_residual_block, ReluBeforeAdd, "wrong values")

    class Biased(ResidualBlock):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__(in_channels, out_channels, stride)
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1)

    fails(check.check_residual_block, Biased, "parameters; it should have")

    class Plain(ResidualBlock):
        def forward(self, x):
            return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))

    fails(check.check_residual_block, Plain, "wrong values")


def test_bottleneck_check():
    check.check_bottleneck(BottleneckBlock, configs=((16, 4, 16, 1), (16, 8, 32, 2),
                                                     (8, 4, 16, 2)), seeds=(0, 5), size=9)
    check.check_bottleneck(Bottleneck)

    class StrideOn3x3(BottleneckBlock):  # torchvision's "v1.5": not the paper's block
        def __init__(self, in_channels, mid_channels, out_channels, stride=1):
            super().__init__(in_channels, mid_channels, out_channels, stride)
            self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
            self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, stride, 1, bias=False)

    fails(check.check_bottleneck, StrideOn3x3, "WITH THE STRIDE",
          configs=((16, 8, 32, 2),))

    class MidOut(BottleneckBlock):  # the last 1x1 forgotten: out has mid channels
        def __init__(self, in_channels, mid_channels, out_channels, stride=1):
            super().__init__(in_channels, mid_channels, out_channels, stride)
            self.conv3 = nn.Identity()
            self.bn3 = nn.BatchNorm2d(mid_channels)

    fails(check.check_bottleneck, MidOut, "parameters; it should have")


def test_module_checks_report_unfinished_and_crashing_classes():
    class Todo(nn.Module):
        def __init__(self, *args):
            super().__init__()
            raise NotImplementedError()

    for chk in (check.check_lenet5, check.check_residual_block, check.check_bottleneck):
        fails(chk, Todo, "not implemented yet")

    class Crash(LeNet5):
        def forward(self, x):
            return self.c5(x)

    fails(check.check_lenet5, Crash, "LeNet5 raised RuntimeError")


# ----------------------------------------------------------------- fit and predict


def test_fit_and_predict_checks():
    check.check_fit(fit, seeds=(0,), epochs=5)
    check.check_predict_classes(predict_classes, seeds=(0, 1, 2))

    def no_step(model, X, y, *, epochs=5, lr=2e-3, batch_size=64, seed=0):
        losses = []
        for _ in range(epochs):
            with torch.no_grad():
                losses.append(F.cross_entropy(model(torch.as_tensor(X)), torch.as_tensor(y))
                              .item())
        return losses

    fails(check.check_fit, no_step, "did not go down")

    def one_batch(model, X, y, *, epochs=5, lr=2e-3, batch_size=64, seed=0):
        # trains on the first batch only, again and again: the loss falls, the digits are
        # not learnt
        return fit(model, X[:batch_size], y[:batch_size], epochs=epochs, lr=lr,
                   batch_size=batch_size, seed=seed)

    fails(check.check_fit, one_batch, r"test digits right.*at least 85% needed")
    fails(check.check_fit, lambda model, X, y, **kw: None, "returned None")

    def train_mode(model, X):
        with torch.no_grad():
            return model(torch.as_tensor(X)).argmax(dim=1).numpy()

    fails(check.check_predict_classes, train_mode, "model.eval()")

    def scores(model, X):
        model.eval()
        with torch.no_grad():
            return model(torch.as_tensor(X)).numpy()

    fails(check.check_predict_classes, scores, "argmax")


def test_the_fit_threshold_leaves_room_below_the_reference():
    """FIT_MIN_ACCURACY is a measurement's lower bound: the reference loop is well above."""
    from helpers.data import load_digits_images

    d = load_digits_images(seed=0)
    accuracies = []
    for seed in (2,):  # the lowest of seeds 0-9: 92.0% (the others 92.4-95.1%)
        model = check.fit_model(seed)
        fit(model, d.X_train, d.y_train, epochs=5, seed=seed)
        accuracies.append(float(np.mean(predict_classes(model, d.X_test) == d.y_test)))
    assert min(accuracies) > check.FIT_MIN_ACCURACY + 0.04, accuracies


def test_fit_model_keeps_the_callers_random_state():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a, b = check.fit_model(3), check.fit_model(3)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


# ----------------------------------------------------------------- grading round trip


def test_recorded_answers_are_plain_data_and_rejudge(monkeypatch):
    recorded = {}
    monkeypatch.setattr("helpers.checks._core._record",
                        lambda name, params, answers: recorded.update(
                            {name: (params, [encode(a) for a in answers])}))
    check.check_shape_table(shape_table, nets=("alexnet", "random2"))
    check.check_count_params(count_params)
    check.check_lenet5(LeNet5)
    check.check_residual_block(ResidualBlock)
    check.check_bottleneck(BottleneckBlock)
    check.check_predict_classes(predict_classes)
    for name, (params, answers) in recorded.items():
        text = repr(answers)
        assert "__repr__" not in text, f"{name} recorded something that is not plain data"
        REGISTRY[name].rejudge(params, answers)

    params, answers = recorded["models.lenet5"]
    n, shapes, out = decode(answers[0])
    assert n == 61_706 and out.shape == (2, 10)
    forged = encode((n, shapes, np.zeros_like(out)))
    with pytest.raises(CheckFailure, match="wrong values"):
        REGISTRY["models.lenet5"].rejudge(params, [forged])

    params, answers = recorded["models.count_params"]
    with pytest.raises(CheckFailure, match="35K|34,944"):
        REGISTRY["models.count_params"].rejudge(params, [encode([0] * 13)])
