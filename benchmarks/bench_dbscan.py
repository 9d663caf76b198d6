"""DBSCAN: ``helpers.clustering.dbscan`` (numpy grid reference) vs ``sklearn.cluster.DBSCAN``.

Data: ``helpers.data.toy_2d("blobs_noise", n)`` (three Gaussian blobs + 10% uniform
background), eps = 0.3, min_samples = 10, sklearn with its default algorithm ("auto",
a KD-tree here). Each method runs in its own subprocess, so its peak resident memory
(``ru_maxrss``) is its own; the labels both return are saved and compared (they must be
identical, not just equal up to renaming).

Two densities:

- "scaled": coordinates multiplied so that the background has ~2 points within eps on
  average (it stays noise) while the blobs are dense (~170 neighbours at their centres).
  The scale grows as sqrt(n), so 100k and 1M points have the same local density.
- "dense": toy_2d as is, the density of sklearn's own DBSCAN demo; every point has
  thousands of neighbours within eps, the case where sklearn's per-point neighbourhood
  lists blow up (the whole set is one cluster: it is a memory test). At 1M points sklearn
  would need about 100x the 100k lists, so it is skipped and its need is estimated.

Peak memory is reported as the whole process's peak RSS and as the increase over the RSS
just before the call (imports, data and a warm-up already done); the ratios are ours/sklearn.

Usage: python benchmarks/bench_dbscan.py [--quick] [--no-dense]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

EPS = 0.3
MIN_SAMPLES = 10
SEED = 0


def make_data(n, density):
    from helpers.data import toy_2d

    X, _ = toy_2d("blobs_noise", n, seed=SEED)
    if density == "scaled":
        # background: n/10 points on a (8 s)^2 square; expected neighbours within eps = 2
        s = math.sqrt((n / 10) * math.pi * EPS**2 / (64 * 2.0))
        X = X * s
    return X


def worker(method, n, density, repeat, out):
    """Run one method in this process; print JSON with time and memory; save labels."""
    if method == "ours":
        try:
            from helpers.clustering import dbscan
        except ImportError:  # before helpers.clustering re-exports it
            from helpers._dbscan import dbscan

        def run(X):
            return dbscan(X, EPS, MIN_SAMPLES).labels
    else:
        from sklearn.cluster import DBSCAN

        def run(X):
            return DBSCAN(eps=EPS, min_samples=MIN_SAMPLES).fit(X).labels_

    X = make_data(n, density)
    run(make_data(2000, "scaled"))  # warm-up: lazy imports, first-call costs
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        labels = run(X)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(out, np.asarray(labels, dtype=np.int64))
    print(json.dumps({"time": min(times), "peak_kb": peak, "before_kb": before}))


def run_worker(method, n, density, repeat, out):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", method, "--n", str(n),
           "--density", density, "--repeat", str(repeat), "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mib(kb):
    return kb / 1024


def estimate_sklearn_lists(n, density):
    """Total neighbour count (pairs within eps, both ways, self included) -> bytes of indices."""
    from scipy.spatial import cKDTree

    X = make_data(n, density)
    tree = cKDTree(X)
    pairs = tree.count_neighbors(tree, EPS)  # ordered pairs, self included
    return pairs, pairs * 8


def compare(n, density, repeat, with_sklearn=True):
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_worker("ours", n, density, repeat, os.path.join(tmp, "ours.npy"))
        labels = np.load(os.path.join(tmp, "ours.npy"))
        n_clusters = int(labels.max()) + 1
        n_noise = int((labels < 0).sum())
        head = f"{density:6s} n={n:>9,d}: {n_clusters} clusters, {n_noise:,d} noise points"
        line = (f"  ours    {ours['time']:8.3f} s   peak RSS {mib(ours['peak_kb']):8.1f} MiB"
                f"   (+{mib(ours['peak_kb'] - ours['before_kb']):.1f} MiB over the call)")
        print(head)
        print(line)
        if not with_sklearn:
            pairs, nbytes = estimate_sklearn_lists(n, density)
            print(f"  sklearn skipped: its neighbourhood lists alone would hold {pairs:,d} "
                  f"indices = {nbytes / 2**30:.1f} GiB (machine: 24 GiB)")
            return
        sk = run_worker("sklearn", n, density, repeat, os.path.join(tmp, "sk.npy"))
        sk_labels = np.load(os.path.join(tmp, "sk.npy"))
    assert np.array_equal(labels, sk_labels), "labels differ from sklearn's"
    d_ours = ours["peak_kb"] - ours["before_kb"]
    d_sk = sk["peak_kb"] - sk["before_kb"]
    print(f"  sklearn {sk['time']:8.3f} s   peak RSS {mib(sk['peak_kb']):8.1f} MiB"
          f"   (+{mib(d_sk):.1f} MiB over the call)")
    print(f"  labels identical: yes.  speed-up x{sk['time'] / ours['time']:.1f};  "
          f"peak RSS ours/sklearn {ours['peak_kb'] / sk['peak_kb']:.2f};  "
          f"increase ours/sklearn {d_ours / max(d_sk, 1):.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 100k scaled")
    parser.add_argument("--no-dense", action="store_true", help="skip the dense runs")
    parser.add_argument("--worker", choices=["ours", "sklearn"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--density", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.n, args.density, args.repeat, args.out)
        return
    print(f"DBSCAN eps={EPS}, min_samples={MIN_SAMPLES}, toy_2d('blobs_noise'), "
          "each method in its own process")
    compare(100_000, "scaled", repeat=3)
    if args.quick:
        return
    compare(1_000_000, "scaled", repeat=1)
    if not args.no_dense:
        compare(100_000, "dense", repeat=1)
        compare(1_000_000, "dense", repeat=1, with_sklearn=False)


if __name__ == "__main__":
    main()
