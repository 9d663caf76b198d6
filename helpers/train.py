"""Train and evaluate an image classifier: the small, readable loop the CNN unit uses.

::

    from helpers.data import load_digits_images
    from helpers.models import lenet5
    from helpers.train import train

    result = train(lambda: lenet5(input_size=8), load_digits_images(), epochs=20, lr=2e-3)
    result.test_accuracy[-1]          # after the last epoch

The loop is the one every course writes (d2l's ``train_ch6``, CS231n's ``Solver``):
shuffle, cut into mini-batches, forward, cross-entropy, backward, step; after each epoch,
measure the error on the training set and the accuracy on the test set. It runs on the
GPU when there is one (``device=None``), shows a tqdm progress bar, and is reproducible:
the same ``seed`` gives the same numbers on the same machine and torch version.

Randomness: ``train`` seeds torch's global generators with ``seed`` *inside*
``torch.random.fork_rng``, so the model's initialisation (when ``model`` is a function
that builds it), the shuffling, the augmentation and dropout all follow ``seed``, and
the caller's random state is the same afterwards as before (on the CPU and on every CUDA
device; an MPS generator is seeded but not restored). The number of CPU threads is
whatever ``torch.set_num_threads`` says; nothing here changes it.

This module imports torch; ``import helpers`` does not import it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from helpers._validation import check_choice, check_float, check_int
from helpers.device import resolve_device

__all__ = ["OPTIMIZERS", "SCHEDULES", "TrainResult", "evaluate", "predict", "random_shift",
           "resize_images", "train"]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine", "step")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` measured, one entry per epoch.

    Attributes
    ----------
    model : torch.nn.Module
        The trained model (the one passed in, trained in place, or the one built), in
        eval mode, on ``device``.
    train_loss : tuple of float
        Mean cross-entropy of the epoch's mini-batches, as the optimiser saw them
        (augmented images, dropout and batch statistics on).
    train_error : tuple of float
        Fraction of the training images misclassified at the end of the epoch, in eval
        mode and without augmentation: the "training error" curves of He et al.'s
        Figure 1 and 6.
    test_accuracy : tuple of float
        Fraction of the test images classified correctly at the end of the epoch.
    seconds : float
        Wall-clock time of the whole run, evaluation included.
    device : str
        Where it ran ("cpu", "cuda:0", ...).
    """

    model: nn.Module
    train_loss: tuple
    train_error: tuple
    test_accuracy: tuple
    seconds: float
    device: str

    @property
    def test_error(self) -> tuple:
        """``1 - test_accuracy``, per epoch."""
        return tuple(1.0 - a for a in self.test_accuracy)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def __str__(self) -> str:
        return (f"{self.epochs} epochs in {self.seconds:.1f} s on {self.device}: "
                f"train loss {self.train_loss[-1]:.4f}, train error "
                f"{100 * self.train_error[-1]:.2f}%, test accuracy "
                f"{100 * self.test_accuracy[-1]:.2f}%")


def train(model, data, *, epochs: int = 10, lr: float = 1e-3, optimizer: str = "adam",
          batch_size: int = 64, momentum: float = 0.9, weight_decay: float = 0.0,
          schedule: str = "constant", shift: int = 0, device=None, seed=0,
          progress: bool = True) -> TrainResult:
    """Train ``model`` on ``data`` with mini-batch gradient descent and cross-entropy.

    Each epoch visits every training image once, in an order drawn from ``seed``, in
    mini-batches of ``batch_size``; each batch is (optionally) shifted by up to ``shift``
    pixels, passed forward, and the cross-entropy of the model's scores is
    back-propagated and stepped by the optimiser. After each epoch the training error and
    the test accuracy are measured in eval mode.

    Parameters
    ----------
    model : torch.nn.Module, or a function with no arguments that returns one
        A classifier that maps ``(N, C, H, W)`` images to ``(N, n_classes)`` scores. A
        module is trained in place (and moved to ``device``); a function is called inside
        the seeded region, so that the initial weights follow ``seed`` too.
    data : ImageSplit or (X_train, y_train, X_test, y_test)
        Float images ``(N, C, H, W)`` and int labels ``(N,)``, e.g.
        :func:`helpers.data.load_digits_images`.
    epochs : int
        Passes over the training set (>= 1).
    lr : float
        Initial learning rate.
    optimizer : {"adam", "sgd"}
        ``torch.optim.Adam``, or ``torch.optim.SGD`` with ``momentum`` (the papers' choice:
        AlexNet and ResNet used SGD with momentum 0.9).
    batch_size : int
    momentum : float
        SGD's momentum (ignored by Adam).
    weight_decay : float
        L2 penalty (AlexNet: 5e-4; the ResNet paper: 1e-4).
    schedule : {"constant", "cosine", "step"}
        Learning rate over the run: constant; cosine decay to 0 (step by step); or divided
        by 10 at 50% and again at 75% of the epochs, the papers' "divided by 10 when the
        error plateaus" on a fixed timetable.
    shift : int
        Data augmentation: move each training image by a random whole number of pixels in
        ``[-shift, shift]`` along each axis (zeros fill in). 0 turns it off.
    device : None, str or torch.device
        None: the best available (cuda, mps, cpu), see :func:`helpers.device.resolve_device`.
    seed : int
        Seeds torch for the whole run (see the module's notes: the caller's random state
        is restored afterwards).
    progress : bool
        Show a progress bar (``tqdm.auto``: a widget in Jupyter, text elsewhere).

    Returns
    -------
    TrainResult
        ``.model``, per-epoch ``.train_loss``, ``.train_error``, ``.test_accuracy``,
        and ``.seconds``.

    Examples
    --------
    >>> from helpers.data import load_digits_images
    >>> d = load_digits_images(seed=0)
    >>> small = (d.X_train[:300], d.y_train[:300], d.X_test, d.y_test)
    >>> net = lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    >>> r = train(net, small, epochs=3, lr=0.05, device="cpu", progress=False)
    >>> r.epochs, r.train_loss[-1] < r.train_loss[0], r.test_accuracy[-1] > 0.5
    (3, True, True)
    """
    epochs, lr, batch_size, momentum, weight_decay, shift, seed = _checked(
        model, epochs, lr, optimizer, batch_size, momentum, weight_decay, schedule, shift, seed)
    X_train, y_train, X_test, y_test = _unpack(data)
    device = resolve_device(device)

    start = time.perf_counter()
    with _seeded(seed):
        if not isinstance(model, nn.Module):
            model = model()
            if not isinstance(model, nn.Module):
                raise TypeError(f"model() must return a torch.nn.Module, got "
                                f"{type(model).__name__}")
        model = model.to(device)
        dtype = _float_dtype(model)
        Xtr = torch.as_tensor(X_train).to(device=device, dtype=dtype)
        ytr = torch.as_tensor(y_train).to(device)
        n = len(Xtr)
        steps_per_epoch = math.ceil(n / batch_size)
        total_steps = epochs * steps_per_epoch
        opt = _make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
        order = torch.Generator().manual_seed(seed)  # shuffling and shifts, on the CPU

        losses, train_errors, test_accuracies = [], [], []
        bar = _progress(epochs, progress)
        step = 0
        for epoch in bar:
            rate = partial(_learning_rate, schedule, lr, total_steps=total_steps, epoch=epoch,
                           epochs=epochs)
            loss, step = _one_epoch(model, opt, Xtr, ytr, order, batch_size, shift, rate, step)
            losses.append(loss)
            train_errors.append(1.0 - evaluate(model, X_train, y_train, device=device))
            test_accuracies.append(evaluate(model, X_test, y_test, device=device))
            bar.set_postfix(loss=f"{losses[-1]:.3f}", train_err=f"{train_errors[-1]:.3f}",
                            test_acc=f"{test_accuracies[-1]:.3f}")
        bar.close()
    model.eval()
    return TrainResult(model=model, train_loss=tuple(losses), train_error=tuple(train_errors),
                       test_accuracy=tuple(test_accuracies),
                       seconds=time.perf_counter() - start, device=str(device))


def _one_epoch(model, opt, Xtr, ytr, order, batch_size, shift, rate, step):
    """One pass over the training set in the order drawn from ``order``; ``rate(step)`` is
    the learning rate of each step. Returns (mean training loss, the next step number)."""
    model.train()
    n, device = len(Xtr), Xtr.device
    total_loss = 0.0
    for idx in torch.randperm(n, generator=order).split(batch_size):
        for group in opt.param_groups:
            group["lr"] = rate(step)
        xb = Xtr[idx.to(device)]
        if shift:
            xb = random_shift(xb, shift, generator=order)
        loss = F.cross_entropy(model(xb), ytr[idx.to(device)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total_loss += loss.item() * len(idx)
        step += 1
    return total_loss / n, step


def _checked(model, epochs, lr, optimizer, batch_size, momentum, weight_decay, schedule, shift,
             seed):
    """``train``'s arguments checked (a sentence naming the parameter otherwise)."""
    if not (isinstance(model, nn.Module) or callable(model)):
        raise TypeError(f"model must be a torch.nn.Module or a function that returns one, "
                        f"got {type(model).__name__}")
    check_choice(optimizer, "optimizer", OPTIMIZERS)
    check_choice(schedule, "schedule", SCHEDULES)
    return (check_int(epochs, "epochs", min_value=1),
            check_float(lr, "lr", min_value=0.0, min_inclusive=False),
            check_int(batch_size, "batch_size", min_value=1),
            check_float(momentum, "momentum", min_value=0.0, max_value=1.0,
                        max_inclusive=False),
            check_float(weight_decay, "weight_decay", min_value=0.0),
            check_int(shift, "shift", min_value=0),
            check_int(seed, "seed", min_value=0))


def predict(model, X, *, batch_size: int = 512, device=None) -> np.ndarray:
    """Class index with the highest score for every image, in eval mode, without gradients.

    Parameters
    ----------
    model : torch.nn.Module
    X : array (N, C, H, W)
        Float images (numpy or torch).
    batch_size : int
        Images per forward pass (memory only; the answer does not depend on it).
    device : None, str or torch.device
        Where to run ("cpu", "cuda", "cuda:1", ...); the model is moved there first (in
        place, as ``model.to(device)`` does). None: where the model's parameters are.

    Returns
    -------
    ndarray of shape (N,) of int64

    The model's training flag is restored afterwards.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    X = _images(X, "X")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    else:
        device = resolve_device(device)
        model.to(device)
    dtype = _float_dtype(model)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(X), batch_size):
                xb = torch.as_tensor(X[start:start + batch_size]).to(device=device, dtype=dtype)
                out.append(model(xb).argmax(dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def evaluate(model, X, y, *, batch_size: int = 512, device=None) -> float:
    """Accuracy of ``model`` on images ``X`` with labels ``y``: the fraction it gets right.

    Parameters
    ----------
    model : torch.nn.Module
    X : array (N, C, H, W)
    y : array (N,) of int
    batch_size, device
        As for :func:`predict`.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> with torch.no_grad():
    ...     _ = model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    ...     _ = model[1].bias.zero_()
    >>> X = np.array([[[[1.0, 0], [0, 0]]], [[[0, 1.0], [0, 0]]], [[[2.0, 0], [0, 0]]]])
    >>> evaluate(model, X, [0, 1, 1])   # the third image scores class 0
    0.6666666666666666
    """
    X = _images(X, "X")
    y = _labels(y, "y", len(X))
    if len(X) == 0:
        raise ValueError("X is empty: accuracy needs at least one image")
    return float(np.mean(predict(model, X, batch_size=batch_size, device=device) == y))


def random_shift(x, shift: int = 1, *, generator=None):
    """Move each image of the batch by a random number of pixels, filling in zeros.

    Each image gets its own offset ``(dy, dx)``, both drawn uniformly from
    ``[-shift, shift]``: a cheap augmentation that teaches a net that a digit moved by a
    pixel is the same digit (LeCun et al. 1998 used such distortions; AlexNet took random
    224x224 crops of 256x256 images, the same idea at scale).

    Parameters
    ----------
    x : torch.Tensor (N, C, H, W)
    shift : int
        Largest move in pixels along each axis.
    generator : torch.Generator or None
        Source of the offsets (a CPU generator); None: torch's global one.

    Returns
    -------
    torch.Tensor (N, C, H, W) on ``x``'s device.

    Examples
    --------
    >>> x = torch.zeros(1, 1, 3, 3)
    >>> x[0, 0, 1, 1] = 1.0                  # one bright pixel in the middle
    >>> out = random_shift(x, 1, generator=torch.Generator().manual_seed(0))
    >>> out.shape, float(out.sum())          # it moved by at most 1 pixel each way
    (torch.Size([1, 1, 3, 3]), 1.0)
    """
    shift = check_int(shift, "shift", min_value=0)
    if shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    offsets = torch.randint(0, 2 * shift + 1, (n, 2), generator=generator)
    out = torch.empty_like(x)
    for dy in range(2 * shift + 1):
        for dx in range(2 * shift + 1):
            rows = ((offsets[:, 0] == dy) & (offsets[:, 1] == dx)).nonzero().squeeze(1)
            if len(rows):
                rows = rows.to(x.device)
                out[rows] = padded[rows, :, dy:dy + h, dx:dx + w]
    return out


def resize_images(X, size: int = 32) -> np.ndarray:
    """Images resized to ``size`` x ``size`` by bilinear interpolation (float32).

    The same resampling as :func:`helpers.models.lenet5`'s ``resize`` layer
    (``torch.nn.functional.interpolate``, ``mode="bilinear"``, ``align_corners=False``):
    resizing the 8x8 digits to 32x32 once, before training, gives LeNet-5 the input size
    it was designed for (the paper padded 28x28 MNIST digits to 32x32) and lets
    :func:`random_shift` move them by fractions of an original pixel.

    Parameters
    ----------
    X : array (N, C, H, W)
    size : int
        Output height and width.

    Returns
    -------
    ndarray (N, C, size, size) of float32

    Examples
    --------
    >>> resize_images(np.ones((2, 1, 8, 8)), 32).shape
    (2, 1, 32, 32)
    """
    size = check_int(size, "size", min_value=1)
    X = torch.as_tensor(_images(X, "X"), dtype=torch.float32)
    return F.interpolate(X, size=(size, size), mode="bilinear", align_corners=False).numpy()


# --------------------------------------------------------------------------------------
# private helpers
# --------------------------------------------------------------------------------------


class _seeded:
    """``torch.manual_seed(seed)`` for the duration of a ``with`` block, then the caller's
    random state back (CPU and every CUDA device: manual_seed seeds them all)."""

    def __init__(self, seed):
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        self._fork = torch.random.fork_rng(devices=devices)
        self._seed = seed

    def __enter__(self):
        self._fork.__enter__()
        torch.manual_seed(self._seed)
        return self

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)


def _learning_rate(schedule, lr, step, total_steps, epoch, epochs):
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    if schedule == "step":
        return lr * (0.1 ** ((epoch >= epochs * 0.5) + (epoch >= epochs * 0.75)))
    return lr


def _make_optimizer(name, params, lr, momentum, weight_decay):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _progress(epochs, enabled):
    from tqdm.auto import tqdm

    return tqdm(range(epochs), desc="training", unit="epoch", disable=not enabled)


def _float_dtype(model):
    first = next(model.parameters(), None)
    if first is not None and first.is_floating_point():
        return first.dtype
    return torch.get_default_dtype()


def _unpack(data):
    if all(hasattr(data, a) for a in ("X_train", "y_train", "X_test", "y_test")):
        parts = (data.X_train, data.y_train, data.X_test, data.y_test)
    elif isinstance(data, tuple | list) and len(data) == 4:
        parts = tuple(data)
    else:
        raise TypeError(f"data must be an ImageSplit (helpers.data) or a tuple "
                        f"(X_train, y_train, X_test, y_test); got {type(data).__name__}")
    X_train, X_test = _images(parts[0], "X_train"), _images(parts[2], "X_test")
    y_train = _labels(parts[1], "y_train", len(X_train))
    y_test = _labels(parts[3], "y_test", len(X_test))
    if len(X_train) == 0 or len(X_test) == 0:
        raise ValueError(f"X_train and X_test need at least one image each; got "
                         f"{len(X_train)} and {len(X_test)}")
    if X_train.shape[1:] != X_test.shape[1:]:
        raise ValueError(f"X_train and X_test must hold images of the same shape (C, H, W); "
                         f"got {tuple(X_train.shape[1:])} and {tuple(X_test.shape[1:])}")
    return X_train, y_train, X_test, y_test


def _images(X, name):
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim != 4:
        raise ValueError(f"{name} must be a 4-D array of images (N, C, H, W), got shape "
                         f"{X.shape}")
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"{name} must hold floats (e.g. pixels scaled to [0, 1]), got dtype "
                         f"{X.dtype}")
    return X


def _labels(y, name, n):
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape (N,) = ({n},), one label per image; got "
                         f"{y.shape}")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
        raise ValueError(f"{name} must hold class indices 0, 1, 2, ... (ints); got dtype "
                         f"{y.dtype}" + (f" with minimum {y.min()}" if y.size else ""))
    return y.astype(np.int64)
