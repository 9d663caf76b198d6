"""ArchitectureExplorer driven like a presenter: pick models, switch views, group and scale;
the bars must be the summaries' numbers, which tests/test_models.py ties to torchvision and
the papers. Ratios in the compare view are computed, and checked here by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from helpers.models import alexnet, googlenet, summary
from helpers.widgets import ArchitectureExplorer
from helpers.widgets.models import (
    MODELS,
    bars,
    canonical_name,
    googlenet_vs_alexnet,
    model_summary,
    model_table,
)


def widths(collection):
    """Bar lengths: the right edge of each bar's rectangle."""
    return np.array([path.vertices[:, 0].max() for path in collection.get_paths()])


def test_protocol_controls_fig_static():
    ex = ArchitectureExplorer()
    assert {"model", "view", "group", "scale"} <= set(ex.controls)
    assert set(ex.controls["model"].options) >= {
        "LeNet-5", "AlexNet", "GoogLeNet", "ResNet-18", "ResNet-34", "ResNet-50",
        "ResNet-101", "ResNet-152"}
    assert isinstance(ex.fig, Figure)
    for view in ("layers", "compare"):
        fig = ArchitectureExplorer.static(model="resnet50", view=view)
        assert isinstance(fig, Figure)
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel()
        assert fig.axes[0].get_ylabel()
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    assert "<table>" in ex.table.value and "conv1" in ex.table.value


def test_alexnet_bars_are_the_slides_layers():
    ex = ArchitectureExplorer(model="AlexNet")
    assert ex.names == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    # conv1: (11*11*3)*96 weights + 96 biases, the slides' "35K"; fc6: 6*6*256 -> 4096
    assert ex.param_bars[0] == 11 * 11 * 3 * 96 + 96
    assert ex.param_bars[5] == 6 * 6 * 256 * 4096 + 4096
    assert ex.mac_bars[0] == 55 * 55 * 96 * 11 * 11 * 3
    np.testing.assert_allclose(widths(ex.bar_collections["params"]) * 1e6, ex.param_bars)
    np.testing.assert_allclose(widths(ex.bar_collections["macs"]) * 1e6, ex.mac_bars)
    s = summary(alexnet(), (3, 227, 227))
    assert ex.param_bars.sum() == s.params and ex.mac_bars.sum() == s.macs
    assert "62,378,344" in ex.ax_params.get_title()


def test_switching_models_redraws_in_place_with_the_summaries_numbers():
    ex = ArchitectureExplorer(model="LeNet-5")
    fig, axes = ex.fig, list(ex.fig.axes)
    for name in ("GoogLeNet", "ResNet-152", "ResNet-18", "LeNet-5"):
        ex.controls["model"].value = name
        s = model_summary(name)
        assert ex.fig is fig and list(ex.fig.axes) == axes
        assert ex.param_bars.sum() + _bn_params(s) == s.params
        assert ex.mac_bars.sum() == s.macs
        assert len(ex.bar_collections["params"].get_paths()) == len(ex.names)
        assert len(ex.ax_params.collections) == len(ex.ax_macs.collections) == 1  # replaced
        assert name in ex.describe()


def test_switching_draws_what_a_new_explorer_draws():
    """The bars are kept and reset on a switch, and the multiply-adds chart follows the
    parameters chart's rows: the figure is the one a fresh explorer draws."""
    ex = ArchitectureExplorer(model="ResNet-152", group="block", scale="log")
    for name, group, scale in (("LeNet-5", "layer", "linear"), ("GoogLeNet", "block", "log"),
                               ("ResNet-152", "layer", "linear")):
        ex.controls["model"].value = name
        ex.controls["group"].value = group
        ex.controls["scale"].value = scale
        shown = np.asarray(ex.fig.canvas.buffer_rgba()).copy()
        fresh = ArchitectureExplorer(model=name, group=group, scale=scale)
        fresh.fig.canvas.draw()
        np.testing.assert_array_equal(shown, np.asarray(fresh.fig.canvas.buffer_rgba()))
        assert ex.ax_macs.get_ylim() == ex.ax_params.get_ylim() == (len(ex.names) - 0.5, -0.5)
        assert not ex.ax_macs.get_yticklabels() or not any(
            t.get_visible() and t.get_text() for t in ex.ax_macs.get_yticklabels())


def _bn_params(s):
    return sum(r.params for r in s.rows if r.kind not in ("Conv2d", "Linear"))


def test_block_view_adds_up_residual_blocks_and_inception_modules():
    ex = ArchitectureExplorer(model="ResNet-50", group="block")
    assert ex.names[:3] == ["conv1", "conv2_x.0", "conv2_x.1"] and ex.names[-1] == "fc"
    assert len(ex.names) == 1 + (3 + 4 + 6 + 3) + 1
    s = model_summary("ResNet-50")
    i = ex.names.index("conv3_x.0")
    assert ex.param_bars[i] == s["conv3_x.0"].params
    assert ex.mac_bars[i] == s["conv3_x.0"].macs
    assert ex.param_bars.sum() == s.params and ex.mac_bars.sum() == s.macs
    ex.controls["model"].value = "GoogLeNet"
    assert [n for n in ex.names if n.startswith("inception")] == [
        "inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
        "inception4d", "inception4e", "inception5a", "inception5b"]
    with torch.device("meta"):
        g = summary(googlenet(), (3, 224, 224))
    assert ex.param_bars[ex.names.index("inception4e")] == g["inception4e"].params


def test_compare_view_computes_the_slides_ratios():
    ex = ArchitectureExplorer(view="compare")
    assert ex.names[:3] == ["AlexNet", "AlexNet (2 towers)", "GoogLeNet"]
    params = dict(zip(ex.names, ex.param_bars))
    macs = dict(zip(ex.names, ex.mac_bars))
    assert params["ResNet-50"] == 25_557_032 and params["AlexNet (2 towers)"] == 60_965_224
    r = googlenet_vs_alexnet()["two_tower"]
    assert r["fewer_params"] == pytest.approx(60_965_224 / 6_998_552)
    assert r["more_compute"] == pytest.approx(macs["GoogLeNet"] / macs["AlexNet (2 towers)"])
    assert 8.5 < r["fewer_params"] < 9 and 2 < r["more_compute"] < 2.4
    title = ex.fig.texts[0].get_text()
    assert "8.7x fewer" in title and "2.2x more compute" in title and "12x" in title
    assert "AlexNet (2 towers)" in ex.table.value
    ex.controls["view"].value = "layers"
    assert ex.names[0] == "conv1"


def test_log_scale_keeps_every_bar_visible():
    ex = ArchitectureExplorer(model="AlexNet", scale="log")
    assert ex.ax_params.get_xscale() == "log"
    lo, hi = ex.ax_params.get_xlim()
    shown = ex.param_bars / 1e6
    assert lo < shown.min() and hi > shown.max()
    ex.controls["scale"].value = "linear"
    assert ex.ax_params.get_xscale() == "linear"


def test_bars_helper_and_names():
    s = model_summary("LeNet-5")
    names, kinds, params, macs = bars(s, "layer")
    assert names == ["c1", "c3", "c5", "f6", "output"]
    assert kinds == ["Conv2d", "Conv2d", "Conv2d", "Linear", "Linear"]
    assert params.sum() == 61_706
    assert canonical_name("resnet 101") == "ResNet-101"
    assert canonical_name("lenet5") == "LeNet-5"
    assert set(MODELS) >= {"AlexNet (2 towers)"}


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="model"):
        ArchitectureExplorer(model="VGG-16")
    with pytest.raises(ValueError, match="view"):
        ArchitectureExplorer(view="table")
    with pytest.raises(ValueError, match="group"):
        ArchitectureExplorer(group="stage")
    with pytest.raises(ValueError, match="scale"):
        ArchitectureExplorer.static(scale="sqrt")
    with pytest.raises(ValueError, match="group"):
        bars(model_summary("AlexNet"), "module")


@pytest.mark.parametrize("name", list(MODELS))
def test_precomputed_tables_equal_the_live_summaries(name):
    """The explorer reads _model_tables.py, not a trace: it must still be what
    helpers.models.summary says (after a change there: python -m helpers.widgets.models)."""
    live, table = model_summary(name), model_table(name)
    assert [tuple(r) for r in table.rows] == [
        (r.name, r.kind, tuple(r.output_shape), r.params, r.macs) for r in live.rows]
    assert (table.params, table.macs, table.input_shape) == (live.params, live.macs,
                                                            tuple(live.input_shape))
    assert table._repr_html_() == live._repr_html_()
    assert bars(table, "block")[0] == bars(live, "block")[0]
