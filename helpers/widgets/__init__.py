"""Live-demo widgets, one explorer per unit, all following one protocol.

- ``Explorer(**params)`` builds controls + a figure; displaying it shows both;
- ``.controls`` maps parameter names to the ipywidgets controls;
- ``.fig`` is the matplotlib Figure, updated in place when a control changes;
- ``Explorer.static(**params) -> Figure`` draws one figure with no frontend at all
  (nbconvert, GitHub, a projector without a kernel).

Explorers load lazily: ``import helpers.widgets`` imports neither ipywidgets nor
matplotlib until an explorer is used.
"""

from importlib import import_module

_EXPLORERS = {
    "KMeansExplorer": "helpers.widgets.kmeans",
    "DBSCANExplorer": "helpers.widgets.dbscan",
    "ConvExplorer": "helpers.widgets.conv",
    "PoolExplorer": "helpers.widgets.pool",
    "OptimizerRace": "helpers.widgets.optim",
    "ArchitectureExplorer": "helpers.widgets.models",
}

__all__ = sorted(_EXPLORERS)


def __getattr__(name):
    if name in _EXPLORERS:
        return getattr(import_module(_EXPLORERS[name]), name)
    raise AttributeError(f"module 'helpers.widgets' has no attribute {name!r}")
