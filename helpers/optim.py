"""Optimisers: first-order update rules, L-BFGS, a plateau schedule and test problems.

Update rules (CS231n's ``optim.py`` convention). Every rule has one signature::

    w_next, config = rule(w, dw, config=None)

``w`` is the current parameter array (any shape, computed in float64), ``dw`` the
gradient of the loss at ``w`` (same shape). ``config`` is a dict of hyperparameters; the
missing ones get defaults through ``config.setdefault``, and the rule keeps its state
(velocity, cache, m, v, t) in the same dict. Pass the returned ``config`` back in on the
next step. ``w`` is never modified in place; ``config`` is (it is the state). A dict
holds the state of ONE parameter array: use one config per array.

================  ====================================================================
rule              config keys (defaults) -> state
================  ====================================================================
``sgd``           learning_rate (1e-2), weight_decay (0)
``sgd_momentum``  learning_rate (1e-2), momentum (0.9), weight_decay (0) -> velocity
``nesterov``      learning_rate (1e-2), momentum (0.9), weight_decay (0) -> velocity
``rmsprop``       learning_rate (1e-2), decay_rate (0.99), epsilon (1e-8), weight_decay (0)
                  -> cache
``adam``          learning_rate (1e-3), beta1 (0.9), beta2 (0.999), epsilon (1e-8),
                  weight_decay (0), bias_correction (True) -> m, v, t
================  ====================================================================

Each rule equals the matching ``torch.optim`` optimiser step by step (float64, same
hyperparameters): ``sgd`` = ``SGD``, ``sgd_momentum`` = ``SGD(momentum=mu)``,
``nesterov`` = ``SGD(momentum=mu, nesterov=True)``, ``rmsprop`` =
``RMSprop(alpha=decay_rate, eps=epsilon)``, ``adam`` = ``Adam(betas=(beta1, beta2),
eps=epsilon)``. ``weight_decay`` is torch's coupled L2 penalty (``dw + weight_decay * w``,
what AlexNet's "weight decay 5e-4" means), not AdamW's decoupled decay. An unknown config
key (``lr`` for ``learning_rate``, say) raises ``ValueError`` rather than being ignored.

Beyond the rules: :func:`run_rule` (iterate a rule on a function, as the optimiser race
does), :func:`lbfgs` (two-loop recursion + strong-Wolfe line search
:func:`wolfe_line_search`), :class:`StepOnPlateau` / :func:`step_on_plateau` (AlexNet's
"divide the learning rate by 10 when validation accuracy plateaus", as
``torch.optim.lr_scheduler.ReduceLROnPlateau``), :func:`make_logreg_problem` (softmax
regression on scikit-learn's digits, full-batch and mini-batch), and the 2-D test
surfaces of :mod:`helpers.surfaces`, re-exported here.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from helpers._validation import check_array, check_choice, check_float, check_int
from helpers.surfaces import (
    SURFACES,
    Surface,
    beale,
    ill_conditioned_quadratic,
    long_valley,
    rosenbrock,
    saddle,
)

__all__ = [
    "SURFACES",
    "LBFGSResult",
    "LineSearchResult",
    "LogRegProblem",
    "StepOnPlateau",
    "Surface",
    "Trajectory",
    "adam",
    "beale",
    "ill_conditioned_quadratic",
    "lbfgs",
    "long_valley",
    "make_logreg_problem",
    "nesterov",
    "rmsprop",
    "rosenbrock",
    "run_rule",
    "saddle",
    "sgd",
    "sgd_momentum",
    "step_on_plateau",
    "wolfe_line_search",
]


# ----------------------------------------------------------------------------------------
# First-order update rules
# ----------------------------------------------------------------------------------------


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w - learning_rate * dw``.

    Parameters
    ----------
    w : array_like
        Parameters, any shape.
    dw : array_like
        Gradient of the loss at ``w``, same shape.
    config : dict or None
        ``learning_rate`` (default 1e-2, > 0); ``weight_decay`` (default 0, >= 0: the
        gradient becomes ``dw + weight_decay * w``).

    Returns
    -------
    w_next : ndarray (float64), shape of ``w``
    config : dict
        The same dict, defaults filled in.

    Examples
    --------
    >>> w, config = sgd(np.array([1.0, 2.0]), np.array([10.0, -10.0]), {"learning_rate": 0.1})
    >>> w
    array([0., 3.])
    """
    w, dw, config = _start(w, dw, config, "sgd", {"learning_rate": 1e-2, "weight_decay": 0.0})
    lr, g = config["learning_rate"], _decayed(w, dw, config)
    return w - lr * g, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum, in torch's form (``torch.optim.SGD(momentum=mu)``, dampening 0)::

        velocity = momentum * velocity + dw
        w_next   = w - learning_rate * velocity

    CS231n (and the slides' "momentum" annotation) write ``v = mu * v - learning_rate *
    dw; w += v``. The two are the same iterates while the learning rate is constant (their
    ``v`` is ``-learning_rate`` times our velocity); they differ after a learning-rate drop:
    here the accumulated velocity is rescaled by the new rate at once, there the old,
    larger steps keep coasting and fade at rate ``mu``. We follow torch, so a schedule such
    as AlexNet's gives the same run as in torch.

    Parameters
    ----------
    w, dw : array_like
        Parameters and their gradient, same shape.
    config : dict or None
        ``learning_rate`` (1e-2, > 0), ``momentum`` (0.9, in [0, 1)), ``weight_decay``
        (0, >= 0). State: ``velocity`` (zeros at first, shape of ``w``).

    Returns
    -------
    w_next : ndarray (float64)
    config : dict

    Examples
    --------
    >>> w, dw = np.array([1.0]), np.array([1.0])
    >>> w, config = sgd_momentum(w, dw, {"learning_rate": 0.1, "momentum": 0.9})
    >>> w, config = sgd_momentum(w, dw, config)
    >>> config["velocity"], w          # velocity 1, then 0.9 * 1 + 1
    (array([1.9]), array([0.71]))
    """
    defaults = {"learning_rate": 1e-2, "momentum": 0.9, "weight_decay": 0.0}
    w, dw, config = _start(w, dw, config, "sgd_momentum", defaults, state=("velocity",))
    g = _decayed(w, dw, config)
    v = config["momentum"] * config.get("velocity", np.zeros_like(w)) + g
    config["velocity"] = v
    return w - config["learning_rate"] * v, config


def nesterov(w, dw, config=None):
    """Nesterov momentum, in torch's form (``torch.optim.SGD(momentum=mu, nesterov=True)``)::

        velocity = momentum * velocity + dw
        w_next   = w - learning_rate * (dw + momentum * velocity)

    The step looks one velocity ahead. CS231n's form (``v_prev = v; v = mu * v -
    learning_rate * dw; w += -mu * v_prev + (1 + mu) * v``) gives the same iterates at a
    constant learning rate (expand both: ``mu**2 * v_prev - (1 + mu) * lr * dw``).

    Parameters
    ----------
    w, dw : array_like
        Parameters and their gradient, same shape.
    config : dict or None
        ``learning_rate`` (1e-2, > 0), ``momentum`` (0.9, in [0, 1)), ``weight_decay``
        (0, >= 0). State: ``velocity``.

    Returns
    -------
    w_next : ndarray (float64)
    config : dict

    Examples
    --------
    >>> w, config = nesterov(np.array([1.0]), np.array([1.0]), {"learning_rate": 0.1})
    >>> w                                   # 1 - 0.1 * (1 + 0.9 * 1)
    array([0.81])
    """
    defaults = {"learning_rate": 1e-2, "momentum": 0.9, "weight_decay": 0.0}
    w, dw, config = _start(w, dw, config, "nesterov", defaults, state=("velocity",))
    g = _decayed(w, dw, config)
    mu = config["momentum"]
    v = mu * config.get("velocity", np.zeros_like(w)) + g
    config["velocity"] = v
    return w - config["learning_rate"] * (g + mu * v), config


def rmsprop(w, dw, config=None):
    """RMSProp (Hinton's lecture 6e): divide the step by a running RMS of the gradient::

        cache  = decay_rate * cache + (1 - decay_rate) * dw**2
        w_next = w - learning_rate * dw / (sqrt(cache) + epsilon)

    Equal to ``torch.optim.RMSprop(lr, alpha=decay_rate, eps=epsilon)`` (epsilon added to
    the square root, as torch does; no momentum, not centred).

    Parameters
    ----------
    w, dw : array_like
        Parameters and their gradient, same shape.
    config : dict or None
        ``learning_rate`` (1e-2, > 0), ``decay_rate`` (0.99, in [0, 1)), ``epsilon``
        (1e-8, >= 0), ``weight_decay`` (0, >= 0). State: ``cache``.

    Returns
    -------
    w_next : ndarray (float64)
    config : dict

    Examples
    --------
    >>> w, config = rmsprop(np.array([1.0]), np.array([3.0]), {"epsilon": 0.0})
    >>> w                  # cache = 0.01 * 9, so the step is 0.01 * 3 / 0.3
    array([0.9])
    """
    defaults = {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8, "weight_decay": 0.0}
    w, dw, config = _start(w, dw, config, "rmsprop", defaults, state=("cache",))
    g = _decayed(w, dw, config)
    rho = config["decay_rate"]
    cache = rho * config.get("cache", np.zeros_like(w)) + (1.0 - rho) * g**2
    config["cache"] = cache
    return w - config["learning_rate"] * g / (np.sqrt(cache) + config["epsilon"]), config


def adam(w, dw, config=None):
    """Adam (Kingma and Ba, 2014), the slide's update with bias correction::

        t  = t + 1
        m  = beta1 * m + (1 - beta1) * dw          # momentum
        v  = beta2 * v + (1 - beta2) * dw**2       # RMSProp-like
        mb = m / (1 - beta1**t)                    # bias correction
        vb = v / (1 - beta2**t)
        w_next = w - learning_rate * mb / (sqrt(vb) + epsilon)

    Equal to ``torch.optim.Adam(lr, betas=(beta1, beta2), eps=epsilon)`` step by step.

    Bias correction: ``m`` and ``v`` start at zero, so early on they are averages of
    zeros and a few gradients, too small by the factors ``1 - beta1**t`` and ``1 -
    beta2**t`` (0.1 and 0.001 at ``t = 1``). Dividing them out makes the first step
    ``learning_rate * dw / (|dw| + epsilon)``, about ``learning_rate`` per coordinate.
    Without it (``bias_correction=False``) the first step would be ``(1 - beta1) /
    sqrt(1 - beta2)`` = 3.16 times larger, and the ratio only fades as ``t`` grows past
    a few thousand steps (``beta2 = 0.999``) — the slide's "only relevant when t is small".

    Epsilon: the default is 1e-8, the paper's Algorithm 1 and torch's default, so
    ``adam(w, dw)`` equals ``torch.optim.Adam`` out of the box. The slide writes 1e-7 in
    the SAME place (``sqrt(vb) + 1e-7``): pass ``epsilon=1e-7`` to reproduce it. Keras
    also defaults to 1e-7 but calls it "epsilon hat" (the paper's remark just before its
    section 2.1): Keras adds it to the *uncorrected* root, ``sqrt(v) + eps_hat``, and folds
    the correction into the step size, which equals our formula with ``epsilon = eps_hat /
    sqrt(1 - beta2**t)`` — about 3.2e-6 at ``t = 1``, falling to ``eps_hat`` as ``t``
    grows. What epsilon changes: per coordinate, the step is ``learning_rate * mb /
    (sqrt(vb) + epsilon)``. Where the gradient's RMS is much larger than epsilon (the
    usual case) the step is about ``learning_rate * mb / sqrt(vb)`` and the choice between
    1e-8 and 1e-7 is invisible; where it is comparable or smaller (tiny gradients, rarely
    updated weights, float16 / float32 round-off) Adam turns into SGD with step
    ``learning_rate / epsilon`` and a larger epsilon means smaller, tamer steps.

    Parameters
    ----------
    w, dw : array_like
        Parameters and their gradient, same shape.
    config : dict or None
        ``learning_rate`` (1e-3, > 0), ``beta1`` (0.9) and ``beta2`` (0.999), both in
        [0, 1), ``epsilon`` (1e-8, >= 0), ``weight_decay`` (0, >= 0, torch's coupled L2),
        ``bias_correction`` (True; False gives the uncorrected update, for comparison).
        State: ``m``, ``v`` (zeros at first) and ``t`` (0 before the first step).

    Returns
    -------
    w_next : ndarray (float64)
    config : dict

    Examples
    --------
    >>> w, config = adam(np.array([1.0, 1.0]), np.array([0.5, -2.0]), {"learning_rate": 0.1})
    >>> np.round(w, 6), config["t"]     # the first step is ~learning_rate per coordinate
    (array([0.9, 1.1]), 1)
    """
    defaults = {
        "learning_rate": 1e-3,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-8,
        "weight_decay": 0.0,
        "bias_correction": True,
    }
    w, dw, config = _start(w, dw, config, "adam", defaults, state=("m", "v", "t"))
    g = _decayed(w, dw, config)
    beta1, beta2 = config["beta1"], config["beta2"]
    t = config.get("t", 0) + 1
    m = beta1 * config.get("m", np.zeros_like(w)) + (1.0 - beta1) * g
    v = beta2 * config.get("v", np.zeros_like(w)) + (1.0 - beta2) * g**2
    config.update(m=m, v=v, t=t)
    if config["bias_correction"]:
        mb, vb = m / (1.0 - beta1**t), v / (1.0 - beta2**t)
    else:
        mb, vb = m, v
    return w - config["learning_rate"] * mb / (np.sqrt(vb) + config["epsilon"]), config


@dataclass(frozen=True)
class Trajectory:
    """What :func:`run_rule` returns: the iterates of one update rule and f along them.

    Attributes
    ----------
    path : ndarray (n_steps + 1, d)
        The start point and every iterate (all finite).
    fun_path : ndarray (n_steps + 1,)
        ``f`` at each row of ``path``.
    n_steps : int
        Steps taken: the number asked for, or fewer when the run diverged.
    diverged : bool
        True when the next iterate (or ``f`` there) was not finite; the run stopped
        before it, so ``path`` holds only the finite part.
    """

    path: np.ndarray
    fun_path: np.ndarray
    n_steps: int
    diverged: bool


def run_rule(rule, f_and_grad, x0, config=None, *, steps=100) -> Trajectory:
    """Iterate an update rule from ``x0``: ``x_next, config = rule(x, grad f(x), config)``.

    The loop every comparison of first-order methods runs (the optimiser race widget,
    the notebook's exercises): one call of ``f_and_grad`` per step, whose gradient feeds
    the rule and whose value is recorded.

    Parameters
    ----------
    rule : callable
        An update rule with the signature of :func:`sgd` (``sgd``, ``adam``, ... or a
        student's own).
    f_and_grad : callable
        ``f_and_grad(x) -> (f, g)``, e.g. ``rosenbrock.f_and_grad``.
    x0 : array_like, shape (d,)
        Start point.
    config : dict or None
        Hyperparameters. The dict is COPIED: the rule's state (velocity, m, v, t) goes
        into the copy, so one dict can start many runs and each starts afresh.
    steps : int
        Number of steps (>= 0).

    Returns
    -------
    Trajectory
        ``.path`` (n_steps + 1, d), ``.fun_path``, ``.n_steps``, ``.diverged``.

    Examples
    --------
    >>> from helpers.surfaces import long_valley
    >>> run = run_rule(sgd, long_valley.f_and_grad, long_valley.start,
    ...                {"learning_rate": 0.05}, steps=100)
    >>> run.path.shape, bool(run.fun_path[-1] < 1e-3 * run.fun_path[0])
    ((101, 2), True)
    """
    if not callable(rule):
        raise TypeError(f"rule must be an update rule (callable), got {type(rule).__name__}")
    if not callable(f_and_grad):
        raise TypeError(f"f_and_grad must be callable, got {type(f_and_grad).__name__}")
    x = check_array(x0, "x0", ndim=1, min_samples=1, shape_hint="(d,)").copy()
    steps = check_int(steps, "steps", min_value=0)
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    config = dict(config) if config else {}
    f, g = f_and_grad(x)
    path, fun_path, diverged = [x], [float(f)], False
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned
        for _ in range(steps):
            x_next, config = rule(x, g, config)
            x_next = np.asarray(x_next, dtype=np.float64)
            if not np.all(np.isfinite(x_next)):
                diverged = True
                break
            f, g = f_and_grad(x_next)
            if not np.isfinite(f):
                diverged = True
                break
            x = x_next
            path.append(x)
            fun_path.append(float(f))
    return Trajectory(path=np.array(path), fun_path=np.array(fun_path),
                      n_steps=len(path) - 1, diverged=diverged)


# Hyperparameters each rule accepts, with how to check them, and the state it keeps.
_UNIT = {"min_value": 0.0, "max_value": 1.0, "max_inclusive": False}
_CHECKS = {
    "learning_rate": {"min_value": 0.0, "min_inclusive": False},
    "weight_decay": {"min_value": 0.0},
    "momentum": _UNIT,
    "decay_rate": _UNIT,
    "beta1": _UNIT,
    "beta2": _UNIT,
    "epsilon": {"min_value": 0.0},
}


def _start(w, dw, config, rule, defaults, state=()):
    """Validate ``w``, ``dw`` and ``config`` for ``rule``; fill in defaults."""
    w = check_array(w, "w", finite=False)  # a diverging run shows inf/nan, as torch does
    dw = check_array(dw, "dw", finite=False)
    if dw.shape != w.shape:
        raise ValueError(f"dw must have the same shape as w {w.shape}, got shape {dw.shape}")
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    allowed = set(defaults) | set(state)
    unknown = sorted(set(config) - allowed, key=str)
    if unknown:
        raise ValueError(
            f"config has unknown key(s) {unknown} for {rule}; valid keys: {sorted(allowed)}"
        )
    for key, value in defaults.items():
        config.setdefault(key, value)
    for key in defaults:
        if key in _CHECKS:
            config[key] = check_float(config[key], f"config['{key}']", **_CHECKS[key])
    if "bias_correction" in config and not isinstance(config["bias_correction"], bool | np.bool_):
        raise TypeError(
            f"config['bias_correction'] must be True or False, got {config['bias_correction']!r}"
        )
    for key in state:
        if key == "t":
            if key in config:
                config[key] = check_int(config[key], "config['t']", min_value=0)
        elif key in config:
            arr = check_array(config[key], f"config['{key}']", finite=False)
            if arr.shape != w.shape:
                raise ValueError(
                    f"config['{key}'] has shape {arr.shape} but w has shape {w.shape}; "
                    "use one config dict per parameter array"
                )
            config[key] = arr
    return w, dw, config


def _decayed(w, dw, config):
    """The gradient with torch's coupled L2 weight decay added."""
    wd = config["weight_decay"]
    return dw + wd * w if wd else dw


# ----------------------------------------------------------------------------------------
# L-BFGS
# ----------------------------------------------------------------------------------------


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

    def phi(a):
        f, g = evaluate(x + a * d)
        return _Trial(a, f, g, float(g @ d))

    def armijo(t):
        return t.f <= phi0 + c1 * t.a * dphi0

    def curvature(t):
        return abs(t.dphi) <= -c2 * dphi0

    def done(t, success):
        return LineSearchResult(t.a, t.f, t.g, evaluate.count - start_count, success)

    budget = max_evals
    prev = _Trial(0.0, phi0, grad, dphi0)
    a = alpha0
    lo = hi = None
    while budget > 0:  # Algorithm 3.5: bracket
        cur = phi(a)
        budget -= 1
        if not armijo(cur) or (prev.a > 0 and cur.f >= prev.f):
            lo, hi = prev, cur
            break
        if curvature(cur):
            return done(cur, True)
        if cur.dphi >= 0:
            lo, hi = cur, prev
            break
        # Still going down steeply: extrapolate with the cubic, at most 10x further.
        a_next = _cubic_min(prev, cur, cur.a + 0.01 * (cur.a - prev.a), 10.0 * cur.a)
        prev, a = cur, a_next
    else:
        return done(prev, False) if prev.a > 0 else done(_Trial(0.0, phi0, grad, dphi0), False)

    while budget > 0:  # Algorithm 3.6: zoom into [lo, hi]; lo always satisfies Armijo
        left, right = min(lo.a, hi.a), max(lo.a, hi.a)
        if (right - left) * np.max(np.abs(d)) < 1e-14 * (1.0 + np.max(np.abs(x))):
            break  # the bracket is below float64 resolution
        width = right - left
        a = _cubic_min(lo, hi, left + 0.1 * width, right - 0.1 * width)
        cur = phi(a)
        budget -= 1
        if not armijo(cur) or cur.f >= lo.f:
            hi = cur
        else:
            if curvature(cur):
                return done(cur, True)
            if cur.dphi * (hi.a - lo.a) >= 0:
                hi = lo
            lo = cur
    if lo.a > 0:
        return done(lo, False)
    return done(_Trial(0.0, phi0, grad, dphi0), False)


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


# ----------------------------------------------------------------------------------------
# Learning-rate schedule: AlexNet's "divide by 10 when validation accuracy plateaus"
# ----------------------------------------------------------------------------------------


class StepOnPlateau:
    """Multiply the learning rate by ``factor`` when a metric stops improving.

    The rule of AlexNet ("divided by 10 when the validation error rate stopped
    improving") and ResNet, with the exact semantics of
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``: after each epoch call
    :meth:`step` with the metric. An epoch *improves* when the metric beats the best so
    far by more than ``threshold`` (relative: ``best * (1 + threshold)`` in "max" mode,
    ``best * (1 - threshold)`` in "min" mode; absolute: ``best +/- threshold``). After
    more than ``patience`` epochs in a row without improvement the rate is multiplied by
    ``factor`` (not below ``min_lr``), then ``cooldown`` epochs are ignored.

    One difference from torch: ``mode`` defaults to "max" here, because the slides watch
    validation *accuracy*; torch defaults to "min" (a loss). ``factor`` defaults to 0.1.

    Parameters
    ----------
    lr : float
        Initial learning rate (> 0); AlexNet used 1e-2.
    factor : float
        In (0, 1).
    patience : int
        Epochs without improvement tolerated before a drop (>= 0).
    mode : {"max", "min"}
    threshold : float
        >= 0.
    threshold_mode : {"rel", "abs"}
    cooldown : int
        Epochs to wait after a drop before counting bad epochs again.
    min_lr : float
        Lower bound on the rate.

    Attributes
    ----------
    lr : float
        The current learning rate.
    best : float
        Best metric so far.
    history : list of float
        The rate after each :meth:`step`.

    Examples
    --------
    >>> sched = StepOnPlateau(lr=0.01, patience=1)
    >>> [sched.step(acc) for acc in [0.5, 0.6, 0.6, 0.6, 0.61]]
    [0.01, 0.01, 0.01, 0.001, 0.001]
    """

    def __init__(self, lr=1e-2, *, factor=0.1, patience=10, mode="max", threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0):
        self.lr = check_float(lr, "lr", min_value=0.0, min_inclusive=False)
        self.factor = check_float(factor, "factor", min_value=0.0, max_value=1.0,
                                  min_inclusive=False, max_inclusive=False)
        self.patience = check_int(patience, "patience", min_value=0)
        self.mode = check_choice(mode, "mode", ("max", "min"))
        self.threshold = check_float(threshold, "threshold", min_value=0.0)
        self.threshold_mode = check_choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.cooldown = check_int(cooldown, "cooldown", min_value=0)
        self.min_lr = check_float(min_lr, "min_lr", min_value=0.0)
        self.best = -math.inf if self.mode == "max" else math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.history: list[float] = []

    def step(self, metric) -> float:
        """Record one epoch's ``metric``; return the learning rate for the next epoch."""
        metric = check_float(float(metric), "metric")
        if self._improves(metric):
            self.best, self.num_bad_epochs = metric, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > 1e-8:  # torch's eps: ignore drops too small to matter
                self.lr = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self.history.append(self.lr)
        return self.lr

    def _improves(self, metric):
        if self.threshold_mode == "rel":
            scale = 1.0 + self.threshold if self.mode == "max" else 1.0 - self.threshold
            bar = self.best * scale
        else:
            bar = self.best + self.threshold if self.mode == "max" else self.best - self.threshold
        return metric > bar if self.mode == "max" else metric < bar


def step_on_plateau(metrics, lr=1e-2, **kwargs) -> np.ndarray:
    """The learning rate after each epoch of ``metrics``, under :class:`StepOnPlateau`.

    Parameters
    ----------
    metrics : array_like, shape (n_epochs,)
        One validation metric per epoch (accuracy by default, ``mode="max"``).
    lr : float
        Initial learning rate.
    **kwargs
        ``factor``, ``patience``, ``mode``, ``threshold``, ``threshold_mode``,
        ``cooldown``, ``min_lr`` of :class:`StepOnPlateau`.

    Returns
    -------
    ndarray, shape (n_epochs,)
        Entry ``i`` is the rate used in epoch ``i + 1``.

    Examples
    --------
    >>> step_on_plateau([0.40, 0.55, 0.56, 0.56, 0.56, 0.70], lr=0.01, patience=1).tolist()
    [0.01, 0.01, 0.01, 0.01, 0.001, 0.001]
    """
    metrics = check_array(metrics, "metrics", ndim=1)
    sched = StepOnPlateau(lr, **kwargs)
    return np.array([sched.step(m) for m in metrics])


# ----------------------------------------------------------------------------------------
# A small real problem: softmax regression on scikit-learn's digits
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRegProblem:
    """Softmax (multinomial logistic) regression with an L2 penalty, as a flat-vector problem.

    Loss of the flat parameter vector ``w`` (``W`` of shape (d, C) then ``b`` of shape
    (C,), see :meth:`unpack`)::

        L(w) = mean_i cross_entropy(softmax(X_i W + b), y_i) + l2 / 2 * ||W||^2

    the objective of ``torch.nn.functional.cross_entropy`` plus the penalty, and, with
    ``C = 1 / (l2 * n)``, the one scikit-learn's ``LogisticRegression`` minimises (the
    bias is not penalised). Strongly convex for ``l2 > 0``, so L-BFGS has a unique target.

    Attributes
    ----------
    X : ndarray (n, d)
        Features (pixel intensities scaled to [0, 1]).
    y : ndarray (n,)
        Labels in 0..C-1.
    n_classes : int
    l2 : float
    """

    X: np.ndarray
    y: np.ndarray
    n_classes: int
    l2: float
    _onehot: np.ndarray = field(repr=False, compare=False)

    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector, ``(d + 1) * C``."""
        return (self.X.shape[1] + 1) * self.n_classes

    def init(self) -> np.ndarray:
        """The usual start: all zeros (loss ``log C``)."""
        return np.zeros(self.n_params)

    def unpack(self, w) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)``, shapes (d, C) and (C,), from the flat vector ``w``."""
        w = check_array(w, "w", ndim=1, shape_hint=f"({self.n_params},)")
        if w.shape != (self.n_params,):
            raise ValueError(f"w must have shape ({self.n_params},), got {w.shape}")
        d, C = self.X.shape[1], self.n_classes
        return w[: d * C].reshape(d, C), w[d * C :]

    def f_and_grad(self, w) -> tuple[float, np.ndarray]:
        """Full-batch loss and gradient at ``w`` (deterministic)."""
        return self._loss_grad(w, self.X, self.y, self._onehot)

    def loss(self, w) -> float:
        """Full-batch loss at ``w``."""
        return self.f_and_grad(w)[0]

    def accuracy(self, w) -> float:
        """Fraction of samples whose highest-scoring class is the label."""
        W, b = self.unpack(w)
        return float(np.mean(np.argmax(self.X @ W + b, axis=1) == self.y))

    def minibatch_f_and_grad(self, batch_size=64, *, seed=None) -> Callable:
        """A ``f_and_grad`` that uses a fresh random mini-batch at every call.

        The batch (``batch_size`` distinct samples) is drawn anew each call, so two calls
        at the same ``w`` disagree: the noise that breaks L-BFGS's line search and its
        curvature pairs. The penalty is computed exactly.
        """
        batch_size = check_int(batch_size, "batch_size", min_value=1, max_value=len(self.y))
        rng = np.random.default_rng(seed)

        def f_and_grad(w):
            idx = rng.choice(len(self.y), size=batch_size, replace=False)
            return self._loss_grad(w, self.X[idx], self.y[idx], self._onehot[idx])

        return f_and_grad

    def run_lbfgs(self, *, batch_size=None, max_epochs=30, history=10, seed=None) -> LBFGSResult:
        """L-BFGS from :meth:`init` on the full batch, or driven by mini-batch gradients.

        The budget is ``max_epochs`` passes over the data, counted in gradient
        evaluations: ``max_epochs`` full-batch calls, or ``max_epochs * n // batch_size``
        mini-batch calls, so both runs touch the same number of examples. Full batch:
        one :func:`lbfgs` run (it stops early if it converges, tol 1e-6). Mini-batch:
        each call sees a fresh batch (:meth:`minibatch_f_and_grad`); when the noisy line
        search gives up, L-BFGS restarts with an empty memory from where it stands,
        until the budget is spent, so the comparison is not lost to an early stop.

        Parameters
        ----------
        batch_size : int or None
            None for full batch.
        max_epochs : float
            Budget in passes over the data (> 0).
        history : int
            L-BFGS memory.
        seed : int, numpy Generator or None
            Draws the mini-batches (unused for full batch).

        Returns
        -------
        LBFGSResult
            ``path`` joins all restarts; ``fun`` and ``fun_path`` are the FULL-batch
            loss at each iterate (computed for the comparison, not counted in
            ``n_evals``); ``message`` says how many restarts there were.

        Examples
        --------
        >>> prob = make_logreg_problem()
        >>> full = prob.run_lbfgs(max_epochs=30)
        >>> noisy = prob.run_lbfgs(batch_size=64, max_epochs=30, seed=0)
        >>> bool(full.fun < noisy.fun)
        True
        """
        max_epochs = check_float(max_epochs, "max_epochs", min_value=0.0, min_inclusive=False)
        n = len(self.y)
        if batch_size is None:
            res = lbfgs(self.f_and_grad, self.init(), history=history, max_iter=10**9,
                        max_evals=max(1, int(max_epochs)))
            return res
        batch_size = check_int(batch_size, "batch_size", min_value=1, max_value=n)
        f_and_grad = self.minibatch_f_and_grad(batch_size, seed=seed)
        budget = max(1, int(max_epochs * n) // batch_size)
        x, used, runs, paths = self.init(), 0, 0, []
        while used < budget:
            res = lbfgs(f_and_grad, x, history=history, max_iter=10**9, tol=0.0,
                        max_evals=budget - used)
            paths.append(res.path if not paths else res.path[1:])
            x, used, runs = res.x, used + res.n_evals, runs + 1
        path = np.concatenate(paths)
        fun_path = np.array([self.loss(p) for p in path])
        return LBFGSResult(
            x=x, fun=float(fun_path[-1]), grad=self.f_and_grad(x)[1], n_iter=len(path) - 1,
            n_evals=used, path=path, fun_path=fun_path, converged=False,
            message=f"spent {used} mini-batch evaluations ({max_epochs:g} epochs) "
                    f"in {runs} L-BFGS run(s); the line search of each but the last gave up",
        )

    def _loss_grad(self, w, X, y, onehot):
        W, b = self.unpack(w)
        scores = X @ W + b
        scores = scores - scores.max(axis=1, keepdims=True)  # stable log-softmax
        log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
        n = len(y)
        loss = -log_p[np.arange(n), y].mean() + 0.5 * self.l2 * np.sum(W * W)
        dscores = (np.exp(log_p) - onehot) / n
        dW = X.T @ dscores + self.l2 * W
        db = dscores.sum(axis=0)
        return float(loss), np.concatenate([dW.ravel(), db])


def make_logreg_problem(*, l2=1e-3, n_samples=None, seed=None) -> LogRegProblem:
    """Softmax regression on scikit-learn's 8x8 digits (1,797 images, 10 classes, offline).

    Parameters
    ----------
    l2 : float
        L2 penalty on the weights (> 0 keeps the problem strongly convex).
    n_samples : int or None
        Use a random subset of this many images (None: all 1,797).
    seed : int, numpy Generator or None
        Chooses the subset; unused when ``n_samples`` is None.

    Returns
    -------
    LogRegProblem
        ``.X`` (n, 64) in [0, 1], ``.y`` (n,), ``.f_and_grad`` (full batch),
        ``.minibatch_f_and_grad(batch_size, seed=...)``, ``.init()``, ``.accuracy(w)``.

    Examples
    --------
    >>> prob = make_logreg_problem()
    >>> prob.X.shape, prob.n_params
    ((1797, 64), 650)
    >>> bool(np.isclose(prob.loss(prob.init()), np.log(10)))
    True
    """
    from sklearn.datasets import load_digits

    l2 = check_float(l2, "l2", min_value=0.0)
    X, y = load_digits(return_X_y=True)
    if n_samples is not None:
        n_samples = check_int(n_samples, "n_samples", min_value=2, max_value=len(y))
        idx = np.sort(np.random.default_rng(seed).choice(len(y), n_samples, replace=False))
        X, y = X[idx], y[idx]
    X = X.astype(np.float64) / 16.0  # pixel intensities are 0..16
    y = y.astype(np.int64)
    n_classes = 10
    onehot = np.eye(n_classes)[y]
    return LogRegProblem(X=X, y=y, n_classes=n_classes, l2=l2, _onehot=onehot)
