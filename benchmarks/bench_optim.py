"""Unit 05: our update rules vs torch.optim per step, and our L-BFGS vs scipy's L-BFGS-B.

    python benchmarks/bench_optim.py [--threads N]

1. Update rules (``helpers.optim.sgd``, ``sgd_momentum``, ``nesterov``, ``rmsprop``,
   ``adam``) against the torch.optim step a user would otherwise call (SGD, SGD with
   momentum, SGD nesterov=True, RMSprop, Adam; same hyper-parameters, float64), on a
   fixed gradient, for 2 parameters (the optimiser race), 10,000 and 1,000,000. Time per
   step, best of interleaved runs; the script checks that both land on the same
   parameters after 10 steps.
2. L-BFGS (``helpers.optim.lbfgs``, history 10) against ``scipy.optimize.minimize(method=
   "L-BFGS-B", maxcor=10)`` on Rosenbrock from (-1.2, 1) and on the course's softmax
   regression of the digits (650 parameters, ``make_logreg_problem``), both stopping at
   max |gradient| <= 1e-6 (scipy's ftol=0, so its own function-change test does not
   stop it first): wall time, function evaluations, iterations and the final loss.

Timings on a shared machine are noisy: compare the ratios of one run, side by side.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _common import best_ms, cli

from helpers.optim import (
    adam,
    lbfgs,
    make_logreg_problem,
    nesterov,
    rmsprop,
    rosenbrock,
    sgd,
    sgd_momentum,
)

LR = 1e-3
RULES = {
    "sgd": (sgd, {"learning_rate": LR}, lambda p: torch.optim.SGD(p, lr=LR)),
    "sgd_momentum": (sgd_momentum, {"learning_rate": LR, "momentum": 0.9},
                     lambda p: torch.optim.SGD(p, lr=LR, momentum=0.9)),
    "nesterov": (nesterov, {"learning_rate": LR, "momentum": 0.9},
                 lambda p: torch.optim.SGD(p, lr=LR, momentum=0.9, nesterov=True)),
    "rmsprop": (rmsprop, {"learning_rate": LR, "decay_rate": 0.99, "epsilon": 1e-8},
                lambda p: torch.optim.RMSprop(p, lr=LR, alpha=0.99, eps=1e-8)),
    "adam": (adam, {"learning_rate": LR, "epsilon": 1e-8},
             lambda p: torch.optim.Adam(p, lr=LR, eps=1e-8)),
}
SIZES = [(2, 1000), (10_000, 300), (1_000_000, 5)]  # (parameters, steps per timing)


def ours_steps(rule, config, w, dw, steps):
    config = dict(config)
    for _ in range(steps):
        w, config = rule(w, dw, config)
    return w


def torch_steps(make, w, dw, steps):
    p = torch.nn.Parameter(torch.from_numpy(w.copy()))
    p.grad = torch.from_numpy(dw)
    opt = make([p])
    for _ in range(steps):
        opt.step()
    return p.detach().numpy()


def bench_rules():
    print("Update rules, time per step (float64, a fixed gradient); ours / torch.optim")
    print(f"  {'rule':13s}" + "".join(f"{f'{n:,} params':>30s}" for n, _ in SIZES))
    rng = np.random.default_rng(0)
    data = {n: (rng.standard_normal(n), rng.standard_normal(n)) for n, _ in SIZES}
    for name, (rule, config, make) in RULES.items():
        cells = []
        for n, steps in SIZES:
            w, dw = data[n]
            same = np.allclose(ours_steps(rule, config, w, dw, 10),
                               torch_steps(make, w, dw, 10), rtol=1e-12, atol=1e-14)
            ms = best_ms({"ours": lambda: ours_steps(rule, config, w, dw, steps),  # noqa: B023
                          "torch": lambda: torch_steps(make, w, dw, steps)}, 5)  # noqa: B023
            us = {k: 1e3 * v / steps for k, v in ms.items()}
            cells.append(f"{us['ours']:8.1f} / {us['torch']:7.1f} us x{us['ours'] / us['torch']:4.2f}"
                         + ("" if same else " DIFF"))
        print(f"  {name:13s}" + "".join(f"{c:>30s}" for c in cells))


class Counted:
    """f_and_grad that counts its calls."""

    def __init__(self, f_and_grad):
        self.f_and_grad, self.calls = f_and_grad, 0

    def __call__(self, x):
        self.calls += 1
        return self.f_and_grad(x)


def run_ours(f_and_grad, x0):
    f = Counted(f_and_grad)
    r = lbfgs(f, x0, history=10, max_iter=2000, tol=1e-6)
    return r.fun, r.n_iter, f.calls, float(np.abs(r.grad).max())


def run_scipy(f_and_grad, x0):
    from scipy.optimize import minimize

    f = Counted(f_and_grad)
    r = minimize(f, x0, jac=True, method="L-BFGS-B",
                 options={"maxcor": 10, "gtol": 1e-6, "ftol": 0.0, "maxiter": 2000})
    return float(r.fun), int(r.nit), f.calls, float(np.abs(r.jac).max())


def bench_lbfgs():
    print("\nL-BFGS (history 10, stop at max|grad| <= 1e-6): ours vs scipy L-BFGS-B")
    prob = make_logreg_problem(l2=1e-3)
    problems = {"Rosenbrock (-1.2, 1)": (rosenbrock.f_and_grad, np.array([-1.2, 1.0]), 20),
                "softmax regression, digits": (prob.f_and_grad, prob.init(), 2)}
    for name, (fg, x0, repeats) in problems.items():
        res = {"ours": run_ours(fg, x0), "scipy": run_scipy(fg, x0)}
        ms = best_ms({"ours": lambda: run_ours(fg, x0),  # noqa: B023
                      "scipy": lambda: run_scipy(fg, x0)}, repeats)  # noqa: B023
        print(f"  {name}")
        for who in ("ours", "scipy"):
            fun, nit, calls, gmax = res[who]
            print(f"    {who:6s} {ms[who]:8.1f} ms  x{ms[who] / ms['scipy']:4.2f}   "
                  f"{calls:4d} evaluations ({calls / res['scipy'][2]:.2f}x)  {nit:4d} iterations"
                  f"  f = {fun:.10g}  max|grad| {gmax:.1e}")


def run():
    start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads")
    bench_rules()
    bench_lbfgs()
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    cli(run, __doc__.splitlines()[0])
