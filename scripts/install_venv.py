"""Install the course's pinned dependencies into this venv, then byte-compile them.

Run by the Makefile's venv target with the venv's own python (`.venv/bin/python
scripts/install_venv.py`). A fresh `.venv` took 74-110 s of a fresh clone's `make test` on
2 cores, in two parts:

- pip resolves, downloads and unpacks ~150 wheels one after another (~25 s). uv does the
  same from the same sources in ~7 s. uv does not read pip's configuration, so the sources
  pip is configured with (find-links, index URLs, constraints: e.g. where a machine keeps
  its CPU build of torch) are handed to it explicitly, and pip's choice among them (the
  best version from any source) is kept. Without uv, or if uv fails, pip does everything.
- pip byte-compiles the ~13,500 files it installs one after another (~45 s). They must be
  compiled: test processes and grading kernels import from .pyc files (a kernel cannot write
  them: the sandbox mounts the venv read-only; some machines also set
  PYTHONDONTWRITEBYTECODE). compileall does it on every core (~30 s on 2). Compiling only
  what the course imports was tried: torch, scipy and sklearn import much of themselves
  lazily at run time (a model on the meta device alone loads ~240 more modules), so finding
  that set cost about what it saved (34 vs 36-45 s, session 10).
"""

from __future__ import annotations

import compileall
import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UV = "uv==0.13.10"
TARGET = ".[dev]"


def pip_settings(env: dict[str, str] | None = None) -> dict[str, str]:
    """pip's effective configuration (files and PIP_* variables; the variables win)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                          capture_output=True, text=True, env=env)
    files, env = {}, {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        scope, name = key.split(".", 1)
        value = value.strip().strip("'\"")
        (env if scope == ":env:" else files)[name] = value
    return {**files, **env}


def uv_command(settings: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The `uv pip install` that uses the sources pip is configured with."""
    cmd = [str(Path(sys.executable).with_name("uv")), "pip", "install", "--quiet",
           "--python", sys.executable, "--index-strategy", "unsafe-best-match"]
    env = dict(os.environ)
    if settings.get("no-index", "").lower() in {"1", "true", "yes", "on"}:
        cmd.append("--no-index")
    if settings.get("index-url"):
        cmd += ["--index-url", settings["index-url"]]
    for url in settings.get("extra-index-url", "").split():
        cmd += ["--extra-index-url", url]
    for place in settings.get("find-links", "").split():
        cmd += ["--find-links", place]
    for path in settings.get("constraint", "").split():
        cmd += ["--constraint", path]
    if settings.get("cert"):
        env.setdefault("SSL_CERT_FILE", settings["cert"])
    timeout = settings.get("timeout") or settings.get("default-timeout")
    if timeout:
        env.setdefault("UV_HTTP_TIMEOUT", timeout)
    return [*cmd, "-e", TARGET], env


def install() -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    if subprocess.run([*pip, UV]).returncode == 0:
        cmd, env = uv_command(pip_settings())
        print("installing with", shlex.join(cmd), flush=True)
        if subprocess.run(cmd, cwd=REPO, env=env).returncode == 0:
            return
        print("WARNING: uv failed (above); installing with pip instead", flush=True)
    else:
        print(f"WARNING: could not install {UV}; installing with pip (slower)", flush=True)
    subprocess.run([*pip, "--no-compile", "-e", TARGET], cwd=REPO, check=True)


def byte_compile() -> None:
    """Every file of the venv's site-packages, on every core. (Some packages ship files that
    are not meant to compile, as pip's own pass finds too: they stay source.)"""
    compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=2, workers=0)


def main() -> int:
    install()
    byte_compile()
    return 0


if __name__ == "__main__":
    sys.exit(main())
