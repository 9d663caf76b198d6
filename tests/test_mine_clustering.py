"""'Compare with mine' (issue 13) in units 01 and 02: KMeansExplorer(mine=dict(
assign_clusters=..., update_centers=...)) and DBSCANExplorer(mine=dict(my_dbscan=...)).

What each student's function is judged against is computed here independently: the nearest
center with scipy's cdist, the cluster means with numpy masks, DBSCAN with scikit-learn
(sklearn.cluster.DBSCAN). The plausible mistakes come from tests/units/01-kmeans.py,
tests/units/02-dbscan.py and the checkers' tests (tests/test_kmeans_checks.py,
tests/test_dbscan_checks.py)."""

from __future__ import annotations

import html
import importlib.util
import re
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.cluster import DBSCAN

from helpers import clustering
from helpers.widgets import DBSCANExplorer, KMeansExplorer

_spec = importlib.util.spec_from_file_location("a11y", Path(__file__).with_name("a11y.py"))
a11y = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(a11y)
audit = a11y.audit  # issue 8's accessibility rules, as tests/test_accessibility.py applies them

NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


# ---------------------------------------------------------------------- K-Means: references
def nearest(X, centers):
    return cdist(X, centers).argmin(axis=1)


def means(X, labels, k):
    return np.array([X[labels == j].mean(axis=0) for j in range(k)])


# the notebook's own solutions (solutions/01-kmeans/kmeans.ipynb), as a student writes them
def nb_assign_clusters(X, centers):
    squared = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(squared, axis=1)


def nb_update_centers(X, labels, k):
    return np.array([X[labels == j].mean(axis=0) for j in range(k)])


def offsets(scatter):
    return np.asarray(scatter.get_offsets(), float).reshape(-1, 2)


def same_rows(a, b):
    a, b = np.asarray(a, float).reshape(-1, 2), np.asarray(b, float).reshape(-1, 2)
    return a.shape == b.shape and np.allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)])


KM_STATES = [dict(dataset="blobs", k=3, init="random", n=300, seed=0),
             dict(dataset="moons", k=4, init="k-means++", n=400, seed=1),
             dict(dataset="anisotropic", k=3, init="farthest", n=250, seed=2),
             dict(dataset="uniform", k=6, init="random", n=500, seed=3)]


@pytest.mark.parametrize("state", KM_STATES)
@pytest.mark.parametrize("fns", [(clustering.assign_clusters, clustering.update_centers),
                                 (nb_assign_clusters, nb_update_centers)])
def test_kmeans_reference_as_mine_agrees_on_every_state(state, fns):
    mine = dict(assign_clusters=fns[0], update_centers=fns[1])
    ex, plain = KMeansExplorer(**state, mine=mine), KMeansExplorer(**state)
    assert ex.mismatch() is None and ex.mine_problem is None
    for step in ("assign", "update", "assign", "update", "assign"):
        getattr(ex, step)()
        getattr(plain, step)()
        assert ex.mismatch() is None
        np.testing.assert_array_equal(ex.labels, plain.labels)
        np.testing.assert_allclose(ex.centers, plain.centers)
    ex.run()
    plain.run()
    assert ex.mismatch() is None and ex.converged and ex.iteration == plain.iteration
    np.testing.assert_allclose(ex.centers, plain.centers)
    assert len(offsets(ex.mine_point_marks)) == 0 == len(offsets(ex.mine_center_marks))
    ex.controls["k"].value = state["k"] + 1  # a new state: still nothing to report
    assert ex.mismatch() is None


def test_kmeans_right_answer_draws_the_same_figure_as_no_mine():
    mine = dict(assign_clusters=nb_assign_clusters, update_centers=nb_update_centers)
    ex, plain = KMeansExplorer(mine=mine), KMeansExplorer()
    for e in (ex, plain):
        e.assign()
        e.update()
        e.assign()
    assert ex.png() == plain.png()


# plausible mistakes in assign_clusters
def farthest(X, centers):  # argmax for argmin
    return ((X[:, None] - centers[None]) ** 2).sum(axis=2).argmax(axis=1)


def manhattan(X, centers):  # |x| for x**2, a different distance
    return np.abs(X[:, None] - centers[None]).sum(axis=2).argmin(axis=1)


def one_based(X, centers):  # clusters numbered 1..k
    return nb_assign_clusters(X, centers) + 1


@pytest.mark.parametrize("mistake", [farthest, manhattan, one_based])
@pytest.mark.parametrize("state", [KM_STATES[1], KM_STATES[3]])
def test_kmeans_assign_mistakes_name_the_first_point_and_both_labels(mistake, state):
    ex = KMeansExplorer(**state, mine=dict(assign_clusters=mistake))
    X, c0 = ex.X, ex.centers.copy()
    ref, yours = nearest(X, c0), mistake(X, c0)
    differ = np.flatnonzero(yours != ref)
    assert differ.size  # the states are chosen so that the mistake shows at once
    i = int(differ[0])
    sentence = ex.mismatch()
    assert sentence.startswith("iteration 1, Assign: your assign_clusters")
    m = re.search(r"first at point (\d+): yours labels it (-?\d+), the reference (-?\d+) "
                  r"\((\d+) of (\d+) labels differ", sentence)
    assert m and [int(g) for g in m.groups()] == [i, yours[i], ref[i], differ.size, len(X)]
    assert len(offsets(ex.mine_point_marks)) == 0  # mismatch() tried a copy: nothing drawn
    ex.run()  # Run stops at the Assign where they part, the differing points ringed
    assert ex.iteration == 0 and ex.pending is not None and ex.mismatch() == sentence
    assert same_rows(offsets(ex.mine_point_marks), X[differ])
    if mistake is not one_based:  # usable labels drive the explorer: yours are shown
        np.testing.assert_array_equal(ex.labels, yours)
    else:  # label k does not exist: the reference's drive it, the sentence says why
        np.testing.assert_array_equal(ex.labels, ref)
        assert sentence.endswith(f"labels are 0..{state['k'] - 1}")
    assert ex.mine_status.value.count("iteration 1, Assign") == 1
    assert audit(ex.fig, "KMeansExplorer with ringed points") == []


# plausible mistakes in update_centers
def median(X, labels, k):
    return np.array([np.median(X[labels == j], axis=0) for j in range(k)])


def over_n(X, labels, k):  # divides each cluster's sum by all n points
    return np.array([X[labels == j].sum(axis=0) / len(X) for j in range(k)])


def first_point(X, labels, k):  # the cluster's first point, not its mean
    return np.array([X[labels == j][0] for j in range(k)])


@pytest.mark.parametrize("mistake", [median, over_n, first_point])
@pytest.mark.parametrize("state", [KM_STATES[0], KM_STATES[2]])
def test_kmeans_update_mistakes_name_the_first_center_and_both_positions(mistake, state):
    ex = KMeansExplorer(**state, mine=dict(update_centers=mistake))
    X, c0, k = ex.X, ex.centers.copy(), state["k"]
    labels = nearest(X, c0)
    ref, yours = means(X, labels, k), mistake(X, labels, k)
    bad = ~np.isclose(yours, ref).all(axis=1)
    j = int(np.flatnonzero(bad)[0])
    sentence = ex.mismatch()
    pair = rf"\(({NUMBER}), ({NUMBER})\)"
    m = re.search(rf"iteration 1, Update: your update_centers parts from the reference first "
                  rf"at center (\d+): yours {pair}, the reference's {pair} \((\d+) of (\d+)",
                  sentence)
    assert m, sentence
    assert int(m[1]) == j and int(m[6]) == bad.sum() and int(m[7]) == k
    np.testing.assert_allclose([float(m[2]), float(m[3])], yours[j], rtol=1e-3)
    np.testing.assert_allclose([float(m[4]), float(m[5])], ref[j], rtol=1e-3)
    ex.run()  # stops after the Update where they part: yours moved the centers
    assert ex.iteration == 1 and ex.mismatch() == sentence
    np.testing.assert_allclose(ex.centers, yours)
    assert same_rows(offsets(ex.mine_center_marks), ref[bad])  # where the reference put them
    ex.run()  # Run goes on with yours from there
    assert ex.iteration > 1 and ex.mismatch() == sentence


def test_kmeans_mismatch_names_a_later_iteration():
    calls = []

    def wrong_from_the_third_call(X, labels, k):  # right twice, then the first point
        calls.append(1)
        return means(X, labels, k) if len(calls) < 3 else first_point(X, labels, k)

    ex = KMeansExplorer(dataset="blobs", k=3, init="random", n=300, seed=0,
                        mine=dict(update_centers=wrong_from_the_third_call))
    ex.run()
    assert ex.mismatch().startswith("iteration 3, Update: your update_centers parts")
    assert ex.iteration == 3


def test_kmeans_empty_cluster_accepts_any_row():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    ex = KMeansExplorer(dataset="blobs", k=3, init="random", n=300, seed=0,
                        mine=dict(update_centers=nb_update_centers))
    ex.X = X
    ex.centers = np.array([[0.0, 0.0], [5.0, 5.0], [100.0, 100.0]])  # cluster 2 stays empty
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        ex.assign()
        ex.update()  # the notebook's mean of no points is NaN: the explorer moves it
    assert ex.mismatch() is None and np.isfinite(ex.centers).all()


def _raises(*args, **kwargs):
    return 1 / 0


def _not_written(*args, **kwargs):
    raise NotImplementedError()


def _slow(*args, **kwargs):
    time.sleep(1.0)


class _Counted:
    """The student's function, counting its calls: a function that failed must not be
    called again for the same data (every control change would cost its error or its full
    time limit again)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


BROKEN = [
    (_raises, "raised ZeroDivisionError: division by zero"),
    (_not_written, "raised NotImplementedError: the explorer shows the reference only"),
    (_slow, "took longer than 0.2 s and was stopped"),
    (lambda *a: "labels", "returned str, not an array of numbers"),
    (lambda *a: None, "returned NoneType, not an array of numbers"),
]


@pytest.mark.parametrize("name", ["assign_clusters", "update_centers"])
@pytest.mark.parametrize("fn, words", BROKEN)
def test_kmeans_broken_functions_give_a_sentence_and_the_explorer_keeps_working(name, fn,
                                                                                words):
    state = KM_STATES[0]
    fn = _Counted(fn)
    ex, plain = KMeansExplorer(**state, mine={name: fn}, mine_time_limit=0.2), \
        KMeansExplorer(**state)
    step = "Assign" if name == "assign_clusters" else "Update"
    sentence = ex.mismatch()
    assert sentence.startswith(f"iteration 1, {step}: your {name} ") and words in sentence
    assert words in ex.mine_problem and words in html.unescape(ex.mine_status.value)
    assert fn.calls == 1  # mismatch() tried the next step on a copy of the state
    ex.run()
    ex.run()  # Run stops where yours failed, then finishes with the reference
    plain.run()
    assert fn.calls == 2  # once by Run; the failing function is not called again
    assert ex.converged and ex.iteration == plain.iteration
    np.testing.assert_allclose(ex.centers, plain.centers)
    ex.controls["k"].value = 4  # the controls still redraw
    assert ex.centers.shape == (4, 2) and ex.png()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name, fn, words", [
    ("assign_clusters", lambda X, c: nearest(X, c)[:, None], "returned shape (300, 1); the "
     "reference's is (300,)"),
    ("assign_clusters", lambda X, c: nearest(X, c) + 0.5, "float64 values, not whole-number"),
    ("update_centers", lambda X, labels, k: means(X, labels, k).T, "returned shape (2, 3); "
     "the reference's is (3, 2)"),
])
def test_kmeans_wrong_shapes_and_types_say_so(name, fn, words):
    ex = KMeansExplorer(**KM_STATES[0], mine={name: fn})
    assert words in ex.mismatch()
    ex.run()  # stops at the failure, then finishes with the reference
    assert not ex.converged and words in ex.mismatch()
    ex.run()
    assert ex.converged


@pytest.mark.parametrize("mine, key", [
    (dict(assign=nearest), "assign"),
    (dict(assign_clusters=nearest, lloyd=nearest), "lloyd"),
    (dict(update_centers="means"), "update_centers"),
])
def test_kmeans_bad_mine_is_a_value_error_naming_the_key(mine, key):
    with pytest.raises(ValueError, match=key):
        KMeansExplorer(mine=mine)


# ---------------------------------------------------------------------- DBSCAN
def sk_dbscan(X, eps, min_samples):
    return DBSCAN(eps=eps, min_samples=min_samples).fit_predict(X)


def first_split(mine, ref):
    """The first i where mine[:i+1] and ref[:i+1] stop being one partition up to renaming
    (noise must be noise): counted with sets, not with a matching."""
    for i in range(len(ref)):
        if (mine[i] == -1) != (ref[i] == -1):
            return i
        m, r = mine[: i + 1], ref[: i + 1]
        keep = (m != -1) & (r != -1)
        pairs = set(zip(m[keep].tolist(), r[keep].tolist()))
        if not len(pairs) == len(set(m[keep].tolist())) == len(set(r[keep].tolist())):
            return i
    return None


def differing(mine, ref):
    """Points that differ: noise status, or a pair other than each cluster's first pair."""
    keep = (mine != -1) & (ref != -1)
    codes = mine * (ref.max() + 2) + ref
    first_pair_of_mine = {int(mine[i]): int(ref[i]) for i in np.flatnonzero(keep)[::-1]}
    first_pair_of_ref = {int(ref[i]): int(mine[i]) for i in np.flatnonzero(keep)[::-1]}
    out = (mine == -1) != (ref == -1)
    for i in np.flatnonzero(keep):
        out[i] = (first_pair_of_mine[int(mine[i])] != ref[i]
                  or first_pair_of_ref[int(ref[i])] != mine[i])
    assert codes.shape == out.shape
    return out


def nb_my_dbscan(X, eps, min_samples):  # solutions/02-dbscan/dbscan.ipynb
    n = len(X)
    labels = np.full(n, -1)
    neighbours = [clustering.region_query(X, i, eps) for i in range(n)]
    core = np.array([len(nb) >= min_samples for nb in neighbours])
    cluster = 0
    for start in range(n):
        if labels[start] != -1 or not core[start]:
            continue
        labels[start] = cluster
        to_visit = list(neighbours[start])
        while to_visit:
            j = to_visit.pop()
            if labels[j] != -1:
                continue
            labels[j] = cluster
            if core[j]:
                to_visit.extend(neighbours[j])
        cluster += 1
    return labels


def renumbered(X, eps, min_samples):  # clusters numbered largest first: the same partition
    labels = sk_dbscan(X, eps, min_samples)
    if labels.max() < 0:
        return labels
    sizes = np.bincount(labels[labels >= 0])
    rename = np.empty(len(sizes), int)
    rename[np.argsort(-sizes, kind="stable")] = np.arange(len(sizes))
    return np.where(labels >= 0, rename[np.maximum(labels, 0)], -1)


@pytest.mark.parametrize("fn", [sk_dbscan, nb_my_dbscan, renumbered,
                                lambda X, e, m: clustering.dbscan(X, e, m).labels])
def test_dbscan_reference_as_mine_agrees_on_every_state(fn):
    ex = DBSCANExplorer(dataset="moons", eps=0.15, min_samples=5, n=300, seed=0,
                        mine=dict(my_dbscan=fn))
    plain = DBSCANExplorer(dataset="moons", eps=0.15, min_samples=5, n=300, seed=0)
    assert ex.mismatch() is None and ex.mine_problem is None
    for name, value in [("eps", 0.1), ("min_samples", 8), ("dataset", "blobs_noise"),
                        ("eps", 0.5), ("seed", 3), ("n", 200), ("dataset", "smiley"),
                        ("eps", 0.3)]:
        ex.controls[name].value = value
        plain.controls[name].value = value
        assert ex.mismatch() is None, (name, value)
        assert len(offsets(ex.mine_sc)) == 0
    ex.step(5)
    plain.step(5)
    assert ex.mismatch() is None
    assert ex.png() == plain.png()  # the right answer draws exactly the same figure


def last_cluster_wins(X, eps, min_samples):  # tests/units/02-dbscan.py
    labels = nb_my_dbscan(X, eps, min_samples)
    core = np.array([len(clustering.region_query(X, i, eps)) >= min_samples
                     for i in range(len(X))])
    for i in np.flatnonzero(~core):
        near = [labels[j] for j in clustering.region_query(X, i, eps) if core[j]]
        if near:
            labels[i] = max(near)
    return labels


DB_MISTAKES = [
    last_cluster_wins,
    lambda X, e, m: sk_dbscan(X, e, m + 1),              # "more than MinPts" (count > m)
    lambda X, e, m: np.maximum(sk_dbscan(X, e, m), 0),   # noise put in cluster 0
    lambda X, e, m: sk_dbscan(X, e, m) + 1,              # everything shifted, noise too
    lambda X, e, m: sk_dbscan(X, e / 2, m),              # eps read as a diameter
]


@pytest.mark.parametrize("mistake", DB_MISTAKES)
@pytest.mark.parametrize("state", [dict(dataset="blobs_noise", eps=0.5, min_samples=10, n=500,
                                        seed=0),
                                   dict(dataset="moons", eps=0.12, min_samples=8, n=400,
                                        seed=1)])
def test_dbscan_mistakes_name_the_first_point_both_labels_and_its_kind(mistake, state):
    ex = DBSCANExplorer(**state, mine=dict(my_dbscan=mistake))
    X = ex.X
    sk = DBSCAN(eps=state["eps"], min_samples=state["min_samples"]).fit(X)
    ref, yours = sk.labels_, mistake(X, state["eps"], state["min_samples"])
    i = first_split(yours, ref)
    if i is None:  # this mistake does not show on these data
        assert ex.mismatch() is None
        return
    core = np.zeros(len(X), bool)
    core[sk.core_sample_indices_] = True
    kind = "core" if core[i] else "border" if ref[i] >= 0 else "noise"
    bad = differing(yours, ref)
    sentence = ex.mismatch()
    m = re.search(r"first at point (\d+): yours labels it (-?\d+)(?: \(noise\))?, the "
                  r"reference (-?\d+)(?: \(noise\))? \(a (\w+) point; .*; (\d+) of (\d+) points "
                  r"differ", sentence)
    assert m, sentence
    assert [int(m[1]), int(m[2]), int(m[3])] == [i, yours[i], ref[i]]
    assert m[4] == kind and [int(m[5]), int(m[6])] == [bad.sum(), len(X)]
    assert f"(eps={state['eps']:.2f}, min_samples={state['min_samples']})" in sentence
    assert same_rows(offsets(ex.mine_sc), X[bad]) and bad[i]
    assert ex.mine_status.value.count("parts from the reference") == 1
    assert audit(ex.fig, "DBSCANExplorer with ringed points") == []
    ex.step(3)  # step mode shows the expansion, not the final result's differences
    assert len(offsets(ex.mine_sc)) == 0
    ex.finish()
    assert len(offsets(ex.mine_sc)) == 0
    ex.controls["eps"].value = state["eps"] + 0.01  # leaves step mode: rings again
    ex.controls["eps"].value = state["eps"]
    assert same_rows(offsets(ex.mine_sc), X[bad])


def test_dbscan_every_mistake_shows_on_one_of_the_states():
    for mistake in DB_MISTAKES:
        ex = DBSCANExplorer(dataset="blobs_noise", eps=0.5, min_samples=10, n=500, seed=0,
                            mine=dict(my_dbscan=mistake))
        shown = ex.mismatch() is not None
        ex.controls["dataset"].value = "moons"
        ex.controls["n"].value = 400
        ex.controls["seed"].value = 1
        ex.controls["min_samples"].value = 8
        ex.controls["eps"].value = 0.12
        assert shown or ex.mismatch() is not None


@pytest.mark.parametrize("fn, words", [
    (_raises, "your my_dbscan raised ZeroDivisionError: division by zero"),
    (_not_written, "your my_dbscan raised NotImplementedError: the explorer shows"),
    (_slow, "your my_dbscan took longer than 0.2 s"),
    (lambda X, e, m: sk_dbscan(X, e, m)[:-1], "returned shape (299,); the reference's is "
     "(300,)"),
    (lambda X, e, m: list(map(str, sk_dbscan(X, e, m))), "returned list, not an array of "
     "numbers"),
    (lambda X, e, m: sk_dbscan(X, e, m) / 2, "float64 values, not whole-number labels"),
])
def test_dbscan_broken_functions_give_a_sentence_and_the_explorer_keeps_working(fn, words):
    fn = _Counted(fn)
    ex = DBSCANExplorer(dataset="moons", eps=0.15, min_samples=5, n=300, seed=0,
                        mine=dict(my_dbscan=fn), mine_time_limit=0.2)
    assert words in ex.mismatch() and words in ex.mine_problem
    assert words.split(":")[0] in html.unescape(ex.mine_status.value)
    for eps in (0.1, 0.12, 0.2, 0.25):  # the sliders still work and show the reference
        ex.controls["eps"].value = eps
        np.testing.assert_array_equal(ex.result.labels, sk_dbscan(ex.X, eps, 5))
    assert fn.calls == 1  # not called again for these data
    assert len(offsets(ex.mine_sc)) == 0 and ex.png()[:4] == b"\x89PNG"
    ex.controls["seed"].value = 1  # new data: yours is tried again
    assert words in ex.mismatch()


@pytest.mark.parametrize("mine, key", [
    (dict(dbscan=sk_dbscan), "dbscan"),
    (dict(my_dbscan=sk_dbscan, point_types=sk_dbscan), "point_types"),
    (dict(my_dbscan=None), "my_dbscan"),
])
def test_dbscan_bad_mine_is_a_value_error_naming_the_key(mine, key):
    with pytest.raises(ValueError, match=key):
        DBSCANExplorer(mine=mine)


def test_no_mine_keeps_the_explorers_as_they_were():
    for ex in (KMeansExplorer(), DBSCANExplorer()):
        assert ex.mismatch() is None and ex.mine == {} and ex.mine_problem is None
        assert not hasattr(ex, "mine_sc") and not hasattr(ex, "mine_point_marks")
