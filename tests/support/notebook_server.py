"""A real jupyter-server on 127.0.0.1 whose ``python3`` kernel is a throwaway venv's python.

What JupyterLab talks to: the REST API and a kernel's websocket (``hubclient.ServerClient``
and ``KernelChannel``), with token auth, without a hub in front.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .hub import free_port
from .hubclient import ServerClient
from .pipenv import clean_pip_env


@contextlib.contextmanager
def notebook_server(python: Path, work: Path, env: dict[str, str]) -> Iterator[ServerClient]:
    """Run jupyter-server (this interpreter's) in ``work``; its kernels get ``env``."""
    spec = work / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "throwaway",
                "language": "python",
            }
        )
    )
    token, port = secrets.token_hex(16), free_port()
    server_env = clean_pip_env(
        **env,
        JUPYTER_PATH=str(work / "jupyter"),
        JUPYTER_CONFIG_DIR=str(work / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(work / "jupyter-runtime"),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={work}",
            f"--IdentityProvider.token={token}",
            "--ServerApp.allow_root=True",  # the test machine runs as root
        ],
        env=server_env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=(work / "jupyter-server.log").open("wb"),
    )
    client = ServerClient(f"http://127.0.0.1:{port}/", token)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if client.api("GET", "status", timeout=5)[0] == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                log = (work / "jupyter-server.log").read_text(errors="replace")
                raise AssertionError(f"jupyter-server did not start:\n{log[-3000:]}")
            time.sleep(0.2)
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
