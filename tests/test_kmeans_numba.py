"""The compiled (numba) K-Means pass against the numpy reference and scikit-learn, and the
way it stays optional (numba missing, read-only cache directory, small problems)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans

import helpers
from helpers import _kmeans
from helpers.clustering import kmeans
from helpers.data import toy_2d

pytest.importorskip("numba")

REPO = Path(__file__).resolve().parents[1]


def sklearn_lloyd(X, init, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when it relocates duplicate centers
        return KMeans(len(init), init=init, n_init=1, algorithm="lloyd", **kw).fit(X)


def assert_same(result, reference, sk):
    """Bit for bit the reference's result, and sklearn's labels, iterations and centers."""
    np.testing.assert_array_equal(result.labels, reference.labels)
    np.testing.assert_array_equal(result.centers, reference.centers)
    assert result.n_iter == reference.n_iter and result.converged == reference.converged
    np.testing.assert_array_equal(result.labels, sk.labels_)
    np.testing.assert_allclose(result.centers, sk.cluster_centers_, rtol=0, atol=1e-9)
    assert result.n_iter == sk.n_iter_
    assert result.inertia == pytest.approx(sk.inertia_, rel=1e-9, abs=1e-9)


def test_integer_grid_ties_match_reference_and_sklearn():
    # The tie fuzz of test_kmeans.py, on the compiled pass: exact ties between centers
    # everywhere, decided by the last bit of each distance and mean.
    rng = np.random.default_rng(5)
    for _ in range(200):
        n, d = int(rng.integers(4, 60)), int(rng.integers(1, 5))
        k = int(rng.integers(1, min(n, 6) + 1))
        X = rng.integers(0, 6, size=(n, d)).astype(float)
        init = X[rng.choice(n, k, replace=False)]
        assert_same(kmeans(X, k, init=init, engine="numba"),
                    kmeans(X, k, init=init, engine="numpy"), sklearn_lloyd(X, init))


def test_auto_takes_the_compiled_pass_above_the_threshold(monkeypatch):
    from helpers import _kmeans_numba

    monkeypatch.setattr(_kmeans, "_NUMBA_MIN_WORK", 10**6)
    monkeypatch.setattr(_kmeans, "_NUMBA_MIN_WORK_LOADED", 10**6)
    monkeypatch.setattr(_kmeans, "_numba_failed", False)
    assert _kmeans._pick_pass(10**5, 10) is _kmeans_numba.assign_and_sum
    assert _kmeans._pick_pass(10**5, 9) is None
    assert _kmeans._pick_pass(10**5, 10, "numpy") is None
    monkeypatch.setenv(_kmeans.ENGINE_ENV, "numpy")
    assert _kmeans._pick_pass(10**5, 10) is None
    assert _kmeans._pick_pass(10**5, 10, "numba") is _kmeans_numba.assign_and_sum
    monkeypatch.setenv(_kmeans.ENGINE_ENV, "fast")
    with pytest.raises(ValueError, match=_kmeans.ENGINE_ENV):
        _kmeans._pick_pass(10**5, 10)


@pytest.mark.parametrize("name,k", [("blobs", 3), ("anisotropic", 4), ("moons", 6)])
def test_toy_sets_match_reference_and_sklearn(name, k):
    X, _ = toy_2d(name, n=2000, seed=4)
    init = X[np.random.default_rng(k).choice(len(X), k, replace=False)]
    assert_same(kmeans(X, k, init=init, engine="numba"),
                kmeans(X, k, init=init, engine="numpy"), sklearn_lloyd(X, init))


@pytest.mark.parametrize("n,d,k", [(50_000, 3, 5), (37_001, 9, 40), (20_000, 16, 7)])
def test_many_chunks_and_workers_match_sklearn(n, d, k):
    # Several 256-row chunks, a ragged last one, and from 32,768 rows two workers (even on
    # one core): sklearn's labels exactly; the centers may differ from the row-order sums of
    # the reference in the last bit only when the rows are split among workers.
    rng = np.random.default_rng(n)
    X = 4 * rng.standard_normal((k, d))[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    X = np.round(X, 1)  # many exact ties as well
    init = X[rng.choice(n, k, replace=False)]
    ours = kmeans(X, k, init=init, max_iter=15, engine="numba")
    ref = kmeans(X, k, init=init, max_iter=15, engine="numpy")
    sk = sklearn_lloyd(X, init, max_iter=15)
    np.testing.assert_array_equal(ours.labels, sk.labels_)
    np.testing.assert_array_equal(ours.labels, ref.labels)
    assert ours.n_iter == ref.n_iter == sk.n_iter_
    np.testing.assert_allclose(ours.centers, sk.cluster_centers_, rtol=1e-12, atol=1e-12)
    if n < 2 * _kmeans._PARALLEL_MIN_ROWS:
        np.testing.assert_array_equal(ours.centers, ref.centers)
    assert ours.inertia == pytest.approx(sk.inertia_, rel=1e-10)


def test_one_worker_equals_the_reference_pass_bit_for_bit_and_two_split_like_openmp():
    from helpers import _kmeans_numba

    X = np.random.default_rng(3).standard_normal((3 * 256 + 17, 5))
    C = X[:6].copy()
    labels, sums, counts, best = _kmeans_numba.assign_and_sum(X, C)
    ref = _kmeans._assign_and_sum(X, C)
    np.testing.assert_array_equal(labels, ref[0])
    np.testing.assert_array_equal(sums, ref[1])
    np.testing.assert_array_equal(counts, ref[2])
    assert best == pytest.approx(ref[3], rel=1e-12)
    with _kmeans._BlockRunner(len(X), workers=2) as run:  # threads even on one core
        two = _kmeans_numba.assign_and_sum(X, C, run)
    # 4 chunks: worker 0 sums rows 0..511 and worker 1 the rest, then 0 + first + second
    first = _kmeans._cluster_sums(X[:512], labels[:512], 6)[0]
    second = _kmeans._cluster_sums(X[512:], labels[512:], 6)[0]
    np.testing.assert_array_equal(two[0], labels)
    np.testing.assert_array_equal(two[1], (0.0 + first) + second)
    np.testing.assert_array_equal(two[2], counts)
    assert _kmeans_numba.assign_and_sum(X, C, sums=False)[1:3] == (None, None)


def test_without_numba_auto_uses_the_reference(monkeypatch):
    # numba not installed: importing helpers._kmeans_numba fails, "auto" quietly takes
    # the numpy reference, "numba" says why it cannot.
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    monkeypatch.delitem(sys.modules, "helpers._kmeans_numba", raising=False)
    monkeypatch.delattr(helpers, "_kmeans_numba", raising=False)
    monkeypatch.setattr(_kmeans, "_NUMBA_MIN_WORK", 1)
    monkeypatch.setattr(_kmeans, "_NUMBA_MIN_WORK_LOADED", 1)
    monkeypatch.setattr(_kmeans, "_numba_failed", False)
    assert _kmeans._pick_pass(10**6, 10) is None
    assert _kmeans.kmeans_plusplus(np.eye(3), 2, np.random.default_rng(0)).shape == (2, 3)
    with pytest.raises(ImportError):
        _kmeans._pick_pass(10, 2, "numba")
    X, _ = toy_2d("blobs", n=300, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning: numba is optional
        result = kmeans(X, 3, init=X[:3])
    assert_same(result, kmeans(X, 3, init=X[:3], engine="numpy"), sklearn_lloyd(X, X[:3]))


def test_a_broken_numba_falls_back_with_a_warning(monkeypatch):
    from helpers import _kmeans_numba

    def broken():
        raise RuntimeError("LLVM says no")

    monkeypatch.setattr(_kmeans_numba, "ready", broken)
    monkeypatch.setattr(_kmeans, "_NUMBA_MIN_WORK", 1)
    monkeypatch.setattr(_kmeans, "_NUMBA_MIN_WORK_LOADED", 1)
    monkeypatch.setattr(_kmeans, "_numba_failed", False)
    with pytest.warns(RuntimeWarning, match="LLVM says no"):
        assert _kmeans._pick_pass(1000, 4) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process, and no second try
        assert _kmeans._pick_pass(1000, 4) is None
    with pytest.raises(RuntimeError, match="LLVM says no"):  # asked for by name: no fallback
        _kmeans._pick_pass(1000, 4, "numba")


def test_bad_engine_names_the_parameter():
    with pytest.raises(ValueError, match="engine"):
        kmeans(np.zeros((5, 2)), 2, engine="fast")


def test_import_helpers_never_loads_numba_and_small_problems_never_compile():
    code = (
        "import sys, numpy as np\n"
        "import helpers, helpers.clustering, helpers.checks, helpers.widgets\n"
        "X = np.random.default_rng(0).standard_normal((5000, 2))\n"
        "helpers.clustering.kmeans(X, 8, seed=0)\n"  # the notebooks' sizes
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "False"


# Run in a fresh process: "read-only" everywhere but the given directory (numba probes a
# cache directory by writing a file into it; that probe fails here as on a read-only tree).
_READ_ONLY = """
import os, sys, warnings
import numba.core.caching as caching
writable = sys.argv[1]
probe = caching._CacheLocator.ensure_cache_path
def ensure_cache_path(self):
    if not writable or not self.get_cache_path().startswith(writable):
        raise OSError(30, "Read-only file system")
    probe(self)
caching._CacheLocator.ensure_cache_path = ensure_cache_path
warnings.simplefilter("error")
import numpy as np
from helpers.clustering import kmeans
X = np.random.default_rng(0).integers(0, 9, size=(3000, 3)).astype(float)
a = kmeans(X, 5, init=X[:5], engine="numba")
b = kmeans(X, 5, init=X[:5], engine="numpy")
assert (a.labels == b.labels).all() and (a.centers == b.centers).all()
print("ok")
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "getuid"), reason="the private cache directory is per uid")
def test_read_only_course_tree_caches_under_tmpdir_or_compiles_without_cache(tmp_path):
    # The grading sandbox: the package and HOME read-only, no NUMBA_CACHE_DIR. The kernel
    # must still compile - caching into a private directory under TMPDIR, or nowhere - and
    # give the reference's result, without a warning.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    private = tmp_path / f"helpers-numba-{os.getuid()}"
    for writable in [str(private), ""]:
        out = subprocess.run([sys.executable, "-c", _READ_ONLY, writable], capture_output=True,
                             text=True, env=env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "ok"
        assert bool(list(private.glob("**/*.nbi"))) == bool(writable)
        shutil.rmtree(private, ignore_errors=True)
