"""What the torch-vs-numpy benchmark scripts share: interleaved best-of timing and a
`--threads` option (imported as `from _common import ...`: scripts run from benchmarks/)."""

from __future__ import annotations

import argparse
import contextlib
import time


def best_ms(fns, repeats):
    """Best wall time in ms of each callable, running them interleaved `repeats` times."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: 1e3 * t for name, t in best.items()}


def thread_limit(threads):
    """Context that runs torch and numpy's BLAS on `threads` threads (None: as they come).

    On a machine shared with other jobs, --threads 1 gives steadier ratios: a
    multi-threaded kernel stalls whenever one of its threads is descheduled.
    """
    if threads is None:
        return contextlib.nullcontext()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    return threadpool_limits(limits=threads)


def cli(run, description):
    """Parse --threads and call `run()` under that thread limit."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and numpy's BLAS (default: as they come)")
    args = parser.parse_args()
    with thread_limit(args.threads):
        run()
