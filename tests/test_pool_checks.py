"""The unit 04-pooling checkers: each passes correct answers written independently of helpers
(torch's F.max_pool2d / F.avg_pool2d and autograd, plain numpy loops, the slides' formula),
rejects plausible mistakes with a message that says what to fix, and re-judges recorded
answers the way the grading harness does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from helpers.checks import pool as check
from helpers.checks._core import REGISTRY, CheckFailure, decode, encode

HIDDEN = {"seeds": range(100, 108)}


# ------------------------------------------------------------------ correct, written plainly

def pool_output_size(W, F, S):
    if F > W or (W - F) % S:
        raise ValueError(f"({W} - {F})/{S} + 1 is not a whole number: doesn't fit")
    return (W - F) // S + 1


def torch_max(x, F, S):
    return tF.max_pool2d(torch.from_numpy(x), F, S).numpy()


def torch_avg(x, F, S):
    return tF.avg_pool2d(torch.from_numpy(x), F, S).numpy()


def torch_max_backward(dout, x, F, S):
    xt = torch.tensor(x, requires_grad=True)
    tF.max_pool2d(xt, F, S).backward(torch.from_numpy(dout))
    return xt.grad.numpy()


def loops_max(x, F, S):
    N, C, H, W = x.shape
    out = np.empty((N, C, (H - F) // S + 1, (W - F) // S + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * S:i * S + F, j * S:j * S + F].max(axis=(2, 3))
    return out


def loops_avg(x, F, S):
    N, C, H, W = x.shape
    out = np.empty((N, C, (H - F) // S + 1, (W - F) // S + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * S:i * S + F, j * S:j * S + F].mean(axis=(2, 3))
    return out


def loops_max_backward(dout, x, F, S):
    """The notebook's way: np.argmax of the flattened window = first maximum, row-major."""
    dx = np.zeros_like(x)
    N, C, H2, W2 = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(H2):
                for j in range(W2):
                    win = x[n, c, i * S:i * S + F, j * S:j * S + F]
                    p, q = np.unravel_index(np.argmax(win), win.shape)
                    dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]
    return dx


def test_correct_answers_pass_visible_and_hidden():
    check.check_pool_output_size(pool_output_size)
    check.check_pool_output_size(pool_output_size, **HIDDEN)
    check.check_pool_output_size(lambda W, F, S: np.int64(pool_output_size(W, F, S)))
    check.check_max_pool_forward(torch_max)
    check.check_max_pool_forward(torch_max, **HIDDEN)
    check.check_max_pool_forward(loops_max, **HIDDEN)
    check.check_max_pool_forward(lambda x, F, S: torch_max(x, F, S).astype(np.float32))
    check.check_avg_pool_forward(torch_avg)
    check.check_avg_pool_forward(torch_avg, images=("china", "flower"), **HIDDEN)
    check.check_avg_pool_forward(loops_avg, images=("flower",))
    check.check_max_pool_backward(torch_max_backward)
    check.check_max_pool_backward(torch_max_backward, **HIDDEN)
    check.check_max_pool_backward(loops_max_backward, **HIDDEN)


def test_checks_cover_the_slides_and_the_edge_cases():
    """The problems themselves: the slides' numbers, doesn't-fit cases, ties, overlaps."""
    sizes = {case.args for case in check._size_cases()}
    assert {(4, 2, 2), (55, 3, 2), (224, 2, 2), (224, 3, 2), (3, 4, 1)} <= sizes
    fits = [pool_output_size_or_none(*args) for args in sizes]
    assert fits.count(None) >= 4 and len(fits) - fits.count(None) >= 6
    forward = check._max_forward_cases()
    x, F, S = forward[0].args
    np.testing.assert_array_equal(torch_max(x, F, S)[0, 0], [[6, 8], [3, 4]])
    assert any((case.args[0] < 0).all() for case in forward)
    backward = check._max_backward_cases(**HIDDEN)
    ties = [c for c in backward if _has_tied_window(*c.args)]
    overlaps = [c for c in backward if c.args[3] < c.args[2]]
    assert len(ties) >= 5 and len(overlaps) >= 3
    images = [c for c in check._avg_forward_cases(images=("china",)) if "photo" in c.description]
    assert images and images[0].args[0].shape == (1, 3, 48, 72)


def pool_output_size_or_none(W, F, S):
    try:
        return pool_output_size(W, F, S)
    except ValueError:
        return None


def _has_tied_window(dout, x, F, S):
    N, C, H2, W2 = dout.shape
    for i in range(H2):
        for j in range(W2):
            win = x[:, :, i * S:i * S + F, j * S:j * S + F].reshape(N, C, -1)
            if ((win == win.max(axis=2, keepdims=True)).sum(axis=2) > 1).any():
                return True
    return False


# ------------------------------------------------------------------ plausible mistakes

def fails(chk, fn, match, **params):
    with pytest.raises(CheckFailure, match=match):
        chk(fn, **params)


def test_output_size_mistakes():
    fails(check.check_pool_output_size, lambda W, F, S: (W - F) // S + 1,
          r"pool_output_size\(224, 3, 2\) should raise ValueError.*111.5.*torch's floor")
    fails(check.check_pool_output_size, lambda W, F, S: (W - F) / S + 1, "should return an int")

    def no_size_check(W, F, S):  # forgets that F > W doesn't fit at all
        if (W - F) % S:
            raise ValueError("doesn't fit")
        return (W - F) // S + 1

    fails(check.check_pool_output_size, no_size_check, r"larger than the input \(F=4 > W=3\)")
    fails(check.check_pool_output_size, lambda W, F, S: (W - F + 2) // S + 1,
          r"pool_output_size\(4, 2, 2\) should be \(4 - 2\)/2 \+ 1 = 2, got 3")

    def always_raises(W, F, S):
        raise ValueError("no")

    fails(check.check_pool_output_size, always_raises, r"raised ValueError, but the window fits")
    fails(check.check_pool_output_size, lambda W, F, S: "2", "should return a number")

    def wrong_error(W, F, S):  # an assert is not a ValueError: it is not accepted
        assert (W - F) % S == 0 and F <= W
        return (W - F) // S + 1

    fails(check.check_pool_output_size, wrong_error, "raised AssertionError")


def test_output_size_not_implemented_is_not_swallowed():
    def todo(W, F, S):
        raise NotImplementedError()

    fails(check.check_pool_output_size, todo, "not implemented yet")
    fails(check.check_pool_output_size, 42, "should be a function")


def test_max_forward_mistakes():
    def zero_start(x, F, S):
        return np.maximum(loops_max(x, F, S), 0.0)

    fails(check.check_max_pool_forward, zero_start, "start the maximum from")
    fails(check.check_max_pool_forward, loops_avg, "averages")
    fails(check.check_max_pool_forward, lambda x, F, S: loops_max(x, F, F),
          r"should have shape|wrong values")  # stride = window size, always
    fails(check.check_max_pool_forward, lambda x, F, S: loops_max(x, F, S)[0, 0],
          r"keep the N and C axes")
    def swapped_shape(x, F, S):  # np.zeros((N, C, W2, H2)): right for square outputs only
        out = loops_max(x, F, S)
        return out.reshape(out.shape[:2] + out.shape[2:][::-1])

    fails(check.check_max_pool_forward, swapped_shape, r"rows and columns swapped")

    def across_channels(x, F, S):  # one max over all channels of a window
        out = loops_max(x, F, S)
        return np.broadcast_to(out.max(axis=1, keepdims=True), out.shape).copy()

    fails(check.check_max_pool_forward, across_channels, "wrong values")

    def in_place(x, F, S):
        x[...] = 0.0
        return loops_max(x, F, S)

    fails(check.check_max_pool_forward, in_place, "modified its input")


def test_avg_forward_mistakes():
    fails(check.check_avg_pool_forward, lambda x, F, S: loops_avg(x, F, S) * F, "divided")
    fails(check.check_avg_pool_forward, lambda x, F, S: loops_avg(x, F, S) * F * F, "sums")
    fails(check.check_avg_pool_forward, loops_max, "maxima")

    def first_channel_everywhere(x, F, S):  # grayscale thinking: pools channel 0 only
        out = loops_avg(x, F, S)
        return np.broadcast_to(out[:, :1], out.shape).copy()

    fails(check.check_avg_pool_forward, first_channel_everywhere, "wrong values", seeds=())


@pytest.mark.parametrize("mistake, match", [
    ("all", "EVERY element equal to its maximum"),
    ("split", "split the window's gradient"),
    ("last", "LAST maximum"),
    ("column", "column-major"),
    ("overwrite", r"SUM of both gradients \(\+=\)"),
])
def test_max_backward_mistakes(mistake, match):
    # Written here, not taken from the checker, so the test does not grade itself.
    def wrong(dout, x, F, S):
        dx = np.zeros_like(x)
        N, C, H2, W2 = dout.shape
        for n, c, i, j in np.ndindex(N, C, H2, W2):
            win = x[n, c, i * S:i * S + F, j * S:j * S + F]
            view = dx[n, c, i * S:i * S + F, j * S:j * S + F]
            g = dout[n, c, i, j]
            mask = win == win.max()
            if mistake == "all":
                view += g * mask
            elif mistake == "split":
                view += g * mask / mask.sum()
            elif mistake == "last":
                p, q = np.argwhere(mask)[-1]
                view[p, q] += g
            elif mistake == "column":
                q, p = np.argwhere(mask.T)[0]
                view[p, q] += g
            else:
                p, q = np.argwhere(mask)[0]
                view[p, q] = g
        return dx

    fails(check.check_max_pool_backward, wrong, match)


def test_max_backward_other_mistakes():
    fails(check.check_max_pool_backward, lambda dout, x, F, S: np.zeros_like(x),
          r"wrong values in dx")
    fails(check.check_max_pool_backward, lambda dout, x, F, S: dout,
          r"dx should have shape the shape of x")
    # the gradient of the forward output with respect to dout, not x: the max values
    fails(check.check_max_pool_backward,
          lambda dout, x, F, S: torch_max_backward(dout, x, F, S) * x, "wrong")


# ------------------------------------------------------------------ recording and re-judging

def test_recorded_answers_are_rejudged_like_the_harness(monkeypatch):
    """Answers round-trip through encode/decode ("ValueError" for a raised ValueError) and
    are judged again from the check's name and params alone."""
    recorded = {}
    monkeypatch.setattr("helpers.checks._core._record",
                        lambda name, params, answers: recorded.update(
                            {name: (params, [encode(a) for a in answers])}))
    check.check_pool_output_size(pool_output_size, seeds=[3, 4])
    check.check_max_pool_forward(torch_max)
    check.check_avg_pool_forward(torch_avg, images=("flower",))
    check.check_max_pool_backward(torch_max_backward, seeds=[5])
    for name in ("pool.output_size", "pool.max_pool_forward", "pool.avg_pool_forward",
                 "pool.max_pool_backward"):
        params, answers = recorded[name]
        REGISTRY[name].rejudge(params, answers)

    params, answers = recorded["pool.output_size"]
    cases = check._size_cases(**params)
    raised = [i for i, c in enumerate(cases) if c.args == (224, 3, 2)]
    assert decode(answers[raised[0]]) == check.RAISED
    floored = list(answers)
    floored[raised[0]] = encode(111)
    with pytest.raises(CheckFailure, match="should raise ValueError"):
        REGISTRY["pool.output_size"].rejudge(params, floored)
    as_float = [encode(float(decode(a))) if decode(a) != check.RAISED else a for a in answers]
    with pytest.raises(CheckFailure, match="should return an int"):
        REGISTRY["pool.output_size"].rejudge(params, as_float)

    params, answers = recorded["pool.max_pool_backward"]
    first = decode(answers[0])
    np.testing.assert_array_equal(first[0, 0], [[1, 0], [0, 0]])  # ties: top-left
    all_max = encode(np.ones((1, 1, 2, 2)))
    with pytest.raises(CheckFailure, match="EVERY element"):
        REGISTRY["pool.max_pool_backward"].rejudge(params, [all_max] + answers[1:])


def test_registered_names_and_attributes_are_unique():
    names = {"pool.output_size", "pool.max_pool_forward", "pool.avg_pool_forward",
             "pool.max_pool_backward"}
    assert names <= set(REGISTRY)
    for attr in ("check_pool_output_size", "check_max_pool_forward", "check_max_pool_backward",
                 "check_avg_pool_forward"):
        assert REGISTRY[getattr(check, attr).name] is getattr(check, attr)
