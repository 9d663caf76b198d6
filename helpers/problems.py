"""A small real problem for the optimisers: softmax regression on scikit-learn's digits.

Full-batch and mini-batch gradients of one strongly convex loss, to show why L-BFGS
needs a deterministic function (:meth:`LogRegProblem.run_lbfgs`). Re-exported by
:mod:`helpers.optim`, where the notebooks find it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from helpers._validation import check_array, check_float, check_int
from helpers.lbfgs import LBFGSResult, lbfgs

__all__ = ["LogRegProblem", "make_logreg_problem"]


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
