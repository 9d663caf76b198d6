"""The unit 01-kmeans checkers' hints for the mistakes students write, and the pieces every
checker shares (helpers/checks/_core.py): messages with plain numbers, a short traceback in
a notebook, and check names that cannot collide."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import clustering
from helpers.checks import _core
from helpers.checks import kmeans as check
from helpers.checks._core import CheckFailure


def _assign(X, centers):
    return ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)


def _update(X, labels, k):
    return np.array([X[labels == j].mean(axis=0) for j in range(k)])


def test_lloyd_returning_the_initial_centers_names_the_cause():
    def never_keeps_the_update(X, initial_centers, max_iter=100):
        centers = np.array(initial_centers, dtype=float)
        for _ in range(max_iter):
            labels = _assign(X, centers)
            new_centers = _update(X, labels, len(centers))  # mistake: centers never updated
            if np.allclose(new_centers, centers):
                break
        return centers, _assign(X, centers)

    with pytest.raises(CheckFailure, match="initial centers, unchanged.*never kept"):
        check.check_lloyd(never_keeps_the_update)


def test_a_correct_lloyd_passes():
    def lloyd(X, initial_centers, max_iter=100):
        centers = np.array(initial_centers, dtype=float)
        for _ in range(max_iter):
            labels = _assign(X, centers)
            new = _update(X, labels, len(centers))
            if np.allclose(new, centers):
                break
            centers = new
        return new, _assign(X, new)

    check.check_lloyd(lloyd)


def _elbow(X, max_k=8, seed=0):
    ks = list(range(1, max_k + 1))
    inertias = [clustering.kmeans(X, k, seed=seed).inertia for k in ks]
    bend = [inertias[i - 1] - 2 * inertias[i] + inertias[i + 1] for i in range(1, len(ks) - 1)]
    return ks, inertias, ks[1 + int(np.argmax(bend))]


def test_elbow_ignoring_its_seed_names_the_cause():
    check.check_elbow(_elbow)  # the visible check includes a seed other than 0

    def seed_zero(X, max_k=8, seed=0):
        return _elbow(X, max_k, 0)

    with pytest.raises(CheckFailure, match="ignores its seed.*seed=seed"):
        check.check_elbow(seed_zero)

    def no_seed(X, max_k=8, seed=0):  # clustering.kmeans's default: a new random start each run
        ks = list(range(1, max_k + 1))
        inertias = [clustering.kmeans(X, k, seed=1000 + k).inertia for k in ks]
        return ks, inertias, 3

    with pytest.raises(CheckFailure, match="without seed=seed"):
        check.check_elbow(no_seed, datasets=("uniform",), seeds=(1,))


def test_messages_print_plain_numbers():
    assert _core._fmt([np.float64(0.5), np.int64(3)]) == "[0.5, 3]"
    assert _core._fmt((np.float32(2.0),)) == "(2.0,)"
    assert _core._fmt(np.int64(7)) == "7"
    with pytest.raises(CheckFailure) as info:
        _core.expect_equal([np.float64(1.0)], [np.float64(2.0)], "x")
    assert "np.float64" not in str(info.value)


def test_a_check_failure_renders_as_the_message_and_the_callers_line():
    def wrong(X, centers, labels):
        return 0.0

    with pytest.raises(CheckFailure) as info:
        check.check_inertia(wrong)
    lines = info.value._render_traceback_()
    assert lines[-1].endswith(str(info.value)) and "CheckFailure" in lines[-1]
    assert len(lines) == 2, lines  # this test's line, then the message
    assert "check.check_inertia(wrong)" in lines[0] and "helpers/checks" not in "".join(lines)

    def crashes(X, centers, labels):
        return X.no_such_attribute

    with pytest.raises(CheckFailure) as info:
        check.check_inertia(crashes)
    lines = info.value._render_traceback_()
    assert any("in your code" in line for line in lines)
    assert any("X.no_such_attribute" in line for line in lines)


def test_duplicate_check_names_are_refused():
    def judge(case, answer):
        pass

    with pytest.raises(ValueError, match="already registered"):
        _core.Check("kmeans.lloyd", "something_else", lambda: [], judge)
    assert _core.REGISTRY["kmeans.lloyd"] is check.check_lloyd


def test_reloading_a_checks_module_registers_its_checks_again():
    import importlib

    module = importlib.reload(check)
    assert _core.REGISTRY["kmeans.elbow"] is module.check_elbow
