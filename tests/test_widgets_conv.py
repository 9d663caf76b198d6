"""ConvExplorer driven like a presenter drives it: sliders, step / play buttons, the
"doesn't fit" state, the depth view; its numbers checked against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from matplotlib.figure import Figure

from helpers.conv import output_size
from helpers.widgets import ConvExplorer


def torch_conv(x, w, b, stride, pad):
    """torch.nn.functional.conv2d (which floors when the filter doesn't fit)."""
    out = tF.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                    None if b is None else torch.from_numpy(b), stride=stride, padding=pad)
    return out.numpy()


def test_protocol_controls_fig_static():
    ex = ConvExplorer()
    assert {"N", "F", "S", "P", "D", "K", "position", "play", "filter", "channel",
            "seed"} <= set(ex.controls)
    assert isinstance(ex.fig, Figure)
    fig = ConvExplorer.static(N=7, F=3, S=2, P=0)
    assert isinstance(fig, Figure)
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/png"]


@pytest.mark.parametrize("N, F, S, P, D, K", [(7, 3, 1, 0, 1, 1), (7, 3, 2, 0, 3, 2),
                                               (7, 3, 1, 1, 2, 3), (9, 5, 2, 2, 3, 2),
                                               (6, 1, 1, 0, 4, 3)])
def test_numbers_are_torchs_conv2d(N, F, S, P, D, K):
    ex = ConvExplorer(N=N, F=F, S=S, P=P, D=D, K=K, position=None, seed=3)
    assert ex.x.shape == (1, D, N, N) and ex.w.shape == (K, D, F, F) and ex.b.shape == (K,)
    # small integers, readable on a projector
    assert set(np.unique(ex.x)) <= set(range(1, 10))
    assert set(np.unique(ex.w)) <= {-1.0, 0.0, 1.0}
    want = torch_conv(ex.x, ex.w, ex.b, S, P)
    np.testing.assert_allclose(ex.out, want, atol=1e-12)
    n_out = output_size(N, F, S, P)
    assert ex.n_positions == n_out * n_out
    assert ex.error is None and ex.floor_out is None
    # position None = everything filled: the output panel shows every number of map 0
    shown = sorted(float(t) for t in ex.out_numbers.strings)
    assert shown == sorted(want[0, 0].ravel().tolist())
    assert f"= {n_out}" in ex.formula_text.get_text()
    assert f"output {n_out}x{n_out}x{K}" in ex.formula_text.get_text()


def test_input_panel_shows_the_padded_slice_with_grey_zeros():
    ex = ConvExplorer(N=5, F=3, S=1, P=1, D=2, K=1, channel=1)
    padded = np.pad(ex.x[0, 1], 1)
    cells = ex.in_numbers.strings  # row-major, one per cell of the padded input
    assert len(cells) == padded.size
    assert [float(t) for t in cells] == padded.ravel().tolist()
    zeros = [i for i, t in enumerate(cells) if t == "0"]
    assert len(zeros) == 7 * 7 - 5 * 5  # the padding cells, and only they, since x >= 1
    assert [ex.in_numbers.italic[i] for i in zeros] == [True] * len(zeros)
    assert sum(ex.in_numbers.italic) == len(zeros)
    ex.controls["channel"].value = 0
    assert [float(t) for t in ex.in_numbers.strings] == np.pad(ex.x[0, 0], 1).ravel().tolist()


def test_step_back_first_all_and_play():
    ex = ConvExplorer(N=7, F=3, S=2, P=0, D=1, K=1)
    assert ex.position == 0
    assert ex.buttons["first"].disabled and ex.buttons["back"].disabled
    assert not ex.buttons["step"].disabled
    ex.buttons["step"].click()
    ex.buttons["step"].click()
    assert ex.position == 2
    (top, left), (i, j) = ex.window()
    assert (top, left, i, j) == (0, 4, 0, 2)
    assert ex.window_rect.get_xy() == (left - 0.5, top - 0.5)
    assert len(ex.out_numbers.strings) == 3  # filled up to position 2
    ex.buttons["back"].click()
    assert ex.position == 1
    ex.buttons["all"].click()
    assert ex.position == 8 and ex.buttons["step"].disabled
    ex.step()  # stays at the last position
    assert ex.position == 8
    ex.buttons["first"].click()
    assert ex.position == 0
    ex.controls["play"].value = 5  # the browser's Play ticks; the link moves the window
    assert ex.position == 5 and ex.window() == ((2, 4), (1, 2))


def test_detail_line_is_the_sum_of_per_slice_dot_products():
    ex = ConvExplorer(N=6, F=3, S=1, P=1, D=3, K=2, filter=1, position=9, seed=5)
    (top, left), (i, j) = ex.window()
    assert (i, j) == (1, 3)
    terms = [torch_conv(ex.x[:, [c]], ex.w[:, [c]], None, 1, 1)[0, 1, i, j] for c in range(3)]
    text = ex.detail_text.get_text()
    want = ex.out[0, 1, i, j]
    assert np.isclose(sum(terms) + ex.b[1], want)
    assert " + ".join(f"({t:g})" for t in terms) in text
    assert f"= {want:g}" in text


def test_doesnt_fit_shows_the_error_and_what_torch_would_do():
    ex = ConvExplorer(N=7, F=3, S=1, P=0, D=2, K=2)
    ex.controls["S"].value = 3  # the slides' "doesn't fit!"
    with pytest.raises(ValueError) as err:
        output_size(7, 3, 3, 0)
    assert ex.out is None
    assert ex.error == str(err.value)
    assert "2.33" in ex.formula_text.get_text() and "doesn't fit" in ex.formula_text.get_text()
    assert ex.formula_text.get_color() != "black"
    assert "floor=True" in ex.detail_text.get_text()
    np.testing.assert_allclose(ex.floor_out, torch_conv(ex.x, ex.w, ex.b, 3, 0), atol=1e-12)
    assert ex.n_positions == 4
    assert "doesn't fit" in ex.ax_out.get_title() and "2x2" in ex.ax_out.get_title()
    hatched = [p for p in ex.ax_in.patches if p.get_hatch() == "xx"]
    assert len(hatched) == 2  # the last row and the last column torch drops
    assert "doesn't fit" in ex.status.value
    # padding it: fits again, the red state is gone
    ex.controls["P"].value = 1
    assert ex.error is None and ex.out.shape == (1, 2, 3, 3)
    assert not [p for p in ex.ax_in.patches if p.get_hatch() == "xx"]


def test_filter_larger_than_the_padded_input():
    ex = ConvExplorer(N=3, F=5, S=1, P=0, D=1, K=1)
    assert ex.out is None and ex.floor_out is None and ex.n_positions == 0
    assert "larger" in ex.error
    assert ex.controls["position"].disabled
    assert all(b.disabled for b in ex.buttons.values())
    ex.controls["P"].value = 1  # 5x5 padded input: fits exactly once
    assert ex.out.shape == (1, 1, 1, 1) and not ex.controls["position"].disabled


def test_depth_view_labels_and_k_activation_maps():
    ex = ConvExplorer(N=32, F=5, S=1, P=0, D=3, K=6, position=None)
    labels = " | ".join(t.get_text() for t in ex.ax_depth.texts)
    assert "32x32x3 input" in labels
    assert "5x5x3 filters (x K=6)" in labels
    assert "28x28x6 output" in labels and "6 activation maps" in labels
    assert "full input depth D=3" in ex.ax_depth.get_title()
    assert not ex.out_numbers.strings and not ex.in_numbers.strings  # too many cells
    assert list(ex.controls["filter"].options) == list(range(6))
    ex.controls["K"].value = 2
    assert list(ex.controls["filter"].options) == [0, 1] and ex.out.shape == (1, 2, 28, 28)
    ex.controls["D"].value = 1
    assert list(ex.controls["channel"].options) == [0]
    assert "32x32x1 input" in " ".join(t.get_text() for t in ex.ax_depth.texts)


def test_stepping_redraws_exactly_what_a_full_draw_would():
    """Stepping blits the moving artists over a saved background; the pixels must be the
    same as a full redraw."""
    for params in ({}, {"N": 7, "S": 3, "D": 1, "K": 1}, {"N": 8, "P": 2, "F": 5, "S": 1}):
        ex = ConvExplorer(**params)
        for _ in range(4):
            ex.step()
        blitted = np.asarray(ex.fig.canvas.buffer_rgba()).copy()
        ex.fig.canvas.draw()
        np.testing.assert_array_equal(blitted, np.asarray(ex.fig.canvas.buffer_rgba()))


def test_changing_stride_or_padding_keeps_the_numbers():
    ex = ConvExplorer(N=7, F=3, S=1, P=0, seed=4)
    x, w = ex.x.copy(), ex.w.copy()
    ex.controls["S"].value = 2
    ex.controls["P"].value = 2
    np.testing.assert_array_equal(ex.x, x)
    np.testing.assert_array_equal(ex.w, w)
    ex.controls["seed"].value = 5
    assert not np.array_equal(ex.x, x)


@pytest.mark.parametrize("kwargs, name", [({"N": 0}, "N"), ({"N": 40}, "N"), ({"F": 0}, "F"),
                                          ({"S": 0}, "S"), ({"P": -1}, "P"), ({"D": 5}, "D"),
                                          ({"K": 0}, "K"), ({"filter": 2, "K": 2}, "filter"),
                                          ({"channel": 3, "D": 3}, "channel"),
                                          ({"position": -1}, "position"), ({"seed": -1}, "seed"),
                                          ({"S": 1.5}, "S")])
def test_bad_parameters_are_named(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=rf"^{name} must"):
        ConvExplorer(**kwargs)
