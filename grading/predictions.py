"""How the class predicted: per question, how many students chose each option.

Predictions (``helpers.widgets.predict``) are never graded; a wrong majority is what the
next lecture should address. Each submitted notebook keeps them in two places, read here:

- the output of ``Predict.summary()`` (a ``PREDICTION_MIMETYPE`` payload), always saved;
- the widgets' state in ``metadata.widgets``, saved when JupyterLab's widget-state saving is
  on: a ``VBox`` with the classes ``day6-predict``, ``day6-q-<qid>``, ``day6-choice-<i>``,
  ``day6-answer-<i>`` and a ``ToggleButtons`` child holding the option labels.

A student counts once per question (the payload wins over the widget state; the last
payload in the notebook wins over earlier ones). Nothing here executes the notebooks.

    counts = class_predictions(paths)        # {qid: {"question", "options", "answer", "counts"}}
    plot_predictions(counts, "predictions.png")
"""

from __future__ import annotations

import json
import re
from pathlib import Path

PREDICTION_MIMETYPE = "application/vnd.day6.predictions+json"  # = helpers.widgets.predict's
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CSS_CLASS = "day6-predict"


def class_predictions(paths) -> dict:
    """Per question id, in the order first seen: the question, its options, the true answer
    and ``counts`` (option -> number of students who chose it, every option listed)."""
    out: dict = {}
    for path in paths:
        for rec in notebook_predictions(path).values():
            entry = out.setdefault(rec["qid"], {"question": rec["question"],
                                                "options": list(rec["options"]),
                                                "answer": rec.get("answer"),
                                                "counts": {o: 0 for o in rec["options"]}})
            if rec["choice"] not in entry["counts"]:  # options changed between releases
                entry["options"].append(rec["choice"])
                entry["counts"][rec["choice"]] = 0
            entry["counts"][rec["choice"]] += 1
    return out


def notebook_predictions(path) -> dict:
    """qid -> the committed prediction record in one notebook (unreadable files: none)."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = _from_widget_state(nb)
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
            payload = (output.get("data") or {}).get(PREDICTION_MIMETYPE) \
                if isinstance(output, dict) else None
            if isinstance(payload, dict):
                for rec in payload.get("predictions") or []:
                    rec = _valid(rec)
                    if rec:
                        found[rec["qid"]] = rec
    return found


def plot_predictions(counts, path, ncols=3):
    """One small bar chart per question (the true answer's bar in green) to a PNG at
    ``path``; returns the path. A question nobody answered shows an empty chart."""
    import textwrap

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not counts:
        raise ValueError("counts is empty: no predictions were found in the notebooks")
    items = list(counts.items())
    ncols = min(ncols, len(items))
    nrows = -(-len(items) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (qid, entry) in zip(axes, items):
        options = entry["options"]
        values = [entry["counts"].get(o, 0) for o in options]
        colors = ["#009E73" if o == entry.get("answer") else "#999999" for o in options]
        ax.barh(range(len(options)), values, color=colors)
        ax.set_yticks(range(len(options)),
                      [textwrap.shorten(o, 28, placeholder="…") for o in options])
        ax.invert_yaxis()
        ax.set_title("\n".join(textwrap.wrap(entry["question"], 38)[:3]), fontsize=9)
        ax.set_xlabel(f"students ({sum(values)} answered)")
        ax.set_ylabel(qid, fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes[len(items):]:
        ax.axis("off")
    fig.suptitle("How the class predicted (green: the true answer)")
    fig.tight_layout()
    with matplotlib.rc_context({"savefig.dpi": 100}):
        fig.savefig(path, format="png")
    return Path(path)


# ---------------------------------------------------------------------------- internals

def _valid(rec):
    """A record from a notebook (untrusted JSON) if it is well formed and committed."""
    if not isinstance(rec, dict):
        return None
    qid, options, choice = rec.get("qid"), rec.get("options"), rec.get("choice")
    if not (isinstance(qid, str) and isinstance(options, list)
            and all(isinstance(o, str) for o in options) and isinstance(choice, str)
            and choice in options):
        return None
    answer = rec.get("answer") if rec.get("answer") in options else None
    return {"qid": qid, "question": str(rec.get("question", qid)), "options": options,
            "answer": answer, "choice": choice}


def _from_widget_state(nb):
    state = ((nb.get("metadata") or {}).get("widgets") or {}).get(WIDGET_STATE) or {}
    models = state.get("state") or {}
    found = {}
    for model in models.values():
        st = (model or {}).get("state") or {}
        classes = st.get("_dom_classes") or []
        if CSS_CLASS not in classes:
            continue
        qid = _class_value(classes, "day6-q-")
        choice, answer = _class_value(classes, "day6-choice-"), _class_value(classes,
                                                                              "day6-answer-")
        options = _options(models, st.get("children") or [])
        if qid is None or options is None or choice is None or not choice.isdigit():
            continue
        if int(choice) >= len(options):
            continue
        rec = _valid({"qid": qid, "question": qid, "options": options,
                      "choice": options[int(choice)],
                      "answer": options[int(answer)] if answer and answer.isdigit()
                      and int(answer) < len(options) else None})
        if rec:
            found[qid] = rec
    return found


def _class_value(classes, prefix):
    for c in classes:
        if isinstance(c, str) and c.startswith(prefix):
            return c[len(prefix):]
    return None


def _options(models, children):
    for ref in children:
        m = re.fullmatch(r"IPY_MODEL_(\w+)", str(ref))
        child = models.get(m.group(1)) if m else None
        st = (child or {}).get("state") or {}
        if (child or {}).get("model_name") == "ToggleButtonsModel":
            labels = st.get("_options_labels")
            if isinstance(labels, list) and all(isinstance(o, str) for o in labels):
                return labels
    return None
