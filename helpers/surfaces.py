"""Two-dimensional test surfaces for the optimiser race (value and gradient, numpy).

The four surfaces of the optimiser animations the slides credit to Alec Radford:

- ``long_valley`` — an ill-conditioned quadratic, a narrow straight valley where plain
  SGD zig-zags across and crawls along (:func:`ill_conditioned_quadratic` makes one with
  any condition number and orientation);
- ``rosenbrock`` — a curved banana-shaped valley, minimum (1, 1);
- ``beale`` — flat plateaus and steep walls, minimum (3, 0.5);
- ``saddle`` — ``x**2 - y**2``: no minimum, a saddle point at the origin where
  plain SGD lingers and adaptive methods escape.

Every surface is a :class:`Surface`. Its ``value`` and ``grad`` take either one array of
points ``xy`` of shape (..., 2) (a single point is shape (2,)) or two broadcastable arrays
``x, y`` (a ``np.meshgrid`` for contour plots), so the same object feeds an optimiser and a
contour plot. ``f_and_grad(xy)`` returns ``(float, ndarray (2,))``, the form the update
rules and :func:`helpers.optim.lbfgs` consume. ``SURFACES`` maps names to surfaces.

Non-finite inputs are not rejected and overflow does not warn: a diverging optimiser
produces ``inf`` / ``nan`` and the plot should show it, not raise or fill stderr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from helpers._validation import check_array, check_float, check_int

__all__ = [
    "SURFACES",
    "Surface",
    "beale",
    "ill_conditioned_quadratic",
    "long_valley",
    "rosenbrock",
    "saddle",
]


@dataclass(frozen=True)
class Surface:
    """A 2-D function with its gradient, a start point and plot bounds.

    Attributes
    ----------
    name : str
        Key in :data:`SURFACES`.
    formula : str
        The function in LaTeX (for plot titles).
    start : tuple of float
        Default start point ``(x0, y0)`` of the race.
    minimum : tuple of float or None
        The global minimiser, or None when there is none (the saddle is unbounded below).
    min_value : float or None
        The value at ``minimum``.
    bounds : ((xmin, xmax), (ymin, ymax))
        A plot window that shows the start point, the minimum and the interesting terrain.
    log_levels : bool
        True when the values span many decades, so contour levels read best log-spaced.

    Examples
    --------
    >>> rosenbrock.value(np.array([1.0, 1.0]))
    0.0
    >>> rosenbrock.grad([-1.2, 1.0])
    array([-215.6,  -88. ])
    >>> X, Y = np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-1, 3, 4))
    >>> rosenbrock.value(X, Y).shape
    (4, 5)
    """

    name: str
    formula: str
    start: tuple[float, float]
    minimum: tuple[float, float] | None
    min_value: float | None
    bounds: tuple[tuple[float, float], tuple[float, float]]
    log_levels: bool
    _value: Callable = field(repr=False, compare=False)
    _grad: Callable = field(repr=False, compare=False)

    def value(self, x, y=None):
        """f at points ``xy`` of shape (..., 2), or at broadcastable ``x, y``.

        Returns a float for a single point, else an array of the broadcast shape.
        """
        X, Y = _split_xy(x, y)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence shows as inf / nan
            out = self._value(X, Y)
        return float(out) if np.ndim(out) == 0 else out

    def grad(self, x, y=None) -> np.ndarray:
        """Gradient at ``xy`` (..., 2) or at ``x, y``; shape (..., 2), last axis (df/dx, df/dy)."""
        X, Y = _split_xy(x, y)
        with np.errstate(over="ignore", invalid="ignore"):
            gx, gy = self._grad(X, Y)
        return np.stack(np.broadcast_arrays(gx, gy), axis=-1)

    def f_and_grad(self, xy) -> tuple[float, np.ndarray]:
        """``(f(xy), grad f(xy))`` for one point ``xy`` of shape (2,)."""
        xy = check_array(xy, "xy", ndim=1, finite=False, shape_hint="(2,)")
        if xy.shape != (2,):
            raise ValueError(f"xy must be one point of shape (2,), got shape {xy.shape}")
        # The same formulas as value() and grad() on numpy scalars: identical numbers,
        # 7x faster than going through arrays (optimisers call this thousands of times).
        x, y = xy[0], xy[1]
        with np.errstate(over="ignore", invalid="ignore"):
            f = self._value(x, y)
            gx, gy = self._grad(x, y)
        return float(f), np.array([gx, gy], dtype=np.float64)

    def __call__(self, x, y=None):
        """Same as :meth:`value`."""
        return self.value(x, y)

    def grid(self, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, Y, Z)``, each (n, n), over :attr:`bounds`, ready for ``plt.contour``."""
        n = check_int(n, "n", min_value=2)
        (x0, x1), (y0, y1) = self.bounds
        X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
        return X, Y, self.value(X, Y)


def ill_conditioned_quadratic(condition: float = 20.0, angle: float = 0.0) -> Surface:
    """A "long valley": ``f = (u**2 + condition * v**2) / 2`` in axes rotated by ``angle``.

    ``u = x cos(a) + y sin(a)`` and ``v = -x sin(a) + y cos(a)``; the Hessian has
    eigenvalues 1 (along the valley) and ``condition`` (across it), so its condition
    number is ``condition``. Gradient descent is stable only for ``learning_rate <
    2 / condition`` and then shrinks the along-valley error by ``1 - learning_rate`` per
    step: the larger the condition number, the slower the crawl. With ``angle = 0`` the
    valley lies along an axis, which flatters Adam and RMSProp (their per-coordinate
    scaling undoes an axis-aligned stretch exactly); a rotated valley takes that away.

    Parameters
    ----------
    condition : float
        Condition number of the Hessian, >= 1.
    angle : float
        Direction of the valley floor, in degrees from the x axis.

    Returns
    -------
    Surface
        Minimum 0 at (0, 0).

    Examples
    --------
    >>> s = ill_conditioned_quadratic(condition=100.0)
    >>> s.value([1.0, 1.0]), s.grad([1.0, 1.0]).tolist()
    (50.5, [1.0, 100.0])
    """
    condition = check_float(condition, "condition", min_value=1.0)
    angle = check_float(angle, "angle")
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))

    def value(x, y):
        u, v = c * x + s * y, -s * x + c * y
        return 0.5 * (u**2 + condition * v**2)

    def grad(x, y):
        u, v = c * x + s * y, -s * x + c * y
        return c * u - s * condition * v, s * u + c * condition * v

    # Start far along the valley and a little up its wall, in the valley's own axes.
    u0, v0 = -4.0, 1.0
    start = (float(c * u0 - s * v0), float(s * u0 + c * v0))
    return Surface(
        name="long_valley",
        formula=(
            rf"$\frac{{1}}{{2}}(x^2 + {condition:g}\,y^2)$" if angle == 0
            else rf"$\frac{{1}}{{2}}(u^2 + {condition:g}\,v^2)$, axes rotated by {angle:g}°"
        ),
        start=start,
        minimum=(0.0, 0.0),
        min_value=0.0,
        bounds=((-5.0, 5.0), (-5.0, 5.0)) if angle % 180 else ((-5.0, 5.0), (-2.0, 2.0)),
        log_levels=False,
        _value=value,
        _grad=grad,
    )


def _rosenbrock_value(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def _rosenbrock_grad(x, y):
    return -2.0 * (1.0 - x) - 400.0 * x * (y - x**2), 200.0 * (y - x**2)


_BEALE_C = (1.5, 2.25, 2.625)


def _beale_value(x, y):
    return sum((c - x + x * y**i) ** 2 for i, c in enumerate(_BEALE_C, start=1))


def _beale_grad(x, y):
    gx = gy = 0.0
    for i, c in enumerate(_BEALE_C, start=1):
        r = c - x + x * y**i
        gx = gx + 2.0 * r * (y**i - 1.0)
        gy = gy + 2.0 * r * i * x * y ** (i - 1)
    return gx, gy


rosenbrock = Surface(
    name="rosenbrock",
    formula=r"$(1 - x)^2 + 100\,(y - x^2)^2$",
    start=(-1.2, 1.0),  # the classic start (Rosenbrock 1960; scipy's and N&W's examples)
    minimum=(1.0, 1.0),
    min_value=0.0,
    bounds=((-2.0, 2.0), (-1.0, 3.0)),
    log_levels=True,
    _value=_rosenbrock_value,
    _grad=_rosenbrock_grad,
)

beale = Surface(
    name="beale",
    formula=r"$\sum_{i=1}^{3} (c_i - x + x y^i)^2,\ c = (1.5, 2.25, 2.625)$",
    start=(1.0, 1.5),
    minimum=(3.0, 0.5),
    min_value=0.0,
    bounds=((-4.5, 4.5), (-4.5, 4.5)),
    log_levels=True,
    _value=_beale_value,
    _grad=_beale_grad,
)

saddle = Surface(
    name="saddle",
    formula=r"$x^2 - y^2$",
    # Almost on the ridge line y = 0: the gradient barely points off it, so plain SGD
    # slides to the saddle point and lingers there before escaping.
    start=(1.0, 1e-3),
    minimum=None,
    min_value=None,
    bounds=((-1.5, 1.5), (-1.5, 1.5)),
    log_levels=False,
    _value=lambda x, y: x**2 - y**2,
    _grad=lambda x, y: (2.0 * x, -2.0 * y),
)

long_valley = ill_conditioned_quadratic()

SURFACES: dict[str, Surface] = {
    s.name: s for s in (long_valley, rosenbrock, beale, saddle)
}


def _split_xy(x, y):
    """Return float64 arrays X, Y from ``xy`` (..., 2) or from ``x, y`` (broadcast)."""
    if y is None:
        xy = check_array(x, "xy", finite=False, shape_hint="(..., 2)")
        if xy.ndim == 0 or xy.shape[-1] != 2:
            raise ValueError(
                f"xy must have shape (..., 2) (points with x and y on the last axis), "
                f"got shape {xy.shape}; or pass x and y separately"
            )
        return xy[..., 0], xy[..., 1]
    X = check_array(x, "x", finite=False)
    Y = check_array(y, "y", finite=False)
    try:
        return np.broadcast_arrays(X, Y)
    except ValueError:
        raise ValueError(
            f"x and y must broadcast together (e.g. from np.meshgrid), got shapes "
            f"{X.shape} and {Y.shape}"
        ) from None
