"""The unit 02-dbscan checkers: each passes correct answers written independently of helpers
(plain numpy / scikit-learn), rejects plausible mistakes with a message that says what to fix,
and re-judges recorded answers the way the grading harness does."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from helpers import clustering
from helpers.checks import dbscan as check
from helpers.checks._core import REGISTRY, CheckFailure, decode, encode

HIDDEN = {"seeds": range(100, 106), "dims": (1, 2, 3, 6)}


# ------------------------------------------------------------------ correct, written plainly

def region_query(X, i, eps):
    return np.flatnonzero(np.sqrt(((X - X[i]) ** 2).sum(axis=1)) <= eps)


def point_types(X, eps, min_samples):
    counts = np.array([len(region_query(X, i, eps)) for i in range(len(X))])
    core = counts >= min_samples
    types = np.where(core, "core", "noise").astype(object)
    for i in np.flatnonzero(~core):
        if core[region_query(X, i, eps)].any():
            types[i] = "border"
    return types


def my_dbscan(X, eps, min_samples):
    n = len(X)
    neighbours = [region_query(X, i, eps) for i in range(n)]
    core = np.array([len(nb) >= min_samples for nb in neighbours])
    labels = np.full(n, -1)
    cluster = 0
    for i in range(n):
        if labels[i] != -1 or not core[i]:
            continue
        labels[i] = cluster
        queue = [i]
        while queue:
            p = queue.pop(0)  # breadth first: the order does not change the labels
            if not core[p]:
                continue
            for q in neighbours[p]:
                if labels[q] == -1:
                    labels[q] = cluster
                    queue.append(q)
        cluster += 1
    return labels


def k_distances(X, k):
    dist, _ = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    return np.sort(dist[:, -1])


def ari_scores(X, y, eps, min_samples, k, seed=0):
    return (adjusted_rand_score(y, DBSCAN(eps=eps, min_samples=min_samples).fit(X).labels_),
            adjusted_rand_score(y, clustering.kmeans(X, k, seed=seed).labels))


def test_correct_answers_pass_visible_and_hidden():
    check.check_region_query(region_query)
    check.check_region_query(region_query, **HIDDEN)
    check.check_region_query(clustering.region_query, **HIDDEN)
    check.check_point_types(point_types)
    check.check_point_types(point_types, **HIDDEN)
    check.check_point_types(lambda *a: list(point_types(*a)))  # a list of str is fine too
    check.check_my_dbscan(my_dbscan)
    check.check_my_dbscan(my_dbscan, **HIDDEN)
    check.check_my_dbscan(lambda *a: clustering.dbscan(*a).labels, **HIDDEN)
    check.check_k_distances(k_distances)
    check.check_k_distances(k_distances, **HIDDEN)
    check.check_eps_choice(lambda X, m: 0.6)
    check.check_eps_choice(lambda X, m: 0.6, seeds=(1, 2, 3))
    check.check_ari_scores(ari_scores)
    check.check_ari_scores(ari_scores, datasets=("moons", "rings", "smiley"), seeds=(1, 2))


def test_the_notebooks_knee_rule_passes_the_eps_check():
    """The solution reads eps at the knee of seed 0's curve (farthest from the chord)."""
    X, _ = check.toy_2d("blobs_noise", n=500, seed=0)
    kd = clustering.k_distance(X, 10)
    x = np.linspace(0, 1, len(kd))
    knee = kd[np.argmax(x - (kd - kd[0]) / (kd[-1] - kd[0]))]
    check.check_eps_choice(lambda X, m: knee, seeds=(0, 1, 2, 3))


# ------------------------------------------------------------------ plausible mistakes

def fails(chk, fn, match, **params):
    with pytest.raises(CheckFailure, match=match):
        chk(fn, **params)


def test_region_query_mistakes():
    strict = lambda X, i, eps: np.flatnonzero(((X - X[i]) ** 2).sum(axis=1) < eps**2)  # noqa: E731
    fails(check.check_region_query, strict, "distance == eps counts")
    without_self = lambda X, i, eps: np.setdiff1d(region_query(X, i, eps), [i])  # noqa: E731
    fails(check.check_region_query, without_self, "itself")
    mask = lambda X, i, eps: ((X - X[i]) ** 2).sum(axis=1) <= eps**2  # noqa: E731
    fails(check.check_region_query, mask, "not a boolean mask")
    backwards = lambda X, i, eps: region_query(X, i, eps)[::-1]  # noqa: E731
    fails(check.check_region_query, backwards, "ascending")
    manhattan = lambda X, i, eps: np.flatnonzero(np.abs(X - X[i]).sum(axis=1) <= eps)  # noqa: E731
    fails(check.check_region_query, manhattan, "misses|farther")
    first_dim = lambda X, i, eps: np.flatnonzero(np.abs(X[:, 0] - X[i, 0]) <= eps)  # noqa: E731
    fails(check.check_region_query, first_dim, "farther than eps")


def test_point_types_mistakes():
    def more_than(X, eps, min_samples):  # the slide's wording read literally
        return point_types(X, eps, min_samples + 1)

    fails(check.check_point_types, more_than, "at least min_samples")

    def no_noise(X, eps, min_samples):
        t = point_types(X, eps, min_samples)
        t[t == "noise"] = "border"
        return t

    fails(check.check_point_types, no_noise, "should be noise")

    def core_only_with_all_neighbours_core(X, eps, min_samples):
        t = point_types(X, eps, min_samples)  # border = "near a core point", not "near any"
        for i in np.flatnonzero(t == "border"):
            if not all(t[j] == "core" for j in region_query(X, i, eps) if j != i):
                t[i] = "noise"
        return t

    fails(check.check_point_types, core_only_with_all_neighbours_core, "should be border")
    fails(check.check_point_types, lambda X, e, m: np.array(["Core?"] * len(X)),
          "only 'core', 'border' or 'noise'")


def test_my_dbscan_mistakes():
    def last_cluster_wins(X, eps, min_samples):
        labels = my_dbscan(X, eps, min_samples)
        core = np.array([len(region_query(X, i, eps)) >= min_samples for i in range(len(X))])
        for i in np.flatnonzero(~core):  # border points relabelled by every later cluster
            near = [labels[j] for j in region_query(X, i, eps) if core[j]]
            if near:
                labels[i] = max(near)
        return labels

    fails(check.check_my_dbscan, last_cluster_wins, "first cluster that reaches it")
    fails(check.check_my_dbscan, lambda *a: np.where(my_dbscan(*a) >= 0, my_dbscan(*a) + 1, -1),
          "numbered differently")

    def renumbered_by_size(X, eps, min_samples):
        labels = my_dbscan(X, eps, min_samples)
        sizes = np.bincount(labels[labels >= 0])
        order = np.argsort(-sizes, kind="stable")
        rename = np.empty_like(order)
        rename[order] = np.arange(len(order))
        return np.where(labels >= 0, rename[np.maximum(labels, 0)], -1)

    fails(check.check_my_dbscan, renumbered_by_size, "numbered differently")
    fails(check.check_my_dbscan, lambda X, e, m: my_dbscan(X, e, m + 1), "label")
    fails(check.check_my_dbscan, lambda X, e, m: np.maximum(my_dbscan(X, e, m), 0), "noise")
    fails(check.check_my_dbscan, lambda X, e, m: my_dbscan(X, e, m)[:-1], "shape")


def test_k_distance_mistakes():
    fails(check.check_k_distances, lambda X, k: k_distances(X, k + 1)
          if k < len(X) else k_distances(X, k), "itself")
    fails(check.check_k_distances, lambda X, k: k_distances(X, k)[::-1], "not sorted")
    fails(check.check_k_distances, lambda X, k: k_distances(X, max(k - 1, 1)), "wrong values")
    fails(check.check_k_distances, lambda X, k: k_distances(X, k) ** 2, "wrong values")


def test_eps_choice_mistakes():
    fails(check.check_eps_choice, lambda X, m: 0.2, "too small")
    fails(check.check_eps_choice, lambda X, m: 2.0, "too large")
    fails(check.check_eps_choice, lambda X, m: -1.0, "positive")
    fails(check.check_eps_choice, lambda X, m: (0.5, 0.6), "one positive number")
    # Read off the curve at the wrong place for other samples: the hidden seeds catch it.
    check.check_eps_choice(lambda X, m: 0.36)
    fails(check.check_eps_choice, lambda X, m: 0.36, "too small", seeds=(1, 2, 3))


def test_ari_scores_mistakes():
    fails(check.check_ari_scores, lambda *a: ari_scores(*a)[::-1], "ari_dbscan")
    fails(check.check_ari_scores, lambda *a: ari_scores(*a)[0], "pair")

    def kmeans_ari_forgotten(X, y, eps, min_samples, k, seed=0):
        return ari_scores(X, y, eps, min_samples, k, seed=seed)[0], 0.0

    fails(check.check_ari_scores, kmeans_ari_forgotten, "ari_kmeans")


def test_unfinished_and_crashing_answers():
    def todo(*args):
        raise NotImplementedError()

    for chk in (check.check_region_query, check.check_point_types, check.check_my_dbscan,
                check.check_k_distances, check.check_ari_scores):
        with pytest.raises(CheckFailure, match="not implemented yet"):
            chk(todo)

    def in_place(X, eps, min_samples):
        X += 1.0
        return my_dbscan(X, eps, min_samples)

    fails(check.check_my_dbscan, in_place, "modified its input")


def test_recorded_answers_are_rejudged_like_the_harness(monkeypatch):
    """Answers round-trip through encode/decode (point types become integer codes) and are
    judged again from the check's name and params alone."""
    recorded = {}
    monkeypatch.setattr("helpers.checks._core._record",
                        lambda name, params, answers: recorded.update(
                            {name: (params, [encode(a) for a in answers])}))
    check.check_point_types(point_types, seeds=[3, 4])
    check.check_my_dbscan(my_dbscan)
    check.check_eps_choice(lambda X, m: 0.6)
    for name in ("dbscan.point_types", "dbscan.my_dbscan", "dbscan.eps_choice"):
        params, answers = recorded[name]
        REGISTRY[name].rejudge(params, answers)
    params, answers = recorded["dbscan.point_types"]
    assert decode(answers[0]).dtype.kind == "i"
    wrong = encode(np.zeros(6, dtype=np.int8))  # every point "noise" on the hand-made case
    with pytest.raises(CheckFailure, match="should be core"):
        REGISTRY["dbscan.point_types"].rejudge(params, [wrong] + answers[1:])
