"""The slides' layer tables as data, and their arithmetic by hand (no torch).

``LENET5_LAYERS`` and ``ALEXNET_LAYERS`` hold one dict per layer; :func:`layer_shapes`
applies the slides' output-size formula (:func:`helpers.conv.output_size`) and
:func:`layer_params` their parameter count to them. Shapes here are in the slides' order,
``(H, W, C)`` (``[55x55x96]`` is ``(55, 55, 96)``), the order the unit 06 exercise asks
for; :func:`helpers.summary.summary` reports torch's ``(C, H, W)``.

This module does not import torch. :mod:`helpers.models` re-exports every name.
"""

from __future__ import annotations

from helpers._validation import check_int

__all__ = [
    "ALEXNET_LAYERS",
    "LAYER_KINDS",
    "LENET5_LAYERS",
    "describe_layer",
    "layer_params",
    "layer_shapes",
]


LAYER_KINDS = ("conv", "pool", "norm", "fc")

# The slides' tables as data: one dict per layer. "conv": ``filters`` of ``size`` x ``size``
# at ``stride`` with ``pad``; "pool": a ``size`` x ``size`` window at ``stride`` (no
# parameters); "norm": a normalisation layer (same shape, no parameters); "fc": a fully
# connected layer of ``units`` neurons.
LENET5_LAYERS = (
    dict(name="c1", kind="conv", filters=6, size=5, stride=1, pad=0),
    dict(name="s2", kind="pool", size=2, stride=2),
    dict(name="c3", kind="conv", filters=16, size=5, stride=1, pad=0),
    dict(name="s4", kind="pool", size=2, stride=2),
    dict(name="c5", kind="conv", filters=120, size=5, stride=1, pad=0),
    dict(name="f6", kind="fc", units=84),
    dict(name="output", kind="fc", units=10),
)
"""LeNet-5 as :func:`lenet5` builds it, for a (32, 32, 1) input."""

ALEXNET_LAYERS = (
    dict(name="conv1", kind="conv", filters=96, size=11, stride=4, pad=0),
    dict(name="pool1", kind="pool", size=3, stride=2),
    dict(name="norm1", kind="norm"),
    dict(name="conv2", kind="conv", filters=256, size=5, stride=1, pad=2),
    dict(name="pool2", kind="pool", size=3, stride=2),
    dict(name="norm2", kind="norm"),
    dict(name="conv3", kind="conv", filters=384, size=3, stride=1, pad=1),
    dict(name="conv4", kind="conv", filters=384, size=3, stride=1, pad=1),
    dict(name="conv5", kind="conv", filters=256, size=3, stride=1, pad=1),
    dict(name="pool3", kind="pool", size=3, stride=2),
    dict(name="fc6", kind="fc", units=4096),
    dict(name="fc7", kind="fc", units=4096),
    dict(name="fc8", kind="fc", units=1000),
)
"""The slides' "Full (simplified) AlexNet architecture", for a (227, 227, 3) input."""


def layer_shapes(layers, input_shape) -> list:
    """Output shape ``(H, W, C)`` of every layer of a stack, by the slides' formula.

    A conv layer gives ``(output_size(H, size, stride, pad), ..., filters)``, a pool layer
    ``(output_size(H, size, stride), ..., C)``, a norm layer the same shape, and an fc
    layer ``(1, 1, units)`` (the slides write ``[4096]``; as a shape it is a 1x1 map of
    4096 channels, which is what a conv covering the whole input would give).

    Parameters
    ----------
    layers : sequence of dict
        As :data:`ALEXNET_LAYERS`: each has a ``kind`` ("conv", "pool", "norm", "fc") and
        the numbers that kind needs.
    input_shape : (H, W, C)
        The input volume, in the slides' order (height, width, depth).

    Returns
    -------
    list of (int, int, int), one per layer

    Raises
    ------
    ValueError
        When a filter or window does not fit (see :func:`helpers.conv.output_size`).

    Examples
    --------
    >>> layer_shapes(ALEXNET_LAYERS, (227, 227, 3))[:3]
    [(55, 55, 96), (27, 27, 96), (27, 27, 96)]
    >>> layer_shapes(LENET5_LAYERS, (32, 32, 1))[-3:]
    [(1, 1, 120), (1, 1, 84), (1, 1, 10)]
    """
    from helpers.conv import output_size

    shapes = []
    H, W, C = _check_volume(input_shape)
    for layer in _check_layers(layers):
        kind = layer["kind"]
        if kind == "conv":
            H = output_size(H, layer["size"], layer["stride"], layer["pad"])
            W = output_size(W, layer["size"], layer["stride"], layer["pad"])
            C = layer["filters"]
        elif kind == "pool":
            H = output_size(H, layer["size"], layer["stride"])
            W = output_size(W, layer["size"], layer["stride"])
        elif kind == "fc":
            H, W, C = 1, 1, layer["units"]
        shapes.append((H, W, C))
    return shapes


def layer_params(layers, input_shape) -> list:
    """Learnable parameters of every layer of a stack: weights plus one bias per filter/unit.

    conv: ``(size*size*C_in)*filters + filters`` (:func:`helpers.conv.conv_params`);
    pool and norm: 0; fc: ``(H*W*C_in)*units + units``, where ``(H, W, C_in)`` is the
    shape coming in.

    Parameters
    ----------
    layers, input_shape
        As for :func:`layer_shapes`.

    Returns
    -------
    list of int, one per layer

    Examples
    --------
    >>> layer_params(ALEXNET_LAYERS, (227, 227, 3))[:3]   # conv1: 35K; pool1: 0!
    [34944, 0, 0]
    >>> sum(layer_params(LENET5_LAYERS, (32, 32, 1)))
    61706
    """
    from helpers.conv import conv_params

    layers = _check_layers(layers)
    shapes = [_check_volume(input_shape), *layer_shapes(layers, input_shape)]
    counts = []
    for (H, W, C), layer in zip(shapes, layers):
        if layer["kind"] == "conv":
            counts.append(conv_params(layer["size"], C, layer["filters"]))
        elif layer["kind"] == "fc":
            counts.append(H * W * C * layer["units"] + layer["units"])
        else:
            counts.append(0)
    return counts


def describe_layer(layer) -> str:
    """The slides' wording of one layer dict: "CONV1: 96 11x11 filters at stride 4, pad 0"."""
    name = str(layer.get("name", layer["kind"])).upper()
    kind = layer["kind"]
    if kind == "conv":
        return (f"{name}: {layer['filters']} {layer['size']}x{layer['size']} filters at "
                f"stride {layer['stride']}, pad {layer['pad']}")
    if kind == "pool":
        return f"{name}: {layer['size']}x{layer['size']} pooling at stride {layer['stride']}"
    if kind == "fc":
        return f"{name}: {layer['units']} neurons"
    return f"{name}: normalization layer"


def _check_volume(input_shape):
    if not isinstance(input_shape, tuple | list) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C), e.g. (227, 227, 3); got "
                         f"{input_shape!r}")
    return tuple(check_int(d, "input_shape", min_value=1) for d in input_shape)


_LAYER_KEYS = {"conv": ("filters", "size", "stride", "pad"), "pool": ("size", "stride"),
               "norm": (), "fc": ("units",)}


def _check_layers(layers):
    if not isinstance(layers, tuple | list):
        raise TypeError(f"layers must be a list of dicts such as ALEXNET_LAYERS; got "
                        f"{type(layers).__name__}")
    for i, layer in enumerate(layers):
        kind = layer.get("kind") if isinstance(layer, dict) else None
        if kind not in _LAYER_KEYS:
            raise ValueError(f"layers[{i}] must be a dict whose kind is one of "
                             f"{', '.join(LAYER_KINDS)}; got {layer!r}")
        for key in _LAYER_KEYS[kind]:
            check_int(layer.get(key), f"layers[{i}][{key!r}]",
                      min_value=0 if key == "pad" else 1)
    return layers
