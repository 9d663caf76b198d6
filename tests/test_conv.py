"""helpers.conv against torch (conv2d, autograd, nn.Conv2d), scipy.signal and the slides."""

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as tF

from helpers.conv import (
    conv2d,
    conv2d_backward,
    conv_params,
    convolve2d,
    cross_correlate2d,
    output_size,
)

METHODS = ["naive", "im2col", "torch"]


def torch_conv(x, w, b, stride, pad):
    t = tF.conv2d(
        torch.from_numpy(x),
        torch.from_numpy(w),
        None if b is None else torch.from_numpy(b),
        stride=stride,
        padding=pad,
    )
    return t.numpy()


def torch_conv_grads(dout, x, w, b, stride, pad):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    out = tF.conv2d(xt, wt, bt, stride=stride, padding=pad)
    out.backward(torch.from_numpy(dout))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def fitting_case(rng, *, N, C, K, F, stride, pad, H_out, W_out):
    """A float64 problem whose H and W are chosen so the filter fits exactly."""
    H = (H_out - 1) * stride + F - 2 * pad
    W = (W_out - 1) * stride + F - 2 * pad
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, F, F))
    b = rng.standard_normal(K)
    return x, w, b


# (N, C, K, F, stride, pad, H_out, W_out): non-square, strides 2/3, padding, 1x1, full-size
CASES = [
    (2, 3, 4, 3, 1, 0, 5, 5),  # the slides' 7x7 input, 3x3 filter, stride 1
    (2, 3, 4, 3, 2, 0, 3, 3),  # ... stride 2
    (2, 3, 4, 3, 1, 1, 7, 7),  # ... pad 1 keeps 7x7
    (1, 3, 10, 5, 1, 2, 8, 6),  # 5x5 filters, pad 2 ("same"), non-square
    (3, 2, 5, 3, 2, 1, 4, 7),  # stride 2, pad 1, non-square
    (2, 4, 3, 3, 3, 0, 3, 5),  # stride 3 (windows do not overlap)
    (2, 2, 3, 2, 3, 0, 3, 4),  # stride > F: some pixels are never seen
    (2, 6, 4, 1, 1, 0, 5, 9),  # 1x1 convolution
    (2, 6, 4, 1, 2, 1, 4, 3),  # 1x1 with stride and padding
    (1, 3, 2, 4, 1, 0, 1, 1),  # filter as large as the input
    (2, 1, 1, 4, 2, 3, 5, 4),  # pad bigger than the filter's overhang
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", CASES)
def test_conv2d_matches_torch(method, case):
    N, C, K, F, S, P, Ho, Wo = case
    x, w, b = fitting_case(np.random.default_rng(sum(case)), N=N, C=C, K=K, F=F, stride=S,
                           pad=P, H_out=Ho, W_out=Wo)
    out = conv2d(x, w, b, stride=S, pad=P, method=method)
    assert out.shape == (N, K, Ho, Wo)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, torch_conv(x, w, b, S, P), rtol=0, atol=1e-10)
    # no bias: torch's bias=None
    np.testing.assert_allclose(
        conv2d(x, w, None, stride=S, pad=P, method=method),
        torch_conv(x, w, None, S, P),
        rtol=0,
        atol=1e-10,
    )


@pytest.mark.parametrize("seed", range(6))
def test_conv2d_random_configurations_match_torch(seed):
    rng = np.random.default_rng(100 + seed)
    F = int(rng.integers(1, 6))
    S = int(rng.integers(1, 4))
    P = int(rng.integers(0, F))
    case = dict(N=int(rng.integers(1, 4)), C=int(rng.integers(1, 5)), K=int(rng.integers(1, 6)),
                F=F, stride=S, pad=P, H_out=int(rng.integers(1, 8)), W_out=int(rng.integers(1, 8)))
    if (case["H_out"] - 1) * S + F - 2 * P < 1 or (case["W_out"] - 1) * S + F - 2 * P < 1:
        case["pad"] = P = 0
    x, w, b = fitting_case(rng, **case)
    expected = torch_conv(x, w, b, S, P)
    for method in ("naive", "im2col"):
        got = conv2d(x, w, b, stride=S, pad=P, method=method)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10, err_msg=method)


@pytest.mark.parametrize("method", METHODS)
def test_conv2d_floor_matches_torch_where_it_does_not_fit(method):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 9))  # 3x3 at stride 3: (7-3)/3+1 = 2.33, (9-3)/3+1 = 3
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    with pytest.raises(ValueError, match=r"stride.*doesn't fit the input height H=7"):
        conv2d(x, w, b, stride=3, method=method)
    out = conv2d(x, w, b, stride=3, method=method, floor=True)
    np.testing.assert_allclose(out, torch_conv(x, w, b, 3, 0), rtol=0, atol=1e-10)
    assert out.shape == (2, 4, 2, 3)


def test_conv2d_int_input_is_float64_and_float32_stays_float32():
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, size=(2, 3, 6, 5))
    w = rng.integers(-2, 3, size=(4, 3, 3, 3))
    for method in METHODS:
        out = conv2d(x, w, method=method)
        assert out.dtype == np.float64, method
        np.testing.assert_array_equal(out, torch_conv(x.astype(float), w.astype(float), None, 1, 0))
    x32 = rng.standard_normal((2, 3, 8, 6)).astype(np.float32)
    w32 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b32 = rng.standard_normal(4).astype(np.float32)
    expected = tF.conv2d(torch.from_numpy(x32).double(), torch.from_numpy(w32).double(),
                         torch.from_numpy(b32).double(), padding=1).numpy()
    for method in METHODS:
        out = conv2d(x32, w32, b32, pad=1, method=method)
        assert out.dtype == np.float32, method
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5, err_msg=method)
    # one float64 operand makes the whole computation float64
    assert conv2d(x32, w32.astype(np.float64), b32).dtype == np.float64


def test_conv2d_is_cross_correlation_of_each_map():
    # one channel, one filter: a conv layer is scipy's correlate2d, not convolve2d
    rng = np.random.default_rng(3)
    image = rng.standard_normal((9, 7))
    kernel = rng.standard_normal((3, 3))
    out = conv2d(image[None, None], kernel[None, None])[0, 0]
    np.testing.assert_allclose(out, scipy.signal.correlate2d(image, kernel, "valid"), atol=1e-12)
    assert not np.allclose(out, scipy.signal.convolve2d(image, kernel, "valid"))


def test_conv2d_hand_computed():
    # 3x3 input, 2x2 filter of ones -> sums of each 2x2 window; bias added once
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    expected = np.array([[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]]) + 10.0
    for method in METHODS:
        np.testing.assert_array_equal(conv2d(x, w, [10.0], method=method)[0, 0], expected)
    # same padding with the 1-pixel zero border: corner sees only the 2x2 inside
    out = conv2d(x, np.ones((1, 1, 3, 3)), pad=1)[0, 0]
    assert out[0, 0] == 0 + 1 + 3 + 4
    assert out[1, 1] == np.arange(9.0).sum()


# --------------------------------------------------------------------------------------
# backward


BACKWARD_CASES = [
    (2, 3, 4, 3, 1, 0, 5, 4),
    (2, 3, 4, 3, 2, 1, 3, 4),  # overlapping windows with padding
    (1, 2, 3, 2, 3, 0, 3, 2),  # stride > F: untouched pixels get 0
    (2, 4, 3, 1, 1, 0, 4, 6),  # 1x1
    (2, 2, 2, 5, 1, 2, 6, 5),  # same padding
    (1, 1, 2, 3, 3, 2, 3, 3),
]


@pytest.mark.parametrize("case", BACKWARD_CASES)
def test_conv2d_backward_matches_torch_autograd(case):
    N, C, K, F, S, P, Ho, Wo = case
    rng = np.random.default_rng(sum(case) + 1)
    x, w, b = fitting_case(rng, N=N, C=C, K=K, F=F, stride=S, pad=P, H_out=Ho, W_out=Wo)
    dout = rng.standard_normal((N, K, Ho, Wo))
    dx, dw, db = conv2d_backward(dout, x, w, stride=S, pad=P)
    tdx, tdw, tdb = torch_conv_grads(dout, x, w, b, S, P)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (K,)
    np.testing.assert_allclose(dx, tdx, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dw, tdw, rtol=0, atol=1e-10)
    np.testing.assert_allclose(db, tdb, rtol=0, atol=1e-10)


def test_conv2d_backward_floor_matches_torch():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2, 8, 7))  # 3x3 at stride 2 pad 0: rows 7 and 6 of H=8 lost
    w = rng.standard_normal((3, 2, 3, 3))
    b = np.zeros(3)
    dout = rng.standard_normal((2, 3, 3, 3))
    with pytest.raises(ValueError, match="stride"):
        conv2d_backward(dout, x, w, stride=2)
    grads = conv2d_backward(dout, x, w, stride=2, floor=True)
    for ours, theirs in zip(grads, torch_conv_grads(dout, x, w, b, 2, 0), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)
    assert np.all(grads.dx[:, :, 7, :] == 0)


def rel_error(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))


def numerical_gradient(f, a, h=1e-5):
    """Centred differences of the scalar function f at array a (a is restored)."""
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + h
        plus = f()
        a[idx] = old - h
        minus = f()
        a[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize(("stride", "pad"), [(1, 1), (2, 0), (2, 2)])
def test_conv2d_backward_numerical_gradient(stride, pad):
    rng = np.random.default_rng(5 + stride + pad)
    x, w, b = fitting_case(rng, N=2, C=2, K=3, F=3, stride=stride, pad=pad, H_out=3, W_out=2)
    out = conv2d(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(out.shape)

    def loss():
        return np.sum(conv2d(x, w, b, stride=stride, pad=pad) * dout)

    dx, dw, db = conv2d_backward(dout, x, w, stride=stride, pad=pad)
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-7
    assert rel_error(dw, numerical_gradient(loss, w)) < 1e-7
    assert rel_error(db, numerical_gradient(loss, b)) < 1e-7


def test_conv2d_backward_keeps_float32():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    dout = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    grads = conv2d_backward(dout, x, w, pad=1)
    assert all(g.dtype == np.float32 for g in grads)
    ref = conv2d_backward(dout.astype(float), x.astype(float), w.astype(float), pad=1)
    for g32, g64 in zip(grads, ref, strict=True):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------
# output_size and conv_params: the slides' worked examples and torch's own arithmetic


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((7, 3, 1, 0), 5),  # 7x7 input, 3x3 filter, stride 1
        ((7, 3, 2, 0), 3),  # stride 2
        ((7, 3, 1, 1), 7),  # pad with 1 pixel border
        ((32, 5, 1, 2), 32),  # 32x32x3 input, 10 5x5 filters, stride 1, pad 2
        ((227, 11, 4, 0), 55),  # AlexNet CONV1
        ((55, 3, 2, 0), 27),  # AlexNet POOL1
        ((27, 5, 1, 2), 27),  # CONV2
        ((27, 3, 2, 0), 13),  # POOL2
        ((13, 3, 2, 0), 6),  # POOL3
        ((32, 5, 1, 0), 28),  # the 28x28 activation maps
    ],
)
def test_output_size_slides(args, expected):
    assert output_size(*args) == expected


def test_output_size_stride_3_does_not_fit():
    with pytest.raises(ValueError, match=r"2\.33 is not an integer.*doesn't fit.*floor=True"):
        output_size(7, 3, stride=3)
    assert output_size(7, 3, stride=3, floor=True) == 2


@pytest.mark.parametrize("F", [1, 3, 5, 7])
def test_same_padding_preserves_size(F):
    for n in (7, 8, 32):
        assert output_size(n, F, 1, (F - 1) // 2) == n


def test_output_size_agrees_with_torch_everywhere():
    # floor=True is torch's formula; floor=False gives the same number exactly when it fits
    for n in range(1, 10):
        for f in range(1, 6):
            for s in range(1, 4):
                for p in range(0, 3):
                    if f > n + 2 * p:
                        continue
                    got = tF.conv2d(torch.zeros(1, 1, n, 1), torch.zeros(1, 1, f, 1),
                                    stride=(s, 1), padding=(p, 0)).shape[2]
                    assert output_size(n, f, s, p, floor=True) == got
                    if p == 0:
                        pooled = tF.max_pool2d(torch.zeros(1, 1, n, f), (f, f), (s, 1))
                        assert output_size(n, f, s, floor=True) == pooled.shape[2]
                    if (n - f + 2 * p) % s == 0:
                        assert output_size(n, f, s, p) == got
                    else:
                        with pytest.raises(ValueError, match="doesn't fit"):
                            output_size(n, f, s, p)


def test_output_size_filter_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"f=9 is larger"):
        output_size(7, 9)
    with pytest.raises(ValueError, match=r"f=9 is larger"):
        output_size(7, 9, floor=True)  # torch refuses too
    with pytest.raises(RuntimeError):
        tF.conv2d(torch.zeros(1, 1, 7, 7), torch.zeros(1, 1, 9, 9))
    assert output_size(7, 9, pad=1) == 1


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(n=7, f=3, stride=0), "stride"),
        (dict(n=7, f=3, stride=-1), "stride"),
        (dict(n=7, f=3, pad=-1), "pad"),
        (dict(n=7.5, f=3), "n"),
        (dict(n=7, f=2.5), "f"),
        (dict(n=7, f=3, stride=1.5), "stride"),
        (dict(n=7, f=3, pad=0.5), "pad"),
        (dict(n=0, f=1), "n"),
        (dict(n=7, f=0), "f"),
    ],
)
def test_output_size_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        output_size(**kwargs)


def test_output_size_rejects_non_numbers():
    with pytest.raises(TypeError, match="stride"):
        output_size(7, 3, stride="2")
    with pytest.raises(TypeError, match="n"):
        output_size(True, 1)


def test_conv_params_slides():
    assert conv_params(5, 3, 10) == 760  # (5*5*3 + 1) * 10
    assert conv_params(11, 3, 96, bias=False) == 34848  # AlexNet CONV1, "35K"
    assert conv_params(11, 3, 96) == 34944


@pytest.mark.parametrize(("f", "d_in", "k"), [(5, 3, 10), (1, 64, 32), (3, 256, 384), (7, 3, 64)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_params_matches_torch_conv2d(f, d_in, k, bias):
    layer = torch.nn.Conv2d(d_in, k, f, bias=bias)
    assert conv_params(f, d_in, k, bias=bias) == sum(p.numel() for p in layer.parameters())


def test_conv_params_bad_input():
    with pytest.raises(ValueError, match="d_in"):
        conv_params(3, 0, 10)
    with pytest.raises(ValueError, match="f"):
        conv_params(2.5, 3, 10)
    with pytest.raises(TypeError, match="bias"):
        conv_params(3, 3, 10, bias="yes")


# --------------------------------------------------------------------------------------
# bad input to conv2d / conv2d_backward


def _xw():
    return np.zeros((2, 3, 7, 7)), np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize(
    ("mutate", "name"),
    [
        (lambda x, w: dict(x=x, w=np.zeros((4, 2, 3, 3))), "channels"),  # C mismatch
        (lambda x, w: dict(x=x, w=w, pad=-1), "pad"),
        (lambda x, w: dict(x=x, w=w, stride=0), "stride"),
        (lambda x, w: dict(x=x, w=w, stride=1.5), "stride"),
        (lambda x, w: dict(x=x, w=w, pad=0.5), "pad"),
        (lambda x, w: dict(x=x[0], w=w), "x"),  # (C, H, W): missing batch axis
        (lambda x, w: dict(x=x, w=w[0]), "w"),
        (lambda x, w: dict(x=x, w=np.zeros((4, 3, 3, 2))), "square"),
        (lambda x, w: dict(x=x, w=w, b=np.zeros(3)), "b"),
        (lambda x, w: dict(x=x, w=w, b=np.zeros((4, 1))), "b"),
        (lambda x, w: dict(x=x, w=w, stride=3), "stride"),  # doesn't fit
        (lambda x, w: dict(x=x, w=np.zeros((4, 3, 9, 9))), "f=9"),  # larger than input
        (lambda x, w: dict(x=x, w=w, method="fft"), "method"),
        (lambda x, w: dict(x=np.full((2, 3, 7, 7), np.nan), w=w), "x"),
    ],
)
def test_conv2d_bad_input(mutate, name):
    x, w = _xw()
    with pytest.raises(ValueError, match=name):
        conv2d(**mutate(x, w))


def test_conv2d_non_square_input_does_not_fit_names_width():
    with pytest.raises(ValueError, match=r"width W=8.*stride"):
        conv2d(np.zeros((1, 1, 7, 8)), np.zeros((1, 1, 3, 3)), stride=2)


def test_conv2d_backward_bad_dout():
    x, w = _xw()
    with pytest.raises(ValueError, match="dout"):
        conv2d_backward(np.zeros((2, 4, 4, 5)), x, w)
    with pytest.raises(ValueError, match="dout"):
        conv2d_backward(np.zeros((2, 4, 5)), x, w)
    with pytest.raises(ValueError, match="channels"):
        conv2d_backward(np.zeros((2, 4, 5, 5)), x, np.zeros((4, 2, 3, 3)))


# --------------------------------------------------------------------------------------
# cross-correlation vs convolution (the f*g formula flips the kernel)


@pytest.mark.parametrize("mode", ["valid", "full", "same"])
@pytest.mark.parametrize("kshape", [(1, 1), (2, 2), (3, 3), (2, 3), (4, 1), (3, 4)])
def test_cross_correlate_and_convolve_match_scipy(mode, kshape):
    rng = np.random.default_rng(sum(kshape))
    image = rng.standard_normal((6, 7))
    kernel = rng.standard_normal(kshape)
    np.testing.assert_allclose(cross_correlate2d(image, kernel, mode),
                               scipy.signal.correlate2d(image, kernel, mode), atol=1e-12)
    np.testing.assert_allclose(convolve2d(image, kernel, mode),
                               scipy.signal.convolve2d(image, kernel, mode), atol=1e-12)


def test_convolution_flips_the_kernel():
    rng = np.random.default_rng(9)
    image = rng.standard_normal((8, 8))
    kernel = rng.standard_normal((3, 3))
    np.testing.assert_allclose(convolve2d(image, kernel),
                               cross_correlate2d(image, kernel[::-1, ::-1]), atol=1e-12)
    assert not np.allclose(convolve2d(image, kernel), cross_correlate2d(image, kernel))
    symmetric = kernel + kernel[::-1, ::-1]  # 180-degree symmetric: no difference
    np.testing.assert_allclose(convolve2d(image, symmetric), cross_correlate2d(image, symmetric),
                               atol=1e-12)


def test_correlate_bad_input():
    with pytest.raises(ValueError, match="kernel"):
        cross_correlate2d(np.zeros((3, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="mode"):
        convolve2d(np.zeros((3, 3)), np.zeros((2, 2)), mode="circular")
    with pytest.raises(ValueError, match="image"):
        convolve2d(np.zeros((3, 3, 1)), np.zeros((2, 2)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_method_runs_on_the_device_asked_and_keeps_the_dtype(dtype):
    # device="cpu" here; the same call with device="cuda" is checked in tests/test_cuda.py
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 2, 7, 7)).astype(dtype)
    w = rng.standard_normal((4, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    out = conv2d(x, w, b, stride=2, pad=1, method="torch", device="cpu")
    assert out.dtype == dtype
    want = torch_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 2, 1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, want, rtol=0, atol=tol)
    np.testing.assert_allclose(conv2d(x, w, b, 2, 1, method="torch", device=torch.device("cpu")),
                               out, rtol=0, atol=0)

