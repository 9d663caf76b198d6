"""The case-study CNNs of the slides, built from their papers.

Models (all ``torch.nn.Module``; every one can be built on the ``meta`` device, which
allocates nothing, and still be summarised)::

    lenet5()                 LeCun et al. 1998, [CONV-POOL-CONV-POOL-CONV-FC], ~60K params
    alexnet()                Krizhevsky et al. 2012, the slides' one-tower 227x227 version
    googlenet()              Szegedy et al. 2014, Table 1, modules inception3a ... inception5b
    resnet(depth)            He et al. 2015, Table 1, depth 18 to 152; shortcut=None: plain
    cifar_resnet(depth)      He et al. 2015, Section 4.2, the 6n+2 nets the notebook trains
    BasicBlock, Bottleneck   the two residual blocks (Figure 5 of the ResNet paper)

Re-exported here, so that every name the notebooks use is importable from
``helpers.models``:

- :mod:`helpers.summary`: ``summary(model, input_shape)`` lists every leaf layer with its
  output shape, parameters and multiply-adds, as the slides' tables do. Shapes are
  torch's ``(C, H, W)``; the slides write ``W x H x D``: ``[55x55x96]`` is
  ``(96, 55, 55)`` there.
- :mod:`helpers.layer_tables` (no torch): the slides' tables as data (``ALEXNET_LAYERS``,
  ``LENET5_LAYERS``) and ``layer_shapes`` / ``layer_params``, their arithmetic by hand,
  in the slides' ``(H, W, C)`` order (the order unit 06's exercise asks for).

This module imports torch; ``import helpers`` does not import it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from helpers._validation import check_int
from helpers.layer_tables import (
    ALEXNET_LAYERS,
    LAYER_KINDS,
    LENET5_LAYERS,
    describe_layer,
    layer_params,
    layer_shapes,
)
from helpers.summary import LayerRow, Summary, summary

__all__ = [
    "ALEXNET_LAYERS",
    "GOOGLENET_TABLE",
    "LAYER_KINDS",
    "LENET5_LAYERS",
    "RESNET_PAPER_FLOPS",
    "BasicBlock",
    "Bottleneck",
    "Inception",
    "LayerRow",
    "Summary",
    "ZeroPadShortcut",
    "alexnet",
    "cifar_resnet",
    "describe_layer",
    "googlenet",
    "layer_params",
    "layer_shapes",
    "lenet5",
    "resnet",
    "summary",
]

SHORTCUTS = ("A", "B", "C", None)

# He et al. 2015, Table 1, last row ("FLOPs", which are multiply-adds), per 224x224 image.
RESNET_PAPER_FLOPS = {18: 1.8e9, 34: 3.6e9, 50: 3.8e9, 101: 7.6e9, 152: 11.3e9}

_RESNET_STAGES = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


# --------------------------------------------------------------------------------------
# LeNet-5
# --------------------------------------------------------------------------------------


def lenet5(
    num_classes: int = 10,
    *,
    in_channels: int = 1,
    input_size: int = 32,
    activation: str = "tanh",
    pool: str = "avg",
) -> nn.Sequential:
    """LeNet-5 (LeCun et al. 1998): [CONV-POOL-CONV-POOL-CONV-FC] on 32x32 images.

    ============  ======================================  ===========  ========
    layer         what                                    output       params
    ============  ======================================  ===========  ========
    ``c1``        6 filters 5x5, stride 1                 (6, 28, 28)     156
    ``s2``        2x2 pooling, stride 2                   (6, 14, 14)       0
    ``c3``        16 filters 5x5, stride 1                (16, 10, 10)   2,416
    ``s4``        2x2 pooling, stride 2                   (16, 5, 5)        0
    ``c5``        120 filters 5x5 (a conv that covers     (120, 1, 1)   48,120
                  the whole 5x5 map, so it acts as FC)
    ``f6``        fully connected, 84 units               (84,)         10,164
    ``output``    fully connected, ``num_classes`` units  (10,)            850
    ============  ======================================  ===========  ========

    With one input channel and 10 classes that is 61,706 parameters. The paper counts
    60,000 trainable ones; the difference is three modernisations this version makes, as
    most courses do: C3 connects every S2 map to every C3 map (the paper's sparse table
    gives 1,516 parameters instead of 2,416), S2/S4 are plain pooling (the paper's
    subsampling layers had a trainable coefficient and bias per map: 12 + 32 parameters),
    and the output layer is a linear layer rather than the paper's fixed RBF units.

    Parameters
    ----------
    num_classes : int
        Size of the output layer.
    in_channels : int
        1 for grey digits, 3 for colour images such as CIFAR-10.
    input_size : int
        Height = width of the images the model is given. The architecture is defined for
        32x32 (the paper pads 28x28 MNIST to 32x32); for any other size a first layer
        ``resize`` (bilinear ``nn.Upsample`` to 32x32, no parameters) is added, so the 8x8
        scikit-learn digits go in as they are: ``lenet5(input_size=8)``.
    activation : {"tanh", "relu"}
        The paper used a (scaled) tanh; ReLU trains faster.
    pool : {"avg", "max"}
        The paper's subsampling is an average; max pooling is the modern choice.

    Returns
    -------
    torch.nn.Sequential with the named layers above (plus ``act1`` ... ``act4`` and
    ``flatten``).

    Shape
    -----
    Input ``(N, in_channels, input_size, input_size)``, output ``(N, num_classes)``.

    Examples
    --------
    >>> s = summary(lenet5(), (1, 32, 32))
    >>> s.params, s["c1"].output_shape, s["c5"].output_shape
    (61706, (6, 28, 28), (120, 1, 1))
    >>> summary(lenet5(input_size=8), (1, 8, 8)).rows[0].output_shape
    (1, 32, 32)
    """
    num_classes = check_int(num_classes, "num_classes", min_value=1)
    in_channels = check_int(in_channels, "in_channels", min_value=1)
    input_size = check_int(input_size, "input_size", min_value=1)
    act = _choose(activation, "activation", {"tanh": nn.Tanh, "relu": nn.ReLU})
    pooling = _choose(pool, "pool", {"avg": nn.AvgPool2d, "max": nn.MaxPool2d})

    layers = OrderedDict()
    if input_size != 32:
        layers["resize"] = nn.Upsample(size=(32, 32), mode="bilinear", align_corners=False)
    layers["c1"] = nn.Conv2d(in_channels, 6, kernel_size=5)
    layers["act1"] = act()
    layers["s2"] = pooling(kernel_size=2, stride=2)
    layers["c3"] = nn.Conv2d(6, 16, kernel_size=5)
    layers["act2"] = act()
    layers["s4"] = pooling(kernel_size=2, stride=2)
    layers["c5"] = nn.Conv2d(16, 120, kernel_size=5)
    layers["act3"] = act()
    layers["flatten"] = nn.Flatten()
    layers["f6"] = nn.Linear(120, 84)
    layers["act4"] = act()
    layers["output"] = nn.Linear(84, num_classes)
    return nn.Sequential(layers)


# --------------------------------------------------------------------------------------
# AlexNet
# --------------------------------------------------------------------------------------


def alexnet(num_classes: int = 1000, *, two_tower: bool = False) -> nn.Sequential:
    """AlexNet (Krizhevsky et al. 2012) as on the slides: one tower, 227x227x3 input.

    ==========  ==========================================  ================
    layer       slides                                      output (C, H, W)
    ==========  ==========================================  ================
    ``conv1``   96 11x11 filters at stride 4, pad 0         (96, 55, 55)
    ``pool1``   max pool 3x3 at stride 2                    (96, 27, 27)
    ``norm1``   local response normalisation                (96, 27, 27)
    ``conv2``   256 5x5 filters at stride 1, pad 2          (256, 27, 27)
    ``pool2``   max pool 3x3 at stride 2                    (256, 13, 13)
    ``norm2``   local response normalisation                (256, 13, 13)
    ``conv3``   384 3x3 filters at stride 1, pad 1          (384, 13, 13)
    ``conv4``   384 3x3 filters at stride 1, pad 1          (384, 13, 13)
    ``conv5``   256 3x3 filters at stride 1, pad 1          (256, 13, 13)
    ``pool3``   max pool 3x3 at stride 2                    (256, 6, 6)
    ``fc6``     4096 neurons                                (4096,)
    ``fc7``     4096 neurons                                (4096,)
    ``fc8``     ``num_classes`` neurons (class scores)      (1000,)
    ==========  ==========================================  ================

    Every conv and fc6/fc7 is followed by a ReLU (``relu1`` ... ``relu7``, "first use of
    ReLU"), fc6 and fc7 by dropout 0.5 (``drop6``, ``drop7``). conv1 has
    (11*11*3)*96 = 34,848 weights + 96 biases, the slides' "35K". The whole one-tower net
    has 62,378,344 parameters and 1.14e9 multiply-adds per image.

    The normalisation layers use the paper's constants (n=5, k=2, alpha=1e-4,
    beta=0.75). The paper writes alpha times the *sum* of squares; torch's
    ``LocalResponseNorm`` uses alpha times their *mean*, so it gets alpha = 5 * 1e-4.
    Pooling then normalisation is the slides' order (the paper normalises first; the
    shapes are the same).

    Parameters
    ----------
    num_classes : int
        Size of fc8.
    two_tower : bool
        ``True`` gives the paper's two-GPU connectivity: conv2, conv4 and conv5 only see
        the half of the previous maps that sits on their own GPU (``groups=2``). Same
        shapes, 60,965,224 parameters (the paper's "60 million") and 0.72e9
        multiply-adds, the number behind GoogLeNet's "2x more compute".

    Shape
    -----
    Input ``(N, 3, 227, 227)``, output ``(N, num_classes)``. Other sizes fail at ``fc6``,
    which expects 256*6*6 = 9216 inputs.

    Examples
    --------
    >>> s = summary(alexnet(), (3, 227, 227))
    >>> s["conv1"].output_shape, s["conv1"].params, s["pool3"].output_shape
    ((96, 55, 55), 34944, (256, 6, 6))
    """
    num_classes = check_int(num_classes, "num_classes", min_value=1)
    if not isinstance(two_tower, bool):
        raise TypeError(f"two_tower must be True or False, got {two_tower!r}")
    g = 2 if two_tower else 1

    def norm():
        return nn.LocalResponseNorm(size=5, alpha=5 * 1e-4, beta=0.75, k=2.0)

    layers = OrderedDict()
    layers["conv1"] = nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=0)
    layers["relu1"] = nn.ReLU()
    layers["pool1"] = nn.MaxPool2d(kernel_size=3, stride=2)
    layers["norm1"] = norm()
    layers["conv2"] = nn.Conv2d(96, 256, kernel_size=5, stride=1, padding=2, groups=g)
    layers["relu2"] = nn.ReLU()
    layers["pool2"] = nn.MaxPool2d(kernel_size=3, stride=2)
    layers["norm2"] = norm()
    layers["conv3"] = nn.Conv2d(256, 384, kernel_size=3, stride=1, padding=1)
    layers["relu3"] = nn.ReLU()
    layers["conv4"] = nn.Conv2d(384, 384, kernel_size=3, stride=1, padding=1, groups=g)
    layers["relu4"] = nn.ReLU()
    layers["conv5"] = nn.Conv2d(384, 256, kernel_size=3, stride=1, padding=1, groups=g)
    layers["relu5"] = nn.ReLU()
    layers["pool3"] = nn.MaxPool2d(kernel_size=3, stride=2)
    layers["flatten"] = nn.Flatten()
    layers["fc6"] = nn.Linear(256 * 6 * 6, 4096)
    layers["relu6"] = nn.ReLU()
    layers["drop6"] = nn.Dropout(0.5)
    layers["fc7"] = nn.Linear(4096, 4096)
    layers["relu7"] = nn.ReLU()
    layers["drop7"] = nn.Dropout(0.5)
    layers["fc8"] = nn.Linear(4096, num_classes)
    return nn.Sequential(layers)


# --------------------------------------------------------------------------------------
# GoogLeNet
# --------------------------------------------------------------------------------------

# Szegedy et al. 2014, "Going deeper with convolutions", Table 1, as printed (the slides
# copy it). Keys are the names of the matching modules of ``googlenet()``; "out" is the
# output shape (C, H, W), "params" and "ops" (multiply-adds) the paper's rounded values.
GOOGLENET_TABLE = {
    "conv1": dict(out=(64, 112, 112), depth=1, params=2_700, ops=34_000_000),
    "conv2": dict(out=(192, 56, 56), depth=2, reduce=64, n3x3=192,
                  params=112_000, ops=360_000_000),
    "inception3a": dict(out=(256, 28, 28), depth=2, n1x1=64, n3x3red=96, n3x3=128,
                        n5x5red=16, n5x5=32, pool_proj=32, params=159_000, ops=128_000_000),
    "inception3b": dict(out=(480, 28, 28), depth=2, n1x1=128, n3x3red=128, n3x3=192,
                        n5x5red=32, n5x5=96, pool_proj=64, params=380_000, ops=304_000_000),
    "inception4a": dict(out=(512, 14, 14), depth=2, n1x1=192, n3x3red=96, n3x3=208,
                        n5x5red=16, n5x5=48, pool_proj=64, params=364_000, ops=73_000_000),
    "inception4b": dict(out=(512, 14, 14), depth=2, n1x1=160, n3x3red=112, n3x3=224,
                        n5x5red=24, n5x5=64, pool_proj=64, params=437_000, ops=88_000_000),
    "inception4c": dict(out=(512, 14, 14), depth=2, n1x1=128, n3x3red=128, n3x3=256,
                        n5x5red=24, n5x5=64, pool_proj=64, params=463_000, ops=100_000_000),
    "inception4d": dict(out=(528, 14, 14), depth=2, n1x1=112, n3x3red=144, n3x3=288,
                        n5x5red=32, n5x5=64, pool_proj=64, params=580_000, ops=119_000_000),
    "inception4e": dict(out=(832, 14, 14), depth=2, n1x1=256, n3x3red=160, n3x3=320,
                        n5x5red=32, n5x5=128, pool_proj=128, params=840_000, ops=170_000_000),
    "inception5a": dict(out=(832, 7, 7), depth=2, n1x1=256, n3x3red=160, n3x3=320,
                        n5x5red=32, n5x5=128, pool_proj=128, params=1_072_000, ops=54_000_000),
    "inception5b": dict(out=(1024, 7, 7), depth=2, n1x1=384, n3x3red=192, n3x3=384,
                        n5x5red=48, n5x5=128, pool_proj=128, params=1_388_000, ops=71_000_000),
    "fc": dict(out=(1000,), depth=1, params=1_000_000, ops=1_000_000),
}
"""Szegedy et al. 2014, Table 1: channel counts and the printed params / ops columns.

Where the printed columns and the arithmetic disagree (the notebook shows both):

* **ops** agree with the arithmetic to the table's last digit (within 1M) in every row
  but two: ``conv1`` (printed 34M; a 7x7 conv from 3 to 64 maps on 112x112 is
  7*7*3*64*112*112 = 118M) and ``inception5a`` (printed 54M; 51.1M). The printed
  column sums to 1.50e9, the paper's "1.5 billion multiply-adds"; the arithmetic gives
  1.58e9, the difference being conv1.
* **params** are printed 2-5% below the arithmetic (weights + biases) in most rows, 9%
  below in ``inception4c``, 3% above in ``inception5a``, and conv1's 2.7K is 29% of
  7*7*3*64 + 64 = 9,472, the same ratio as its ops (the row is consistent with itself,
  not with a 7x7x3 filter). No single rule (with or without biases, 3x3 for 5x5, ...)
  reproduces the column, so we keep both; the model follows the arithmetic.
* **total**: the printed column sums to 6.8M, the arithmetic to 6,998,552 (7.0M).
  Neither is the slide's "only 5 million": that is the paper's "12x fewer parameters
  than AlexNet" read backwards (60M / 12 = 5M). By the arithmetic, the two-tower AlexNet
  (60,965,224) has 8.7x GoogLeNet's parameters, and GoogLeNet does 2.2x its
  multiply-adds (1.58e9 vs 0.72e9), the slide's "2x more compute".
"""


class Inception(nn.Module):
    """The inception module (Szegedy et al. 2014, Figure 2b): four branches, concatenated.

    ========================  ===============================================
    ``branch1``               1x1 conv, ``n1x1`` maps
    ``branch2``               1x1 conv to ``n3x3red`` maps, then 3x3 conv, pad 1
    ``branch3``               1x1 conv to ``n5x5red`` maps, then 5x5 conv, pad 2
    ``branch4``               3x3 max pool (stride 1, pad 1), then 1x1 conv
                              to ``pool_proj`` maps
    ========================  ===============================================

    Every conv is followed by a ReLU. The 1x1 "reduce" convs are the bottleneck trick the
    ResNet slides point back to.

    Shape
    -----
    ``(N, in_channels, H, W) -> (N, n1x1 + n3x3 + n5x5 + pool_proj, H, W)``
    """

    def __init__(self, in_channels, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", min_value=1)
        n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj = (
            check_int(v, name, min_value=1) for v, name in zip(
                (n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj),
                ("n1x1", "n3x3red", "n3x3", "n5x5red", "n5x5", "pool_proj"), strict=True))
        self.branch1 = _conv_relu(in_channels, n1x1, 1)
        self.branch2 = nn.Sequential(OrderedDict(
            reduce=nn.Conv2d(in_channels, n3x3red, kernel_size=1),
            relu_reduce=nn.ReLU(),
            conv=nn.Conv2d(n3x3red, n3x3, kernel_size=3, padding=1),
            relu=nn.ReLU(),
        ))
        self.branch3 = nn.Sequential(OrderedDict(
            reduce=nn.Conv2d(in_channels, n5x5red, kernel_size=1),
            relu_reduce=nn.ReLU(),
            conv=nn.Conv2d(n5x5red, n5x5, kernel_size=5, padding=2),
            relu=nn.ReLU(),
        ))
        self.branch4 = nn.Sequential(OrderedDict(
            pool=nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            proj=nn.Conv2d(in_channels, pool_proj, kernel_size=1),
            relu=nn.ReLU(),
        ))
        self.out_channels = n1x1 + n3x3 + n5x5 + pool_proj

    def forward(self, x):
        branches = (self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))
        return torch.cat(branches, dim=1)


def googlenet(num_classes: int = 1000) -> nn.Sequential:
    """GoogLeNet (Szegedy et al. 2014, Table 1 and Figure 3), for 224x224x3 images.

    Top-level modules, named after the table's rows (``GOOGLENET_TABLE`` holds the
    table's numbers under the same names)::

        conv1        7x7/2 conv, 64 maps            (64, 112, 112)
        pool1, norm1 3x3/2 max pool, LRN            (64, 56, 56)
        conv2        1x1 conv 64, then 3x3 conv 192 (192, 56, 56)
        norm2, pool2 LRN, 3x3/2 max pool            (192, 28, 28)
        inception3a, inception3b                    (256, 28, 28), (480, 28, 28)
        pool3        3x3/2 max pool                 (480, 14, 14)
        inception4a ... inception4e                 (512, ...), ..., (832, 14, 14)
        pool4        3x3/2 max pool                 (832, 7, 7)
        inception5a, inception5b                    (832, 7, 7), (1024, 7, 7)
        avgpool      7x7 average (global)           (1024, 1, 1)
        flatten, dropout (40%), fc                  (num_classes,)

    Each inception block's channel counts are the table's (see :class:`Inception`).
    Max pools use ``ceil_mode=True`` as the paper's Caffe model does (112 -> 56 -> 28 ->
    14 -> 7). The LRN layers of Figure 3 use Caffe's constants (size 5, alpha 1e-4,
    beta 0.75, k=1; Caffe, like torch, divides alpha by the size). Convs have biases and
    ReLUs and no batch norm (it was invented a year later). 6,998,552 parameters and
    1.58e9 multiply-adds per image; the paper prints 6.8M and "1.5 billion" (see the
    notes on ``GOOGLENET_TABLE`` for where its table and the arithmetic part).

    Not built: the two auxiliary classifiers, used only during training and discarded at
    inference (the table does not list them either). ``torchvision.models.googlenet``
    differs in three ways: batch norm, no LRN, and a 3x3 conv where the paper has 5x5.

    Parameters
    ----------
    num_classes : int
        Size of the final linear layer.

    Shape
    -----
    Input ``(N, 3, H, W)``, designed for H = W = 224; output ``(N, num_classes)``.

    Examples
    --------
    >>> s = summary(googlenet(), (3, 224, 224))
    >>> s["inception3a"].output_shape, s["inception5b"].output_shape
    ((256, 28, 28), (1024, 7, 7))
    """
    num_classes = check_int(num_classes, "num_classes", min_value=1)
    t = GOOGLENET_TABLE

    def inception(name, in_channels):
        r = t[name]
        return Inception(in_channels, r["n1x1"], r["n3x3red"], r["n3x3"], r["n5x5red"],
                         r["n5x5"], r["pool_proj"])

    def norm():
        return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)

    def pool():
        return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)

    layers = OrderedDict()
    layers["conv1"] = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3), relu=nn.ReLU()))
    layers["pool1"] = pool()
    layers["norm1"] = norm()
    layers["conv2"] = nn.Sequential(OrderedDict(
        reduce=nn.Conv2d(64, 64, kernel_size=1), relu_reduce=nn.ReLU(),
        conv=nn.Conv2d(64, 192, kernel_size=3, padding=1), relu=nn.ReLU()))
    layers["norm2"] = norm()
    layers["pool2"] = pool()
    channels = 192
    for name in ("inception3a", "inception3b", "pool3",
                 "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
                 "pool4", "inception5a", "inception5b"):
        if name.startswith("pool"):
            layers[name] = pool()
        else:
            layers[name] = inception(name, channels)
            channels = layers[name].out_channels
    layers["avgpool"] = nn.AdaptiveAvgPool2d((1, 1))
    layers["flatten"] = nn.Flatten()
    layers["dropout"] = nn.Dropout(0.4)
    layers["fc"] = nn.Linear(channels, num_classes)
    return nn.Sequential(layers)


# --------------------------------------------------------------------------------------
# ResNet
# --------------------------------------------------------------------------------------


class ZeroPadShortcut(nn.Module):
    """Option A shortcut (He et al. 2015): identity, subsampled, with zero channels added.

    When a residual block halves the map and widens it, the identity cannot be added as it
    is. Option A keeps it parameter-free: take every ``stride``-th pixel (the positions a
    1x1 conv at that stride would see) and append ``out_channels - in_channels`` maps of
    zeros.

    Shape
    -----
    ``(N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """The residual block of ResNet-18/34 (He et al. 2015, Figure 5 left): two 3x3 convs.

    ``out = relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``

    ``conv1`` is 3x3 with ``stride`` and pad 1, ``conv2`` 3x3 with stride 1 and pad 1,
    both without bias (the batch norm after each has one). ``shortcut`` depends on the
    option (Section 3.3 of the paper):

    * ``"A"``: the identity when the shape is unchanged, otherwise a
      :class:`ZeroPadShortcut` (no parameters);
    * ``"B"``: the identity when the shape is unchanged, otherwise a 1x1 conv with
      ``stride`` followed by batch norm (the "projection"; what ImageNet ResNets use);
    * ``"C"``: the projection in every block;
    * ``None``: no shortcut, ``self.shortcut is None``: the block of a *plain* net.

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int
        1, or 2 in the first block of a stage that halves the map.
    shortcut : {"A", "B", "C", None}

    Shape
    -----
    ``(N, in_channels, H, W) -> (N, out_channels, H', W')`` with
    ``H' = floor((H - 1) / stride) + 1``.

    Examples
    --------
    >>> block = BasicBlock(64, 128, stride=2)
    >>> block(torch.zeros(1, 64, 56, 56)).shape
    torch.Size([1, 128, 28, 28])
    >>> sum(p.numel() for p in block.shortcut.parameters())  # 1x1 conv + batch norm
    8448
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *,
                 shortcut: str | None = "B"):
        super().__init__()
        in_channels, out_channels, stride = _check_block(
            in_channels, out_channels, stride, shortcut)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = _make_shortcut(in_channels, out_channels, stride, shortcut)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu2(out)


class Bottleneck(nn.Module):
    """The bottleneck block of ResNet-50/101/152 (He et al. 2015, Figure 5 right).

    ``1x1 conv to mid_channels -> 3x3 conv -> 1x1 conv to out_channels``, each followed by
    batch norm, ReLUs in between, the shortcut added before the last ReLU:

    ``out = relu3(bn3(conv3(relu2(bn2(conv2(relu1(bn1(conv1(x)))))))) + shortcut(x))``

    The paper's table writes a block as [1x1, 64; 3x3, 64; 1x1, 256], i.e.
    ``Bottleneck(in_channels, 64, 256)``. As in the paper (and its Caffe models), the
    ``stride`` sits on the **first** 1x1 conv: the block subsamples before the 3x3.
    torchvision puts it on the 3x3 instead ("ResNet v1.5", ``stride_on="3x3"`` here):
    the same parameters, slightly more multiply-adds (the 3x3 then runs on the large map:
    4.09e9 instead of 3.86e9 for ResNet-50), and a little more accurate.

    Parameters
    ----------
    in_channels, mid_channels, out_channels : int
    stride : int
        1, or 2 in the first block of a stage that halves the map.
    shortcut : {"A", "B", "C", None}
        As for :class:`BasicBlock`.
    stride_on : {"1x1", "3x3"}
        Which conv carries the stride: the paper's "1x1" or torchvision's "3x3".

    Shape
    -----
    ``(N, in_channels, H, W) -> (N, out_channels, H', W')`` with
    ``H' = floor((H - 1) / stride) + 1``.

    Examples
    --------
    >>> block = Bottleneck(256, 128, 512, stride=2)
    >>> block(torch.zeros(1, 256, 56, 56)).shape
    torch.Size([1, 512, 28, 28])
    >>> block.conv1.stride, block.conv2.stride
    ((2, 2), (1, 1))
    """

    expansion = 4

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 stride: int = 1, *, shortcut: str | None = "B", stride_on: str = "1x1"):
        super().__init__()
        in_channels, out_channels, stride = _check_block(
            in_channels, out_channels, stride, shortcut)
        mid_channels = check_int(mid_channels, "mid_channels", min_value=1)
        s1, s3 = _choose(stride_on, "stride_on", {"1x1": (stride, 1), "3x3": (1, stride)})
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, stride=s3, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = _make_shortcut(in_channels, out_channels, stride, shortcut)
        self.relu3 = nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu3(out)


def resnet(depth: int, num_classes: int = 1000, *, shortcut: str | None = "B",
           stride_on: str = "1x1") -> nn.Sequential:
    """ResNet-18/34/50/101/152 for 224x224 images (He et al. 2015, Table 1).

    Modules named after the table's rows::

        conv1    7x7 conv, 64, stride 2 (+ batch norm, ReLU)   (64, 112, 112)
        maxpool  3x3 max pool, stride 2                         (64, 56, 56)
        conv2_x  blocks of 64 maps (bottleneck: 64 -> 256)      (64 or 256, 56, 56)
        conv3_x  blocks of 128 (-> 512), first one stride 2     (.., 28, 28)
        conv4_x  blocks of 256 (-> 1024), first one stride 2    (.., 14, 14)
        conv5_x  blocks of 512 (-> 2048), first one stride 2    (512 or 2048, 7, 7)
        avgpool, flatten, fc                                    (num_classes,)

    Blocks per stage: 18: 2,2,2,2; 34: 3,4,6,3 (:class:`BasicBlock`); 50: 3,4,6,3;
    101: 3,4,23,3; 152: 3,8,36,3 (:class:`Bottleneck`). Convs are initialised as in
    He et al. (normal, std sqrt(2 / fan_out)), batch norms to the identity.

    With the default ``shortcut="B"`` the parameter counts equal torchvision's
    (11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 / 60,192,808) and the
    multiply-adds per 224x224 image are the table's "FLOPs" row (1.8, 3.6, 3.8, 7.6,
    11.3 x 10^9; ``RESNET_PAPER_FLOPS``) to its last digit: we count 1.81, 3.66, 3.86,
    7.57 and 11.28 x 10^9; the paper truncates some (3.66 -> 3.6) and rounds others
    (7.57 -> 7.6). With ``stride_on="3x3"`` the counts are torchvision's documented
    GFLOPS (1.81, 3.66, 4.09, 7.80, 11.51). ``shortcut=None`` gives the paper's *plain* counterpart
    (same layers, no shortcuts) for the degradation experiment.

    Parameters
    ----------
    depth : {18, 34, 50, 101, 152}
    num_classes : int
    shortcut : {"A", "B", "C", None}
        Shortcut option, see :class:`BasicBlock`; ``None`` for the plain net.
    stride_on : {"1x1", "3x3"}
        Where bottleneck blocks put their stride: the paper's "1x1", or "3x3" for
        torchvision's "v1.5" (same parameters, more multiply-adds). Ignored for 18/34.

    Shape
    -----
    Input ``(N, 3, H, W)``, designed for 224x224 (any size from 32 up works thanks to the
    global average pool); output ``(N, num_classes)``.

    Examples
    --------
    >>> with torch.device("meta"):  # builds without allocating 60M weights
    ...     model = resnet(152)
    >>> s = summary(model, (3, 224, 224))
    >>> s.params, round(s.macs / 1e9, 1)
    (60192808, 11.3)
    """
    depth = check_int(depth, "depth")
    if depth not in _RESNET_STAGES:
        raise ValueError(f"depth must be one of 18, 34, 50, 101, 152; got {depth} "
                         "(for the CIFAR-10 nets of depth 6n+2 use cifar_resnet)")
    num_classes = check_int(num_classes, "num_classes", min_value=1)
    _check_shortcut(shortcut)
    _choose(stride_on, "stride_on", {"1x1": None, "3x3": None})
    kind, counts = _RESNET_STAGES[depth]

    layers = OrderedDict()
    layers["conv1"] = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False),
        bn=nn.BatchNorm2d(64), relu=nn.ReLU()))
    layers["maxpool"] = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    channels = 64
    for i, (width, n_blocks) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
        blocks = []
        for j in range(n_blocks):
            stride = 2 if (i > 0 and j == 0) else 1
            if kind == "basic":
                block = BasicBlock(channels, width, stride, shortcut=shortcut)
                channels = width
            else:
                block = Bottleneck(channels, width, 4 * width, stride, shortcut=shortcut,
                                   stride_on=stride_on)
                channels = 4 * width
            blocks.append(block)
        layers[f"conv{i + 2}_x"] = nn.Sequential(*blocks)
    layers["avgpool"] = nn.AdaptiveAvgPool2d((1, 1))
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(channels, num_classes)
    model = nn.Sequential(layers)
    _init_resnet(model)
    return model


def cifar_resnet(depth: int = 20, num_classes: int = 10, *, shortcut: str | None = "A",
                 in_channels: int = 3) -> nn.Sequential:
    """The CIFAR-10 ResNets of He et al. 2015, Section 4.2: depth 6n+2, for 32x32 images.

    ``conv1`` (3x3 conv, 16 maps, batch norm, ReLU), then three stages of n
    :class:`BasicBlock`\\ s with 16, 32 and 64 maps on 32x32, 16x16 and 8x8 (the first
    block of stages 2 and 3 has stride 2), then global average pool and ``fc``:
    6n + 2 weighted layers. ResNet-20/32/44/56/110 are n = 3/5/7/9/18.

    The default shortcut is the paper's choice for these nets, option A (identity, zero
    padding when widening; no extra parameters), which gives the paper's Table 6 counts
    0.27M / 0.46M / 0.66M / 0.85M / 1.7M. ``shortcut=None`` gives the plain nets of the
    degradation experiment (Figure 6 left), "B" adds the 1x1 projections.

    Parameters
    ----------
    depth : int
        6n + 2 with n >= 1: 8, 14, 20, 26, 32, 44, 56, 110, ...
    num_classes : int
    shortcut : {"A", "B", "C", None}
    in_channels : int
        3 for CIFAR-10; 1 for grey images such as the digits.

    Shape
    -----
    Input ``(N, in_channels, H, W)``, designed for 32x32 (works for any H, W >= 4 thanks
    to the global average pool, e.g. the 8x8 digits); output ``(N, num_classes)``.

    Examples
    --------
    >>> s = summary(cifar_resnet(20), (3, 32, 32))
    >>> s.params, s["stage3"].output_shape
    (269722, (64, 8, 8))
    """
    depth = check_int(depth, "depth", min_value=8)
    if (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 (8, 14, 20, 32, 44, 56, 110, ...); got {depth}")
    num_classes = check_int(num_classes, "num_classes", min_value=1)
    in_channels = check_int(in_channels, "in_channels", min_value=1)
    _check_shortcut(shortcut)
    n = (depth - 2) // 6

    layers = OrderedDict()
    layers["conv1"] = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, 16, kernel_size=3, padding=1, bias=False),
        bn=nn.BatchNorm2d(16), relu=nn.ReLU()))
    channels = 16
    for i, width in enumerate((16, 32, 64)):
        blocks = []
        for j in range(n):
            stride = 2 if (i > 0 and j == 0) else 1
            blocks.append(BasicBlock(channels, width, stride, shortcut=shortcut))
            channels = width
        layers[f"stage{i + 1}"] = nn.Sequential(*blocks)
    layers["avgpool"] = nn.AdaptiveAvgPool2d((1, 1))
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(channels, num_classes)
    model = nn.Sequential(layers)
    _init_resnet(model)
    return model


# --------------------------------------------------------------------------------------
# private helpers
# --------------------------------------------------------------------------------------


def _choose(value, name, options: dict):
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(k) for k in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return options[value]


def _check_shortcut(shortcut):
    if shortcut not in SHORTCUTS or isinstance(shortcut, bool):
        raise ValueError(f"shortcut must be 'A' (zero padding), 'B' (projection when the "
                         f"shape changes), 'C' (projection everywhere) or None (plain net); "
                         f"got {shortcut!r}")


def _check_block(in_channels, out_channels, stride, shortcut):
    in_channels = check_int(in_channels, "in_channels", min_value=1)
    out_channels = check_int(out_channels, "out_channels", min_value=1)
    stride = check_int(stride, "stride", min_value=1)
    _check_shortcut(shortcut)
    if shortcut == "A" and out_channels < in_channels:
        raise ValueError(f"shortcut='A' pads channels with zeros, so out_channels must be >= "
                         f"in_channels; got in_channels={in_channels}, "
                         f"out_channels={out_channels} (use shortcut='B')")
    return in_channels, out_channels, stride


def _make_shortcut(in_channels, out_channels, stride, shortcut):
    if shortcut is None:
        return None
    same = in_channels == out_channels and stride == 1
    if shortcut == "C" or (shortcut == "B" and not same):
        return nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
            bn=nn.BatchNorm2d(out_channels)))
    if same:
        return nn.Identity()
    return ZeroPadShortcut(in_channels, out_channels, stride)


def _conv_relu(in_channels, out_channels, kernel_size):
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, kernel_size), relu=nn.ReLU()))


def _init_resnet(model):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
