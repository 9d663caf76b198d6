"""scripts/install_venv.py, what the Makefile builds .venv with: uv from the sources pip is
configured with, then every file byte-compiled."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import install_venv  # noqa: E402


def test_uv_gets_the_sources_pip_is_configured_with():
    settings = {"find-links": "/opt/wheels /srv/more", "extra-index-url": "file:///a file:///b",
                "index-url": "https://mirror.example/simple", "constraint": "/etc/c.txt",
                "cert": "/etc/ca.crt", "default-timeout": "180"}
    cmd, env = install_venv.uv_command(settings)
    pairs = list(zip(cmd, cmd[1:]))
    assert ("--find-links", "/opt/wheels") in pairs and ("--find-links", "/srv/more") in pairs
    assert ("--extra-index-url", "file:///a") in pairs and ("--extra-index-url", "file:///b") in pairs
    assert ("--index-url", "https://mirror.example/simple") in pairs
    assert ("--constraint", "/etc/c.txt") in pairs
    # pip takes the best version from any source (e.g. a local 2.13.0+cpu over PyPI's 2.13.0)
    assert ("--index-strategy", "unsafe-best-match") in pairs
    assert ("--python", sys.executable) in pairs and cmd[-2:] == ["-e", ".[dev]"]
    assert env["UV_HTTP_TIMEOUT"] == "180"
    assert "--no-index" not in cmd
    assert "--no-index" in install_venv.uv_command({"no-index": "true"})[0]


def test_pip_settings_are_read_from_pips_own_config_list(tmp_path):
    """pip's files and PIP_* variables, as `pip config list` prints them; a variable wins."""
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nfind-links = /from/file\nextra-index-url = file:///x file:///y\n"
                    "constraint = /c.txt\n")
    env = {"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": str(conf), "PIP_FIND_LINKS": "/from/env"}
    settings = install_venv.pip_settings(env)
    assert settings["find-links"] == "/from/env"
    assert settings["extra-index-url"] == "file:///x file:///y"
    assert settings["constraint"] == "/c.txt"


def test_the_venv_is_byte_compiled_where_kernels_import_at_run_time():
    """Kernels import from .pyc files (the sandbox's venv is read-only): the modules a graded
    kernel loads, including those torch loads only when a model runs on the meta device
    (helpers.models.summary), have theirs. Looked up, not imported."""
    import sysconfig
    from importlib.util import cache_from_source

    site = Path(sysconfig.get_paths()["purelib"])
    modules = ["numpy/__init__.py", "matplotlib/pyplot.py", "sklearn/cluster/_kmeans.py",
               "scipy/signal/__init__.py", "torch/__init__.py", "torch/_dynamo/__init__.py",
               "torch/distributed/__init__.py", "sympy/__init__.py", "ipykernel/kernelapp.py",
               "IPython/core/interactiveshell.py", "nbgrader/apps/autogradeapp.py"]
    missing = [m for m in modules if not Path(cache_from_source(site / m)).exists()]
    assert not missing, f"not byte-compiled (make venv, scripts/install_venv.py): {missing}"
