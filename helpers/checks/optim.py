"""Checkers for unit 05-optimisers. Each compares a student's function with ``helpers.optim``.

The update-rule checks run the student's rule for several steps on a gradient that depends
on the current parameters (``dw = A * w + noise_t``), so a mistake at any step changes every
later one; the answer recorded is the whole sequence of iterates, compared step by step
with the reference rule (itself equal to ``torch.optim``, see ``tests/test_optim.py``). The
other checks call the student's function once per problem, made from seeds and sizes only.

Examples
--------
>>> from helpers.optim import adam, step_on_plateau
>>> check_adam(adam)                          # the reference passes its own check
>>> check_lr_schedule(lambda acc, lr, factor, patience: step_on_plateau(
...     acc, lr, factor=factor, patience=patience, threshold=0.0))
"""

from __future__ import annotations

import functools

import numpy as np

from helpers import optim as ref
from helpers.checks._core import (
    Case,
    Check,
    CheckFailure,
    _fmt,
    _jsonable,
    _record,
    as_array,
    call,
    expect_close,
    expect_equal,
    expect_shape,
    quiet,
)
from helpers.surfaces import SURFACES

__all__ = [
    "RACE_CONFIGS",
    "check_adam",
    "check_lbfgs_full_vs_minibatch",
    "check_lr_schedule",
    "check_race",
    "check_sgd",
    "check_sgd_momentum",
    "check_train_minibatch",
]

RULE_RTOL, RULE_ATOL = 1e-7, 1e-12


# --------------------------------------------------------------------------- update rules

class RuleCheck(Check):
    """A check for an update rule ``rule(w, dw, config) -> (w_next, config)``.

    Each case is run for ``steps`` steps, feeding the config the rule returns back in (its
    state), and the answer is the array of iterates, shape ``(steps, *w.shape)``.
    """

    def __call__(self, fn, **params):
        if not callable(fn):
            raise CheckFailure(f"{self.what} should be a function, got {type(fn).__name__}")
        params = {k: _jsonable(v) for k, v in params.items()}
        cases = self.cases(**params)
        answers = [self._run(fn, case) for case in cases]
        _record(self.name, params, answers)
        for case, answer in zip(cases, answers, strict=True):
            with quiet():
                self.judge(case, answer)

    def _run(self, fn, case):
        w0, A, noise, config, steps = case.args
        config = None if config is None else dict(config)
        w, path = w0.copy(), []
        for t in range(steps):
            dw = A * w + noise[t]
            out = call(fn, w, dw, config, what=f"{self.what}(w, dw, config)",
                       case=f"{case.description}, step {t + 1}")
            if not isinstance(out, tuple | list) or len(out) != 2:
                raise CheckFailure(
                    f"{self.what} should return a pair (w_next, config), got "
                    f"{type(out).__name__} at step {t + 1} on {case.description}")
            w_next, config = out
            w_next = as_array(w_next, "w_next", case.description)
            expect_shape(w_next, w0.shape, "w_next", f"{case.description}, step {t + 1}",
                         names="the shape of w")
            if not isinstance(config, dict):
                raise CheckFailure(
                    f"{self.what} should return the config dict (with its state) as the "
                    f"second value, got {type(config).__name__} at step {t + 1} on "
                    f"{case.description}; start with `if config is None: config = {{}}`")
            w = w_next
            path.append(w.copy())
        return np.array(path)


def rule_problem(seed, shape=(5,), scale=1.0):
    """Start point and gradient field for a rule check: ``dw_t = A * w + noise_t``.

    ``A`` > 0 pulls ``w`` to a moving target, so the sequence is a real optimisation run;
    ``scale`` multiplies the gradients (1e-8 makes epsilon matter).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    w0 = rng.normal(size=shape)
    A = scale * rng.uniform(0.5, 2.0, size=shape)
    noise = scale * rng.normal(size=(64, *shape))
    return w0, A, noise


def _rule_config(rule, seed):
    """Hyperparameters drawn from ``seed`` (seed % 4 == 0: None, i.e. the defaults)."""
    if seed % 4 == 0:
        return None
    rng = np.random.default_rng(1000 + seed)
    if rule == "sgd":
        return {"learning_rate": float(10 ** rng.uniform(-3, -0.5))}
    if rule == "sgd_momentum":
        return {"learning_rate": float(10 ** rng.uniform(-3, -1)),
                "momentum": float(rng.uniform(0.5, 0.99))}
    return {"learning_rate": float(10 ** rng.uniform(-3, -1)),
            "beta1": float(rng.uniform(0.5, 0.95)),
            "beta2": float(rng.uniform(0.9, 0.9999))}


def _rule_cases(rule):
    def cases(seeds=(0, 1, 2), shapes=((5,),), steps=10, scales=(1.0,)):
        out = []
        for scale in scales:
            for shape in shapes:
                for seed in seeds:
                    w0, A, noise = rule_problem(seed, shape, scale)
                    config = _rule_config(rule, seed)
                    shown = "default config (None)" if config is None else _show(config)
                    what = (f"w of shape {tuple(shape)}, {steps} steps, {shown}, seed={seed}"
                            + (f", gradients scaled by {scale:g}" if scale != 1.0 else ""))
                    out.append(Case((w0, A, noise, config, int(steps)), what, rule=rule))
        return out
    return cases


def _rule_judge(case, got):
    w0, A, noise, config, steps = case.args
    got = as_array(got, "the iterates", case.description)
    expect_shape(got, (steps, *w0.shape), "the iterates", case.description,
                 names="(steps, *w.shape)")
    want = _reference_path(REFERENCE_RULES[case.extra["rule"]], case)
    bad = _first_bad_step(got, want)
    if bad is None:
        return
    hint = _diagnose(case, got)
    with np.errstate(invalid="ignore"):
        err = np.abs(got[bad] - want[bad]).ravel()
    i = int(np.nanargmax(err)) if np.isfinite(err).any() else 0
    raise CheckFailure(
        f"{case.extra['rule']} gives a different w after step {bad + 1} on {case.description}: "
        f"at flat index {i} got {got[bad].ravel()[i]:.10g}, expected "
        f"{want[bad].ravel()[i]:.10g} (difference {err[i]:.2g}).{hint}")


def _reference_path(rule, case):
    w0, A, noise, config, steps = case.args
    config = {} if config is None else dict(config)
    w, path = w0.copy(), []
    for t in range(steps):
        w, config = rule(w, A * w + noise[t], config)
        path.append(w.copy())
    return np.array(path)


def _first_bad_step(got, want, equal_nan=False):
    with np.errstate(invalid="ignore"):
        ok = np.isclose(got, want, rtol=RULE_RTOL, atol=RULE_ATOL, equal_nan=equal_nan)
    ok = ok.reshape(len(got), -1).all(axis=1)
    return None if ok.all() else int(np.argmin(ok))


def _diagnose(case, got):
    """A hint when ``got`` matches a plausible mistake exactly."""
    for rule, hint in MISTAKES.get(case.extra["rule"], ()):
        hint = " " + hint.lstrip()
        try:
            with quiet():
                alt = _reference_path(rule, case)
        except (ArithmeticError, ValueError):  # a mistake that cannot even run here
            continue
        if _first_bad_step(got, alt, equal_nan=True) is None:
            return hint
    if not np.all(np.isfinite(got)):
        first = int(np.argmin(np.isfinite(got).reshape(len(got), -1).all(axis=1)))
        if case.extra["rule"] == "adam" and first == 0:
            return " " + MISTAKES["adam"][-1][1]
        return (f" Your iterates contain inf or NaN from step {first + 1} on: look for a "
                "division by zero.")
    return ""


# Plausible mistakes, each a complete (wrong) rule, and the hint shown when a student's
# iterates match one of them exactly.

def _sgd_ascent(w, dw, config):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w + config["learning_rate"] * dw, config


def _momentum_forgets(w, dw, config):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config["momentum"] * np.zeros_like(w) + dw  # the velocity is never kept
    return w - config["learning_rate"] * v, config


def _momentum_no_lr_on_v(w, dw, config):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config["momentum"] * config.get("velocity", np.zeros_like(w)) - config["learning_rate"] * dw
    config["velocity"] = v
    return w - v, config  # sign flipped


def _adam_variant(*, bias_correction=True, eps_inside=False, epsilon=None, t_after=False):
    def rule(w, dw, config):
        config = {} if config is None else config
        config.setdefault("learning_rate", 1e-3)
        config.setdefault("beta1", 0.9)
        config.setdefault("beta2", 0.999)
        config.setdefault("epsilon", 1e-8 if epsilon is None else epsilon)
        b1, b2, eps = config["beta1"], config["beta2"], config["epsilon"]
        t = config.get("t", 0) + (0 if t_after else 1)
        m = b1 * config.get("m", np.zeros_like(w)) + (1 - b1) * dw
        v = b2 * config.get("v", np.zeros_like(w)) + (1 - b2) * dw**2
        if bias_correction:
            mb, vb = m / (1 - b1**t), v / (1 - b2**t)
        else:
            mb, vb = m, v
        step = mb / np.sqrt(vb + eps) if eps_inside else mb / (np.sqrt(vb) + eps)
        config.update(m=m, v=v, t=t + (1 if t_after else 0))
        return w - config["learning_rate"] * step, config
    return rule


REFERENCE_RULES = {"sgd": ref.sgd, "sgd_momentum": ref.sgd_momentum, "adam": ref.adam}
MISTAKES = {
    "sgd": [(_sgd_ascent, "It matches w + learning_rate * dw: step AGAINST the gradient "
                          "(w - learning_rate * dw) to go downhill.")],
    "sgd_momentum": [
        (_momentum_forgets, "It matches plain SGD: keep the velocity in config (e.g. "
                            "config['velocity']) so it carries over to the next step."),
        (_momentum_no_lr_on_v, "It matches w - v with v = mu * v - lr * dw: that v already "
                               "points downhill, so the update is w + v."),
    ],
    "adam": [
        (_adam_variant(bias_correction=False),
         "It matches Adam WITHOUT bias correction: divide m by (1 - beta1**t) and v by "
         "(1 - beta2**t), with t counting steps from 1."),
        (_adam_variant(epsilon=1e-7),
         "It matches Adam with epsilon = 1e-7 (the slide's): the default here is 1e-8, as "
         "in torch and the paper, so that adam(w, dw) equals torch.optim.Adam."),
        (_adam_variant(eps_inside=True),
         "It matches sqrt(vb + epsilon): epsilon goes OUTSIDE the square root, "
         "sqrt(vb) + epsilon."),
        (_adam_variant(t_after=True),
         "w is inf or NaN after step 1: the likely cause is t used before it is "
         "incremented (with t = 0, 1 - beta1**t = 0: a division by zero). Increase t first, "
         "so the first step uses t = 1."),
    ],
}

check_sgd = RuleCheck("optim.sgd", "sgd", _rule_cases("sgd"), _rule_judge)
check_sgd_momentum = RuleCheck("optim.sgd_momentum", "sgd_momentum",
                               _rule_cases("sgd_momentum"), _rule_judge)
check_adam = RuleCheck("optim.adam", "adam", _rule_cases("adam"), _rule_judge)


# --------------------------------------------------------------------------- race

# Hyperparameters for which no rule diverges on the surface from its start point, so the
# race's losses are finite numbers that can be compared.
RACE_CONFIGS = {
    "long_valley": {"SGD": ("sgd", {"learning_rate": 0.05}),
                    "Momentum": ("sgd_momentum", {"learning_rate": 0.05, "momentum": 0.9}),
                    "Nesterov": ("nesterov", {"learning_rate": 0.05, "momentum": 0.9}),
                    "RMSProp": ("rmsprop", {"learning_rate": 0.1}),
                    "Adam": ("adam", {"learning_rate": 0.1})},
    "rosenbrock": {"SGD": ("sgd", {"learning_rate": 1e-3}),
                   "Momentum": ("sgd_momentum", {"learning_rate": 1e-3, "momentum": 0.9}),
                   "Nesterov": ("nesterov", {"learning_rate": 1e-3, "momentum": 0.9}),
                   "RMSProp": ("rmsprop", {"learning_rate": 0.1}),
                   "Adam": ("adam", {"learning_rate": 0.1})},
    "beale": {"SGD": ("sgd", {"learning_rate": 1e-3}),
              "Momentum": ("sgd_momentum", {"learning_rate": 1e-3, "momentum": 0.9}),
              "Nesterov": ("nesterov", {"learning_rate": 1e-3, "momentum": 0.9}),
              "RMSProp": ("rmsprop", {"learning_rate": 0.05}),
              "Adam": ("adam", {"learning_rate": 0.05})},
}


def race_rules(surface):
    """``{name: (rule, config)}`` for a race on ``surface`` (fresh config dicts)."""
    return {name: (getattr(ref, rule), dict(config))
            for name, (rule, config) in RACE_CONFIGS[surface].items()}


def _race_cases(surfaces=("long_valley", "rosenbrock"), steps=(100,), tols=(1e-3,)):
    cases = []
    for name in surfaces:
        for n in steps:
            for tol in tols:
                cases.append(Case((SURFACES[name], race_rules(name), int(n), float(tol)),
                                  f"{name} from {SURFACES[name].start}, {n} steps, "
                                  f"tol={tol:g}", surface=name))
    return cases


def _race_judge(case, got):
    surface, rules, steps, tol = case.args
    where = case.description
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailure(f"race should return a pair (losses, steps_to_tol), got "
                           f"{type(got).__name__} on {where}")
    losses = as_array(got[0], "losses", where)
    names = list(RACE_CONFIGS[case.extra["surface"]])
    if losses.shape == (len(names), steps):
        raise CheckFailure(f"losses should have shape (n_rules, steps + 1) = "
                           f"{(len(names), steps + 1)}: include f at the start point (step 0) "
                           f"on {where}")
    want_losses, want_steps = reference_race(case.extra["surface"], steps, tol)
    expect_shape(losses, want_losses.shape, "losses", where, names="(n_rules, steps + 1)")
    for i, name in enumerate(names):
        expect_close(losses[i], want_losses[i], f"the losses of {name} (row {i})", where,
                     rtol=1e-9, atol=1e-12)
    hits = as_array(got[1], "steps_to_tol", where)
    expect_shape(hits, (len(names),), "steps_to_tol", where, names="(n_rules,)")
    expect_equal(hits.astype(np.int64), want_steps,
                 "steps_to_tol (first step t with f(w_t) - f* <= tol, or -1)", where)


def reference_race(surface, steps, tol):
    """The race with the reference loop: losses (n_rules, steps + 1) and steps_to_tol."""
    surf = SURFACES[surface]
    losses = np.array([
        ref.run_rule(rule, surf.f_and_grad, surf.start, config, steps=steps).fun_path
        for rule, config in race_rules(surface).values()
    ])
    reached = losses - surf.min_value <= tol
    hits = np.where(reached.any(axis=1), reached.argmax(axis=1), -1)
    return losses, hits


check_race = Check("optim.race", "race", _race_cases, _race_judge)


# --------------------------------------------------------------------------- digits

@functools.lru_cache(maxsize=8)
def digits_problem(n_samples=None, seed=0):
    """The softmax-regression problem on digits (cached: loading takes a moment)."""
    return ref.make_logreg_problem(n_samples=n_samples, seed=seed)


TRAIN_RULES = (
    ("sgd_momentum", {"learning_rate": 0.1, "momentum": 0.9}),
    ("adam", {"learning_rate": 1e-2}),
    ("sgd", {"learning_rate": 0.5}),
)


def _train_cases(seeds=(0,), n_samples=(400,), batch_sizes=(32,), epochs=(3,)):
    cases = []
    for n in n_samples:
        for bs in batch_sizes:
            for ep in epochs:
                for seed in seeds:
                    rule, config = TRAIN_RULES[seed % len(TRAIN_RULES)]
                    prob = digits_problem(n, seed)
                    cases.append(Case(
                        (prob, getattr(ref, rule), dict(config), int(bs), int(ep), seed),
                        f"digits (n={len(prob.y)}), {rule} {_show(config)}, batch_size={bs}, "
                        f"epochs={ep}, seed={seed}",
                        rule=rule, config=config))
    return cases


def _train_judge(case, got):
    prob, _, _, batch_size, epochs, seed = case.args
    where = case.description
    got = as_array(got, "the losses", where)
    if got.shape == (epochs,):
        raise CheckFailure(f"train_minibatch should return epochs + 1 = {epochs + 1} losses: "
                           f"the full-batch loss at the start, then after each epoch; got "
                           f"{epochs} on {where}")
    want = reference_train(prob, getattr(ref, case.extra["rule"]), case.extra["config"],
                           batch_size, epochs, seed)
    expect_shape(got, want.shape, "the losses", where, names="(epochs + 1,)")
    if not np.isclose(got[0], want[0]):
        raise CheckFailure(f"the first loss should be the full-batch loss at problem.init(), "
                           f"{want[0]:.6g} (= log 10), got {_fmt(got[0])} on {where}")
    if not np.allclose(got, want, rtol=1e-9, atol=1e-12):
        for sampler_made, hint in SAMPLER_MISTAKES:
            alt = reference_train(prob, getattr(ref, case.extra["rule"]), case.extra["config"],
                                  batch_size, epochs, seed, sampler_made=sampler_made)
            if np.allclose(got, alt, rtol=1e-9, atol=1e-12):
                bad = int(np.argmax(~np.isclose(got, want, rtol=1e-9, atol=1e-12)))
                raise CheckFailure(
                    f"the full-batch loss after epoch {bad} is {_fmt(got[bad])}, expected "
                    f"{_fmt(want[bad])} on {where}. {hint}")
    expect_close(got, want, "the full-batch loss after each epoch", where, rtol=1e-9,
                 atol=1e-12)


SAMPLER_MISTAKES = (
    ("epoch", "Your losses match a NEW sampler every epoch, which repeats the same batches "
              "each epoch: create the sampler (problem.minibatch_f_and_grad) once, before "
              "the loop."),
    ("step", "Your losses match a NEW sampler at every step, which draws the same first "
             "batch every time: create the sampler (problem.minibatch_f_and_grad) once, "
             "before the loop."),
)


def reference_train(prob, rule, config, batch_size, epochs, seed, sampler_made="once"):
    """Mini-batch training: n // batch_size steps per epoch on ``minibatch_f_and_grad``.

    ``sampler_made`` "epoch" or "step" makes the sampler anew that often: the mistakes
    the checker recognises (the same batches again and again)."""
    f_and_grad = prob.minibatch_f_and_grad(batch_size, seed=seed)
    w, config = prob.init(), dict(config)
    losses = [prob.loss(w)]
    for _ in range(epochs):
        if sampler_made == "epoch":
            f_and_grad = prob.minibatch_f_and_grad(batch_size, seed=seed)
        for _ in range(len(prob.y) // batch_size):
            if sampler_made == "step":
                f_and_grad = prob.minibatch_f_and_grad(batch_size, seed=seed)
            _, g = f_and_grad(w)
            w, config = rule(w, g, config)
        losses.append(prob.loss(w))
    return np.array(losses)


check_train_minibatch = Check("optim.train_minibatch", "train_minibatch", _train_cases,
                              _train_judge)


def _lbfgs_cases(n_samples=(None,), batch_sizes=(64,), epochs=(10,), seeds=(0,)):
    cases = []
    for n in n_samples:
        for bs in batch_sizes:
            for ep in epochs:
                for seed in seeds:
                    prob = digits_problem(n, 0)
                    cases.append(Case((prob, int(bs), int(ep), seed),
                                      f"digits (n={len(prob.y)}), batch_size={bs}, "
                                      f"epochs={ep}, seed={seed}"))
    return cases


def _lbfgs_judge(case, got):
    prob, batch_size, epochs, seed = case.args
    where = case.description
    got = as_array(got, "lbfgs_full_vs_minibatch(...)", where)
    expect_shape(got, (2,), "the result", where,
                 names="(2,): [loss after full-batch L-BFGS, loss after mini-batch L-BFGS]")
    full, noisy = _lbfgs_runs(prob, batch_size, epochs, seed)
    want = np.array([prob.loss(full.x), prob.loss(noisy.x)])
    if np.allclose(got, want[::-1], rtol=1e-6) and not np.allclose(want, want[::-1]):
        raise CheckFailure(f"the two losses are swapped on {where}: full batch first")
    if np.isclose(got[1], noisy.fun, rtol=1e-9) and not np.isclose(noisy.fun, want[1]):
        raise CheckFailure(
            f"the mini-batch value {_fmt(got[1])} is res.fun, the loss on the LAST MINI-BATCH "
            f"only, not on the whole data set (that is {_fmt(want[1])}) on {where}: use "
            "problem.loss(res.x), not .fun, for both runs")
    expect_close(got[0], want[0], "the loss after full-batch L-BFGS "
                 f"(max_evals = epochs = {epochs})", where, rtol=1e-6, atol=1e-9)
    if not np.isclose(got[1], want[1], rtol=1e-6, atol=1e-9):
        restarted = prob.run_lbfgs(batch_size=batch_size, max_epochs=epochs, seed=seed).fun
        if np.isclose(got[1], restarted, rtol=1e-6):
            raise CheckFailure(f"the mini-batch loss matches problem.run_lbfgs, which "
                               f"restarts L-BFGS each time it stops; run lbfgs once on {where}")
    expect_close(got[1], want[1], "the full-batch loss after mini-batch L-BFGS (max_evals = "
                 f"epochs * n // batch_size = {epochs * len(prob.y) // batch_size})", where,
                 rtol=1e-6, atol=1e-9)


def reference_lbfgs_full_vs_minibatch(prob, batch_size, epochs, seed):
    """[full-batch loss after L-BFGS on the full batch, ... after L-BFGS on mini-batches],
    each run given the same number of examples (``epochs`` passes over the data)."""
    full, noisy = _lbfgs_runs(prob, batch_size, epochs, seed)
    return np.array([prob.loss(full.x), prob.loss(noisy.x)])


def _lbfgs_runs(prob, batch_size, epochs, seed):
    full = ref.lbfgs(prob.f_and_grad, prob.init(), max_evals=epochs)
    noisy = ref.lbfgs(prob.minibatch_f_and_grad(batch_size, seed=seed), prob.init(),
                      max_evals=epochs * len(prob.y) // batch_size)
    return full, noisy


check_lbfgs_full_vs_minibatch = Check("optim.lbfgs_full_vs_minibatch",
                                      "lbfgs_full_vs_minibatch", _lbfgs_cases, _lbfgs_judge)


# --------------------------------------------------------------------------- schedule

def accuracy_curve(seed, n_epochs=None):
    """A validation-accuracy curve with plateaus and exact ties (two decimals), as a
    network's accuracy on a fixed validation set looks, made from ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(n_epochs or rng.integers(12, 40))
    level, acc = rng.uniform(0.3, 0.5), []
    for _ in range(n):
        if rng.random() < 0.4:
            level = min(level + rng.uniform(0.01, 0.08), 0.99)
        acc.append(round(level - rng.choice([0.0, 0.0, 0.0, 0.01, 0.02]), 2))
    return np.array(acc)


def _schedule_cases(seeds=(0, 1, 2), patiences=(2,), lrs=(1e-2,), factor=0.1):
    cases = []
    for patience in patiences:
        for lr in lrs:
            for seed in seeds:
                acc = _curve_with_few_drops(seed, lr, factor, patience)
                cases.append(Case((acc, float(lr), float(factor), int(patience)),
                                  f"{len(acc)} epochs of accuracy (seed={seed}), lr={lr:g}, "
                                  f"factor={factor:g}, patience={patience}"))
    return cases


def _schedule_judge(case, got):
    acc, lr, factor, patience = case.args
    where = case.description
    got = as_array(got, "the learning rates", where)
    expect_shape(got, acc.shape, "the learning rates", where, names="(n_epochs,)")
    want = reference_schedule(acc, lr, factor, patience)
    if np.allclose(got, want, rtol=1e-9, atol=0):
        return
    bad = int(np.argmax(~np.isclose(got, want, rtol=1e-9, atol=0)))
    hint = ""
    if patience > 0 and np.allclose(got, reference_schedule(acc, lr, factor, patience - 1),
                                    rtol=1e-9, atol=0):
        hint = (" Your rate drops one epoch too early: drop when the number of epochs in a "
                "row without improvement EXCEEDS patience (as torch's ReduceLROnPlateau).")
    elif np.allclose(got, _schedule_ties_improve(acc, lr, factor, patience), rtol=1e-9,
                     atol=0):
        hint = (" An epoch that only EQUALS the best accuracy so far is not an improvement "
                "(use >, not >=).")
    raise CheckFailure(
        f"the learning rate after epoch {bad} (accuracy {acc[bad]:.2f}) should be "
        f"{_fmt(want[bad])}, got {_fmt(got[bad])} on {where}; accuracies up to there: "
        f"{acc[:bad + 1].tolist()}.{hint}")


def reference_schedule(acc, lr, factor, patience):
    """AlexNet's rule with torch's semantics (``threshold=0``): see ``step_on_plateau``."""
    return ref.step_on_plateau(acc, lr, factor=factor, patience=patience, threshold=0.0)


def _schedule_ties_improve(acc, lr, factor, patience):
    best, bad, out = -np.inf, 0, []
    for a in acc:
        if a >= best:
            best, bad = a, 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = lr * factor, 0
        out.append(lr)
    return np.array(out)


def _curve_with_few_drops(seed, lr, factor, patience, max_drops=5):
    """A curve whose schedule drops the rate at least once and at most ``max_drops`` times,
    so the rate stays above torch's "too small to matter" floor (a drop smaller than 1e-8 is
    skipped): the first curve near ``seed`` with a drop, cut before its (max_drops + 1)-th."""
    for offset in range(0, 10_000, 101):
        acc = accuracy_curve(seed + offset)
        rates = reference_schedule(acc, lr, factor, patience)
        drops = np.flatnonzero(np.diff(np.r_[lr, rates]) < 0)
        if len(drops) > max_drops:
            acc = acc[: drops[max_drops]]
        if len(drops) >= 1 and len(acc) >= 8:
            return acc
    raise RuntimeError(f"no accuracy curve near seed {seed}")  # pragma: no cover


check_lr_schedule = Check("optim.lr_schedule", "lr_schedule", _schedule_cases,
                          _schedule_judge)


# --------------------------------------------------------------------------- internals

def _show(config):
    return "{" + ", ".join(f"{k}={v:.3g}" for k, v in config.items()) + "}"
