"""Every torch backend on a real CUDA GPU against the CPU reference (marker ``cuda``).

Skipped where CUDA is unavailable (this is most machines, the CI one included): run
``pytest -m cuda tests/test_cuda.py`` on a GPU machine. Tolerances follow the one dtype
rule (helpers.device): float32 on the GPU, so K-Means and conv agree with the float64
reference to float32 rounding, DBSCAN and pooling exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def blobs(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    return 6 * rng.standard_normal((k, d))[rng.integers(k, size=n)] + rng.standard_normal((n, d))


def test_device_resolution_on_this_machine():
    from helpers.device import resolve_device, torch_dtype_for

    count = torch.cuda.device_count()
    assert resolve_device("cuda:0").type == "cuda"
    assert torch_dtype_for(resolve_device("cuda")) == torch.float32
    with pytest.raises(ValueError, match=f"{count} CUDA GPU"):
        resolve_device(f"cuda:{count}")


def test_kmeans_on_the_gpu_agrees_with_the_reference():
    from helpers.clustering import kmeans

    X = blobs(50_000, 8, 12)
    init = X[np.random.default_rng(1).choice(len(X), 12, replace=False)]
    cpu = kmeans(X, 12, init=init, max_iter=30)
    gpu = kmeans(X, 12, init=init, max_iter=30, backend="torch", device="cuda")
    # float32 distances can flip a point that is almost equally far from two centers
    assert np.mean(gpu.labels == cpu.labels) > 0.999
    np.testing.assert_allclose(gpu.centers, cpu.centers, rtol=0, atol=1e-3)
    assert gpu.inertia == pytest.approx(cpu.inertia, rel=1e-4)


def test_kmeans_gpu_relocates_empty_clusters():
    from helpers.clustering import kmeans

    X = np.concatenate([np.zeros((50, 2)), np.ones((50, 2)) * 10])
    init = np.array([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]])  # the third starts empty
    r = kmeans(X, 3, init=init, backend="torch", device="cuda")
    assert np.isfinite(r.centers).all() and len(np.unique(r.labels)) == 3


@pytest.mark.parametrize("eps", [1.0, 2**0.5])
def test_dbscan_on_the_gpu_keeps_exact_labels(eps):
    from sklearn.cluster import DBSCAN

    from helpers.clustering import dbscan

    rng = np.random.default_rng(0)
    grid = np.array(np.meshgrid(np.arange(40), np.arange(40))).reshape(2, -1).T.astype(float)
    grid = grid[rng.random(len(grid)) > 0.3] + 1e3  # exact ties at eps everywhere
    for X in (grid, blobs(5000, 2, 6) / 10):
        for ms in (3, 5):
            got = dbscan(X, eps if X is grid else 0.15, ms, backend="torch", device="cuda")
            want = DBSCAN(eps=eps if X is grid else 0.15, min_samples=ms).fit(X)
            np.testing.assert_array_equal(got.labels, want.labels_)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 5e-3), (np.float64, 1e-12)])
def test_conv2d_on_the_gpu(dtype, tol):
    from helpers.conv import conv2d

    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 3, 32, 32)).astype(dtype)
    w = rng.standard_normal((8, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    gpu = conv2d(x, w, b, pad=1, method="torch", device="cuda")
    assert gpu.dtype == dtype
    # cuDNN may use TF32 (10-bit mantissa) for float32 convolutions: error relative to
    # the largest output, 5e-3 for float32, 1e-12 for float64 (no TF32 there)
    ref = conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), pad=1)
    assert np.abs(gpu - ref).max() <= tol * np.abs(ref).max()


def test_pooling_on_the_gpu_is_exact():
    from helpers.pool import avg_pool2d, max_pool2d, max_pool2d_backward

    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(8, 4, 12, 12)).astype(np.float32)  # many tied maxima
    dout = rng.standard_normal((8, 4, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(max_pool2d(x, method="torch", device="cuda"), max_pool2d(x))
    np.testing.assert_allclose(avg_pool2d(x, method="torch", device="cuda"), avg_pool2d(x),
                               rtol=1e-6)
    np.testing.assert_array_equal(
        max_pool2d_backward(dout, x, method="torch", device="cuda"),
        max_pool2d_backward(dout, x))


def test_train_and_predict_on_the_gpu():
    from helpers.data import load_digits_images
    from helpers.models import lenet5
    from helpers.train import predict, train

    d = load_digits_images(seed=0)
    r = train(lambda: lenet5(input_size=8), d, epochs=3, lr=3e-3, device="cuda",
              progress=False)
    assert r.device.startswith("cuda")
    assert next(r.model.parameters()).device.type == "cuda"
    assert r.test_accuracy[-1] > 0.8
    on_gpu = predict(r.model, d.X_test)
    on_cpu = predict(r.model.cpu(), d.X_test, device="cpu")
    assert np.mean(on_gpu == on_cpu) > 0.99
