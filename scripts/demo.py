"""`make demo`: JupyterLab set up for a room — large fonts, every cell rendered, and every
unit's kernel started and warmed (numpy, matplotlib, sklearn, torch and helpers imported)
before the presenter opens the first notebook.

    python scripts/demo.py [--port 8888] [--no-warm]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    # Larger text for a projector (JupyterLab's theme overrides).
    "@jupyterlab/apputils-extension/themes": {
        "theme": "JupyterLab Light",
        "overrides": {"code-font-size": "20px", "content-font-size1": "20px",
                      "ui-font-size1": "16px"},
    },
    # Render all cells: no blank cells while scrolling fast in front of a room.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
}
WARM_UP = ("import numpy, matplotlib.pyplot, sklearn.cluster, torch, ipywidgets, ipympl\n"
           "import helpers.clustering, helpers.widgets, helpers.data\n")


def write_settings(folder: Path):
    for plugin, values in SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        path = folder / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))


def api(base, token, path, payload=None):
    req = urllib.request.Request(f"{base}{path}", method="POST" if payload else "GET",
                                 data=json.dumps(payload).encode() if payload else None,
                                 headers={"Authorization": f"token {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def warm(base, token):
    """Start a kernel for every notebook and import what the notebooks import."""
    from jupyter_client import BlockingKernelClient
    from jupyter_core.paths import jupyter_runtime_dir

    for nb in sorted((REPO / "notebooks").glob("[0-9][0-9]-*/*.ipynb")):
        rel = nb.relative_to(REPO / "notebooks").as_posix()
        session = api(base, token, "/api/sessions",
                      {"path": rel, "type": "notebook", "name": nb.name,
                       "kernel": {"name": "python3"}})
        kernel_id = session["kernel"]["id"]
        client = BlockingKernelClient()
        client.load_connection_file(Path(jupyter_runtime_dir()) / f"kernel-{kernel_id}.json")
        client.start_channels()
        client.wait_for_ready(timeout=60)
        t = time.perf_counter()
        client.execute_interactive(WARM_UP, timeout=120, output_hook=lambda msg: None)
        client.stop_channels()
        print(f"warmed {rel} in {time.perf_counter() - t:.1f} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--no-warm", action="store_true")
    args = parser.parse_args()
    settings = REPO / ".jupyter-demo" / "settings"
    write_settings(settings)
    token = secrets.token_hex(16)
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings))
    lab = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser",
                            f"--port={args.port}", "--ip=127.0.0.1",
                            f"--IdentityProvider.token={token}",
                            f"--notebook-dir={REPO / 'notebooks'}",
                            *(["--allow-root"] if os.geteuid() == 0 else [])], env=env)
    base = f"http://127.0.0.1:{args.port}"
    for _ in range(120):
        if lab.poll() is not None:
            sys.exit(f"JupyterLab exited with code {lab.returncode}")
        try:
            api(base, token, "/api/status")
            break
        except OSError:
            time.sleep(0.5)
    if not args.no_warm:
        warm(base, token)
    print(f"\nReady: {base}/lab?token={token}\n")
    try:
        lab.wait()
    except KeyboardInterrupt:
        lab.terminate()


if __name__ == "__main__":
    main()
