"""Unit 06: ``summary()`` vs a plain forward pass, and training LeNet-5 on the digits.

    python benchmarks/bench_models.py

1. ``helpers.models.summary(model, input_shape)`` (shapes, parameters and multiply-adds of
   every layer) against the one forward pass of a batch of one a user would otherwise run
   to see the output shape (``model(torch.zeros(1, C, H, W))``, eval mode, no gradients),
   for the unit's networks. The script checks that both give the same output shape.
2. Training LeNet-5 (ReLU, max pooling) on the shipped digits resized to 32x32, as unit 06
   does (batch 32, Adam): ``helpers.train.train`` for 2 epochs against a bare torch loop
   (same model, optimiser, batches; no evaluation, no progress bar), images per second at
   1 and 2 torch threads. ``train`` also measures the training error and test accuracy
   after every epoch: that is in its time.

CPU only; timings on a shared machine are noisy: compare the ratios of one run.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import best_ms

from helpers.data import load_digits_images
from helpers.models import alexnet, cifar_resnet, googlenet, lenet5, resnet, summary
from helpers.train import resize_images, train

NETS = [
    ("LeNet-5", lenet5, (1, 32, 32)),
    ("ResNet-20 (CIFAR)", lambda: cifar_resnet(20), (3, 32, 32)),
    ("AlexNet", alexnet, (3, 227, 227)),
    ("GoogLeNet", googlenet, (3, 224, 224)),
    ("ResNet-50", lambda: resnet(50), (3, 224, 224)),
]
EPOCHS = 2
BATCH = 32


def bench_summary():
    print("summary() vs one forward pass of a batch of one (eval, no_grad), best of 3")
    for name, build, shape in NETS:
        model = build().eval()
        x = torch.zeros(1, *shape)

        def forward(model=model, x=x):
            with torch.no_grad():
                return model(x)

        same = tuple(summary(model, shape).rows[-1].output_shape) == tuple(forward().shape[1:])
        ms = best_ms({"summary": lambda m=model, s=shape: summary(m, s), "forward": forward}, 3)
        print(f"  {name:18s} summary {ms['summary']:8.1f} ms   forward {ms['forward']:8.1f} ms"
              f"   x{ms['summary'] / ms['forward']:5.2f}   same output shape: {same}")


def bare_loop(data, epochs, seed=0):
    """The loop a user writes by hand: shuffle, batches, forward, cross-entropy, step."""
    X, y = torch.as_tensor(data[0]), torch.as_tensor(data[1])
    torch.manual_seed(seed)
    model = lenet5(activation="relu", pool="max")
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(X)).split(BATCH):
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model


def bench_training():
    d = load_digits_images(seed=0)
    data = (resize_images(d.X_train, 32), d.y_train, resize_images(d.X_test, 32), d.y_test)
    n = EPOCHS * len(data[0])
    print(f"\nTraining LeNet-5 on {len(data[0]):,} digits (32x32), {EPOCHS} epochs, batch {BATCH}:"
          f" images/s")
    threads = torch.get_num_threads()
    for t in (1, 2):
        torch.set_num_threads(t)
        runs = {}
        for _ in range(2):  # best of 2, interleaved
            start = time.perf_counter()
            r = train(lambda: lenet5(activation="relu", pool="max"), data, epochs=EPOCHS,
                      lr=2e-3, batch_size=BATCH, device="cpu", progress=False)
            runs["train"] = min(runs.get("train", np.inf), time.perf_counter() - start)
            start = time.perf_counter()
            bare_loop(data, EPOCHS)
            runs["bare"] = min(runs.get("bare", np.inf), time.perf_counter() - start)
        print(f"  {t} thread{'s' if t > 1 else ' '}  train() {n / runs['train']:7,.0f} img/s "
              f"(test accuracy {r.test_accuracy[-1]:.3f})   bare torch loop "
              f"{n / runs['bare']:7,.0f} img/s   train() takes x{runs['train'] / runs['bare']:.2f}")
    torch.set_num_threads(threads)


def run():
    start = time.perf_counter()
    print(f"torch {torch.__version__}, CPU")
    bench_summary()
    bench_training()
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    run()
