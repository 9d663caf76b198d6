"""Data the notebooks use, all available offline.

Toy 2-D sets (generated from a seed, so nothing ships or downloads) for the clustering
units; real images and digits for the CNN units.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers._validation import check_choice, check_float, check_int

TOY_2D = ("blobs", "moons", "smiley", "uniform", "anisotropic", "density_bars", "rings", "blobs_noise")


def toy_2d(name: str = "blobs", n: int = 500, *, noise: float = 0.05, seed=None):
    """Return ``(X, y)``: ``n`` 2-D points of the toy set ``name`` and their true groups.

    Parameters
    ----------
    name : {"blobs", "moons", "smiley", "uniform", "anisotropic", "density_bars", "rings", "blobs_noise"}
        "blobs": three round Gaussian clusters (where K-Means shines);
        "moons": two interleaved half circles (where it fails, DBSCAN's classic);
        "smiley": a face of two eyes, a mouth and an outline (clusters of very different shapes);
        "uniform": no structure at all (K-Means still returns k clusters);
        "anisotropic": stretched Gaussian clusters (K-Means' round-cluster assumption breaks);
        "density_bars": three bars of decreasing density (hard for one eps);
        "rings": two concentric circles;
        "blobs_noise": blobs plus 10% uniform background noise (label -1).
    n : int
        Number of points (at least 10).
    noise : float
        Standard deviation of the jitter added to curve-shaped sets ("moons", "smiley", "rings").
    seed : int, numpy Generator or None
        The only source of randomness.

    Returns
    -------
    X : ndarray of shape (n, 2)
    y : ndarray of shape (n,) of int; the generating group, -1 for background noise.

    Examples
    --------
    >>> X, y = toy_2d("moons", n=100, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 2), [0, 1])
    """
    check_choice(name, "name", TOY_2D)
    n = check_int(n, "n", min_value=10)
    noise = check_float(noise, "noise", min_value=0.0)
    rng = np.random.default_rng(seed)
    X, y = _MAKERS[name](n, noise, rng)
    return X.astype(np.float64), y.astype(np.int64)


def _split(n, weights):
    """Split n into len(weights) integer parts proportional to weights, summing to n."""
    w = np.asarray(weights, dtype=float)
    parts = np.floor(n * w / w.sum()).astype(int)
    parts[: n - parts.sum()] += 1
    return parts


def _blobs(n, noise, rng):
    centers = np.array([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.2]])
    sizes = _split(n, [1, 1, 1])
    X = np.concatenate([c + 0.6 * rng.standard_normal((m, 2)) for c, m in zip(centers, sizes)])
    y = np.repeat(np.arange(3), sizes)
    return X, y


def _moons(n, noise, rng):
    n0, n1 = _split(n, [1, 1])
    t0 = rng.uniform(0, np.pi, n0)
    t1 = rng.uniform(0, np.pi, n1)
    upper = np.c_[np.cos(t0), np.sin(t0)]
    lower = np.c_[1 - np.cos(t1), 0.5 - np.sin(t1)]
    X = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    y = np.repeat([0, 1], [n0, n1])
    return X, y


def _smiley(n, noise, rng):
    n_face, n_eye1, n_eye2, n_mouth = _split(n, [4, 1, 1, 2])
    t = rng.uniform(0, 2 * np.pi, n_face)
    face = 2.0 * np.c_[np.cos(t), np.sin(t)]
    eye1 = np.array([-0.7, 0.6]) + 0.15 * rng.standard_normal((n_eye1, 2))
    eye2 = np.array([0.7, 0.6]) + 0.15 * rng.standard_normal((n_eye2, 2))
    s = rng.uniform(np.pi * 1.15, np.pi * 1.85, n_mouth)
    mouth = np.c_[1.1 * np.cos(s), 1.1 * np.sin(s) - 0.1]
    X = np.concatenate([face, eye1, eye2, mouth])
    X[: n_face] += noise * rng.standard_normal((n_face, 2))
    X[n - n_mouth:] += noise * rng.standard_normal((n_mouth, 2))
    y = np.repeat(np.arange(4), [n_face, n_eye1, n_eye2, n_mouth])
    return X, y


def _uniform(n, noise, rng):
    return rng.uniform(-2, 2, (n, 2)), np.zeros(n, dtype=int)


def _anisotropic(n, noise, rng):
    # Three parallel, stretched Gaussians: long along the diagonal, close side by side.
    sizes = _split(n, [1, 1, 1])
    along = np.array([1.0, 1.0]) / np.sqrt(2)
    across = np.array([-1.0, 1.0]) / np.sqrt(2)
    parts = []
    for offset, m in zip((-1.8, 0.0, 1.8), sizes):
        z = rng.standard_normal((m, 2))
        parts.append(offset * across + 2.0 * z[:, :1] * along + 0.3 * z[:, 1:] * across)
    return np.concatenate(parts), np.repeat(np.arange(3), sizes)


def _density_bars(n, noise, rng):
    sizes = _split(n, [6, 3, 1])
    parts = []
    for i, m in enumerate(sizes):
        x = rng.uniform(-0.4, 0.4, m) + (i - 1) * 1.6
        yy = rng.uniform(-1.5, 1.5, m)
        parts.append(np.c_[x, yy])
    return np.concatenate(parts), np.repeat(np.arange(3), sizes)


def _rings(n, noise, rng):
    n0, n1 = _split(n, [1, 2])
    t0 = rng.uniform(0, 2 * np.pi, n0)
    t1 = rng.uniform(0, 2 * np.pi, n1)
    X = np.concatenate([0.8 * np.c_[np.cos(t0), np.sin(t0)], 2.0 * np.c_[np.cos(t1), np.sin(t1)]])
    X += noise * rng.standard_normal((n, 2))
    return X, np.repeat([0, 1], [n0, n1])


def _blobs_noise(n, noise, rng):
    n_noise = max(1, n // 10)
    X, y = _blobs(n - n_noise, noise, rng)
    background = rng.uniform(-4, 4, (n_noise, 2))
    return np.concatenate([X, background]), np.concatenate([y, np.full(n_noise, -1)])


_MAKERS = {
    "blobs": _blobs,
    "moons": _moons,
    "smiley": _smiley,
    "uniform": _uniform,
    "anisotropic": _anisotropic,
    "density_bars": _density_bars,
    "rings": _rings,
    "blobs_noise": _blobs_noise,
}
