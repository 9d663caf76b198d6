"""Helpers for the Day 6 workshop notebooks.

Reference implementations in numpy (``clustering``, ``conv``, ``pool``, ``optim``),
torch backends that use a GPU when there is one, models for the case studies, data that
ships offline, and ipywidgets for live demos.

Importing this package is cheap and has no side effects: torch, ipywidgets and
matplotlib load only inside the submodules that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
