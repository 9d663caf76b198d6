"""The unit 03-convolution checkers: each passes correct answers written independently of
helpers (plain numpy, torch, scipy), rejects plausible mistakes with a message that says what
to fix, and re-judges recorded answers the way the grading harness does."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as tF

from helpers import conv
from helpers.checks import conv as check
from helpers.checks._core import REGISTRY, CheckFailure, decode, encode

# ------------------------------------------------------------------ correct, written plainly


def conv_output_size(N, F, S=1, P=0):
    if F > N + 2 * P or (N - F + 2 * P) % S:
        raise ValueError("doesn't fit")
    return (N - F + 2 * P) // S + 1


def torch_output_size(N, F, S=1, P=0):
    """Ask torch itself: the shape of its output; refuse when torch had to floor."""
    if F > N + 2 * P:
        raise ValueError("larger than the padded input")
    n = tF.conv2d(torch.zeros(1, 1, N, N), torch.zeros(1, 1, F, F), stride=S,
                  padding=P).shape[-1]
    if (n - 1) * S + F != N + 2 * P:  # the last window does not end at the border
        raise ValueError("doesn't fit")
    return n


def conv_layer_params(F, D_in, K, bias=True):
    layer = torch.nn.Conv2d(D_in, K, F, bias=bias)
    return sum(p.numel() for p in layer.parameters())


def conv2d_forward(x, w, b, stride=1, pad=0):
    return tF.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                     stride=stride, padding=pad).numpy()


def conv2d_loops(x, w, b, stride=1, pad=0):
    N, C, H, W = x.shape
    K, _, F, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - F) // stride + 1, (W + 2 * pad - F) // stride + 1
    out = np.zeros((N, K, Ho, Wo))
    for n in range(N):
        for k in range(K):
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, :, i * stride:i * stride + F, j * stride:j * stride + F]
                    out[n, k, i, j] = (patch * w[k]).sum() + b[k]
    return out


def same_padding(F):
    if F % 2 == 0:
        raise ValueError("even")
    return (F - 1) // 2


def conv1x1(x, w):
    N, C, H, W = x.shape
    return (w @ x.transpose(1, 0, 2, 3).reshape(C, -1)).reshape(len(w), N, H, W).transpose(
        1, 0, 2, 3)


def flip_kernel(kernel):
    return np.rot90(kernel, 2)


def convolve_via_correlate(image, kernel):
    return scipy.signal.correlate2d(image, np.rot90(kernel, 2), mode="valid")


HIDDEN_SEEDS = range(100, 140)


def test_correct_answers_pass_visible_and_hidden():
    for fn in (conv_output_size, torch_output_size, conv.output_size):
        check.check_conv_output_size(fn)
        check.check_conv_output_size(fn, seeds=HIDDEN_SEEDS, slides=False)
    check.check_conv_layer_params(conv_layer_params)
    check.check_conv_layer_params(conv_layer_params, seeds=range(100, 120), slides=False)
    check.check_conv_layer_params(conv.conv_params, seeds=range(100, 120))
    for fn in (conv2d_forward, conv2d_loops):
        check.check_conv2d_forward(fn)
        check.check_conv2d_forward(fn, seeds=range(100, 112))
    check.check_same_padding(same_padding, sizes=(1, 3, 5, 7, 2))
    check.check_same_padding(same_padding, sizes=(4, 6, 9, 11, 13))
    check.check_same_padding(lambda F: float((F - 1) // 2) if F % 2 else same_padding(F))
    check.check_conv1x1(conv1x1)
    check.check_conv1x1(conv1x1, seeds=range(100, 110))
    check.check_conv1x1(lambda x, w: torch.einsum("kc,nchw->nkhw", torch.from_numpy(w),
                                                   torch.from_numpy(x)))  # a tensor is fine
    check.check_flip_kernel(flip_kernel)
    check.check_flip_kernel(flip_kernel, seeds=range(100, 108), rectangular=True)
    check.check_flip_kernel(lambda k: k[::-1, ::-1].tolist())  # a nested list too
    check.check_convolve_via_correlate(convolve_via_correlate)
    check.check_convolve_via_correlate(convolve_via_correlate, seeds=range(100, 108),
                                       rectangular=True)


def test_cases_cover_what_the_exercises_promise():
    """Hidden output-size cases include fitting, non-fitting and too-large filters; the
    conv2d cases include non-square inputs, strides 1..3, paddings and 1x1 filters."""
    kinds = set()
    for case in check._size_cases(seeds=HIDDEN_SEEDS, slides=False):
        N, F, S, P = case.args
        if F > N + 2 * P:
            kinds.add("too large")
        else:
            kinds.add("fits" if (N - F + 2 * P) % S == 0 else "doesn't fit")
    assert kinds == {"fits", "doesn't fit", "too large"}
    args = [c.args for c in check._conv_cases(seeds=range(100, 112))]
    assert any(x.shape[2] != x.shape[3] for x, *_ in args)
    assert {s for *_, s, _ in args} == {1, 2, 3}
    assert {p for *_, p in args} >= {0, 1, 2}
    assert any(w.shape[2] == 1 for _, w, *_ in args)
    assert any(c.args[0].shape[0] != c.args[0].shape[1]
               for c in check._flip_cases(seeds=range(100, 108), rectangular=True)[1:])


def test_same_cases_are_recreated_identically():
    """Cases come only from their JSON parameters, so the grader's process builds the
    same problems as the student's kernel did."""
    a = check._conv_cases(seeds=[3, 4])
    b = check._conv_cases(seeds=[3, 4])
    for ca, cb in zip(a, b):
        for u, v in zip(ca.args, cb.args):
            np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------ plausible mistakes

def fails(chk, fn, match, **params):
    with pytest.raises(CheckFailure, match=match):
        chk(fn, **params)


def test_output_size_mistakes():
    def floors(N, F, S=1, P=0):  # torch's behaviour
        return (N - F + 2 * P) // S + 1

    fails(check.check_conv_output_size, floors, "should raise ValueError")

    def no_padding(N, F, S=1, P=0):
        return conv_output_size(N, F, S, 0)

    fails(check.check_conv_output_size, no_padding, "should be|raised ValueError")

    def one_side_padding(N, F, S=1, P=0):
        return conv_output_size(N + P, F, S, 0)

    fails(check.check_conv_output_size, one_side_padding, "should be|raised ValueError")

    def float_result(N, F, S=1, P=0):  # returns 2.33 instead of refusing
        return (N - F + 2 * P) / S + 1

    fails(check.check_conv_output_size, float_result, "should raise ValueError")

    def no_size_check(N, F, S=1, P=0):  # a filter larger than the input "fits" negatively
        if (N - F + 2 * P) % S:
            raise ValueError("doesn't fit")
        return (N - F + 2 * P) // S + 1

    fails(check.check_conv_output_size, no_size_check, "larger than the padded input")

    def wrong_exception(N, F, S=1, P=0):
        assert (N - F + 2 * P) % S == 0, "doesn't fit"
        return conv_output_size(N, F, S, P)

    fails(check.check_conv_output_size, wrong_exception, "raised AssertionError")

    def always_raises(N, F, S=1, P=0):
        raise ValueError("nope")

    fails(check.check_conv_output_size, always_raises, "but the filter fits")
    # Random cases catch the same mistakes: a student cannot pass by special-casing slides.
    fails(check.check_conv_output_size, floors, "should raise", seeds=HIDDEN_SEEDS,
          slides=False)
    fails(check.check_conv_output_size, no_size_check, "larger", seeds=HIDDEN_SEEDS,
          slides=False)


def test_layer_params_mistakes():
    fails(check.check_conv_layer_params, lambda F, D, K, bias=True: F * F * D * K, "biases")
    fails(check.check_conv_layer_params,
          lambda F, D, K, bias=True: F * F * D * K + K, "biases")  # ignores bias=False
    fails(check.check_conv_layer_params,
          lambda F, D, K, bias=True: F * F * D + (1 if bias else 0), "one filter")
    fails(check.check_conv_layer_params,
          lambda F, D, K, bias=True: (F * F + (1 if bias else 0)) * K, "should be")
    fails(check.check_conv_layer_params, lambda F, D, K, bias=True: "760", "number")


def test_conv2d_forward_mistakes():
    fails(check.check_conv2d_forward,
          lambda x, w, b, s=1, p=0: conv2d_loops(x, w, np.zeros_like(b), s, p), "bias")
    fails(check.check_conv2d_forward,  # ignores the stride
          lambda x, w, b, s=1, p=0: conv2d_loops(x, w, b, 1, p), "shape")

    def flipped(x, w, b, s=1, p=0):  # the mathematical convolution, not the layer's
        return conv2d_loops(x, w[:, :, ::-1, ::-1].copy(), b, s, p)

    fails(check.check_conv2d_forward, flipped, "wrong values")

    def one_channel(x, w, b, s=1, p=0):  # filters must span the full depth
        return conv2d_loops(x[:, :1], w[:, :1], b, s, p)

    fails(check.check_conv2d_forward, one_channel, "wrong values", seeds=range(100, 112))

    def square_only(x, w, b, s=1, p=0):  # uses H for both dimensions
        H = x.shape[2]
        return conv2d_loops(x[:, :, :, :H] if x.shape[3] > H else x, w, b, s, p)

    fails(check.check_conv2d_forward, square_only, "shape", seeds=range(100, 112))

    def pads_once(x, w, b, s=1, p=0):  # pads one side only
        xp = np.pad(x, ((0, 0), (0, 0), (p, 0), (p, 0)))
        return conv2d_loops(xp, w, b, s, 0)

    fails(check.check_conv2d_forward, pads_once, "shape|wrong values", seeds=range(100, 112))


def test_same_padding_mistakes():
    fails(check.check_same_padding, lambda F: F // 2, "even filter", sizes=(1, 3, 5, 7, 2))
    fails(check.check_same_padding, lambda F: (F - 1) / 2, "even filter|whole number",
          sizes=(3, 4))
    fails(check.check_same_padding, lambda F: F - 1, "should be")
    fails(check.check_same_padding, lambda F: same_padding(F + 1), "raised ValueError")


def test_conv1x1_mistakes():
    fails(check.check_conv1x1, lambda x, w: np.einsum("ck,nchw->nkhw", w.T[::-1], x),
          "wrong values|shape|raised")
    fails(check.check_conv1x1, lambda x, w: np.einsum("kc,nchw->nchw", w, x), "shape|raised")
    fails(check.check_conv1x1, lambda x, w: np.einsum("kc,nchw->nkhw", np.abs(w), x),
          "wrong values")


def test_conv1x1_reshape_without_moving_channels_first_hints_the_transpose():
    def no_transpose(x, w):  # x.reshape(C, -1) mixes images and channels when N > 1
        N, C, H, W = x.shape
        return (w @ x.reshape(C, -1)).reshape(N, len(w), H, W)

    fails(check.check_conv1x1, no_transpose, r"C is not the first axis.*transpose\(1, 0, 2, 3\)")


def test_convolve_without_flip_shows_got_and_expected():
    with pytest.raises(CheckFailure) as info:
        check.check_convolve_via_correlate(
            lambda im, k: scipy.signal.correlate2d(im, k, mode="valid"))
    message = str(info.value)
    assert "did you flip the kernel?" in message
    assert "got " in message and "expected " in message
    fails(check.check_convolve_via_correlate,
          lambda im, k: scipy.signal.correlate2d(im, k[:, ::-1], mode="valid"),
          "columns only", seeds=range(100, 108), rectangular=True)
    fails(check.check_convolve_via_correlate,
          lambda im, k: 2 * scipy.signal.convolve2d(im, k, mode="valid"),
          r"got .*expected .*did you flip the kernel \(rows and columns\)")


def test_flip_and_convolve_mistakes():
    fails(check.check_flip_kernel, lambda k: k[::-1], "only the rows")
    fails(check.check_flip_kernel, lambda k: k[:, ::-1], "only the columns")
    fails(check.check_flip_kernel, lambda k: k.T, "transpose")

    def in_place(k):
        k[:] = k[::-1, ::-1].copy()
        return k

    fails(check.check_flip_kernel, in_place, "modified its input")
    fails(check.check_convolve_via_correlate,
          lambda im, k: scipy.signal.correlate2d(im, k, mode="valid"), "cross-correlation")
    fails(check.check_convolve_via_correlate,
          lambda im, k: scipy.signal.convolve2d(im, k, mode="same"), "shape")
    fails(check.check_convolve_via_correlate,
          lambda im, k: scipy.signal.correlate2d(im, k[::-1], mode="valid"), "wrong values",
          seeds=range(100, 108), rectangular=True)


def test_unfinished_answers():
    def todo(*args, **kwargs):
        raise NotImplementedError()

    for chk in (check.check_conv_output_size, check.check_conv_layer_params,
                check.check_conv2d_forward, check.check_same_padding, check.check_conv1x1,
                check.check_flip_kernel, check.check_convolve_via_correlate):
        with pytest.raises(CheckFailure, match="not implemented yet"):
            chk(todo)
    with pytest.raises(CheckFailure, match="should be a function"):
        check.check_conv_output_size(5)


def test_recorded_answers_are_rejudged_like_the_harness(monkeypatch):
    """A raised ValueError is recorded as "ValueError" and judged again from the check's name
    and params alone, as the grading harness does outside the student's kernel."""
    recorded = {}
    monkeypatch.setattr("helpers.checks._core._record",
                        lambda name, params, answers: recorded.update(
                            {name: (params, [encode(a) for a in answers])}))
    check.check_conv_output_size(conv_output_size)
    check.check_same_padding(same_padding, sizes=(3, 4))
    check.check_conv2d_forward(conv2d_forward)
    check.check_flip_kernel(flip_kernel)
    for name in ("conv.output_size", "conv.same_padding", "conv.conv2d_forward",
                 "conv.flip_kernel"):
        params, answers = recorded[name]
        REGISTRY[name].rejudge(params, answers)
    params, answers = recorded["conv.output_size"]
    stride3 = [c.args for c in check._size_cases(**params)].index((7, 3, 3, 0))
    assert decode(answers[stride3]) == check.RAISED
    floored = list(answers)
    floored[stride3] = encode(2)
    with pytest.raises(CheckFailure, match="should raise ValueError"):
        REGISTRY["conv.output_size"].rejudge(params, floored)
    params, answers = recorded["conv.same_padding"]
    with pytest.raises(CheckFailure, match="even filter"):
        REGISTRY["conv.same_padding"].rejudge(params, [answers[0], encode(2)])
