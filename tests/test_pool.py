"""helpers.pool against torch (F.max_pool2d, F.avg_pool2d, autograd) and the slides."""

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from helpers.conv import output_size
from helpers.pool import avg_pool2d, max_pool2d, max_pool2d_backward

SLIDE = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])


def torch_max_grad(dout, x, size, stride):
    xt = torch.tensor(x, requires_grad=True)
    tF.max_pool2d(xt, size, stride).backward(torch.from_numpy(dout))
    return xt.grad.numpy()


def fitting_input(rng, N, C, size, stride, H_out, W_out, *, ties=False):
    shape = (N, C, (H_out - 1) * stride + size, (W_out - 1) * stride + size)
    if ties:  # few distinct values: most windows have several maxima
        return rng.integers(0, 3, size=shape).astype(np.float64)
    return rng.standard_normal(shape)


# (N, C, size, stride, H_out, W_out)
CASES = [
    (2, 3, 2, 2, 4, 4),  # the common setting F=2, S=2
    (2, 3, 3, 2, 4, 5),  # F=3, S=2: overlapping windows (AlexNet)
    (1, 4, 2, 1, 5, 3),  # stride 1
    (2, 2, 3, 3, 3, 2),  # F=3, S=3
    (2, 2, 2, 3, 3, 4),  # stride > size: gaps
    (1, 2, 1, 1, 4, 6),  # 1x1 window = identity
    (3, 1, 4, 2, 2, 5),  # non-square
    (1, 1, 5, 1, 1, 1),  # window = whole map
]


def test_slide_example():
    out = max_pool2d(SLIDE[None, None], size=2, stride=2)
    np.testing.assert_array_equal(out[0, 0], [[6, 8], [3, 4]])
    expected = tF.max_pool2d(torch.tensor(SLIDE, dtype=torch.float64)[None, None], 2, 2)
    np.testing.assert_array_equal(out, expected.numpy())
    # pooling keeps the depth: several maps are pooled independently
    stack = np.stack([SLIDE, -SLIDE, 2 * SLIDE])[None]
    out = max_pool2d(stack)
    assert out.shape == (1, 3, 2, 2)
    np.testing.assert_array_equal(out[0, 2], [[12, 16], [6, 8]])
    np.testing.assert_array_equal(out[0, 1], [[-1, -2], [-1, 0]])


@pytest.mark.parametrize("case", CASES)
def test_max_and_avg_pool_match_torch(case):
    N, C, F, S, Ho, Wo = case
    x = fitting_input(np.random.default_rng(sum(case)), N, C, F, S, Ho, Wo)
    xt = torch.from_numpy(x)
    out = max_pool2d(x, F, S)
    assert out.shape == (N, C, Ho, Wo) and out.dtype == np.float64
    np.testing.assert_array_equal(out, tF.max_pool2d(xt, F, S).numpy())
    avg = avg_pool2d(x, F, S)
    assert avg.shape == (N, C, Ho, Wo) and avg.dtype == np.float64
    np.testing.assert_allclose(avg, tF.avg_pool2d(xt, F, S).numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_backward_matches_torch_autograd(case, ties):
    N, C, F, S, Ho, Wo = case
    rng = np.random.default_rng(sum(case) + 17)
    x = fitting_input(rng, N, C, F, S, Ho, Wo, ties=ties)
    dout = rng.standard_normal((N, C, Ho, Wo))
    dx = max_pool2d_backward(dout, x, F, S)
    assert dx.shape == x.shape and dx.dtype == np.float64
    np.testing.assert_allclose(dx, torch_max_grad(dout, x, F, S), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES[:4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_method_on_the_cpu_equals_the_reference(case, dtype):
    # method="torch" runs torch's functions on `device` (the GPU run: tests/test_cuda.py);
    # on the CPU it must give the reference's numbers, ties included, in the dtype given.
    N, C, F, S, Ho, Wo = case
    rng = np.random.default_rng(sum(case) + 3)
    x = fitting_input(rng, N, C, F, S, Ho, Wo, ties=True).astype(dtype)
    dout = rng.standard_normal((N, C, Ho, Wo)).astype(dtype)
    for fn in (max_pool2d, avg_pool2d):
        out = fn(x, F, S, method="torch", device="cpu")
        assert out.dtype == dtype
        np.testing.assert_allclose(out, fn(x, F, S), rtol=1e-6, atol=0)
    dx = max_pool2d_backward(dout, x, F, S, method="torch", device="cpu")
    assert dx.dtype == dtype
    # same element per window (ties too); overlapping windows may add in another order
    np.testing.assert_allclose(dx, max_pool2d_backward(dout, x, F, S), rtol=1e-6, atol=1e-12)
    with pytest.raises(ValueError, match="doesn't fit"):
        max_pool2d(np.ones((1, 1, 5, 5)), 2, 2, method="torch")
    np.testing.assert_array_equal(max_pool2d(x, 3, 2, floor=True, method="torch"),
                                  max_pool2d(x, 3, 2, floor=True))


def test_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.array([[[[1.0, 5.0, 5.0],
                    [5.0, 2.0, 5.0],
                    [5.0, 5.0, 5.0]]]])
    dx = max_pool2d_backward(np.ones((1, 1, 2, 2)), x, size=2, stride=1)
    # windows: top-left -> (0,1); top-right -> (0,1); bottom-left -> (1,0); bottom-right -> (1,2)
    expected = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(dx[0, 0], expected)
    np.testing.assert_array_equal(dx, torch_max_grad(np.ones((1, 1, 2, 2)), x, 2, 1))
    # the whole gradient of a window goes to one element, never split
    flat = np.full((1, 1, 2, 2), 7.0)
    np.testing.assert_array_equal(max_pool2d_backward(np.array([[[[3.0]]]]), flat)[0, 0],
                                  [[3.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize(("size", "stride"), [(2, 2), (3, 2), (2, 1)])
def test_max_pool_backward_numerical_gradient(size, stride):
    rng = np.random.default_rng(size * 10 + stride)
    # distinct values, far apart compared with h, so no argmax moves under the nudge
    shape = fitting_input(rng, 2, 2, size, stride, 3, 2).shape
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.1
    dout = rng.standard_normal(max_pool2d(x, size, stride).shape)
    h = 1e-5
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = np.sum(max_pool2d(x, size, stride) * dout)
        x[idx] = old - h
        minus = np.sum(max_pool2d(x, size, stride) * dout)
        x[idx] = old
        num[idx] = (plus - minus) / (2 * h)
    dx = max_pool2d_backward(dout, x, size, stride)
    rel = np.max(np.abs(dx - num) / np.maximum(1e-8, np.abs(dx) + np.abs(num)))
    assert rel < 1e-7


@pytest.mark.parametrize(("n", "size", "stride", "expected"), [
    (55, 3, 2, 27),  # AlexNet POOL1: 55x55x96 -> 27x27x96
    (27, 3, 2, 13),  # POOL2
    (13, 3, 2, 6),  # POOL3
    (4, 2, 2, 2),  # the slide's 4x4 example
    (224, 2, 2, 112),
])
def test_output_shape_is_the_conv_formula_without_padding(n, size, stride, expected):
    x = np.zeros((1, 2, n, n + stride))  # non-square
    assert output_size(n, size, stride) == expected
    assert max_pool2d(x, size, stride).shape == (1, 2, expected, expected + 1)
    assert avg_pool2d(x, size, stride).shape == (1, 2, expected, expected + 1)


def test_does_not_fit_raises_and_floor_matches_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 8))  # size 2 stride 2: (7-2)/2+1 = 3.5 on H
    dout = rng.standard_normal((2, 3, 3, 4))
    for fn in (max_pool2d, avg_pool2d):
        with pytest.raises(ValueError, match=r"stride.*doesn't fit the input height H=7"):
            fn(x)
    with pytest.raises(ValueError, match="stride"):
        max_pool2d_backward(dout, x)
    xt = torch.from_numpy(x)
    np.testing.assert_array_equal(max_pool2d(x, floor=True), tF.max_pool2d(xt, 2, 2).numpy())
    np.testing.assert_allclose(avg_pool2d(x, floor=True), tF.avg_pool2d(xt, 2, 2).numpy(),
                               atol=1e-12)
    dx = max_pool2d_backward(dout, x, floor=True)
    np.testing.assert_array_equal(dx, torch_max_grad(dout, x, 2, 2))
    assert np.all(dx[:, :, 6] == 0)  # the ignored last row gets no gradient


def test_float32_stays_float32():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 6, 8)).astype(np.float32)
    xt = torch.from_numpy(x)
    out = max_pool2d(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, tF.max_pool2d(xt, 2, 2).numpy())
    avg = avg_pool2d(x, 3, 1)
    assert avg.dtype == np.float32
    np.testing.assert_allclose(avg, tF.avg_pool2d(xt, 3, 1).numpy(), rtol=1e-6, atol=1e-6)
    dout = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    dx = max_pool2d_backward(dout, x)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, torch_max_grad(dout, x, 2, 2))
    assert max_pool2d(SLIDE[None, None]).dtype == np.float64  # ints -> float64


def test_max_pool_is_a_fixed_function_of_its_input():
    # no parameters: pooling commutes with positive scaling and with adding a constant
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 4))
    np.testing.assert_array_equal(max_pool2d(3 * x), 3 * max_pool2d(x))
    np.testing.assert_allclose(max_pool2d(x + 5), max_pool2d(x) + 5, atol=1e-12)
    np.testing.assert_allclose(avg_pool2d(2 * x + 1), 2 * avg_pool2d(x) + 1, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(x=np.zeros((4, 4))), "x"),  # missing N and C axes
        (dict(x=np.zeros((3, 4, 4))), "x"),
        (dict(x=np.zeros((4, 4)).tolist()), "x"),
        (dict(x=np.zeros((1, 1, 4, 4)), size=0), "size"),
        (dict(x=np.zeros((1, 1, 4, 4)), size=2.5), "size"),
        (dict(x=np.zeros((1, 1, 4, 4)), stride=0), "stride"),
        (dict(x=np.zeros((1, 1, 4, 4)), stride=1.5), "stride"),
        (dict(x=np.zeros((1, 1, 4, 4)), size=5), "size=5"),  # window larger than the map
        (dict(x=np.zeros((1, 1, 4, 4)), size=3), "stride"),  # (4-3)/2+1 doesn't fit
        (dict(x=np.full((1, 1, 4, 4), np.inf)), "x"),
    ],
)
@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
def test_bad_input(fn, kwargs, name):
    with pytest.raises(ValueError, match=name):
        fn(**kwargs)


def test_backward_bad_dout():
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="dout"):
        max_pool2d_backward(np.zeros((1, 2, 3, 2)), x)
    with pytest.raises(ValueError, match="dout"):
        max_pool2d_backward(np.zeros((2, 2, 2)), x)
