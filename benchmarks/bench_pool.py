"""helpers.pool (max_pool2d, avg_pool2d, max_pool2d_backward) against torch on the CPU.

Plain script: `python benchmarks/bench_pool.py`. One process, float32, thread settings as
they come; each time is the best of several interleaved runs.
Target (issue 4): pooling within 3x of torch's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as tF
from _common import best_ms, cli

from helpers.pool import avg_pool2d, max_pool2d, max_pool2d_backward

# (x shape, window size, stride): the common F=2, S=2 and AlexNet's POOL1 (55 -> 27)
CASES = [
    ((64, 64, 32, 32), 2, 2),
    ((64, 96, 55, 55), 3, 2),
]
REPEATS = 15
TARGET = 3.0


def run():
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__},"
          f" float32, CPU, one process, best of {REPEATS}")
    rng = np.random.default_rng(0)
    worst = 0.0
    for shape, size, stride in CASES:
        x = rng.standard_normal(shape, dtype=np.float32)
        xt = torch.from_numpy(x)
        out_t = tF.max_pool2d(xt, size, stride)
        dout = rng.standard_normal(tuple(out_t.shape), dtype=np.float32)
        dout_t = torch.from_numpy(dout)

        def torch_max_backward(xt=xt, size=size, stride=stride, dout_t=dout_t):
            leaf = xt.detach().requires_grad_()
            tF.max_pool2d(leaf, size, stride).backward(dout_t)
            return leaf.grad

        def ours_max_backward(x=x, size=size, stride=stride, dout=dout):
            max_pool2d(x, size, stride)
            return max_pool2d_backward(dout, x, size, stride)

        # correctness first: same numbers as torch
        np.testing.assert_array_equal(max_pool2d(x, size, stride), out_t.numpy())
        np.testing.assert_allclose(avg_pool2d(x, size, stride),
                                   tF.avg_pool2d(xt, size, stride).numpy(), rtol=1e-5, atol=1e-6)
        # overlapping windows add gradients in another order: float32 rounding differs
        np.testing.assert_allclose(ours_max_backward(), torch_max_backward().numpy(),
                                   rtol=1e-6, atol=1e-6)

        with torch.no_grad():
            times = best_ms(
                {
                    "torch max": lambda xt=xt, s=size, st=stride: tF.max_pool2d(xt, s, st),
                    "max_pool2d": lambda x=x, s=size, st=stride: max_pool2d(x, s, st),
                    "torch avg": lambda xt=xt, s=size, st=stride: tF.avg_pool2d(xt, s, st),
                    "avg_pool2d": lambda x=x, s=size, st=stride: avg_pool2d(x, s, st),
                },
                REPEATS,
            )
        times.update(best_ms({"torch max fwd+bwd": torch_max_backward,
                              "max fwd+bwd": ours_max_backward}, REPEATS))

        print(f"\nx {shape}, window {size}x{size}, stride {stride} -> {tuple(out_t.shape)}")
        for ours, theirs in [("max_pool2d", "torch max"), ("avg_pool2d", "torch avg"),
                             ("max fwd+bwd", "torch max fwd+bwd")]:
            ratio = times[ours] / times[theirs]
            print(f"  {ours:<12} {times[ours]:8.2f} ms   {theirs:<18} {times[theirs]:8.2f} ms"
                  f"   ratio {ratio:5.2f}x")
            worst = max(worst, ratio)
    verdict = "meets" if worst <= TARGET else "MISSES"
    print(f"\nworst ratio vs torch: {worst:.2f}x -> {verdict} the {TARGET:.0f}x target")


if __name__ == "__main__":
    cli(run, __doc__.splitlines()[0])
