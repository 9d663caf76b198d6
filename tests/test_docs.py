"""The pages a newcomer reads first say true things: every path they mention exists, the
layering docs/architecture.md states is the one the code follows, and every name its Public
API lists can be imported."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = ("CONTRIBUTING.md", "docs/architecture.md", "docs/style.md", "data/README.md")
# Things written like paths that are not paths of this repository.
NOT_PATHS = {"grading/work/submitted/<student>/<assignment>/", "grading/work/attic/"}


def _mentioned_paths(text):
    """`code spans` and markdown link targets that look like a repository path."""
    found = set()
    for span in re.findall(r"`([^`\s]+)`", text) + re.findall(r"\]\(([^)\s]+)\)", text):
        span = span.split("#")[0].rstrip(".,:;")
        if span.startswith(("http", "<", "-", "/", "~")) or "://" in span:
            continue
        if "/" not in span and not re.fullmatch(r"[\w.-]+\.(md|py|toml|yml|json|ipynb)", span):
            continue  # a word, a module or an expression, not a path
        if any(c in span for c in "()=*,{}[]'\"") or re.search(r"<|NN-|\.\.\.", span):
            continue  # a pattern such as helpers/checks/<topic>.py, or an expression
        found.add(span)
    return found


@pytest.mark.parametrize("page", PAGES)
def test_every_path_a_page_mentions_exists(page):
    text = (REPO / page).read_text(encoding="utf-8")
    here = (REPO / page).parent
    import sklearn

    ignored = {line.strip() for line in (REPO / ".gitignore").read_text().splitlines()}
    site = Path(sklearn.__file__).resolve().parents[1]  # paths inside installed packages
    missing = []
    for path in sorted(_mentioned_paths(text) - NOT_PATHS):
        candidates = [REPO / path, here / path, REPO / "helpers" / path, REPO / "data" / path,
                      REPO / "grading" / path, site / path]
        fetched = {path, f"data/{path}"} & ignored  # git-ignored: exists once fetched
        if not fetched and not any(c.exists() for c in candidates):
            missing.append(path)
    assert missing == [], f"{page} mentions paths that do not exist: {missing}"


def test_nothing_still_points_at_the_design_files_a_clone_lacks():
    for path in ("CONTRIBUTING.md", "pyproject.toml"):
        text = (REPO / path).read_text(encoding="utf-8")
        assert "DESIGN.md" not in text and "STYLE.md" not in text, path
    assert "docs/style.md" in (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert "docs/architecture.md" in (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ layers (architecture.md)

TORCH_MODULES = {"helpers.models", "helpers.summary", "helpers.train"}
HEAVY = {"torch", "matplotlib", "ipywidgets"}


def _layer(module):
    if module.startswith("helpers.checks"):
        return "checks"
    if module.startswith("helpers.widgets"):
        return "widgets"
    if module in TORCH_MODULES or module == "helpers._kmeans_torch":
        return "torch"
    return "reference"


# The layers of helpers each layer may import (architecture.md, "Layers"); any layer may
# reach the torch layer inside a function (a backend="torch" branch), never at the top.
MAY_IMPORT = {
    "reference": {"reference"},
    "torch": {"reference", "torch"},
    "checks": {"reference", "torch", "checks"},
    "widgets": {"reference", "torch", "widgets"},
}


def _imports(path):
    """(imported module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "helpers":
                out += [(f"helpers.{a.name}", id(node) in top) for a in node.names]
            else:
                out.append((node.module, id(node) in top))
    return out


def _modules():
    for path in sorted((REPO / "helpers").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


@pytest.mark.parametrize("name,path", list(_modules()), ids=lambda v: str(v).split("/")[-1])
def test_each_layer_imports_only_what_architecture_md_allows(name, path):
    layer = _layer(name)
    for imported, at_top in _imports(path):
        root = imported.split(".")[0]
        assert root != "grading", f"{name} imports {imported}: helpers never imports grading"
        if root == "helpers" and imported not in ("helpers", "helpers._validation"):
            allowed = MAY_IMPORT[layer] | ({"torch"} if not at_top else set())
            assert _layer(imported) in allowed, \
                f"{name} ({layer}) imports {imported} ({_layer(imported)})"
        if at_top and root in HEAVY:
            assert layer in ("torch", "widgets") or name == "helpers.widgets._textcache", \
                f"{name} ({layer}) imports {root} at the top; do it inside the function"


def _api_names(api):
    """{module: names} from the Public API block: the first name of each entry, every
    ``name(`` or CONSTANT after a comma, and every name of a line that only lists names."""
    names, current = {}, None
    for line in api.splitlines():
        if re.fullmatch(r"helpers\.\S+", line.strip()) and not line.startswith(" "):
            current = line.strip() if "<" not in line else None  # helpers.checks.<unit>
            if current:
                names[current] = set()
        elif current and re.match(r"^  \S", line):
            entry = line.strip()
            if re.fullmatch(r"[\w\s,;]+", entry):
                found = re.findall(r"\w+", entry)
            else:
                found = (re.findall(r"^([\w.]+)", entry) + re.findall(r",\s*(\w+)\(", entry)
                         + re.findall(r",\s*([A-Z][A-Z0-9_]+)\b", entry))
            names[current].update(n for n in found if n not in {"rule"})
    return names


def _resolve(module, dotted):
    obj = importlib.import_module(module)
    for i, part in enumerate(dotted.split(".")):
        if not hasattr(obj, part):  # a submodule not imported yet
            importlib.import_module(".".join([module, *dotted.split(".")[: i + 1]]))
        obj = getattr(obj, part)
    return obj


def test_public_api_names_are_importable_where_listed():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    api = text.split("## Public API", 1)[1].split("```")[1]
    names = _api_names(api)
    assert len(names) >= 9 and sum(map(len, names.values())) > 60
    missing = []
    for module, listed in names.items():
        for name in sorted(listed):
            try:
                _resolve(module, name)
            except (AttributeError, ImportError):
                missing.append(f"{module}.{name}")
    assert missing == [], f"docs/architecture.md lists names that do not import: {missing}"
