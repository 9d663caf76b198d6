"""helpers.models against outside truth: torchvision's documented parameter counts and
GFLOPS, the ResNet/GoogLeNet/AlexNet/LeNet papers and the slides, torch's own FLOP counter
(torch.utils.flop_counter) and torch.nn.functional.

Large models are built on the meta device (no memory, no arithmetic); summary() traces
shapes there, so ResNet-152 costs milliseconds.
"""

import dataclasses
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from helpers.models import (
    GOOGLENET_TABLE,
    RESNET_PAPER_FLOPS,
    BasicBlock,
    Bottleneck,
    ZeroPadShortcut,
    alexnet,
    cifar_resnet,
    googlenet,
    lenet5,
    resnet,
    summary,
)

DEPTHS = (18, 34, 50, 101, 152)

# torchvision.models docs, "Table of all available classification weights":
# ResNet*_Weights.IMAGENET1K_V1, columns "Params" and "GFLOPS" (torchvision's ResNets put
# the bottleneck stride on the 3x3 conv, "v1.5").
TORCHVISION_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160,
                      152: 60_192_808}
TORCHVISION_GFLOPS = {18: 1.81, 34: 3.66, 50: 4.09, 101: 7.80, 152: 11.51}

# He et al. 2015, Table 1, "FLOPs" (multiply-adds) row.
PAPER_FLOPS = {18: 1.8e9, 34: 3.6e9, 50: 3.8e9, 101: 7.6e9, 152: 11.3e9}

# He et al. 2015, Table 6 (CIFAR-10), "# params" column, option A shortcuts.
PAPER_CIFAR_PARAMS = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6}


def meta(build, *args, **kwargs):
    with torch.device("meta"):
        return build(*args, **kwargs)


@functools.cache
def resnet_summary(depth, **kwargs):
    # summaries are frozen, so several tests can share one (each build takes ~0.2 s)
    return summary(meta(resnet, depth, **kwargs), (3, 224, 224))


def conv_params(f, c_in, c_out, bias=True):
    return f * f * c_in * c_out + (c_out if bias else 0)


# ---------------------------------------------------------------------------- ResNet


@pytest.mark.parametrize("depth", DEPTHS)
def test_resnet_params_equal_torchvision(depth):
    assert resnet_summary(depth).params == TORCHVISION_PARAMS[depth]


@pytest.mark.parametrize("depth", DEPTHS)
def test_resnet_macs_match_paper_flops_row(depth):
    macs = resnet_summary(depth).macs
    # The paper prints one decimal and sometimes truncates (3.66 -> 3.6), sometimes
    # rounds (7.57 -> 7.6): it agrees with the count to within its last digit.
    assert abs(macs - PAPER_FLOPS[depth]) < 0.1e9, (depth, macs)
    assert RESNET_PAPER_FLOPS[depth] == PAPER_FLOPS[depth]


@pytest.mark.parametrize("depth", DEPTHS)
def test_resnet_v1_5_macs_equal_torchvision_gflops(depth):
    macs = resnet_summary(depth, stride_on="3x3").macs
    assert abs(macs / 1e9 - TORCHVISION_GFLOPS[depth]) < 0.006, (depth, macs)


@pytest.mark.parametrize("depth", (50, 101, 152))
def test_stride_on_the_3x3_does_not_give_the_papers_flops(depth):
    # what makes the paper-row test above able to fail: v1.5 is > 0.2e9 off
    v15 = resnet_summary(depth, stride_on="3x3")
    v1 = resnet_summary(depth)
    assert v15.params == v1.params
    assert v15.macs - PAPER_FLOPS[depth] > 0.2e9


def test_resnet_stage_shapes_follow_table_1():
    s = resnet_summary(50)
    assert s["conv1"].output_shape == (64, 112, 112)
    assert s["maxpool"].output_shape == (64, 56, 56)
    assert s["conv2_x"].output_shape == (256, 56, 56)
    assert s["conv3_x"].output_shape == (512, 28, 28)
    assert s["conv4_x"].output_shape == (1024, 14, 14)
    assert s["conv5_x"].output_shape == (2048, 7, 7)
    assert s.output_shape == (1000,)
    s18 = summary(meta(resnet, 18, num_classes=10), (3, 224, 224))
    assert s18["conv5_x"].output_shape == (512, 7, 7) and s18.output_shape == (10,)


def _projection_params(depth):
    # 1x1 conv + batch norm (weight, bias) in the first block of each stage whose shape
    # changes: stages 3-5 for 18/34; all four for the bottleneck nets (64 -> 256 in conv2_x)
    if depth in (18, 34):
        pairs = [(64, 128), (128, 256), (256, 512)]
    else:
        pairs = [(64, 256), (256, 512), (512, 1024), (1024, 2048)]
    return sum(c_in * c_out + 2 * c_out for c_in, c_out in pairs)


@pytest.mark.parametrize("depth", DEPTHS)
def test_plain_and_option_a_nets_lack_exactly_the_projections(depth):
    plain = meta(resnet, depth, shortcut=None)
    expected = TORCHVISION_PARAMS[depth] - _projection_params(depth)
    assert summary(plain, (3, 224, 224)).params == expected
    assert resnet_summary(depth, shortcut="A").params == expected
    assert all(getattr(m, "shortcut", None) is None
               for m in plain.modules() if isinstance(m, BasicBlock | Bottleneck))


def test_option_c_projects_in_every_block():
    # ResNet-18, option C: every one of the 8 blocks gets a projection
    pairs = [(64, 64)] * 2 + [(64, 128), (128, 128), (128, 256), (256, 256), (256, 512),
                             (512, 512)]
    extra = sum(c_in * c_out + 2 * c_out for c_in, c_out in pairs) - _projection_params(18)
    assert resnet_summary(18, shortcut="C").params == \
        TORCHVISION_PARAMS[18] + extra


@pytest.mark.parametrize("depth", PAPER_CIFAR_PARAMS)
def test_cifar_resnets_match_paper_table_6(depth):
    s = summary(meta(cifar_resnet, depth), (3, 32, 32))
    digits = 1 if depth == 110 else 2  # the paper's precision: 0.27M ... 1.7M
    assert round(s.params / 1e6, digits) == PAPER_CIFAR_PARAMS[depth] / 1e6
    assert s["stage1"].output_shape == (16, 32, 32)
    assert s["stage2"].output_shape == (32, 16, 16)
    assert s["stage3"].output_shape == (64, 8, 8)
    # 6n + 2 weighted layers: conv1, 6n convs, fc
    n_weighted = sum(1 for r in s.rows if r.kind in ("Conv2d", "Linear"))
    assert n_weighted == depth
    # option A adds no parameters, so the plain net has the same count
    assert summary(meta(cifar_resnet, depth, shortcut=None), (3, 32, 32)).params == s.params


def test_cifar_resnet_trains_on_grey_8x8_inputs():
    model = cifar_resnet(8, num_classes=10, in_channels=1)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


# ---------------------------------------------------------------------------- blocks


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0,
                        bn.eps)


def _randomise(block, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return block.eval()


@pytest.mark.parametrize("in_c,out_c,stride,shortcut", [
    (8, 8, 1, "B"), (8, 16, 2, "B"), (8, 16, 2, "A"), (8, 8, 1, None), (8, 16, 2, "C")])
def test_basic_block_equals_functional_reference(in_c, out_c, stride, shortcut):
    block = _randomise(BasicBlock(in_c, out_c, stride, shortcut=shortcut).double(), seed=1)
    x = torch.randn(2, in_c, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    h = F.relu(_bn(F.conv2d(x, block.conv1.weight, stride=stride, padding=1), block.bn1))
    h = _bn(F.conv2d(h, block.conv2.weight, padding=1), block.bn2)
    if shortcut in ("B", "C") and (shortcut == "C" or stride != 1 or in_c != out_c):
        proj = block.shortcut
        h = h + _bn(F.conv2d(x, proj.conv.weight, stride=stride), proj.bn)
    elif shortcut == "A":
        sub = x[:, :, ::stride, ::stride]
        h = h + torch.cat([sub, torch.zeros(2, out_c - in_c, *sub.shape[2:],
                                            dtype=x.dtype)], dim=1)
    elif shortcut == "B":
        h = h + x
    expected = F.relu(h)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("stride_on", ["1x1", "3x3"])
def test_bottleneck_equals_functional_reference(stride_on):
    block = _randomise(Bottleneck(8, 4, 16, 2, stride_on=stride_on).double(), seed=3)
    x = torch.randn(2, 8, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    s1, s3 = (2, 1) if stride_on == "1x1" else (1, 2)
    h = F.relu(_bn(F.conv2d(x, block.conv1.weight, stride=s1), block.bn1))
    h = F.relu(_bn(F.conv2d(h, block.conv2.weight, stride=s3, padding=1), block.bn2))
    h = _bn(F.conv2d(h, block.conv3.weight), block.bn3)
    proj = block.shortcut
    expected = F.relu(h + _bn(F.conv2d(x, proj.conv.weight, stride=2), proj.bn))
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)


def test_paper_bottleneck_strides_on_its_first_1x1():
    model = meta(resnet, 50)
    first = model.conv3_x[0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
    assert meta(resnet, 50, stride_on="3x3").conv3_x[0].conv2.stride == (2, 2)


def test_residual_block_with_zero_weights_passes_its_input_through():
    # F(x) = 0: a residual block becomes relu(x) (identity for x >= 0); a plain one gives 0
    x = torch.rand(1, 4, 6, 6)
    for shortcut, expected in (("B", x), (None, torch.zeros_like(x))):
        block = BasicBlock(4, 4, shortcut=shortcut).eval()
        with torch.no_grad():
            for m in (block.conv1, block.conv2):
                m.weight.zero_()
            torch.testing.assert_close(block(x), expected)
    pad = ZeroPadShortcut(4, 6, stride=2)
    out = pad(x)
    assert out.shape == (1, 6, 3, 3)
    torch.testing.assert_close(out[:, :4], x[:, :, ::2, ::2])
    assert not out[:, 4:].any()


# ---------------------------------------------------------------------------- AlexNet

# The slides, written W x H x D; (C, H, W) here.
ALEXNET_SLIDES = [
    ("conv1", "55x55x96"), ("pool1", "27x27x96"), ("norm1", "27x27x96"),
    ("conv2", "27x27x256"), ("pool2", "13x13x256"), ("norm2", "13x13x256"),
    ("conv3", "13x13x384"), ("conv4", "13x13x384"), ("conv5", "13x13x256"),
    ("pool3", "6x6x256"), ("fc6", "4096"), ("fc7", "4096"), ("fc8", "1000"),
]


def _chw(text):
    dims = [int(d) for d in text.split("x")]
    return (dims[2], dims[1], dims[0]) if len(dims) == 3 else tuple(dims)


@pytest.mark.parametrize("two_tower", [False, True])
def test_alexnet_shapes_follow_the_slides(two_tower):
    s = summary(meta(alexnet, two_tower=two_tower), (3, 227, 227))
    for name, text in ALEXNET_SLIDES:
        assert s[name].output_shape == _chw(text), name
    weighted = [r.name for r in s.rows if r.params]
    assert weighted == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    norms = [r.name for r in s.rows if r.kind == "LocalResponseNorm"]
    assert norms == ["norm1", "norm2"]


def test_alexnet_conv1_has_35k_parameters_and_the_totals_add_up():
    s = summary(meta(alexnet), (3, 227, 227))
    assert s["conv1"].params == (11 * 11 * 3) * 96 + 96 == 34_944
    assert round(s["conv1"].params, -3) == 35_000  # the slides' "35K"
    assert s["pool1"].params == 0  # "Parameters: 0!"
    one_tower = (conv_params(11, 3, 96) + conv_params(5, 96, 256) + conv_params(3, 256, 384)
                 + conv_params(3, 384, 384) + conv_params(3, 384, 256)
                 + 9216 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000)
    assert s.params == one_tower
    # the paper's two-GPU net, "60 million parameters"
    two = summary(meta(alexnet, two_tower=True), (3, 227, 227)).params
    assert two == one_tower - 5 * 5 * 48 * 256 - 3 * 3 * 192 * 384 - 3 * 3 * 192 * 256
    assert round(two / 1e6) == 61 and abs(two - 60e6) / 60e6 < 0.02


def test_alexnet_runs_and_its_norm_uses_the_papers_constants():
    model = alexnet(num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 227, 227)).shape == (1, 7)
    # b = a / (k + alpha * sum of squares over 5 neighbouring maps) ** beta, alpha = 1e-4
    a = torch.rand(1, 9, 2, 2) * 40
    sq = F.pad(a.pow(2), (0, 0, 0, 0, 2, 2))
    window = sum(sq[:, i:i + 9] for i in range(5))
    expected = a / (2.0 + 1e-4 * window) ** 0.75
    torch.testing.assert_close(model.norm1(a), expected)


def test_alexnet_rejects_other_input_sizes_with_a_clear_error():
    with pytest.raises(ValueError, match="input_shape"):
        summary(meta(alexnet), (3, 224, 224))


# ---------------------------------------------------------------------------- GoogLeNet


def _inception_params(c_in, r):
    return (conv_params(1, c_in, r["n1x1"]) + conv_params(1, c_in, r["n3x3red"])
            + conv_params(3, r["n3x3red"], r["n3x3"]) + conv_params(1, c_in, r["n5x5red"])
            + conv_params(5, r["n5x5red"], r["n5x5"]) + conv_params(1, c_in, r["pool_proj"]))


INCEPTIONS = [name for name in GOOGLENET_TABLE if name.startswith("inception")]


def test_googlenet_blocks_match_table_1_channels_and_arithmetic():
    model = meta(googlenet)
    s = summary(model, (3, 224, 224))
    c_in = 192
    for name in INCEPTIONS:
        r = GOOGLENET_TABLE[name]
        assert r["out"][0] == r["n1x1"] + r["n3x3"] + r["n5x5"] + r["pool_proj"], name
        assert s[name].output_shape == r["out"], name
        assert s[name].params == _inception_params(c_in, r), name
        c_in = r["out"][0]
    assert s["conv1"].output_shape == (64, 112, 112)
    assert s["conv2"].output_shape == (192, 56, 56)
    assert s["pool2"].output_shape == (192, 28, 28)
    assert s["avgpool"].output_shape == (1024, 1, 1)
    assert s.output_shape == (1000,)
    assert s.params == (conv_params(7, 3, 64) + conv_params(1, 64, 64)
                        + conv_params(3, 64, 192) + 1024 * 1000 + 1000
                        + sum(s[name].params for name in INCEPTIONS))


def test_googlenet_table_1_params_and_ops_against_the_arithmetic():
    s = summary(meta(googlenet), (3, 224, 224))
    for name, r in GOOGLENET_TABLE.items():
        ours = s[name]
        if name == "conv1":
            # printed 2.7K / 34M; arithmetic 9,472 / 118M (documented disagreement)
            assert ours.macs == 112 * 112 * 64 * 7 * 7 * 3 == 118_013_952
            assert r["params"] / ours.params == pytest.approx(r["ops"] / ours.macs, abs=0.01)
            continue
        # printed params are within 10% of the arithmetic (most 2-5% below)
        assert abs(r["params"] - ours.params) / ours.params < 0.10, name
        if name == "inception5a":  # printed 54M, arithmetic 51.1M
            assert ours.macs == pytest.approx(51.08e6, rel=1e-3)
            continue
        assert abs(r["ops"] - ours.macs) < 1e6, name  # to the printed digit (1M)
    # the printed columns add up to what the paper's text says / the slides' 6.8M
    assert round(sum(r["ops"] for r in GOOGLENET_TABLE.values()) / 1e9, 1) == 1.5
    assert round(sum(r["params"] for r in GOOGLENET_TABLE.values()) / 1e6, 1) == 6.8
    # "2x more compute" than AlexNet (the paper's two-GPU one)
    alex = summary(meta(alexnet, two_tower=True), (3, 227, 227))
    assert round(s.macs / alex.macs) == 2


def test_googlenet_inception_module_runs_and_concatenates_four_branches():
    model = googlenet(num_classes=5).eval()
    x = torch.rand(1, 192, 28, 28)
    with torch.no_grad():
        out = model.inception3a(x)
        assert out.shape == (1, 256, 28, 28)
        torch.testing.assert_close(out[:, :64], model.inception3a.branch1(x))
        torch.testing.assert_close(out[:, -32:], model.inception3a.branch4(x))
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 5)  # small input: fast


# ---------------------------------------------------------------------------- LeNet-5


def test_lenet5_has_about_60k_parameters_and_the_papers_shapes():
    s = summary(lenet5(), (1, 32, 32))
    expected = (conv_params(5, 1, 6) + conv_params(5, 6, 16) + conv_params(5, 16, 120)
                + 120 * 84 + 84 + 84 * 10 + 10)
    assert s.params == expected == 61_706
    assert abs(s.params - 60_000) / 60_000 < 0.05  # LeCun et al. 1998: 60,000
    shapes = [(r.name, r.output_shape) for r in s.rows if r.name[0] in "cs"]
    assert shapes == [("c1", (6, 28, 28)), ("s2", (6, 14, 14)), ("c3", (16, 10, 10)),
                      ("s4", (16, 5, 5)), ("c5", (120, 1, 1))]
    kinds = [r.kind for r in s.rows if r.kind in ("Conv2d", "AvgPool2d", "Linear")]
    assert kinds == ["Conv2d", "AvgPool2d", "Conv2d", "AvgPool2d", "Conv2d", "Linear",
                     "Linear"]


def test_lenet5_on_8x8_digits_and_colour_images():
    model = lenet5(input_size=8, activation="relu", pool="max")
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    assert summary(model, (1, 8, 8)).params == 61_706
    colour = lenet5(num_classes=10, in_channels=3)
    assert summary(colour, (3, 32, 32)).params == 61_706 + 2 * 5 * 5 * 6
    assert "resize" not in dict(colour.named_children())


# ---------------------------------------------------------------------------- summary


def test_summary_counts_a_hand_made_model():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),              # 32*32*8*3*9   = 221,184
        nn.Conv2d(8, 8, 3, stride=2, groups=8),     # 15*15*8*1*9   =  16,200
        nn.BatchNorm2d(8),
        nn.Flatten(),
        nn.Linear(8 * 15 * 15, 5),                  # 1800*5        =   9,000
    )
    s = summary(model, (3, 32, 32))
    assert [r.macs for r in s.rows] == [221_184, 16_200, 0, 0, 9_000]
    assert [r.params for r in s.rows] == [224, 80, 16, 0, 9_005]
    assert [r.output_shape for r in s.rows] == [(8, 32, 32), (8, 15, 15), (8, 15, 15),
                                                (1800,), (5,)]
    assert s.params == 224 + 80 + 16 + 9_005 and s.macs == 246_384
    conv1d = summary(nn.Conv1d(2, 4, 5), (2, 20))
    assert conv1d.macs == 16 * 4 * 2 * 5 and conv1d.rows[0].name == "Conv1d"


@pytest.mark.parametrize("build,shape", [
    (lenet5, (1, 32, 32)), (alexnet, (3, 227, 227)), (googlenet, (3, 224, 224)),
    (lambda: resnet(34), (3, 224, 224)), (lambda: resnet(50), (3, 224, 224)),
    (lambda: cifar_resnet(20), (3, 32, 32)),
])
def test_summary_macs_equal_torch_flop_counter(build, shape):
    model = meta(build).eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, *shape, device="meta"))
    assert 2 * summary(model, shape).macs == counter.get_total_flops()


def test_summary_leaves_the_model_alone_and_counts_shared_layers_once():
    shared = nn.Linear(4, 4)  # tied weights: torch.func.functional_call would corrupt them
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Dropout(0.5)).train()
    model[1].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = summary(model, (4,))
    assert [r.name for r in s.rows] == ["0", "1", "0", "3"]
    assert [r.params for r in s.rows] == [20, 0, 0, 0]
    assert s.params == 20 and s.macs == 32
    assert model.training and not model[1].training and model[3].training
    for k, v in model.state_dict().items():
        assert v.device.type == "cpu" and torch.equal(v, before[k])
    assert model[0].weight is model[2].weight


def test_summary_falls_back_to_a_real_pass_when_meta_cannot_run():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x[:, : int(x.shape[1] + x.sum().item() * 0)]  # .item() fails on meta

    model = nn.Sequential(nn.Linear(6, 3), DataDependent()).train()
    s = summary(model, (6,))
    assert [r.output_shape for r in s.rows] == [(3,), (3,)] and s.macs == 18
    assert model.training and model[0].weight.device.type == "cpu"


def test_summary_renders_text_html_and_rows():
    s = summary(lenet5(), (1, 32, 32))
    text = str(s)
    assert "61,706" in text and "c1" in text and "(6, 28, 28)" in text
    html = s._repr_html_()
    assert html.count("<tr>") == len(s.rows) + 2 and "61,706" in html
    rows = s.to_rows()
    assert rows[0] == dict(name="c1", kind="Conv2d", output_shape=(6, 28, 28), params=156,
                           macs=28 * 28 * 6 * 25)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.params = 0
    with pytest.raises(KeyError, match="c1"):
        s["no_such_layer"]


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="depth"):
        resnet(20)
    with pytest.raises(ValueError, match="depth"):
        cifar_resnet(21)
    with pytest.raises(ValueError, match="shortcut"):
        resnet(18, shortcut="D")
    with pytest.raises(ValueError, match="shortcut"):
        BasicBlock(4, 4, shortcut=False)
    with pytest.raises(ValueError, match="out_channels"):
        BasicBlock(8, 4, shortcut="A")
    with pytest.raises(ValueError, match="stride_on"):
        Bottleneck(8, 4, 16, stride_on="2x2")
    with pytest.raises(ValueError, match="num_classes"):
        googlenet(num_classes=0)
    with pytest.raises(ValueError, match="activation"):
        lenet5(activation="sigmoid")
    with pytest.raises(ValueError, match="pool"):
        lenet5(pool="min")
    with pytest.raises(TypeError, match="two_tower"):
        alexnet(two_tower=2)
    with pytest.raises(TypeError, match="model"):
        summary("resnet", (3, 32, 32))
    with pytest.raises(ValueError, match="input_shape"):
        summary(lenet5(), ())
    with pytest.raises(ValueError, match="input_shape"):
        summary(lenet5(), (1, 0, 32))
    with pytest.raises(ValueError, match="input_shape"):
        summary(lenet5(), (3, 32, 32))  # 3 channels into a 1-channel net



def test_split_modules_are_re_exported_by_models():
    import helpers.layer_tables
    import helpers.models
    import helpers.summary

    for module in (helpers.layer_tables, helpers.summary):
        for name in module.__all__:
            assert getattr(helpers.models, name) is getattr(module, name), name
            assert name in helpers.models.__all__, name


def test_layer_tables_agree_with_summary_in_their_own_orders():
    """layer_shapes speaks the slides' (H, W, C), summary torch's (C, H, W): same volumes."""
    from helpers.models import ALEXNET_LAYERS, LENET5_LAYERS, layer_shapes

    for layers, model, shape in ((ALEXNET_LAYERS, alexnet(), (3, 227, 227)),
                                 (LENET5_LAYERS, lenet5(), (1, 32, 32))):
        s = summary(model, shape)
        C, H, W = shape
        for layer, (h, w, c) in zip(layers, layer_shapes(layers, (H, W, C)), strict=True):
            if layer["kind"] == "fc":
                assert s[layer["name"]].output_shape == (c,), layer["name"]
            else:
                assert s[layer["name"]].output_shape == (c, h, w), layer["name"]


def test_layer_tables_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, helpers.layer_tables as t; "
            "t.layer_params(t.ALEXNET_LAYERS, (227, 227, 3)); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
