"""L-BFGS and the strong-Wolfe line search it steps with.

:func:`lbfgs` is Nocedal and Wright's Algorithm 7.5 (two-loop recursion, Algorithm 7.4);
:func:`wolfe_line_search` is their Algorithm 3.5 (:func:`_bracket`) and 3.6
(:func:`_zoom`), trial steps at the minimiser of a cubic (:func:`_cubic_min`). Both are
re-exported by :mod:`helpers.optim`, where the notebooks find them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from helpers._validation import check_array, check_float, check_int

__all__ = ["LBFGSResult", "LineSearchResult", "lbfgs", "wolfe_line_search"]


@dataclass(frozen=True)
class LBFGSResult:
    """What :func:`lbfgs` returns.

    Attributes
    ----------
    x : ndarray (d,)
        The last iterate.
    fun : float
        ``f(x)``.
    grad : ndarray (d,)
        The gradient at ``x``.
    n_iter : int
        Number of iterations (accepted steps).
    n_evals : int
        Number of calls to ``f_and_grad`` (line-search trials included).
    path : ndarray (n_iter + 1, d)
        The start point and every iterate.
    fun_path : ndarray (n_iter + 1,)
        ``f`` along ``path``.
    converged : bool
        True when ``max(|grad|) <= tol`` was reached.
    message : str
        Why it stopped.
    """

    x: np.ndarray
    fun: float
    grad: np.ndarray
    n_iter: int
    n_evals: int
    path: np.ndarray
    fun_path: np.ndarray
    converged: bool
    message: str


@dataclass(frozen=True)
class LineSearchResult:
    """What :func:`wolfe_line_search` returns.

    ``alpha`` is the step length (0.0 when the search failed), ``fun`` and ``grad`` the
    value and gradient at ``x + alpha * direction``, ``n_evals`` the calls to
    ``f_and_grad``, ``success`` whether both strong Wolfe conditions hold at ``alpha``
    (a failed search may still return an ``alpha > 0`` that decreases ``f``).
    """

    alpha: float
    fun: float
    grad: np.ndarray
    n_evals: int
    success: bool


def lbfgs(f_and_grad, x0, *, history=10, max_iter=100, tol=1e-6, max_evals=None) -> LBFGSResult:
    """Minimise ``f`` with limited-memory BFGS (Nocedal and Wright, Algorithm 7.5).

    Each iteration builds the quasi-Newton direction ``d = -H g`` with the two-loop
    recursion (N&W Algorithm 7.4) from the last ``history`` pairs ``s = x_new - x``,
    ``y = g_new - g``, scaling the initial inverse Hessian by ``s.y / y.y``; then
    :func:`wolfe_line_search` picks a step that satisfies the strong Wolfe conditions
    (c1 = 1e-4, c2 = 0.9), trying the full quasi-Newton step first. The Wolfe curvature
    condition guarantees ``s.y > 0``, which keeps ``H`` positive definite.

    L-BFGS needs ONE deterministic function: the line search compares values of ``f``
    at different points, and the ``(s, y)`` pairs are differences of gradients. With
    mini-batch gradients both comparisons mix the change of ``x`` with the change of
    batch, which is why the slides say it does not transfer to mini-batches (see
    :func:`make_logreg_problem` for a measured example).

    Parameters
    ----------
    f_and_grad : callable
        ``f_and_grad(x) -> (f, g)`` with ``x`` and ``g`` of shape (d,) and ``f`` a float.
    x0 : array_like, shape (d,)
        Start point.
    history : int
        Number of ``(s, y)`` pairs kept (scipy's ``maxcor``, torch's ``history_size``).
    max_iter : int
        Maximum number of iterations.
    tol : float
        Stop when ``max(|g|) <= tol`` (scipy's ``gtol``, torch's ``tolerance_grad``).
    max_evals : int or None
        Maximum number of calls to ``f_and_grad`` in all (None: no limit beyond
        ``max_iter``). Handy to give two runs the same budget.

    Returns
    -------
    LBFGSResult
        ``.x .fun .grad .n_iter .n_evals .path .fun_path .converged .message``.

    Examples
    --------
    >>> from helpers.surfaces import rosenbrock
    >>> res = lbfgs(rosenbrock.f_and_grad, rosenbrock.start)
    >>> res.converged, np.round(res.x, 6), res.path.shape == (res.n_iter + 1, 2)
    (True, array([1., 1.]), True)
    """
    if not callable(f_and_grad):
        raise TypeError(f"f_and_grad must be callable, got {type(f_and_grad).__name__}")
    x = check_array(x0, "x0", ndim=1, min_samples=1, shape_hint="(d,)").copy()
    history = check_int(history, "history", min_value=1)
    max_iter = check_int(max_iter, "max_iter", min_value=0)
    tol = check_float(tol, "tol", min_value=0.0)
    if max_evals is not None:
        max_evals = check_int(max_evals, "max_evals", min_value=1)
    evaluate = _Counted(f_and_grad, x.shape)

    f, g = evaluate(x)
    path, fun_path = [x.copy()], [f]
    s_hist, y_hist = deque(maxlen=history), deque(maxlen=history)
    converged, message = False, ""
    while True:
        if np.max(np.abs(g)) <= tol:
            converged, message = True, f"max |gradient| <= tol = {tol:g}"
            break
        if len(path) - 1 >= max_iter:
            message = f"reached max_iter = {max_iter}"
            break
        left = None if max_evals is None else max_evals - evaluate.count
        if left is not None and left <= 0:
            message = f"reached max_evals = {max_evals}"
            break

        d = -_two_loop(g, s_hist, y_hist)
        if g @ d >= 0:  # round-off made H indefinite: forget the history, go downhill
            s_hist.clear()
            y_hist.clear()
            d = -g
        # Without curvature information, a first step of length at most 1 (as scipy's
        # L-BFGS-B); afterwards the quasi-Newton step is well scaled, so try it whole.
        alpha0 = 1.0 if s_hist else min(1.0, 1.0 / np.linalg.norm(g))
        ls = wolfe_line_search(
            evaluate, x, d, fun=f, grad=g, alpha0=alpha0,
            max_evals=25 if left is None else min(25, left),
        )
        if ls.alpha == 0.0:
            message = (
                "line search found no lower value along the search direction "
                "(noise in f, or tol below what float64 resolves)"
            )
            break
        s, y = ls.alpha * d, ls.grad - g
        if s @ y > 1e-10 * (y @ y):  # keep only pairs with positive curvature
            s_hist.append(s)
            y_hist.append(y)
        x, f, g = x + s, ls.fun, ls.grad
        path.append(x.copy())
        fun_path.append(f)

    return LBFGSResult(
        x=x,
        fun=float(f),
        grad=g,
        n_iter=len(path) - 1,
        n_evals=evaluate.count,
        path=np.array(path),
        fun_path=np.array(fun_path),
        converged=converged,
        message=message,
    )


def _two_loop(g, s_hist, y_hist):
    """H @ g for the L-BFGS inverse-Hessian approximation (N&W Algorithm 7.4)."""
    q = g.copy()
    alphas = []
    for s, y in zip(reversed(s_hist), reversed(y_hist), strict=True):
        rho = 1.0 / (y @ s)
        a = rho * (s @ q)
        q -= a * y
        alphas.append((rho, a))
    gamma = (s_hist[-1] @ y_hist[-1]) / (y_hist[-1] @ y_hist[-1]) if s_hist else 1.0
    r = gamma * q
    for (s, y), (rho, a) in zip(zip(s_hist, y_hist, strict=True), reversed(alphas), strict=True):
        b = rho * (y @ r)
        r += s * (a - b)
    return r


def wolfe_line_search(
    f_and_grad, x, direction, *, fun=None, grad=None, alpha0=1.0, c1=1e-4, c2=0.9,
    max_evals=25,
) -> LineSearchResult:
    """Find a step ``alpha`` along ``direction`` satisfying the strong Wolfe conditions.

    With ``phi(a) = f(x + a * direction)``::

        phi(a)     <= phi(0) + c1 * a * phi'(0)     (sufficient decrease, Armijo)
        |phi'(a)|  <= c2 * |phi'(0)|                (strong curvature)

    Nocedal and Wright's Algorithm 3.5: grow the trial step until it brackets an
    acceptable one (the value rises, or the slope turns non-negative), then
    Algorithm 3.6 ("zoom") shrinks the bracket, each trial at the minimiser of the cubic
    through the bracket's two ends (values and slopes), safeguarded by bisection.

    Parameters
    ----------
    f_and_grad : callable
        ``f_and_grad(x) -> (f, g)``.
    x, direction : array_like, shape (d,)
        Start point and a descent direction (``grad @ direction < 0``).
    fun, grad : float and array_like, optional
        ``f(x)`` and its gradient when already known (saves one evaluation).
    alpha0 : float
        First trial step (> 0).
    c1, c2 : float
        The Wolfe constants, ``0 < c1 < c2 < 1``.
    max_evals : int
        Maximum number of calls to ``f_and_grad``.

    Returns
    -------
    LineSearchResult
        ``.alpha .fun .grad .n_evals .success``. When no step met both conditions in
        ``max_evals`` calls, the best step seen that satisfies sufficient decrease (or
        ``alpha = 0``, ``fun = f(x)``) with ``success=False``.

    Examples
    --------
    >>> f = lambda x: (float(x @ x), 2 * x)
    >>> ls = wolfe_line_search(f, np.array([1.0, 1.0]), np.array([-1.0, -1.0]), alpha0=2.0)
    >>> ls.success, ls.alpha, ls.fun          # the cubic lands on the exact minimiser
    (True, 1.0, 0.0)
    """
    x = check_array(x, "x", ndim=1, min_samples=1, shape_hint="(d,)")
    d = check_array(direction, "direction", ndim=1, shape_hint="(d,)")
    if d.shape != x.shape:
        raise ValueError(f"direction must have the shape of x {x.shape}, got {d.shape}")
    alpha0 = check_float(alpha0, "alpha0", min_value=0.0, min_inclusive=False)
    c1 = check_float(c1, "c1", min_value=0.0, max_value=1.0, min_inclusive=False,
                     max_inclusive=False)
    c2 = check_float(c2, "c2", min_value=c1, max_value=1.0, min_inclusive=False,
                     max_inclusive=False)
    max_evals = check_int(max_evals, "max_evals", min_value=1)
    evaluate = f_and_grad if isinstance(f_and_grad, _Counted) else _Counted(f_and_grad, x.shape)
    start_count = evaluate.count
    if fun is None or grad is None:
        if max_evals < 2:
            raise ValueError("max_evals must be >= 2 when fun and grad are not given")
        fun, grad = evaluate(x)
        max_evals -= 1
    grad = check_array(grad, "grad", ndim=1)
    phi0, dphi0 = float(fun), float(grad @ d)
    if dphi0 >= 0:
        raise ValueError(
            f"direction must be a descent direction (grad @ direction < 0), got {dphi0:g}"
        )

    def done(t, success):
        return LineSearchResult(t.a, t.f, t.g, evaluate.count - start_count, success)

    phi = _Phi(evaluate, x, d, _Trial(0.0, phi0, grad, dphi0), c1, c2, max_evals)
    found, lo, hi = _bracket(phi, alpha0)
    if found is None and hi is not None:
        found, lo = _zoom(phi, lo, hi)
    if found is not None:
        return done(found, True)
    return done(lo if lo.a > 0 else phi.start, False)


class _Phi:
    """``phi(a) = f(x + a * direction)`` with the two Wolfe tests and a budget of calls."""

    def __init__(self, evaluate, x, d, start, c1, c2, budget):
        self.evaluate, self.x, self.d, self.start = evaluate, x, d, start
        self.c1, self.c2, self.budget = c1, c2, budget

    def __call__(self, a):
        self.budget -= 1
        f, g = self.evaluate(self.x + a * self.d)
        return _Trial(a, f, g, float(g @ self.d))

    def armijo(self, t):
        """Sufficient decrease: ``phi(a) <= phi(0) + c1 * a * phi'(0)``."""
        return t.f <= self.start.f + self.c1 * t.a * self.start.dphi

    def curvature(self, t):
        """Strong curvature: ``|phi'(a)| <= c2 * |phi'(0)|``."""
        return abs(t.dphi) <= -self.c2 * self.start.dphi


def _bracket(phi, alpha0):
    """N&W Algorithm 3.5: grow the step from ``alpha0`` until it brackets a Wolfe step.

    Returns ``(found, lo, hi)``: ``found`` a trial meeting both conditions (then
    ``lo = hi = None``); else a bracket ``[lo, hi]`` to zoom into, ``lo`` satisfying
    sufficient decrease; else, when the budget ran out, ``(None, last, None)`` with the
    last trial that went downhill (``phi.start`` if none did).
    """
    prev, a = phi.start, alpha0
    while phi.budget > 0:
        cur = phi(a)
        if not phi.armijo(cur) or (prev.a > 0 and cur.f >= prev.f):
            return None, prev, cur
        if phi.curvature(cur):
            return cur, None, None
        if cur.dphi >= 0:
            return None, cur, prev
        # Still going down steeply: extrapolate with the cubic, at most 10x further.
        a_next = _cubic_min(prev, cur, cur.a + 0.01 * (cur.a - prev.a), 10.0 * cur.a)
        prev, a = cur, a_next
    return None, prev, None


def _zoom(phi, lo, hi):
    """N&W Algorithm 3.6: shrink the bracket ``[lo, hi]`` (either order) to a Wolfe step.

    Each trial sits at the minimiser of the cubic through the bracket's ends, kept 10%
    away from them (a safeguarded bisection). ``lo`` always satisfies sufficient decrease
    and has the lowest value seen. Returns ``(found, lo)``: ``found`` is None when the
    budget ran out or the bracket shrank below float64 resolution.
    """
    x, d = phi.x, phi.d
    while phi.budget > 0:
        left, right = min(lo.a, hi.a), max(lo.a, hi.a)
        if (right - left) * np.max(np.abs(d)) < 1e-14 * (1.0 + np.max(np.abs(x))):
            break  # the bracket is below float64 resolution
        width = right - left
        cur = phi(_cubic_min(lo, hi, left + 0.1 * width, right - 0.1 * width))
        if not phi.armijo(cur) or cur.f >= lo.f:
            hi = cur
        else:
            if phi.curvature(cur):
                return cur, lo
            if cur.dphi * (hi.a - lo.a) >= 0:
                hi = lo
            lo = cur
    return None, lo


@dataclass(frozen=True)
class _Trial:
    a: float  # step length
    f: float  # phi(a)
    g: np.ndarray  # gradient at x + a * d
    dphi: float  # phi'(a) = g @ d


def _cubic_min(p, q, lo, hi):
    """Minimiser of the cubic through two trials (values and slopes), clipped to [lo, hi].

    N&W equation (3.59). Falls back to the middle of [lo, hi] when the cubic has no
    minimiser (or the trials coincide).
    """
    if p.a == q.a:
        return 0.5 * (lo + hi)
    d1 = p.dphi + q.dphi - 3.0 * (p.f - q.f) / (p.a - q.a)
    disc = d1 * d1 - p.dphi * q.dphi
    if disc < 0 or not np.isfinite(disc):
        return 0.5 * (lo + hi)
    d2 = math.copysign(math.sqrt(disc), q.a - p.a)
    denom = q.dphi - p.dphi + 2.0 * d2
    if denom == 0:
        return 0.5 * (lo + hi)
    a = q.a - (q.a - p.a) * (q.dphi + d2 - d1) / denom
    if not np.isfinite(a):
        return 0.5 * (lo + hi)
    return float(min(max(a, lo), hi))


class _Counted:
    """Wrap ``f_and_grad``: count calls and check what it returns."""

    def __init__(self, f_and_grad, shape):
        self.f_and_grad, self.shape, self.count = f_and_grad, shape, 0

    def __call__(self, x):
        self.count += 1
        out = self.f_and_grad(x)
        try:
            f, g = out
        except (TypeError, ValueError):
            raise TypeError(
                f"f_and_grad must return a pair (f, g), got {type(out).__name__}"
            ) from None
        g = np.asarray(g, dtype=np.float64)
        if g.shape != self.shape:
            raise ValueError(
                f"f_and_grad returned a gradient of shape {g.shape}, expected {self.shape}"
            )
        return float(f), g
