"""K-Means: helpers (numpy, torch-CPU, GPU if present) against sklearn's Lloyd, and our
k-means++ initialisation against ``sklearn.cluster.kmeans_plusplus``.

Lloyd: same data, same initial centers, same number of iterations (tol=0, max_iter fixed;
the script checks that all of them agree: inertia, iterations and every label). "numpy" is
the reference pass (``engine="numpy"``), "numba" the compiled one (``engine="numba"``, the
default for big problems when numba is installed; its compile is cached and the warm-up
run pays any load). k-means++: same data, k and number of greedy
trials (2 + log k); the random streams differ (numpy Generator vs sklearn's RandomState),
so the script compares the mean potential (sum of squared distances to the nearest chosen
center) over the timed seeds instead of the centers. Each method runs in its own subprocess; its peak
memory is the rise of the peak RSS (Linux VmHWM, reset after loading data, imports and a
warm-up run) during the timed runs: what the algorithm needs beyond its input.

    python benchmarks/bench_kmeans.py            # the issue's two sizes
    python benchmarks/bench_kmeans.py --quick    # small sizes, a smoke run
    python benchmarks/bench_kmeans.py --lloyd-only --rounds 3   # on a busy machine
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

CASES = [(200_000, 16, 32, 20), (1_000_000, 2, 8, 20)]
QUICK = [(20_000, 16, 32, 10), (100_000, 2, 8, 10)]
GPU_CASE = (1_000_000, 64, 256, 20)
INIT_CASES = [(200_000, 16, 32), (1_000_000, 2, 8)]
INIT_QUICK = [(20_000, 16, 32), (100_000, 2, 8)]


def make(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    means = 5 * rng.standard_normal((k, d))
    X = means[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    init = X[rng.choice(n, k, replace=False)]
    return X, init


def run_one(method, path, k, iters, repeats):
    data = np.load(path)
    X, init = data["X"], data["init"]
    if method.startswith("init-"):
        return run_init(method, X, k, repeats)
    if method == "sklearn":
        from sklearn.cluster import KMeans

        def fit():
            km = KMeans(k, init=init, n_init=1, algorithm="lloyd", max_iter=iters, tol=0.0).fit(X)
            return km.inertia_, km.n_iter_, km.labels_
    else:
        from helpers.clustering import kmeans

        backend, device, engine = {
            "numpy": ("numpy", None, "numpy"), "numba": ("numpy", None, "numba"),
            "torch-cpu": ("torch", "cpu", "auto"), "torch-gpu": ("torch", "cuda", "auto"),
        }[method]

        def fit():
            r = kmeans(X, k, init=init, max_iter=iters, tol=0.0, backend=backend, device=device,
                       engine=engine)
            return r.inertia, r.n_iter, r.labels

    fit()  # warm-up (imports, thread pools, CUDA context)
    base = reset_peak_rss()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        inertia, n_iter, labels = fit()
        times.append(time.perf_counter() - t)
    peak = rss_kib("VmHWM") - base
    np.save(f"{path}.{method}.npy", labels.astype(np.int64))
    print(json.dumps({"time": min(times), "inertia": inertia, "n_iter": n_iter,
                      "peak_mib": peak / 1024}))


def run_init(method, X, k, repeats):
    """Time one k-means++ initialisation per seed; report the best time and the mean
    potential of the chosen centers (their quality)."""
    if method == "init-sklearn":
        from sklearn.cluster import kmeans_plusplus

        def init(seed):
            return kmeans_plusplus(X, k, random_state=seed)[0]
    else:
        from helpers.clustering import init_centers

        engine = method.removeprefix("init-")  # init-numpy, init-numba

        def init(seed):
            return init_centers(X, k, init="k-means++", seed=seed, engine=engine)

    init(100)  # warm-up
    base = reset_peak_rss()
    times, chosen = [], []
    for seed in range(repeats):
        t = time.perf_counter()
        chosen.append(init(seed))
        times.append(time.perf_counter() - t)
    peak = rss_kib("VmHWM") - base
    potentials = [potential(X, centers) for centers in chosen]
    print(json.dumps({"time": min(times), "potential": float(np.mean(potentials)),
                      "peak_mib": peak / 1024}))


def potential(X, centers):
    """sum over rows of the squared distance to the nearest center (outside the timing)."""
    from helpers.clustering import inertia

    return inertia(X, centers)


def rss_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark (Linux) and return the current RSS, in KiB: the
    peak measured afterwards is what the algorithm itself needs beyond data and imports."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return rss_kib("VmRSS")


def measure(method, path, k, iters, repeats):
    out = subprocess.run([sys.executable, __file__, "--child", method, path, str(k), str(iters),
                          str(repeats)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_rounds(methods, path, k, iters, repeats, rounds):
    """Every method once per round, the rounds one after the other (so that a burst of load
    from other jobs hits all methods alike); per method the fastest round, and its peak."""
    best = {}
    for _ in range(rounds):
        for m in methods:
            r = measure(m, path, k, iters, repeats)
            if m not in best or r["time"] < best[m]["time"]:
                best[m] = r
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=5)
    parser.add_argument("--init-only", action="store_true", help="only the k-means++ cases")
    parser.add_argument("--lloyd-only", action="store_true", help="only the Lloyd cases")
    parser.add_argument("--rounds", type=int, default=2,
                        help="run all methods this many times, interleaved; keep each one's best")
    args = parser.parse_args()
    if args.child:
        method, path, k, iters, repeats = args.child
        run_one(method, path, int(k), int(iters), int(repeats))
        return
    import tempfile

    import torch

    try:
        import numba  # noqa: F401

        has_numba = True
    except ImportError:
        has_numba = False
        print("numba is not installed: no compiled engine")
    init_methods = ["init-sklearn", "init-numpy"] + (["init-numba"] if has_numba else [])
    print(f"k-means++ initialisation (greedy, 2 + log k trials), best of 5 seeds; "
          f"torch threads {torch.get_num_threads()}")
    for n, d, k in [] if args.lloyd_only else INIT_QUICK if args.quick else INIT_CASES:
        X, init = make(n, d, k)
        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/data.npz"
            np.savez(path, X=X, init=init)
            res = measure_rounds(init_methods, path, k, 0, 5, args.rounds)
        sk = res["init-sklearn"]
        print(f"\nn={n:,} d={d} k={k}")
        for m, r in res.items():
            print(f"  {m:12s} {r['time'] * 1000:9.1f} ms   x{r['time'] / sk['time']:5.2f} of sklearn"
                  f"   peak +{r['peak_mib']:7.1f} MiB   mean potential "
                  f"{r['potential'] / sk['potential']:.3f} of sklearn's")
        for m in init_methods[1:]:
            print(f"  {m}: memory x{res[m]['peak_mib'] / max(sk['peak_mib'], 1e-9):.2f} "
                  "of sklearn's peak")
    if args.init_only:
        return

    methods = ["sklearn", "numpy"] + (["numba"] if has_numba else []) + ["torch-cpu"]
    cases = [(*c, methods) for c in (QUICK if args.quick else CASES)]
    if torch.cuda.is_available():
        cases.append((*GPU_CASE, ("sklearn", "torch-gpu")))
    print(f"K-Means, Lloyd from the same init, fixed iterations; torch threads "
          f"{torch.get_num_threads()}")
    for n, d, k, iters, methods in cases:
        X, init = make(n, d, k)
        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/data.npz"
            np.savez(path, X=X, init=init)
            res = measure_rounds(methods, path, k, iters, 3, args.rounds)
            labels = {m: np.load(f"{path}.{m}.npy") for m in methods}
        sk = res["sklearn"]
        print(f"\nn={n:,} d={d} k={k} ({sk['n_iter']} iterations)")
        for m in methods:
            r = res[m]
            agree = (abs(r["inertia"] - sk["inertia"]) <= 1e-6 * abs(sk["inertia"])
                     and r["n_iter"] == sk["n_iter"]
                     and np.array_equal(labels[m], labels["sklearn"]))
            print(f"  {m:10s} {r['time'] * 1000:9.1f} ms   x{r['time'] / sk['time']:5.2f} of sklearn"
                  f"   peak +{r['peak_mib']:7.1f} MiB   same result: {agree}")


if __name__ == "__main__":
    main()
