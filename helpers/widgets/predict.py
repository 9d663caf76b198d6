"""Predict, then reveal: a student commits to an answer before the demo shows the truth.

``Predict(qid, question, options, answer, why)`` shows the question and its options; the
student picks one and presses **Commit**; only then does it show the true answer and one
line on why (the notebooks compute both wherever the answer is a number). Predictions are
never graded.

Where a prediction is kept, so that the instructor can see how the class predicted
(``grading/predictions.py`` reads both):

1. **Widget state in the notebook's metadata.** The widget is an ordinary ``VBox`` whose
   ``_dom_classes`` carry the question's id and, once committed, the chosen and the true
   option's index (``day6-predict``, ``day6-q-<qid>``, ``day6-choice-<i>``,
   ``day6-answer-<i>``); its ``ToggleButtons`` child carries the option labels. JupyterLab
   writes every widget's state into ``metadata.widgets`` when it saves, if widget-state
   saving is on (the ``saveState`` setting of ``@jupyter-widgets/jupyterlab-manager``).
   A kernel cannot write notebook metadata itself, so this needs that setting.
2. **A cell output, which needs no setting.** ``Predict.summary()`` (each notebook's
   wrap-up runs it) displays this session's predictions as a table *and* as a JSON
   payload of type ``PREDICTION_MIMETYPE``; outputs are saved with the notebook whatever
   the frontend's settings, and a script reads them back.

Without a frontend (``NBGRADER_EXECUTION`` set, i.e. nbgrader is running the notebook) a
prediction shows as text: the question, the options, the answer and why. Under nbconvert
the widget's output also carries a PNG of that text, which the HTML export shows.
"""

from __future__ import annotations

import html
import os
import re

PREDICTION_MIMETYPE = "application/vnd.day6.predictions+json"
CSS_CLASS = "day6-predict"

# Every prediction committed in this kernel, in order: qid -> record (see Predict.record).
COMMITTED: dict = {}


def _slug(qid):
    if not isinstance(qid, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", qid):
        raise ValueError(f"qid should be a short id of letters, digits, '.', '-' or '_', "
                         f"got {qid!r}")
    return qid


class Predict:
    """One prediction question.

    Parameters
    ----------
    qid : str
        A short id, unique in the course ("03.alexnet-conv1"): the instructor's report
        groups the class's answers by it.
    question : str
        The question, one or two sentences.
    options : sequence of str
        The choices (2 to 6), shown in this order.
    answer : str
        The true option; must be one of ``options``.
    why : str
        One line on why, shown with the answer.

    Examples
    --------
    >>> p = Predict("demo.q", "2 + 2?", ["3", "4"], answer="4", why="arithmetic")
    >>> p.commit("3")["correct"]
    False
    """

    def __init__(self, qid, question, options, answer, why):
        self.qid = _slug(qid)
        self.question = str(question)
        self.options = [str(o) for o in options]
        if not 2 <= len(self.options) <= 6:
            raise ValueError(f"options should hold 2 to 6 choices, got {len(self.options)}")
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"options should be distinct, got {self.options}")
        if str(answer) not in self.options:
            raise ValueError(f"answer {answer!r} is not one of the options {self.options}")
        self.answer = str(answer)
        self.why = str(why)
        self.choice = None
        self._widget = None

    # ------------------------------------------------------------------ the widget
    @property
    def widget(self):
        """The ipywidgets view (built on first use)."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _build(self):
        import ipywidgets as w

        self._buttons = w.ToggleButtons(options=self.options, value=None,
                                        description="", style={"button_width": "auto"})
        self._commit_button = w.Button(description="Commit my answer", button_style="primary",
                                       tooltip="Lock in your prediction, then see the answer")
        self._reveal = w.HTML(value="<i>Pick an answer, then commit: the truth comes after.</i>")
        self._commit_button.on_click(lambda _: self._on_commit())
        box = w.VBox([w.HTML(value=f"<b>🤔 Predict:</b> {html.escape(self.question)}"),
                      self._buttons, self._commit_button, self._reveal])
        box.add_class(CSS_CLASS)
        box.add_class(f"day6-q-{self.qid}")
        return box

    def _on_commit(self):
        if self._buttons.value is None:
            self._reveal.value = "<i>Pick one of the answers first.</i>"
            return
        self.commit(self._buttons.value)

    def commit(self, choice):
        """Lock in ``choice`` (one of the options), reveal the answer; returns the record."""
        if self.choice is not None:
            return self.record()
        choice = str(choice)
        if choice not in self.options:
            raise ValueError(f"choice {choice!r} is not one of the options {self.options}")
        self.choice = choice
        COMMITTED[self.qid] = self.record()
        if self._widget is not None:
            self._buttons.value = choice
            self._buttons.disabled = True
            self._commit_button.disabled = True
            self._commit_button.description = "Committed"
            self._widget.add_class(f"day6-choice-{self.options.index(choice)}")
            self._widget.add_class(f"day6-answer-{self.options.index(self.answer)}")
            self._reveal.value = self._reveal_html()
        return self.record()

    def record(self) -> dict:
        """What is kept of this prediction: JSON-able, one per question."""
        return {"qid": self.qid, "question": self.question, "options": list(self.options),
                "answer": self.answer, "choice": self.choice,
                "correct": None if self.choice is None else self.choice == self.answer}

    def _reveal_html(self):
        verdict = ("✅ right" if self.choice == self.answer
                   else f"❌ you said <b>{html.escape(self.choice)}</b>")
        return (f"{verdict}. Answer: <b>{html.escape(self.answer)}</b>: "
                f"{html.escape(self.why)}")

    # ------------------------------------------------------------------ display
    def text(self) -> str:
        """The static fallback: question, options, answer and why, as Markdown."""
        opts = "  ".join(f"({chr(97 + i)}) {o}" for i, o in enumerate(self.options))
        return (f"**Predict:** {self.question}\n\n{opts}\n\n"
                f"**Answer:** {self.answer}: {self.why}")

    def png(self, dpi=80) -> bytes:
        """The static fallback drawn as a picture (what nbconvert's HTML export shows)."""
        import io
        import textwrap

        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        lines = [*textwrap.wrap(f"Predict: {self.question}", 90),
                 *textwrap.wrap("   ".join(f"({chr(97 + i)}) {o}"
                                           for i, o in enumerate(self.options)), 90),
                 *textwrap.wrap(f"Answer: {self.answer}: {self.why}", 90)]
        fig = Figure(figsize=(9, 0.3 * len(lines) + 0.3))
        FigureCanvasAgg(fig)
        fig.text(0.01, 0.95, "\n".join(lines), va="top", ha="left", fontsize=11,
                 linespacing=1.5)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        static = {"text/plain": self.text(), "text/markdown": self.text()}
        if os.environ.get("NBGRADER_EXECUTION"):
            return static
        import base64

        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        return {**static, **dict(bundle), "text/plain": self.text(),
                "image/png": base64.b64encode(self.png()).decode("ascii")}

    # ------------------------------------------------------------------ the session
    @staticmethod
    def summary(unit=None):
        """Display this session's predictions (a table) and keep them in the cell's output
        as a ``PREDICTION_MIMETYPE`` payload, which is saved with the notebook."""
        from IPython.display import display

        display(summary_bundle(unit), raw=True)


def summary_bundle(unit=None) -> dict:
    """The mimebundle ``Predict.summary`` displays: Markdown, plain text and the payload."""
    rows = list(COMMITTED.values())
    if rows:
        table = ["| question | you said | answer |", "|---|---|---|"]
        table += [f"| {r['question']} | {r['choice']} {'✅' if r['correct'] else '❌'} | "
                  f"{r['answer']} |" for r in rows]
        right = sum(r["correct"] for r in rows)
        md = "\n".join([f"**Your predictions:** {right} of {len(rows)} right.", "", *table])
    else:
        md = "No predictions committed in this session (they are never graded)."
    plain = md.replace("**", "")
    return {"text/markdown": md, "text/plain": plain,
            PREDICTION_MIMETYPE: {"unit": unit, "predictions": rows}}
