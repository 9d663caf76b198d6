"""PoolExplorer driven like a presenter drives it: buttons, sliders, the doesn't-fit state,
the photo mode, the static path.

What the panels show is compared with torch (F.max_pool2d with return_indices for the
selected maximum, F.avg_pool2d), not with the widget's own reference.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from matplotlib.figure import Figure
from PIL import Image

from helpers.data import sample_image
from helpers.widgets import PoolExplorer

SLIDE = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=float)


def torch_pool(x, F, S, mode="max"):
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None, None]
    out = tF.max_pool2d(t, F, S) if mode == "max" else tF.avg_pool2d(t, F, S)
    return out[0, 0].numpy()


def torch_argmax_cells(x, F, S):
    """(row, col) of the element each window keeps, from torch's return_indices."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None, None]
    _, idx = tF.max_pool2d(t, F, S, return_indices=True)
    return [divmod(int(i), x.shape[1]) for i in idx.flatten()]


def shown_numbers(texts):
    return [t.get_text() for t in texts if t.get_visible() and t.get_text()]


def canvas_pixels(fig):
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def saved_pixels(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return np.asarray(Image.open(buf).convert("RGBA"))


@pytest.fixture
def explorer():
    return PoolExplorer()


def test_protocol_controls_fig_static(explorer):
    ex = explorer
    assert {"data", "W1", "F", "S", "mode", "position", "seed"} <= set(ex.controls)
    assert set(ex.controls["data"].options) == {"slide", "random", "china", "flower"}
    assert set(ex.controls["mode"].options) == {"max", "avg"}
    assert isinstance(ex.fig, Figure) and len(ex.fig.axes) == 3
    for params in ({}, {"F": 3}, {"data": "china"}, {"data": "random", "W1": 7, "F": 3, "S": 2,
                                                      "mode": "avg", "position": 4}):
        fig = PoolExplorer.static(**params)
        assert isinstance(fig, Figure)
        for ax in fig.axes:
            if ax.axison:
                assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
            else:
                assert ax.get_title()
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    assert "2x2" in bundle["text/plain"]


def test_slide_example_steps_through_windows_like_torch(explorer):
    ex = explorer
    np.testing.assert_array_equal(ex.x, SLIDE)
    np.testing.assert_array_equal(ex.out, [[6, 8], [3, 4]])
    np.testing.assert_array_equal(ex.out, torch_pool(SLIDE, 2, 2))
    assert ex.controls["position"].max == 3
    assert ex.buttons["Reset"].disabled and not ex.buttons["Step"].disabled
    keeps = torch_argmax_cells(SLIDE, 2, 2)
    for p in range(4):
        i, j = divmod(p, 2)
        assert ex.controls["position"].value == p
        (cell, window, selected) = ex._window_state()
        assert cell == (i, j) and window == (2 * i, 2 * j)
        assert selected == keeps[p] == ex.selected and ex.window == window
        # the window outline and the highlighted maximum sit where torch says
        x0, y0 = ex.win_patch.get_xy()
        assert (x0 + 0.5, y0 + 0.5) == (2 * j, 2 * i) and ex.win_patch.get_width() == 2
        r, q = keeps[p]
        assert ex.sel_patch.get_visible() and ex.sel_patch.contains_point(
            ex.axes[0].transData.transform((q, r)))
        # the output fills in, window by window
        assert shown_numbers(ex.out_texts) == ["6", "8", "3", "4"][: p + 1]
        assert f"output[{i}, {j}]" in ex.math_text.get_text()
        ex.buttons["Step"].click()
    assert ex.controls["position"].value == 3 and ex.buttons["Step"].disabled
    assert "max(1, 0, 3, 4)" in ex.math_text.get_text()
    ex.buttons["Reset"].click()
    assert ex.controls["position"].value == 0
    ex.buttons["All"].click()
    assert ex.controls["position"].value == 3 and ex.buttons["All"].disabled
    assert "W2 = (W1 - F)/S + 1 = (4 - 2)/2 + 1 = 2" in ex.formula.get_text()


def test_avg_mode_and_other_settings_match_torch(explorer):
    ex = explorer
    ex.controls["mode"].value = "avg"
    ex.show_all()
    np.testing.assert_allclose(ex.out, torch_pool(SLIDE, 2, 2, "avg"))
    assert shown_numbers(ex.out_texts) == ["3.25", "5.25", "2", "2"]
    assert not ex.sel_patch.get_visible(), "average pooling keeps no single element"
    assert "(1 + 0 + 3 + 4)/4" in ex.math_text.get_text()
    ex.controls["data"].value = "random"
    for W1, F, S, mode in [(7, 3, 2, "max"), (9, 3, 3, "avg"), (5, 1, 1, "max"),
                           (8, 2, 3, "max"), (10, 4, 2, "avg")]:
        ex.controls["W1"].value = W1
        ex.controls["F"].value = F
        ex.controls["S"].value = S
        ex.controls["mode"].value = mode
        assert ex.x.shape == (W1, W1) and set(np.unique(ex.x)) <= set(range(10))
        assert ex.fits
        np.testing.assert_allclose(ex.out, torch_pool(ex.x, F, S, mode))
        assert ex.controls["position"].max == ex.out.size - 1
        if mode == "max":
            ex.controls["position"].value = ex.out.size - 1
            assert ex._window_state()[2] == torch_argmax_cells(ex.x, F, S)[-1]
    before = ex.x.copy()
    ex.controls["seed"].value = 5
    assert not np.array_equal(before, ex.x)


def test_doesnt_fit_is_shown_not_floored(explorer):
    ex = explorer
    ex.controls["F"].value = 3  # (4 - 3)/2 + 1 = 1.5
    assert not ex.fits and ex.out is None
    assert "doesn't fit" in ex.nofit_text.get_text() and "1.5" in ex.nofit_text.get_text()
    assert "doesn't fit" in ex.formula.get_text() and "1.5" in ex.formula.get_text()
    assert "stride=1 (-> 2) would fit" in ex.math_text.get_text().replace("\n", " ")
    assert ex.controls["position"].disabled and ex.buttons["Step"].disabled
    assert not ex.win_patch.get_visible() and not any(t.get_visible() for t in ex.out_texts)
    # the window that would come next hangs over the right edge of the 4x4 input
    x0, _ = ex.misfit_patch.get_xy()
    assert ex.misfit_patch.get_visible() and x0 + ex.misfit_patch.get_width() > 4 - 0.5
    assert ex.axes[0].get_xlim()[1] >= x0 + ex.misfit_patch.get_width() - 1e-9
    ex.step()  # nothing to step through
    assert ex.controls["position"].value == 0
    ex.controls["S"].value = 1  # fits again: (4 - 3)/1 + 1 = 2
    assert ex.fits and not ex.misfit_patch.get_visible()
    np.testing.assert_array_equal(ex.out, torch_pool(SLIDE, 3, 1))
    ex.controls["F"].value = 6  # larger than the input
    assert not ex.fits and "F = 6 > W1 = 4" in ex.nofit_text.get_text()
    assert "larger than W1 = 4" in ex.math_text.get_text()
    with pytest.raises(RuntimeError):  # and torch agrees that nothing fits
        torch_pool(SLIDE, 6, 1)


def test_photo_mode_pools_the_grayscale_image_both_ways(explorer):
    ex = explorer
    ex.controls["data"].value = "china"
    img = sample_image("china", gray=True, size=(128, 192))
    np.testing.assert_allclose(ex.x, img)
    np.testing.assert_allclose(ex.max_out, torch_pool(img, 2, 2))
    np.testing.assert_allclose(ex.avg_out, torch_pool(img, 2, 2, "avg"))
    assert ex.controls["position"].disabled and ex.controls["mode"].disabled
    titles = [ax.get_title() for ax in ex.axes]
    assert "128x192" in titles[0] and "max" in titles[1] and "avg" in titles[2]
    assert all("64x96" in t for t in titles[1:])
    np.testing.assert_allclose(ex.images[1].get_array(), ex.max_out)
    np.testing.assert_allclose(ex.images[2].get_array(), ex.avg_out)
    ex.controls["F"].value = 3  # 192 and 128 leave a column/row over: floored, and said so
    np.testing.assert_allclose(ex.max_out, torch_pool(img, 3, 2))
    assert ex.max_out.shape == (63, 95) and "63x95" in ex.axes[1].get_title()
    assert "doesn't fit" in ex.formula.get_text() and "floored" in ex.formula.get_text()
    assert (ex.max_out >= ex.avg_out).all()
    ex.controls["data"].value = "slide"  # back to the grid: numbers again
    assert ex.fits is False  # F=3, S=2 on the 4x4
    ex.controls["F"].value = 2
    assert shown_numbers(ex.in_texts)[:4] == ["1", "1", "2", "4"]


def test_window_steps_redraw_exactly_what_a_full_draw_shows(explorer):
    """Steps and max <-> avg are blitted onto a saved background: same pixels as a full draw."""
    ex = explorer
    ex.fig.canvas.draw()
    ex.step()
    ex.step()
    assert np.array_equal(canvas_pixels(ex.fig), saved_pixels(ex.fig))
    ex.controls["mode"].value = "avg"
    assert np.array_equal(canvas_pixels(ex.fig), saved_pixels(ex.fig))


def test_constructor_arguments_and_bad_parameters():
    ex = PoolExplorer(data="random", W1=6, F=2, S=2, mode="avg", position=5, seed=3)
    assert ex.controls["position"].value == 5 and ex.out.shape == (3, 3)
    assert "window 6 of 9" in ex.describe()
    with pytest.raises(ValueError, match="data"):
        PoolExplorer(data="lena")
    with pytest.raises(ValueError, match="mode"):
        PoolExplorer(mode="min")
    with pytest.raises(ValueError, match="F"):
        PoolExplorer(F=0)
    with pytest.raises(ValueError, match="S"):
        PoolExplorer(S=7)
    with pytest.raises(ValueError, match="W1"):
        PoolExplorer(data="random", W1=11)
    with pytest.raises(ValueError, match="position"):
        PoolExplorer(position=4)  # the slide's 2x2 output has windows 0..3
    with pytest.raises(ValueError, match="position"):
        PoolExplorer(F=3, position=1)  # doesn't fit: no window to be at
