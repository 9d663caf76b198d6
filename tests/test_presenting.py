"""Presenter mode: each unit converts to a reveal.js deck whose slides follow the notebook."""

from __future__ import annotations

import nbformat
from nbconvert import SlidesExporter


def test_unit_converts_to_a_slide_deck(course, unit):
    path = course.repo / "solutions" / unit / course.units[unit]["notebook"]
    nb = nbformat.read(path, as_version=4)
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    assert kinds[0] == "slide", "the title cell opens the deck"
    assert kinds.count("slide") >= 4, "each section of the slides is a slide"
    html, _ = SlidesExporter().from_notebook_node(nb)
    assert html.count("<section") >= kinds.count("slide")
    assert "reveal" in html.lower()
