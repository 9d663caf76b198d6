"""Predict, then reveal (helpers/widgets/predict.py) and the class's predictions read back
from submitted notebooks (grading/predictions.py): the answer is hidden until a commit, the
committed choice survives in a saved notebook (a cell output, and the widget state that
JupyterLab saves), and the instructor's counts and chart come from those notebooks."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

from grading import predictions as gp
from helpers.widgets import predict as pw
from helpers.widgets.predict import Predict


@pytest.fixture(autouse=True)
def _fresh_session(monkeypatch):
    monkeypatch.setattr(pw, "COMMITTED", {})
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def _question(qid="03.fits"):
    return Predict(qid, "Does a 3x3 filter with stride 3 fit a 7x7 input?",
                   ["yes, 3x3 output", "yes, 2x2 output", "no: it doesn't fit"],
                   answer="no: it doesn't fit", why="(7 - 3)/3 + 1 = 2.33 is not an integer")


def test_the_answer_shows_only_after_a_commit():
    p = _question()
    box = p.widget
    reveal = box.children[-1]
    assert "doesn't fit" not in reveal.value and "2.33" not in reveal.value
    p._on_commit()  # nothing picked yet: no reveal, a hint instead
    assert "Pick one" in reveal.value and p.choice is None
    p._buttons.value = "yes, 2x2 output"
    p._commit_button.click()
    assert p.choice == "yes, 2x2 output"
    assert "2.33" in reveal.value and "no: it doesn" in reveal.value
    assert p._buttons.disabled and p._commit_button.disabled
    p.commit("yes, 3x3 output")  # a commit is final
    assert p.choice == "yes, 2x2 output"
    assert pw.COMMITTED["03.fits"]["correct"] is False


def test_bad_arguments_are_refused_with_the_parameter_named():
    with pytest.raises(ValueError, match="answer"):
        Predict("q", "?", ["a", "b"], answer="c", why="")
    with pytest.raises(ValueError, match="options"):
        Predict("q", "?", ["a"], answer="a", why="")
    with pytest.raises(ValueError, match="qid"):
        Predict("has space", "?", ["a", "b"], answer="a", why="")
    with pytest.raises(ValueError, match="choice"):
        _question().commit("maybe")


def test_static_fallback_without_a_frontend(monkeypatch):
    p = _question()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    bundle = p._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" not in bundle
    assert "stride 3" in bundle["text/markdown"] and "2.33" in bundle["text/markdown"]
    monkeypatch.delenv("NBGRADER_EXECUTION")
    bundle = p._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/png"]  # what nbconvert's HTML export shows instead of the widget


def _saved_notebook(tmp_path, name, choices, *, summary=True, widget_state=False):
    """A notebook as JupyterLab saves it after a student committed ``choices``."""
    from ipywidgets.embed import dependency_state, embed_data

    pw.COMMITTED.clear()
    nb = nbformat.v4.new_notebook()
    widgets = []
    for qid, choice in choices.items():
        p = _question(qid)
        widgets.append(p.widget)
        p.commit(choice)
        nb.cells.append(nbformat.v4.new_code_cell(f"Predict({qid!r}, ...)"))
    if summary:
        cell = nbformat.v4.new_code_cell("Predict.summary()")
        bundle = pw.summary_bundle("03-convolution")
        cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
        nb.cells.append(cell)
    if widget_state:
        nb.metadata["widgets"] = {gp.WIDGET_STATE: embed_data(
            views=widgets, state=dependency_state(widgets))["manager_state"]}
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_class_counts_from_outputs_and_from_widget_state(tmp_path):
    paths = [
        _saved_notebook(tmp_path, "a.ipynb", {"03.fits": "no: it doesn't fit",
                                              "03.other": "yes, 3x3 output"}),
        _saved_notebook(tmp_path, "b.ipynb", {"03.fits": "yes, 2x2 output"},
                        summary=False, widget_state=True),
        _saved_notebook(tmp_path, "c.ipynb", {"03.fits": "yes, 2x2 output"},
                        widget_state=True),  # both sources: counted once
        _saved_notebook(tmp_path, "d.ipynb", {}),   # ran nothing
    ]
    (tmp_path / "broken.ipynb").write_text("{not json")
    counts = gp.class_predictions([*paths, tmp_path / "broken.ipynb"])
    assert list(counts) == ["03.fits", "03.other"]
    fits = counts["03.fits"]
    assert fits["counts"] == {"yes, 3x3 output": 0, "yes, 2x2 output": 2,
                              "no: it doesn't fit": 1}
    assert fits["answer"] == "no: it doesn't fit"
    assert counts["03.other"]["counts"]["yes, 3x3 output"] == 1


def test_widget_state_alone_is_read(tmp_path):
    path = _saved_notebook(tmp_path, "b.ipynb", {"03.fits": "yes, 3x3 output"},
                           summary=False, widget_state=True)
    state = json.loads(path.read_text())["metadata"]["widgets"][gp.WIDGET_STATE]["state"]
    assert any(gp.CSS_CLASS in m["state"].get("_dom_classes", []) for m in state.values())
    assert gp.notebook_predictions(path)["03.fits"]["choice"] == "yes, 3x3 output"


def test_forged_payloads_are_ignored(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        gp.PREDICTION_MIMETYPE: {"predictions": [
            {"qid": "q", "options": ["a", "b"], "choice": "c"},     # not an option
            {"qid": 3, "options": ["a"], "choice": "a"},            # qid not a string
            "nonsense",
            {"qid": "ok", "options": ["a", "b"], "choice": "b", "answer": "a"}]}})]
    nb.cells.append(cell)
    path = tmp_path / "f.ipynb"
    nbformat.write(nb, path)
    assert list(gp.notebook_predictions(path)) == ["ok"]


def test_the_chart_has_one_panel_per_question(tmp_path):
    import matplotlib.image as mpimg

    paths = [_saved_notebook(tmp_path, f"{i}.ipynb", {"03.fits": c, "03.b": c})
             for i, c in enumerate(["yes, 2x2 output", "yes, 2x2 output", "no: it doesn't fit"])]
    counts = gp.class_predictions(paths)
    out = gp.plot_predictions(counts, tmp_path / "predictions.png", ncols=3)
    img = mpimg.imread(out)
    assert img.shape[1] > img.shape[0] > 100  # two panels side by side
    # The tallest bar is the majority's (2 of 3), drawn in grey because it is wrong.
    assert counts["03.fits"]["counts"]["yes, 2x2 output"] == 2
    with pytest.raises(ValueError, match="empty"):
        gp.plot_predictions({}, tmp_path / "none.png")


def test_summary_payload_is_json():
    _question().commit("no: it doesn't fit")
    bundle = pw.summary_bundle("03-convolution")
    payload = json.loads(json.dumps(bundle[pw.PREDICTION_MIMETYPE]))
    assert payload["predictions"][0]["correct"] is True
    assert "1 of 1 right" in bundle["text/markdown"]
    assert pw.PREDICTION_MIMETYPE == gp.PREDICTION_MIMETYPE
    assert np.isfinite(len(payload["predictions"]))
