"""Learning-rate schedules: AlexNet's "divide the learning rate by 10 when the validation
accuracy plateaus", with the semantics of ``torch.optim.lr_scheduler.ReduceLROnPlateau``.

Re-exported by :mod:`helpers.optim`, where the notebooks find it.
"""

from __future__ import annotations

import math

import numpy as np

from helpers._validation import check_array, check_choice, check_float, check_int

__all__ = ["StepOnPlateau", "step_on_plateau"]


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
