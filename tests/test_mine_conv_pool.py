"""'Compare with mine' (issue 13) in units 03 and 04: ConvExplorer(mine=dict(conv2d_forward=...,
conv_output_size=...)) and PoolExplorer(mine=dict(max_pool_forward=..., avg_pool_forward=...)).

The reference each student's function is judged against is computed here independently, with
torch (torch.nn.functional.conv2d / max_pool2d / avg_pool2d); the plausible mistakes come from
tests/units/03-convolution.py, tests/units/04-pooling.py and the checkers' tests
(tests/test_conv_checks.py, tests/test_pool_checks.py)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from helpers.widgets import ConvExplorer, PoolExplorer

_spec = importlib.util.spec_from_file_location("a11y", Path(__file__).with_name("a11y.py"))
a11y = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(a11y)
audit = a11y.audit  # issue 8's accessibility rules, as tests/test_accessibility.py applies them


# ---------------------------------------------------------------------- references (torch)
def torch_conv(x, w, b, stride=1, pad=0):
    out = tF.conv2d(torch.from_numpy(np.array(x, float)), torch.from_numpy(np.asarray(w, float)),
                    None if b is None else torch.from_numpy(np.asarray(b, float)),
                    stride=stride, padding=pad)
    return out.numpy()


def torch_size(N, F, S=1, P=0):
    """The slides' rule, with torch as the arithmetic: torch's size when nothing is left over,
    else a refusal (torch itself floors)."""
    if F > N + 2 * P:
        raise ValueError(f"a {F}x{F} filter is larger than the padded input")
    if (N - F + 2 * P) % S:
        raise ValueError("doesn't fit")
    return torch_conv(np.zeros((1, 1, N, N)), np.zeros((1, 1, F, F)), None, S, P).shape[-1]


def torch_max(x, F, S):
    return tF.max_pool2d(torch.from_numpy(np.array(x, float)), F, S).numpy()


def torch_avg(x, F, S):
    return tF.avg_pool2d(torch.from_numpy(np.array(x, float)), F, S).numpy()


def loops_conv(x, w, b, stride=1, pad=0):
    """A student's loops (as the notebook's Exercise 5), used to build the mistakes."""
    N, C, H, W = x.shape
    K, _, F, _ = w.shape
    Ho, Wo = (H - F + 2 * pad) // stride + 1, (W - F + 2 * pad) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, K, Ho, Wo))
    for n in range(N):
        for k in range(K):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * stride:i * stride + F, j * stride:j * stride + F]
                    out[n, k, i, j] = np.sum(window * w[k]) + b[k]
    return out


def first_diff(mine, ref):
    """(index, mine, ref) of the first differing element in C order, by numpy."""
    bad = ~np.isclose(mine, ref)
    idx = tuple(int(v) for v in np.argwhere(bad)[0])
    return idx, float(mine[idx]), float(ref[idx]), int(bad.sum())


def num(v):
    return f"{v:.4g}"


def cell_centres(collection):
    """(row, column) of each outlined cell: the centres of a PolyCollection's squares."""
    centres = [p.vertices[:4].mean(axis=0) for p in collection.get_paths()]
    return sorted((round(y), round(x)) for x, y in centres)


STATES = [dict(), dict(N=7, F=3, S=1, P=1, D=3, K=2), dict(N=9, F=5, S=2, P=2, D=2, K=3),
          dict(N=6, F=1, S=1, P=0, D=4, K=3), dict(N=7, F=3, S=3, P=0, D=1, K=1),
          dict(N=5, F=7, S=1, P=0, D=1, K=1)]


# ---------------------------------------------------------------------- ConvExplorer
@pytest.mark.parametrize("state", STATES)
def test_conv_reference_as_mine_agrees_on_every_state(state):
    ex = ConvExplorer(**state, seed=5, mine=dict(conv2d_forward=torch_conv,
                                                 conv_output_size=torch_size))
    assert ex.mismatch() is None and ex.mine_problem is None and ex.mine_status.value == ""
    for _ in range(3):
        ex.step()
    assert ex.mismatch() is None
    ex.controls["seed"].value = 9
    ex.controls["P"].value = min(ex.controls["P"].value + 1, 5)
    assert ex.mismatch() is None
    assert cell_centres(ex.mine_marks) == []


def test_conv_loops_agree_and_the_figure_is_unchanged():
    """A right answer draws exactly the figure of mine=None (no marks, same titles)."""
    plain = ConvExplorer(N=7, F=3, S=2, P=1, position=4)
    ex = ConvExplorer(N=7, F=3, S=2, P=1, position=4, mine=dict(conv2d_forward=loops_conv))
    assert ex.mismatch() is None
    assert plain.mismatch() is None and plain.mine_marks is None
    np.testing.assert_array_equal(plain.fig.canvas.copy_from_bbox(plain.fig.bbox),
                                  ex.fig.canvas.copy_from_bbox(ex.fig.bbox))


def _no_bias(x, w, b, stride=1, pad=0):
    return loops_conv(x, w, np.zeros_like(b), stride, pad)


def _flipped(x, w, b, stride=1, pad=0):  # the mathematical convolution, not the layer's
    return loops_conv(x, w[:, :, ::-1, ::-1].copy(), b, stride, pad)


def _one_channel(x, w, b, stride=1, pad=0):  # filters must span the full depth
    return loops_conv(x[:, :1], w[:, :1], b, stride, pad)


def _value_mistake(fn, x, w, b, S, P):
    """What the mistake computes, recomputed with torch (not with the mistake's own code)."""
    if fn is _no_bias:
        return torch_conv(x, w, None, S, P)
    if fn is _flipped:
        return torch_conv(x, w[:, :, ::-1, ::-1].copy(), b, S, P)
    return torch_conv(x[:, :1], w[:, :1], b, S, P)


@pytest.mark.parametrize("mistake", [_no_bias, _flipped, _one_channel])
@pytest.mark.parametrize("state", [dict(N=7, F=3, S=2, P=0, D=3, K=2),
                                   dict(N=8, F=3, S=1, P=1, D=2, K=3, seed=3)])
def test_conv_forward_mistakes_name_the_first_cell_and_both_values(mistake, state):
    ex = ConvExplorer(**state, mine=dict(conv2d_forward=mistake))
    S, P = state["S"], state["P"]
    ref = torch_conv(ex.x, ex.w, ex.b, S, P)
    theirs = _value_mistake(mistake, ex.x, ex.w, ex.b, S, P)
    (n, k, i, j), yours, want, count = first_diff(theirs, ref)
    sentence = ex.mismatch()
    assert f"filter {k}, row {i}, column {j}" in sentence, sentence
    assert f"yours {num(yours)}, the reference's {num(want)}" in sentence
    assert f"{count} of {ref.size} output numbers differ" in sentence
    assert ex.mine_problem == sentence and "yours" in ex.mine_status.value
    # the figure outlines exactly the differing cells of the shown map, for each filter
    for shown in range(state["K"]):
        ex.controls["filter"].value = shown
        bad = ~np.isclose(theirs[0, shown], ref[0, shown])
        assert cell_centres(ex.mine_marks) == sorted(map(tuple, np.argwhere(bad).tolist()))
        assert ("yours differs" in ex.ax_out.get_title()) == bool(bad.any())
    assert audit(ex.fig, "ConvExplorer with differing cells") == []


def test_conv_detail_line_shows_the_students_number_at_a_differing_cell():
    ex = ConvExplorer(N=7, F=3, S=2, P=0, D=1, K=1, position=0,
                      mine=dict(conv2d_forward=_no_bias))
    theirs = torch_conv(ex.x, ex.w, None, 2, 0)
    ex.go_to(4)
    assert f"your conv2d_forward: {num(theirs[0, 0, 1, 1])}" in ex.detail_text.get_text()


@pytest.mark.parametrize("mistake", [
    lambda x, w, b, stride=1, pad=0: loops_conv(x, w, b, 1, pad),           # ignores the stride
    lambda x, w, b, stride=1, pad=0: loops_conv(                             # pads one side only
        np.pad(x, ((0, 0), (0, 0), (pad, 0), (pad, 0))), w, b, stride, 0),
])
def test_conv_forward_wrong_shape_says_both_shapes(mistake):
    ex = ConvExplorer(N=7, F=3, S=2, P=1, D=2, K=2, mine=dict(conv2d_forward=mistake))
    want = torch_conv(ex.x, ex.w, ex.b, 2, 1).shape
    got = np.shape(mistake(ex.x, ex.w, ex.b, 2, 1))
    assert got != want
    assert ex.mismatch() == (f"your conv2d_forward returned shape {got}; the reference's is "
                             f"{want}")
    assert cell_centres(ex.mine_marks) == []


def test_conv_output_size_mistakes_give_both_sizes():
    # tests/units/03-convolution.py: floors like torch instead of refusing
    floors = lambda N, F, S=1, P=0: (N - F + 2 * P) // S + 1  # noqa: E731
    ex = ConvExplorer(N=7, F=3, S=3, P=0, mine=dict(conv_output_size=floors))
    torch_floor = torch_conv(np.zeros((1, 1, 7, 7)), np.zeros((1, 1, 3, 3)), None, 3, 0).shape[-1]
    sentence = ex.mismatch()
    assert sentence.startswith(f"your conv_output_size(7, 3, 3, 0) returned {torch_floor}, but "
                               "the filter doesn't fit")
    # ... which is right where the filter fits
    ex.controls["S"].value = 2
    assert ex.mismatch() is None
    # ignores the padding
    no_padding = lambda N, F, S=1, P=0: (N - F) // S + 1  # noqa: E731
    ex = ConvExplorer(N=7, F=3, S=1, P=1, mine=dict(conv_output_size=no_padding))
    want = torch_size(7, 3, 1, 1)
    assert ex.mismatch() == (f"your conv_output_size(7, 3, 1, 1) returned {(7 - 3) // 1 + 1}; "
                             f"the reference's (N - F + 2P)/S + 1 = (7 - 3 + 2*1)/1 + 1 = {want}")
    # returns 2.33 instead of refusing
    ratio = lambda N, F, S=1, P=0: (N - F + 2 * P) / S + 1  # noqa: E731
    ex = ConvExplorer(N=7, F=3, S=3, P=0, mine=dict(conv_output_size=ratio))
    assert f"returned {num(7 / 3)}, but the filter doesn't fit" in ex.mismatch()

    # pads one side only; no check that the filter is larger than the padded input
    one_side = lambda N, F, S=1, P=0: (N + P - F) // S + 1  # noqa: E731
    ex = ConvExplorer(N=7, F=3, S=1, P=1, mine=dict(conv_output_size=one_side))
    assert ex.mismatch().startswith(f"your conv_output_size(7, 3, 1, 1) returned {7 + 1 - 3 + 1}; "
                                    f"the reference's (N - F + 2P)/S + 1 = (7 - 3 + 2*1)/1 + 1 = "
                                    f"{torch_size(7, 3, 1, 1)}")
    ex = ConvExplorer(N=5, F=7, S=1, P=0, mine=dict(conv_output_size=floors))
    with pytest.raises(ValueError):
        torch_size(5, 7, 1, 0)
    assert ex.mismatch().startswith(f"your conv_output_size(5, 7, 1, 0) returned {5 - 7 + 1}, "
                                    "but the filter doesn't fit and the reference raises")

    # refuses a filter that fits
    def always_raises(N, F, S=1, P=0):
        raise ValueError("nope")

    ex = ConvExplorer(N=7, F=3, S=2, P=0, mine=dict(conv_output_size=always_raises))
    assert ex.mismatch() == ("your conv_output_size(7, 3, 2, 0) raised ValueError (nope), but "
                             f"the filter fits: (N - F + 2P)/S + 1 = (7 - 3 + 2*0)/2 + 1 = "
                             f"{torch_size(7, 3, 2, 0)}")


def test_conv_output_size_is_judged_before_the_forward_pass():
    ex = ConvExplorer(N=7, F=3, S=1, P=1, mine=dict(
        conv2d_forward=_no_bias, conv_output_size=lambda N, F, S=1, P=0: N - F + 1))
    assert ex.mismatch().startswith("your conv_output_size(7, 3, 1, 1) returned 5")
    ex.controls["filter"].value = int(np.flatnonzero(ex.b)[0])  # a map with a bias
    assert len(cell_centres(ex.mine_marks)) > 0  # the forward pass is still compared and drawn


def _raises(*args, **kwargs):
    return 1 / 0


def _not_written(*args, **kwargs):
    raise NotImplementedError()


def _slow(*args, **kwargs):
    time.sleep(1.0)


@pytest.mark.parametrize("fn, words", [
    (_raises, "your conv2d_forward raised ZeroDivisionError: division by zero"),
    (_not_written, "your conv2d_forward raised NotImplementedError: the explorer shows"),
    (_slow, "your conv2d_forward took longer than 0.2 s"),
    (lambda x, w, b, stride=1, pad=0: np.zeros((3, 3)), "returned shape (3, 3); the reference"),
    (lambda x, w, b, stride=1, pad=0: None, "returned NoneType, not an array"),
])
def test_conv_broken_functions_give_a_sentence_and_the_explorer_keeps_working(fn, words):
    ex = ConvExplorer(N=7, F=3, S=2, P=0, mine=dict(conv2d_forward=fn), mine_time_limit=0.2)
    assert words in ex.mismatch() and words in ex.mine_problem
    assert words.split(":")[0] in ex.mine_status.value
    # the reference is still shown and the controls still redraw
    np.testing.assert_allclose(ex.out, torch_conv(ex.x, ex.w, ex.b, 2, 0))
    ex.controls["P"].value = 1
    np.testing.assert_allclose(ex.out, torch_conv(ex.x, ex.w, ex.b, 2, 1))
    ex.step()
    assert ex.position == 1 and ex.png()[:4] == b"\x89PNG"
    assert cell_centres(ex.mine_marks) == []


def test_conv_release_functions_under_both_names():
    ex = ConvExplorer(mine=dict(conv2d_forward=_not_written, conv_output_size=_not_written))
    assert ex.mismatch().startswith("your conv_output_size raised NotImplementedError")


def test_conv_student_writing_into_its_input_does_not_change_the_explorer():
    def in_place(x, w, b, stride=1, pad=0):
        x[...] = 0.0
        w[...] = 0.0
        return torch_conv(x, w, b, stride, pad)

    ex = ConvExplorer(N=7, F=3, S=2, P=0, D=1, K=1, mine=dict(conv2d_forward=in_place))
    assert ex.x.any() and ex.w.any()
    np.testing.assert_allclose(ex.out, torch_conv(ex.x, ex.w, ex.b, 2, 0))
    assert ex.mismatch() is not None


@pytest.mark.parametrize("mine, key", [
    (dict(conv2d=torch_conv), "conv2d"),
    (dict(conv2d_forward="torch_conv"), "conv2d_forward"),
    (dict(conv_output_size=7), "conv_output_size"),
])
def test_conv_bad_mine_is_a_value_error_naming_the_key(mine, key):
    with pytest.raises(ValueError, match=key):
        ConvExplorer(mine=mine)
    with pytest.raises(ValueError, match="dict"):
        ConvExplorer(mine=[torch_conv])


def test_conv_stepping_with_marks_redraws_exactly_what_a_full_draw_would():
    ex = ConvExplorer(N=7, F=3, S=1, P=1, D=2, K=2, mine=dict(conv2d_forward=_flipped))
    for _ in range(5):
        ex.step()
    blitted = np.asarray(ex.fig.canvas.buffer_rgba()).copy()
    ex.fig.canvas.draw()
    np.testing.assert_array_equal(blitted, np.asarray(ex.fig.canvas.buffer_rgba()))


# ---------------------------------------------------------------------- PoolExplorer
def _grid(ex):
    return ex.x[None, None]


POOL_STATES = [dict(), dict(F=2, S=1), dict(F=3, S=1, mode="avg"),
               dict(data="random", W1=7, F=3, S=2, seed=4), dict(data="random", W1=6, F=2, S=2),
               dict(data="china", F=2, S=2), dict(F=3, S=2)]  # the last one doesn't fit


@pytest.mark.parametrize("state", POOL_STATES)
def test_pool_reference_as_mine_agrees_on_every_state(state):
    ex = PoolExplorer(**state, mine=dict(max_pool_forward=torch_max, avg_pool_forward=torch_avg))
    assert ex.mismatch() is None and ex.mine_problem is None
    ex.step()
    ex.controls["mode"].value = "avg" if ex.controls["mode"].value == "max" else "max"
    assert ex.mismatch() is None
    assert cell_centres(ex.mine_marks) == []
    assert not any(r.get_visible() for r in ex.mine_rings.values())


def test_pool_right_answer_draws_the_same_figure_as_no_mine():
    plain = PoolExplorer(position=1)
    ex = PoolExplorer(position=1, mine=dict(max_pool_forward=torch_max))
    assert plain.mismatch() is None and ex.mismatch() is None
    np.testing.assert_array_equal(plain.fig.canvas.copy_from_bbox(plain.fig.bbox),
                                  ex.fig.canvas.copy_from_bbox(ex.fig.bbox))


def _avg_by_F(x, F, S):  # tests/units/04-pooling.py: divides by F instead of F*F
    return torch_avg(x, F, S) * F


POOL_MISTAKES = [  # (mode, key, mistake, what it computes, by torch)
    ("avg", "avg_pool_forward", _avg_by_F, lambda x, F, S: torch_avg(x, F, S) * F),
    ("avg", "avg_pool_forward", lambda x, F, S: torch_avg(x, F, S) * F * F,  # sums
     lambda x, F, S: torch_avg(x, F, S) * F * F),
    ("avg", "avg_pool_forward", torch_max, torch_max),                        # maxima
    ("max", "max_pool_forward", torch_avg, torch_avg),                        # averages
]


@pytest.mark.parametrize("mode, key, mistake, computes", POOL_MISTAKES)
@pytest.mark.parametrize("state", [dict(), dict(data="random", W1=7, F=3, S=2, seed=2),
                                   dict(data="random", W1=5, F=2, S=1, seed=1)])
def test_pool_mistakes_name_the_first_cell_and_both_values(mode, key, mistake, computes,
                                                          state):
    ex = PoolExplorer(**state, mode=mode, mine={key: mistake})
    F, S = ex.controls["F"].value, ex.controls["S"].value
    ref = (torch_max if mode == "max" else torch_avg)(_grid(ex), F, S)[0, 0]
    theirs = computes(_grid(ex), F, S)[0, 0]
    (i, j), yours, want, count = first_diff(theirs, ref)
    sentence = ex.mismatch()
    assert sentence.startswith(f"your {key} parts from the reference first at row {i}, "
                               f"column {j} of the output (F={F}, S={S})"), sentence
    assert f"yours {num(yours)}, the reference's {num(want)}" in sentence
    assert f"{count} of {ref.size} output numbers differ" in sentence
    bad = ~np.isclose(theirs, ref)
    assert cell_centres(ex.mine_marks) == sorted(map(tuple, np.argwhere(bad).tolist()))
    assert "yours differs" in ex.axes[1].get_title()
    assert audit(ex.fig, "PoolExplorer with differing cells") == []
    # the other mode has no function of its own here: nothing to compare, no marks
    ex.controls["mode"].value = "max" if mode == "avg" else "avg"
    assert ex.mismatch() is None and cell_centres(ex.mine_marks) == []
    assert "yours differs" not in ex.axes[1].get_title()


def test_pool_wrong_shapes_say_both_shapes():
    ex = PoolExplorer(F=2, S=1, mine=dict(max_pool_forward=lambda x, F, S: torch_max(x, F, F)))
    want, got = torch_max(_grid(ex), 2, 1).shape, torch_max(_grid(ex), 2, 2).shape
    assert ex.mismatch() == f"your max_pool_forward returned shape {got}; the reference's is {want}"
    ex = PoolExplorer(mine=dict(max_pool_forward=lambda x, F, S: torch_max(x, F, S)[0, 0]))
    assert "returned shape (2, 2); the reference's is (1, 1, 2, 2)" in ex.mismatch()


def test_pool_photo_rings_the_first_differing_pixel_of_each_panel():
    ex = PoolExplorer(data="flower", F=4, S=4, mine=dict(avg_pool_forward=_avg_by_F,
                                                         max_pool_forward=torch_max))
    ref = torch_avg(_grid(ex), 4, 4)[0, 0]
    (i, j), yours, want, _ = first_diff(_avg_by_F(_grid(ex), 4, 4)[0, 0], ref)
    assert ex.mismatch().startswith(f"your avg_pool_forward parts from the reference first at "
                                    f"row {i}, column {j} of the pooled flower photo (F=4, S=4)")
    ring = ex.mine_rings["avg"]
    assert ring.get_visible() and ring.axes is ex.axes[2]
    assert ring.get_xydata().tolist() == [[j, i]]
    assert not ex.mine_rings["max"].get_visible()
    assert audit(ex.fig, "PoolExplorer on a photo with a ring") == []
    ex.controls["data"].value = "slide"
    assert not ring.get_visible()


@pytest.mark.parametrize("fn, words", [
    (_raises, "your max_pool_forward raised ZeroDivisionError: division by zero"),
    (_not_written, "your max_pool_forward raised NotImplementedError: the explorer shows"),
    (_slow, "your max_pool_forward took longer than 0.2 s"),
    (lambda x, F, S: "6 8 3 4", "returned str, not an array of numbers"),
])
def test_pool_broken_functions_give_a_sentence_and_the_explorer_keeps_working(fn, words):
    ex = PoolExplorer(mine=dict(max_pool_forward=fn), mine_time_limit=0.2)
    assert words in ex.mismatch() and words in ex.mine_problem
    assert words.split(":")[0] in ex.mine_status.value
    np.testing.assert_allclose(ex.out, torch_max(_grid(ex), 2, 2)[0, 0])
    ex.step()
    ex.controls["F"].value = 1
    ex.controls["S"].value = 1
    np.testing.assert_allclose(ex.out, torch_max(_grid(ex), 1, 1)[0, 0])
    assert ex.png()[:4] == b"\x89PNG"


def test_pool_student_writing_into_its_input_does_not_change_the_explorer():
    def in_place(x, F, S):
        x[...] = 0.0
        return torch_max(x, F, S)

    ex = PoolExplorer(mine=dict(max_pool_forward=in_place))
    np.testing.assert_allclose(ex.out, torch_max(_grid(ex), 2, 2)[0, 0])
    assert ex.x.any() and ex.mismatch() is not None


@pytest.mark.parametrize("mine, key", [
    (dict(max_pool=torch_max), "max_pool"),
    (dict(avg_pool_forward=np.zeros(3)), "avg_pool_forward"),
])
def test_pool_bad_mine_is_a_value_error_naming_the_key(mine, key):
    with pytest.raises(ValueError, match=key):
        PoolExplorer(mine=mine)


def test_pool_stepping_with_marks_redraws_exactly_what_a_full_draw_would():
    ex = PoolExplorer(data="random", W1=6, F=2, S=1, mode="avg",
                      mine=dict(avg_pool_forward=_avg_by_F))
    for _ in range(4):
        ex.step()
    ex.controls["mode"].value = "max"  # a blitted mode switch: the marks go
    ex.controls["mode"].value = "avg"  # and come back
    blitted = np.asarray(ex.fig.canvas.buffer_rgba()).copy()
    ex.fig.canvas.draw()
    np.testing.assert_array_equal(blitted, np.asarray(ex.fig.canvas.buffer_rgba()))
