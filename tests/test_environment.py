"""The set-up a newcomer relies on: pins agree, `import helpers` is light, CI calls make test."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pins(lines):
    return {line.split("==")[0].strip().lower(): line.split("==")[1].strip()
            for line in lines if "==" in line}


def test_environment_yml_pins_equal_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == wanted
    assert "-e ." in pip_section
    assert wanted["torch"] == "2.13.0"
    assert all("==" in dep for dep in project["dependencies"]), "every dependency is pinned"


def test_import_helpers_is_light():
    """What `import helpers` loads, counted in modules, not timed (a timing would flake on a
    busy machine): the package alone, and the numpy-only submodules pull in no heavy library."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import helpers\n"
        "print(sorted(set(sys.modules) - before))\n"
        "import helpers.clustering, helpers.data, helpers.checks, helpers.widgets, helpers.device\n"
        "import helpers.optim, helpers.layer_tables\n"
        "print([m for m in ('torch', 'ipywidgets', 'matplotlib', 'sklearn') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, heavy = out.stdout.splitlines()
    assert loaded == "['helpers']", f"`import helpers` loaded more than the package: {loaded}"
    assert heavy == "[]", f"importing the light submodules loaded {heavy}"
    assert out.stderr == "", "importing helpers must not print"


def test_import_has_no_side_effects_on_randomness():
    code = ("import numpy as np; a = np.random.get_state()[1].copy()\n"
            "import helpers, helpers.clustering, helpers.data\n"
            "assert (np.random.get_state()[1] == a).all()\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ci_and_readme_use_make_test():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
