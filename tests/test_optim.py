"""helpers.optim against torch.optim, scipy.optimize, scikit-learn and the slides' formulas."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

from helpers import optim
from helpers.optim import (
    SURFACES,
    LBFGSResult,
    StepOnPlateau,
    adam,
    beale,
    ill_conditioned_quadratic,
    lbfgs,
    long_valley,
    make_logreg_problem,
    nesterov,
    rmsprop,
    rosenbrock,
    saddle,
    sgd,
    sgd_momentum,
    step_on_plateau,
    wolfe_line_search,
)

RTOL = 1e-10
N_STEPS = 25


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small matrices: extra BLAS / OpenMP threads only fight the other jobs for the cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    return make_logreg_problem(l2=1e-3)


# ----------------------------------------------------------------------------------------
# Update rules vs torch.optim, step by step
# ----------------------------------------------------------------------------------------


def _gradient_sequence(seed, shape, scale=1.0):
    """g_t(w) = A * w + r_t: depends on the current w, so any drift between runs compounds."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.5, 2.0, size=shape)
    noise = rng.normal(size=(N_STEPS, *shape))
    return lambda t, w: scale * (A * w + noise[t])


def _run_ours(rule, config, w0, grad):
    w, out = w0.copy(), []
    for t in range(N_STEPS):
        w, config = rule(w, grad(t, w), config)
        out.append(w.copy())
    return np.array(out)


def _run_torch(make_opt, w0, grad):
    p = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = make_opt([p])
    out = []
    for t in range(N_STEPS):
        p.grad = torch.from_numpy(grad(t, p.detach().numpy().copy()))
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


RULE_CASES = {
    "sgd": (sgd, {"learning_rate": 0.05}, lambda p: torch.optim.SGD(p, lr=0.05), 1.0),
    "sgd_weight_decay": (
        sgd,
        {"learning_rate": 0.05, "weight_decay": 5e-4},
        lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=5e-4),
        1.0,
    ),
    "sgd_momentum": (
        sgd_momentum,
        {"learning_rate": 0.02, "momentum": 0.9},
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9),
        1.0,
    ),
    "sgd_momentum_alexnet": (  # AlexNet's momentum 0.9 and weight decay 5e-4
        sgd_momentum,
        {"learning_rate": 1e-2, "momentum": 0.9, "weight_decay": 5e-4},
        lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, weight_decay=5e-4),
        1.0,
    ),
    "nesterov": (
        nesterov,
        {"learning_rate": 0.02, "momentum": 0.8},
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True),
        1.0,
    ),
    "rmsprop": (
        rmsprop,
        {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-6},
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-6),
        1.0,
    ),
    "rmsprop_defaults": (rmsprop, {}, lambda p: torch.optim.RMSprop(p), 1.0),
    "adam_defaults": (adam, {}, lambda p: torch.optim.Adam(p), 1.0),
    "adam": (
        adam,
        {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.99},
        lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99)),
        1.0,
    ),
    "adam_slide_eps": (  # the slide's 1e-7, with gradients small enough for eps to matter
        adam,
        {"learning_rate": 0.01, "epsilon": 1e-7},
        lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7),
        1e-7,
    ),
    "adam_weight_decay": (
        adam,
        {"learning_rate": 0.01, "weight_decay": 1e-2},
        lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-2),
        1.0,
    ),
}


@pytest.mark.parametrize("case", sorted(RULE_CASES))
@pytest.mark.parametrize("shape", [(7,), (3, 4, 2)])
def test_rule_equals_torch_step_by_step(case, shape):
    rule, config, make_opt, scale = RULE_CASES[case]
    w0 = np.random.default_rng(1).normal(size=shape)
    grad = _gradient_sequence(2, shape, scale)
    ours = _run_ours(rule, dict(config), w0, grad)
    theirs = _run_torch(make_opt, w0, grad)
    assert not np.allclose(ours[-1], w0), "the run should move w"
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=1e-14)


def test_adam_epsilon_changes_the_step_only_for_tiny_gradients():
    w0 = np.zeros(3)
    for scale, should_differ in [(1.0, False), (1e-8, True)]:
        dw = scale * np.array([1.0, -2.0, 3.0])
        w8, _ = adam(w0, dw, {"epsilon": 1e-8})
        w7, _ = adam(w0, dw, {"epsilon": 1e-7})
        t8, t7 = _torch_adam_first_step(w0, dw, 1e-8), _torch_adam_first_step(w0, dw, 1e-7)
        np.testing.assert_allclose(w8, t8, rtol=RTOL)
        np.testing.assert_allclose(w7, t7, rtol=RTOL)
        rel = np.max(np.abs(w8 - w7) / np.abs(w8))
        if should_differ:
            assert rel > 0.5, f"with |g| ~ eps the two epsilons give different steps, got {rel}"
        else:
            assert rel < 1e-6, f"with |g| >> eps the choice is invisible, got {rel}"


def _torch_adam_first_step(w0, dw, eps):
    p = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.Adam([p], lr=1e-3, eps=eps)
    p.grad = torch.from_numpy(dw.copy())
    opt.step()
    return p.detach().numpy()


def test_adam_with_keras_epsilon_hat_placement():
    """Keras: step lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps_hat); the docstring says
    this is our rule with epsilon = eps_hat / sqrt(1 - beta2**t)."""
    rng = np.random.default_rng(3)
    b1, b2, lr, eps_hat = 0.9, 0.999, 1e-3, 1e-7
    w = rng.normal(size=5)
    keras_w, m, v = w.copy(), np.zeros(5), np.zeros(5)
    config = {"learning_rate": lr}
    for t in range(1, 6):
        dw = 1e-6 * rng.normal(size=5)  # small enough for the placement to matter
        m = b1 * m + (1 - b1) * dw
        v = b2 * v + (1 - b2) * dw**2
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        keras_w = keras_w - alpha * m / (np.sqrt(v) + eps_hat)
        config["epsilon"] = eps_hat / np.sqrt(1 - b2**t)
        w, config = adam(w, dw, config)
        np.testing.assert_allclose(w, keras_w, rtol=1e-12)
    torch_like, _ = adam(np.zeros(5), np.full(5, 1e-6), {"epsilon": eps_hat})
    keras_first = -lr * np.sqrt(1 - b2) / (1 - b1) * (1 - b1) * 1e-6 / (
        np.sqrt(1 - b2) * 1e-6 + eps_hat
    )
    assert abs(torch_like[0] - keras_first) > 0.01 * abs(keras_first)


def test_sgd_momentum_learning_rate_drop_follows_torch_not_cs231n():
    w0 = np.random.default_rng(4).normal(size=6)
    grad = _gradient_sequence(5, (6,))
    lrs = [0.05] * 10 + [0.005] * 15  # a 10x drop at step 10

    ours, config, w = [], {"learning_rate": lrs[0], "momentum": 0.9}, w0.copy()
    for t in range(N_STEPS):
        config["learning_rate"] = lrs[t]
        w, config = sgd_momentum(w, grad(t, w), config)
        ours.append(w.copy())

    p = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lrs[0], momentum=0.9)
    theirs = []
    for t in range(N_STEPS):
        opt.param_groups[0]["lr"] = lrs[t]
        p.grad = torch.from_numpy(grad(t, p.detach().numpy().copy()))
        opt.step()
        theirs.append(p.detach().numpy().copy())
    np.testing.assert_allclose(ours, theirs, rtol=RTOL)

    cs231n, v, w = [], np.zeros(6), w0.copy()  # CS231n: v = mu v - lr dw; w += v
    for t in range(N_STEPS):
        v = 0.9 * v - lrs[t] * grad(t, w)
        w = w + v
        cs231n.append(w.copy())
    np.testing.assert_allclose(ours[:10], cs231n[:10], rtol=1e-12)  # same at constant lr
    assert not np.allclose(ours[10:], cs231n[10:], rtol=1e-3)  # not after the drop


def test_nesterov_equals_cs231n_form_at_constant_lr():
    w0 = np.random.default_rng(6).normal(size=4)
    grad = _gradient_sequence(7, (4,))
    lr, mu = 0.03, 0.9
    ours = _run_ours(nesterov, {"learning_rate": lr, "momentum": mu}, w0, grad)
    cs231n, v, w = [], np.zeros(4), w0.copy()
    for t in range(N_STEPS):
        v_prev = v
        v = mu * v - lr * grad(t, w)
        w = w - mu * v_prev + (1 + mu) * v
        cs231n.append(w.copy())
    np.testing.assert_allclose(ours, cs231n, rtol=1e-12)


def test_adam_matches_the_slide_pseudocode_with_eps_1e7():
    rng = np.random.default_rng(8)
    x, m, v = rng.normal(size=5), np.zeros(5), np.zeros(5)
    beta1, beta2, learning_rate = 0.9, 0.999, 1e-2
    ours, config = x.copy(), {"learning_rate": learning_rate, "epsilon": 1e-7}
    for t in range(1, N_STEPS + 1):
        dx = rng.normal(size=5)
        m = beta1 * m + (1 - beta1) * dx
        v = beta2 * v + (1 - beta2) * (dx**2)
        mb = m / (1 - beta1**t)
        vb = v / (1 - beta2**t)
        x += -learning_rate * mb / (np.sqrt(vb) + 1e-7)
        ours, config = adam(ours, dx, config)
        np.testing.assert_allclose(ours, x, rtol=1e-12)
    assert config["t"] == N_STEPS


# ----------------------------------------------------------------------------------------
# Bias correction when t is small
# ----------------------------------------------------------------------------------------


def test_adam_first_step_is_learning_rate_per_coordinate():
    dw = np.array([1e-3, -5.0, 200.0, 0.0])
    w, config = adam(np.zeros(4), dw, {"learning_rate": 0.1})
    expected = -0.1 * dw / (np.abs(dw) + 1e-8)
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    np.testing.assert_allclose(np.abs(w[:3]), 0.1, rtol=1e-5)  # gradient scale drops out


@pytest.mark.parametrize("t_max", [1, 10, 100, 1000])
def test_bias_correction_matters_when_t_is_small(t_max):
    """Constant gradient g: m_t = (1-b1^t) g and v_t = (1-b2^t) g^2 exactly, so the
    uncorrected step is lr * (1-b1^t)/sqrt(1-b2^t) and the corrected one is lr."""
    lr, b1, b2, g = 1e-3, 0.9, 0.999, np.array([0.3, -7.0])
    steps = {}
    for corrected in (True, False):
        w, config = np.zeros(2), {"learning_rate": lr, "epsilon": 0.0, "bias_correction": corrected}
        for _ in range(t_max):
            w_prev = w
            w, config = adam(w, g, config)
        steps[corrected] = np.abs(w - w_prev)
    np.testing.assert_allclose(steps[True], lr, rtol=1e-9)
    ratio = (1 - b1**t_max) / np.sqrt(1 - b2**t_max)
    np.testing.assert_allclose(steps[False], lr * ratio, rtol=1e-9)
    if t_max == 1:
        assert ratio > 3  # 0.1 / sqrt(0.001) = 3.16: uncorrected, the first step is 3x too big


# ----------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------

ALL_RULES = [sgd, sgd_momentum, nesterov, rmsprop, adam]


@pytest.mark.parametrize("rule", ALL_RULES)
@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan")])
def test_non_positive_learning_rate(rule, lr):
    with pytest.raises(ValueError, match="learning_rate"):
        rule(np.ones(3), np.ones(3), {"learning_rate": lr})


@pytest.mark.parametrize("rule", ALL_RULES)
def test_shape_mismatch_between_w_and_dw(rule):
    with pytest.raises(ValueError, match="dw"):
        rule(np.ones((2, 3)), np.ones((3, 2)))


@pytest.mark.parametrize(
    "rule, key, value",
    [
        (sgd_momentum, "momentum", 1.0),
        (sgd_momentum, "momentum", -0.1),
        (nesterov, "momentum", 1.5),
        (adam, "beta1", 1.0),
        (adam, "beta1", -0.01),
        (adam, "beta2", 1.0),
        (adam, "beta2", -0.5),
        (rmsprop, "decay_rate", 1.0),
        (rmsprop, "epsilon", -1e-8),
        (adam, "epsilon", -1e-8),
        (sgd, "weight_decay", -1e-4),
    ],
)
def test_hyperparameter_out_of_range(rule, key, value):
    with pytest.raises(ValueError, match=key):
        rule(np.ones(3), np.ones(3), {key: value})


def test_unknown_config_key_is_refused():
    with pytest.raises(ValueError, match="'lr'"):
        sgd(np.ones(3), np.ones(3), {"lr": 0.1})


def test_state_of_another_parameter_is_refused():
    _, config = sgd_momentum(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="velocity"):
        sgd_momentum(np.ones(4), np.ones(4), config)


def test_config_must_be_a_dict():
    with pytest.raises(TypeError, match="config"):
        adam(np.ones(3), np.ones(3), [("learning_rate", 0.1)])


def test_rules_do_not_modify_w_and_return_float64():
    w = np.ones(3, dtype=np.float32)
    for rule in ALL_RULES:
        w_next, _ = rule(w, np.ones(3, dtype=np.float32))
        assert w_next.dtype == np.float64
        assert np.all(w == 1)


# ----------------------------------------------------------------------------------------
# L-BFGS and its line search
# ----------------------------------------------------------------------------------------


def test_lbfgs_rosenbrock_like_scipy():
    x0 = np.array([-1.2, 1.0])
    ours = lbfgs(rosenbrock.f_and_grad, x0, history=10, tol=1e-6)
    ref = scipy.optimize.minimize(
        scipy.optimize.rosen, x0, jac=scipy.optimize.rosen_der, method="L-BFGS-B",
        options={"maxcor": 10, "gtol": 1e-6, "ftol": 0.0},
    )
    assert ref.success
    assert ours.converged, ours.message
    np.testing.assert_allclose(ours.x, [1.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(ours.x, ref.x, atol=1e-5)
    assert ours.n_iter <= 1.5 * ref.nit, (ours.n_iter, ref.nit)
    assert ours.n_evals <= 1.5 * ref.nfev, (ours.n_evals, ref.nfev)


def test_lbfgs_rosenbrock_like_torch():
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [x], lr=1, max_iter=500, history_size=10, tolerance_grad=1e-6,
        tolerance_change=1e-15, line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        f.backward()
        return f

    opt.step(closure)
    ours = lbfgs(rosenbrock.f_and_grad, [-1.2, 1.0], tol=1e-6)
    torch_x, torch_iter = x.detach().numpy(), opt.state[x]["n_iter"]
    np.testing.assert_allclose(torch_x, [1.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(ours.x, torch_x, atol=1e-5)
    assert ours.n_iter <= 1.5 * torch_iter, (ours.n_iter, torch_iter)


@pytest.mark.parametrize("d", [2, 5, 10])
def test_lbfgs_extended_rosenbrock_like_scipy(d):
    x0 = np.random.default_rng(d).uniform(-1.5, 1.5, size=d)
    ours = lbfgs(lambda x: (scipy.optimize.rosen(x), scipy.optimize.rosen_der(x)), x0,
                 max_iter=500)
    ref = scipy.optimize.minimize(scipy.optimize.rosen, x0, jac=scipy.optimize.rosen_der,
                                  method="L-BFGS-B", options={"gtol": 1e-6, "ftol": 0.0})
    assert ours.converged, ours.message
    np.testing.assert_allclose(ours.x, ref.x, atol=1e-4)  # the same local minimum
    assert ours.n_iter <= 2 * ref.nit + 5


@pytest.mark.parametrize("name", ["long_valley", "rosenbrock", "beale"])
def test_lbfgs_surfaces_reach_the_known_minimum(name):
    s = SURFACES[name]
    res = lbfgs(s.f_and_grad, s.start)
    ref = scipy.optimize.minimize(s.f_and_grad, s.start, jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-6})
    assert res.converged, res.message
    np.testing.assert_allclose(res.x, s.minimum, atol=1e-5)
    assert res.n_iter <= 2 * ref.nit + 5


def test_lbfgs_rotated_ill_conditioned_quadratic():
    s = ill_conditioned_quadratic(condition=1000.0, angle=30.0)
    res = lbfgs(s.f_and_grad, s.start)
    ref = scipy.optimize.minimize(s.f_and_grad, s.start, jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-6})
    assert res.converged
    np.testing.assert_allclose(res.x, [0.0, 0.0], atol=1e-5)
    assert res.n_iter <= 2 * ref.nit + 5


def test_lbfgs_result_fields_and_path():
    calls = []

    def f_and_grad(x):
        calls.append(x.copy())
        return rosenbrock.f_and_grad(x)

    res = lbfgs(f_and_grad, rosenbrock.start)
    assert isinstance(res, LBFGSResult)
    assert res.n_evals == len(calls)
    assert res.path.shape == (res.n_iter + 1, 2)
    np.testing.assert_array_equal(res.path[0], rosenbrock.start)
    np.testing.assert_array_equal(res.path[-1], res.x)
    np.testing.assert_allclose(res.fun_path, [rosenbrock.value(p) for p in res.path])
    assert np.all(np.diff(res.fun_path) < 0), "every step must lower f (Armijo condition)"
    assert res.fun == res.fun_path[-1]
    np.testing.assert_allclose(res.grad, rosenbrock.grad(res.x))
    with pytest.raises(AttributeError):
        res.x = None  # frozen


def test_lbfgs_max_iter_and_max_evals():
    res = lbfgs(rosenbrock.f_and_grad, rosenbrock.start, max_iter=5)
    assert res.n_iter == 5 and not res.converged and "max_iter" in res.message
    res = lbfgs(rosenbrock.f_and_grad, rosenbrock.start, max_evals=12)
    assert res.n_evals <= 12 and not res.converged


def test_lbfgs_bad_input():
    with pytest.raises(ValueError, match="history"):
        lbfgs(rosenbrock.f_and_grad, [0.0, 0.0], history=0)
    with pytest.raises(ValueError, match="x0"):
        lbfgs(rosenbrock.f_and_grad, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="tol"):
        lbfgs(rosenbrock.f_and_grad, [0.0, 0.0], tol=-1.0)
    with pytest.raises(ValueError, match="gradient of shape"):
        lbfgs(lambda x: (0.0, np.zeros(3)), [0.0, 0.0])
    with pytest.raises(TypeError, match="f_and_grad"):
        lbfgs(rosenbrock.value, [0.0, 0.0])


def _strong_wolfe_holds(f_and_grad, x, d, alpha, c1, c2):
    f0, g0 = f_and_grad(x)
    fa, ga = f_and_grad(x + alpha * d)
    return fa <= f0 + c1 * alpha * (g0 @ d) and abs(ga @ d) <= c2 * abs(g0 @ d)


@pytest.mark.parametrize("seed", range(6))
def test_line_search_satisfies_strong_wolfe_like_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=2)
    d = -rosenbrock.grad(x) * rng.uniform(1e-4, 1e-2)  # a badly scaled descent direction
    for c2 in (0.9, 0.1):
        ours = wolfe_line_search(rosenbrock.f_and_grad, x, d, c2=c2)
        ref = scipy.optimize.line_search(rosenbrock.value, rosenbrock.grad, x, d, c2=c2)
        assert ours.success
        assert _strong_wolfe_holds(rosenbrock.f_and_grad, x, d, ours.alpha, 1e-4, c2)
        if ref[0] is not None:
            assert _strong_wolfe_holds(rosenbrock.f_and_grad, x, d, ref[0], 1e-4, c2)
        np.testing.assert_allclose(ours.fun, rosenbrock.value(x + ours.alpha * d))


def test_line_search_refuses_an_ascent_direction():
    with pytest.raises(ValueError, match="descent direction"):
        wolfe_line_search(rosenbrock.f_and_grad, np.array([-1.2, 1.0]), rosenbrock.grad([-1.2, 1]))


def test_line_search_phases_bracket_then_zoom():
    """Algorithm 3.5 brackets the step, 3.6 zooms in; each phase keeps its promise."""
    from helpers.lbfgs import _bracket, _Counted, _Phi, _Trial, _zoom

    # phi(a) = (a - 1)^4 - a along d = 1 from x = 0: minimiser a* = 1 + 4 ** (-1 / 3)
    def f_and_grad(x):
        return float((x[0] - 1) ** 4 - x[0]), np.array([4 * (x[0] - 1) ** 3 - 1])

    x, d = np.zeros(1), np.ones(1)
    f0, g0 = f_and_grad(x)
    for alpha0 in (1e-3, 10.0):  # too short: extrapolate; too long: bracket at once
        phi = _Phi(_Counted(f_and_grad, (1,)), x, d, _Trial(0.0, f0, g0, float(g0 @ d)),
                   1e-4, 0.1, 25)
        found, lo, hi = _bracket(phi, alpha0)
        if found is None:
            assert phi.armijo(lo) and hi is not None
            assert min(lo.a, hi.a) <= 1 + 4 ** (-1 / 3) <= max(lo.a, hi.a)
            found, lo = _zoom(phi, lo, hi)
        assert found is not None
        assert _strong_wolfe_holds(f_and_grad, x, d, found.a, 1e-4, 0.1)


def test_line_search_out_of_budget_keeps_the_best_decrease_or_stays():
    x, d = np.array([-1.2, 1.0]), -rosenbrock.grad([-1.2, 1.0])
    f0, g0 = rosenbrock.f_and_grad(x)
    far = wolfe_line_search(rosenbrock.f_and_grad, x, d, fun=f0, grad=g0, max_evals=1)
    assert (far.success, far.alpha, far.fun, far.n_evals) == (False, 0.0, f0, 1)
    near = wolfe_line_search(rosenbrock.f_and_grad, x, d, fun=f0, grad=g0, alpha0=1e-6,
                             max_evals=2)
    assert not near.success and near.alpha > 0 and near.fun < f0


def test_split_modules_are_re_exported_by_optim():
    import helpers.lbfgs
    import helpers.problems
    import helpers.schedules

    for module in (helpers.lbfgs, helpers.problems, helpers.schedules):
        for name in module.__all__:
            assert getattr(optim, name) is getattr(module, name), name
            assert name in optim.__all__, name


# ----------------------------------------------------------------------------------------
# Surfaces
# ----------------------------------------------------------------------------------------


def _torch_reference(name, x, y):
    """The surfaces' textbook definitions, written independently, on torch tensors."""
    if name == "rosenbrock":
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2
    if name == "beale":
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2
    if name == "saddle":
        return x**2 - y**2
    if name == "long_valley":  # 0.5 p^T H p with H = diag(1, 20), axis-aligned by default
        return 0.5 * (x**2 + 20.0 * y**2)
    raise KeyError(name)


def test_registry():
    assert set(SURFACES) == {"long_valley", "rosenbrock", "beale", "saddle"}
    assert SURFACES["rosenbrock"] is rosenbrock and SURFACES["beale"] is beale
    assert SURFACES["saddle"] is saddle and SURFACES["long_valley"] is long_valley
    assert optim.SURFACES is SURFACES
    for name, s in SURFACES.items():
        assert s.name == name
        (x0, x1), (y0, y1) = s.bounds
        assert x0 <= s.start[0] <= x1 and y0 <= s.start[1] <= y1, name
        if s.minimum is not None:
            assert x0 <= s.minimum[0] <= x1 and y0 <= s.minimum[1] <= y1, name


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_surface_value_and_grad_against_torch_autograd(name):
    s = SURFACES[name]
    (x0, x1), (y0, y1) = s.bounds
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(x0, x1, 20), rng.uniform(y0, y1, 20)])
    t = torch.tensor(pts, requires_grad=True)
    f = _torch_reference(name, t[:, 0], t[:, 1])
    f.sum().backward()
    np.testing.assert_allclose(s.value(pts), f.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(s.grad(pts), t.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(SURFACES))
def test_surface_grad_against_finite_differences(name):
    s = SURFACES[name]
    rng = np.random.default_rng(1)
    (x0, x1), (y0, y1) = s.bounds
    h = 1e-6
    for _ in range(10):
        p = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        num = np.array([(s.value(p + h * e) - s.value(p - h * e)) / (2 * h) for e in np.eye(2)])
        g = s.grad(p)
        rel = np.max(np.abs(num - g)) / max(1.0, np.max(np.abs(g)))
        assert rel < 1e-6, (name, p, g, num)


def test_rosenbrock_equals_scipy_rosen():
    pts = np.random.default_rng(2).uniform(-2, 2, size=(50, 2))
    np.testing.assert_allclose(rosenbrock.value(pts), [scipy.optimize.rosen(p) for p in pts])
    np.testing.assert_allclose(rosenbrock.grad(pts), [scipy.optimize.rosen_der(p) for p in pts])


@pytest.mark.parametrize("surface, point", [(rosenbrock, (1.0, 1.0)), (beale, (3.0, 0.5)),
                                            (long_valley, (0.0, 0.0))])
def test_known_minima(surface, point):
    assert surface.minimum == point
    assert surface.value(np.array(point)) == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(surface.grad(np.array(point)), [0.0, 0.0], atol=1e-12)
    hess = np.array([(surface.grad(np.array(point) + 1e-5 * e) - surface.grad(np.array(point)
                      - 1e-5 * e)) / 2e-5 for e in np.eye(2)])
    assert np.all(np.linalg.eigvalsh((hess + hess.T) / 2) > 0)  # a strict local minimum


def test_beale_hand_values():
    assert beale.value([0.0, 0.0]) == pytest.approx(1.5**2 + 2.25**2 + 2.625**2)
    assert beale.value([1.0, 1.0]) == pytest.approx(1.5**2 + 2.25**2 + 2.625**2)  # x y^i = x
    assert beale.value([2.0, 0.0]) == pytest.approx(0.5**2 + 0.25**2 + 0.625**2)


def test_saddle_point_is_not_a_minimum():
    np.testing.assert_allclose(saddle.grad([0.0, 0.0]), [0.0, 0.0])
    assert saddle.value([0.0, 0.1]) < saddle.value([0.0, 0.0]) < saddle.value([0.1, 0.0])
    assert saddle.minimum is None


@pytest.mark.parametrize("condition, angle", [(10.0, 0.0), (1000.0, 30.0), (50.0, -75.0)])
def test_ill_conditioned_quadratic_condition_number(condition, angle):
    s = ill_conditioned_quadratic(condition=condition, angle=angle)
    # f is quadratic, so f(p) = 0.5 p^T H p; read H off the gradient at the unit vectors
    H = np.column_stack([s.grad(e) for e in np.eye(2)])
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    np.testing.assert_allclose(np.linalg.cond(H), condition, rtol=1e-9)
    a = np.deg2rad(angle)
    valley = np.array([np.cos(a), np.sin(a)])  # along the valley floor the curvature is 1
    np.testing.assert_allclose(valley @ H @ valley, 1.0, rtol=1e-12)
    p = np.random.default_rng(0).normal(size=2)
    assert s.value(p) == pytest.approx(0.5 * p @ H @ p)


def test_surfaces_on_grids_points_and_single_points():
    X, Y = np.meshgrid(np.linspace(-2, 2, 7), np.linspace(-1, 3, 5))
    for s in SURFACES.values():
        Z = s.value(X, Y)
        G = s.grad(X, Y)
        assert Z.shape == (5, 7) and G.shape == (5, 7, 2)
        XY = np.stack([X, Y], axis=-1)
        np.testing.assert_array_equal(s.value(XY), Z)
        np.testing.assert_array_equal(s.grad(XY), G)
        f, g = s.f_and_grad(XY[2, 3])
        assert isinstance(f, float) and f == Z[2, 3]
        np.testing.assert_array_equal(g, G[2, 3])
        assert s(XY[2, 3]) == f
        Xg, Yg, Zg = s.grid(30)
        assert Xg.shape == Yg.shape == Zg.shape == (30, 30)


def test_surface_bad_input():
    with pytest.raises(ValueError, match="xy"):
        rosenbrock.value(np.ones(3))
    with pytest.raises(ValueError, match="xy"):
        rosenbrock.f_and_grad(np.ones((2, 2)))
    with pytest.raises(ValueError, match="broadcast"):
        rosenbrock.value(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="condition"):
        ill_conditioned_quadratic(condition=0.5)


def test_divergence_shows_as_inf_without_raising(recwarn):
    assert rosenbrock.value([1e200, 1e200]) == np.inf
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


# ----------------------------------------------------------------------------------------
# Softmax regression on digits: the L-BFGS slide, with numbers
# ----------------------------------------------------------------------------------------


def test_logreg_loss_and_gradient_equal_torch_cross_entropy(digits):
    w = np.random.default_rng(0).normal(scale=0.1, size=digits.n_params)
    f, g = digits.f_and_grad(w)
    W, b = digits.unpack(w)
    Wt = torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    logits = torch.from_numpy(digits.X) @ Wt + bt
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(digits.y))
    loss = loss + 0.5 * digits.l2 * (Wt**2).sum()
    loss.backward()
    assert f == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(g, np.concatenate([Wt.grad.numpy().ravel(), bt.grad.numpy()]),
                               rtol=1e-9, atol=1e-14)


def test_logreg_minibatch_of_everything_equals_full_batch(digits):
    w = np.random.default_rng(1).normal(scale=0.1, size=digits.n_params)
    f_all = digits.minibatch_f_and_grad(len(digits.y), seed=0)
    f1, g1 = f_all(w)
    f0, g0 = digits.f_and_grad(w)
    assert f1 == pytest.approx(f0, rel=1e-12)
    np.testing.assert_allclose(g1, g0, rtol=1e-9, atol=1e-14)
    f_small = digits.minibatch_f_and_grad(32, seed=0)
    assert f_small(w)[0] != f_small(w)[0]  # a fresh batch each call


def test_logreg_lbfgs_reaches_sklearn_and_torch_optimum(digits):
    from sklearn.linear_model import LogisticRegression

    ours = lbfgs(digits.f_and_grad, digits.init(), max_iter=500, tol=1e-6)
    assert ours.converged, ours.message
    n = len(digits.y)
    # sklearn minimises C * sum(CE) + ||W||^2 / 2 = (mean CE + l2/2 ||W||^2) * C n
    clf = LogisticRegression(C=1.0 / (digits.l2 * n), tol=1e-8, max_iter=5000)
    clf.fit(digits.X, digits.y)
    w_sk = np.concatenate([clf.coef_.T.ravel(), clf.intercept_])
    assert ours.fun == pytest.approx(digits.loss(w_sk), abs=1e-7)
    np.testing.assert_array_equal(np.argmax(digits.X @ digits.unpack(ours.x)[0] +
                                            digits.unpack(ours.x)[1], axis=1),
                                  clf.predict(digits.X))

    W = torch.zeros(digits.n_params, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W], lr=1, max_iter=500, history_size=10, tolerance_grad=1e-6,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        f, g = digits.f_and_grad(W.detach().numpy().copy())
        W.grad = torch.from_numpy(g)
        return torch.tensor(f)

    opt.step(closure)
    # measured: torch's line search gives up after ~123 iterations at max|g| ~ 1e-5,
    # 3e-7 above the optimum; ours goes on to max|g| <= 1e-6 in ~172
    assert ours.fun == pytest.approx(digits.loss(W.detach().numpy()), abs=1e-6)
    assert ours.fun <= digits.loss(W.detach().numpy()) + 1e-9


def test_lbfgs_line_search_gives_up_on_minibatch_noise(digits):
    """The mechanism: the same point gives different values, so the search cannot bracket."""
    for seed in range(3):
        res = lbfgs(digits.minibatch_f_and_grad(64, seed=seed), digits.init(),
                    max_iter=10_000, tol=0.0, max_evals=2_000)
        assert not res.converged
        assert "line search" in res.message, res.message
        assert res.n_evals < 2_000  # stopped long before its budget


def test_lbfgs_full_batch_beats_minibatch_at_equal_budget(digits):
    """The slide: L-BFGS works well full batch, gives bad results with mini-batches.

    Both runs process 30 epochs' worth of examples; the mini-batch run restarts whenever
    its line search gives up, so it spends the whole budget.
    """
    full = digits.run_lbfgs(max_epochs=30)
    assert full.n_evals == 30
    noisy_losses, noisy_acc = [], []
    for seed in range(3):
        noisy = digits.run_lbfgs(batch_size=64, max_epochs=30, seed=seed)
        assert noisy.n_evals == 30 * len(digits.y) // 64  # the same examples processed
        assert noisy.fun == pytest.approx(digits.loss(noisy.x))  # full-batch loss
        noisy_losses.append(noisy.fun)
        noisy_acc.append(digits.accuracy(noisy.x))
    # measured: full ~0.264, mini-batch 0.36-0.46 with these seeds
    assert full.fun + 0.05 < min(noisy_losses), (full.fun, noisy_losses)
    assert digits.accuracy(full.x) > max(noisy_acc)


def test_logreg_bad_input(digits):
    with pytest.raises(ValueError, match="w must have shape"):
        digits.f_and_grad(np.zeros(10))
    with pytest.raises(ValueError, match="batch_size"):
        digits.minibatch_f_and_grad(0)
    with pytest.raises(ValueError, match="l2"):
        make_logreg_problem(l2=-1.0)


# ----------------------------------------------------------------------------------------
# AlexNet's schedule vs torch's ReduceLROnPlateau
# ----------------------------------------------------------------------------------------


def _plateauing_accuracy(seed, n=60):
    """Accuracy that rises, stalls, jumps after (imagined) drops and stalls again."""
    rng = np.random.default_rng(seed)
    base = np.concatenate([np.linspace(0.3, 0.6, 15), np.full(15, 0.6), np.linspace(0.6, 0.7, 10),
                           np.full(n - 40, 0.7)])
    return base + rng.normal(scale=0.004, size=n)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patience": 3},
        {"patience": 0},
        {"patience": 5, "cooldown": 2},
        {"patience": 2, "threshold": 0.01, "threshold_mode": "abs"},
        {"patience": 2, "min_lr": 5e-5},
        {"patience": 4, "mode": "min"},
        {"patience": 1, "factor": 0.5, "threshold": 0.0},
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_step_on_plateau_equals_torch_reduce_lr_on_plateau(kwargs, seed):
    metrics = _plateauing_accuracy(seed)
    if kwargs.get("mode") == "min":
        metrics = 1.0 - metrics  # error rate
    ours = step_on_plateau(metrics, lr=1e-2, **kwargs)

    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1e-2)
    torch_kwargs = {"mode": "max", "factor": 0.1, **kwargs}
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **torch_kwargs)
    theirs = []
    for m in metrics:
        sched.step(m)
        theirs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours[-1] < 1e-2, "the plateaus should trigger at least one drop"


@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
def test_step_on_plateau_ties_equal_torch(mode, threshold_mode):
    """Hand-made metrics with exact repeats: a tie is not an improvement."""
    metrics = [0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.4, 0.6, 0.7, 0.7, 0.7]
    ours = step_on_plateau(metrics, lr=0.1, patience=1, mode=mode, threshold=0.0,
                           threshold_mode=threshold_mode)
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode=mode, factor=0.1, patience=1, threshold=0.0, threshold_mode=threshold_mode
    )
    theirs = []
    for m in metrics:
        sched.step(m)
        theirs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert len(set(ours.tolist())) > 1


def test_step_on_plateau_class_tracks_state():
    sched = StepOnPlateau(lr=0.1, patience=2)
    for acc in [0.5, 0.7, 0.7, 0.7, 0.7]:
        sched.step(acc)
    assert sched.lr == pytest.approx(0.01) and sched.best == 0.7
    assert sched.history == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.01])


def test_step_on_plateau_bad_input():
    with pytest.raises(ValueError, match="factor"):
        StepOnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="patience"):
        StepOnPlateau(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        StepOnPlateau(mode="maximum")
    with pytest.raises(ValueError, match="lr"):
        step_on_plateau([0.1, 0.2], lr=0.0)
