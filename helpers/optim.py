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
does), and, re-exported here from the modules that hold them so that every name the
notebooks use is importable from ``helpers.optim``:

- :mod:`helpers.lbfgs`: :func:`lbfgs` (two-loop recursion + the strong-Wolfe line search
  :func:`wolfe_line_search`);
- :mod:`helpers.schedules`: :class:`StepOnPlateau` / :func:`step_on_plateau` (AlexNet's
  "divide the learning rate by 10 when validation accuracy plateaus", as
  ``torch.optim.lr_scheduler.ReduceLROnPlateau``);
- :mod:`helpers.problems`: :func:`make_logreg_problem` (softmax regression on
  scikit-learn's digits, full-batch and mini-batch);
- :mod:`helpers.surfaces`: the 2-D test surfaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helpers._validation import check_array, check_float, check_int
from helpers.lbfgs import LBFGSResult, LineSearchResult, lbfgs, wolfe_line_search
from helpers.problems import LogRegProblem, make_logreg_problem
from helpers.schedules import StepOnPlateau, step_on_plateau
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
