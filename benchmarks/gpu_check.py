"""Every torch backend on the GPU against its CPU result, with the speed-ups.

    python benchmarks/gpu_check.py            # on a CUDA machine (about 2-3 minutes on an H100)
    python benchmarks/gpu_check.py --smoke    # tiny sizes, "GPU" = the CPU: checks the script

On a machine without CUDA it says so and exits 0 (this file is not named bench_*, so
`make bench` does not run it). It exits 1 when a GPU result disagrees with the CPU one.

What runs (CPU = what a user gets without a GPU; GPU times include copying the numpy
input to the device and the result back, as the functions do):

- K-Means, 1,000,000 x 64, k=256, 10 Lloyd iterations from the same init: the numpy
  reference vs ``backend="torch", device="cuda"`` (float32: labels may differ where a point
  is nearly equally far from two centers; at least 99.9% must agree).
- DBSCAN, 100,000 points (benchmarks/bench_dbscan.py's "scaled" set): the numpy grid
  reference vs the torch brute force on the GPU; labels must be identical.
- conv2d on 256 CIFAR-sized images (3x32x32, 64 filters 3x3, pad 1), float32: im2col and
  torch on the CPU vs ``method="torch", device="cuda"``; max pooling on its output.
- Training: LeNet-5 on the digits (resized to 32x32, as unit 06 does), 3 epochs, and
  ResNet-20 (He et al.'s CIFAR net) for 1 epoch on 4,096 random CIFAR-sized images: CPU vs
  GPU images per second; the LeNet accuracies must both be high (not equal: the GPU's
  kernels add in another order).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np


def timed(fn, device):
    """(result, seconds) of one call, waiting for the GPU to finish."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def check_kmeans(dev, smoke):
    from helpers.clustering import kmeans

    n, d, k = (20_000, 8, 16) if smoke else (1_000_000, 64, 256)
    rng = np.random.default_rng(0)
    X = 4 * rng.standard_normal((k, d))[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    init = X[rng.choice(n, k, replace=False)]
    run = dict(init=init, max_iter=10, tol=0.0)
    kmeans(X[:5000], k, init=init, max_iter=2, backend="torch", device=dev)  # warm-up
    cpu, t_cpu = timed(lambda: kmeans(X, k, **run), "cpu")
    gpu, t_gpu = timed(lambda: kmeans(X, k, backend="torch", device=dev, **run), dev)
    same = float(np.mean(gpu.labels == cpu.labels))
    ok = same >= 0.999 and math.isclose(gpu.inertia, cpu.inertia, rel_tol=1e-4)
    return (f"K-Means {n:,} x {d}, k={k}, 10 iter", "numpy", t_cpu, t_gpu, ok,
            f"labels agree {100 * same:.3f}%, inertia rel. diff "
            f"{abs(gpu.inertia - cpu.inertia) / cpu.inertia:.1e}")


def check_dbscan(dev, smoke):
    from helpers.clustering import dbscan
    from helpers.data import toy_2d

    n, eps, min_samples = (5_000, 0.3, 10) if smoke else (100_000, 0.3, 10)
    X, _ = toy_2d("blobs_noise", n, seed=0)
    X = X * math.sqrt((n / 10) * math.pi * eps**2 / (64 * 2.0))  # bench_dbscan's "scaled"
    dbscan(X[:2000], eps, min_samples, backend="torch", device=dev)  # warm-up
    cpu, t_cpu = timed(lambda: dbscan(X, eps, min_samples), "cpu")
    gpu, t_gpu = timed(lambda: dbscan(X, eps, min_samples, backend="torch", device=dev), dev)
    ok = np.array_equal(gpu.labels, cpu.labels) and np.array_equal(gpu.core_mask,
                                                                   cpu.core_mask)
    return (f"DBSCAN {n:,} points", "numpy grid", t_cpu, t_gpu, ok,
            f"labels identical: {ok} ({cpu.n_clusters} clusters)")


def check_conv(dev, smoke):
    from helpers.conv import conv2d
    from helpers.pool import max_pool2d

    rng = np.random.default_rng(1)
    x = rng.standard_normal((32 if smoke else 256, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((64, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    rows = []
    for _ in range(2):  # warm-up (cuDNN picks its algorithm), then timed
        ref, t_im2col = timed(lambda: conv2d(x, w, b, pad=1), "cpu")
        _, t_torch = timed(lambda: conv2d(x, w, b, pad=1, method="torch"), "cpu")
        gpu, t_gpu = timed(lambda: conv2d(x, w, b, pad=1, method="torch", device=dev), dev)
    # float32 convolutions may use TF32 on the GPU (10-bit mantissa): relative tolerance
    err = float(np.abs(gpu - ref).max() / np.abs(ref).max())
    ok = err < 5e-3
    rows.append((f"conv2d {x.shape[0]}x3x32x32, 64 3x3", "im2col", t_im2col, t_gpu, ok,
                 f"max rel. error {err:.1e}"))
    rows.append(("  same", "torch CPU", t_torch, t_gpu, ok, ""))
    for _ in range(2):
        pref, t_cpu = timed(lambda: max_pool2d(ref), "cpu")
        pgpu, t_pool = timed(lambda: max_pool2d(ref, method="torch", device=dev), dev)
    ok = np.array_equal(pref, pgpu)
    rows.append((f"max_pool2d {ref.shape[0]}x64x32x32", "numpy", t_cpu, t_pool, ok,
                 f"identical: {ok}"))
    return rows


def check_training(dev, smoke):
    import torch

    from helpers.data import load_digits_images
    from helpers.models import cifar_resnet, lenet5
    from helpers.train import resize_images, train

    d = load_digits_images(seed=0)
    digits = (resize_images(d.X_train, 32), d.y_train, resize_images(d.X_test, 32), d.y_test)
    rng = np.random.default_rng(2)
    m = 256 if smoke else 4096
    cifar = (rng.standard_normal((m, 3, 32, 32)).astype(np.float32), rng.integers(10, size=m),
             rng.standard_normal((256, 3, 32, 32)).astype(np.float32), rng.integers(10, size=256))
    rows = []
    torch.manual_seed(0)
    for name, build, data, epochs in [("LeNet-5, digits 32x32", lenet5, digits, 3),
                                      ("ResNet-20, CIFAR-sized", lambda: cifar_resnet(20),
                                       cifar, 1)]:
        kw = dict(epochs=epochs, lr=2e-3, batch_size=128, progress=False)
        train(build, (data[0][:256], data[1][:256], data[2][:64], data[3][:64]), epochs=1,
              device=dev, progress=False)  # warm-up
        cpu, t_cpu = timed(lambda b=build, x=data, k=kw: train(b, x, device="cpu", **k), "cpu")
        gpu, t_gpu = timed(lambda b=build, x=data, k=kw: train(b, x, device=dev, **k), dev)
        images = epochs * len(data[0])
        if name.startswith("LeNet"):
            ok = min(cpu.test_accuracy[-1], gpu.test_accuracy[-1]) > (0.5 if smoke else 0.9)
            detail = (f"test accuracy CPU {cpu.test_accuracy[-1]:.3f}, GPU "
                      f"{gpu.test_accuracy[-1]:.3f}")
        else:
            ok = all(math.isfinite(v) for v in cpu.train_loss + gpu.train_loss)
            detail = f"loss CPU {cpu.train_loss[-1]:.3f}, GPU {gpu.train_loss[-1]:.3f}"
        rows.append((f"{name}, {epochs} ep", f"{images / t_cpu:,.0f} img/s", t_cpu, t_gpu, ok,
                     f"GPU {images / t_gpu:,.0f} img/s; {detail}"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes with the CPU standing in for the GPU")
    args = parser.parse_args()
    import torch

    if args.smoke:
        dev = "cpu"
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here (torch.cuda.is_available() is False), so there is "
              "nothing to check. Run it on a CUDA machine; `--smoke` exercises the script "
              "on the CPU.")
        return 0
    else:
        dev = "cuda"
    where = torch.cuda.get_device_name(0) if dev == "cuda" else "CPU (smoke run)"
    print(f"GPU: {where}; torch {torch.__version__}; CPU threads {torch.get_num_threads()}")
    print(f"{'check':38s} {'CPU baseline':>16s} {'CPU s':>8s} {'GPU s':>8s} {'speed-up':>9s}  ok")
    start = time.perf_counter()
    bad = 0
    for check in (check_kmeans, check_dbscan, check_conv, check_training):
        rows = check(dev, args.smoke)
        for name, base, t_cpu, t_gpu, ok, detail in rows if isinstance(rows, list) else [rows]:
            bad += not ok
            print(f"{name:38s} {base:>16s} {t_cpu:8.3f} {t_gpu:8.3f} {t_cpu / t_gpu:8.1f}x  "
                  f"{'yes' if ok else 'NO'}  {detail}", flush=True)
    print(f"total {time.perf_counter() - start:.0f} s; "
          f"{'all GPU results agree with the CPU' if not bad else f'{bad} disagreement(s)'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
