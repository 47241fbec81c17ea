"""Our runtime on musl: jupyter-server, ipykernel and ipydeps in a venv of the musl harness.

What the Alpine image runs, here without Docker: the server answers and starts a kernel,
and a kernel with the ipydeps extension runs a cell on musl (its interpreter's own tags are
musllinux). Needs the harness (see conftest: fails when it cannot be built, skips only with
IPYDEPS_SKIP_MUSL=1).
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from jupyter_client.blocking import BlockingKernelClient

from tests.support.kernels import Kernel
from tests.support.pipenv import clean_pip_env

# The first test builds the harness (a few minutes: downloads from PyPI and Debian, compiling)
# in its fixtures.
pytestmark = [pytest.mark.musl, pytest.mark.e2e, pytest.mark.network, pytest.mark.timeout(1800)]

TOKEN = "musl-test-token-not-secret"
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/)")


def _api(url: str, method: str = "GET", body: dict[str, object] | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Authorization": f"token {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def _wait_for_answer(url: str) -> None:
    """The server logs its URL a moment before it accepts: retry refused connections."""
    for _ in range(600):
        try:
            _api(url)
            return
        except urllib.error.URLError as error:
            if not isinstance(error.reason, ConnectionRefusedError):
                raise
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_the_runtime_venv_is_musl_and_holds_the_runtime(musl_runtime: Path) -> None:
    code = (
        "import json, sys, importlib.metadata as m, packaging.tags as t\n"
        "print(json.dumps([list(t.platform_tags()), sys.implementation._multiarch,"
        " [m.version(d) for d in ('jupyter-server', 'ipykernel', 'ipydeps-client')]]))"
    )
    out = subprocess.run(
        [str(musl_runtime / "bin" / "python"), "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=clean_pip_env(),
    ).stdout
    platforms, multiarch, versions = json.loads(out)
    assert "musllinux_1_2_x86_64" in platforms, platforms
    assert multiarch == "x86_64-linux-musl"
    assert all(versions)


def test_jupyter_server_starts_a_kernel_on_musl(musl_runtime: Path, tmp_path: Path) -> None:
    env = clean_pip_env(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        JUPYTER_TOKEN=TOKEN,
    )
    server = subprocess.Popen(
        [
            str(musl_runtime / "bin" / "python"),
            "-m",
            "jupyter_server",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={tmp_path}",
            "--allow-root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert server.stderr is not None
    # Drain the log all along: a full pipe would stall the server.
    threading.Thread(
        target=lambda: [lines.put(line) for line in server.stderr],  # type: ignore[union-attr]
        daemon=True,
    ).start()
    try:
        url = None
        while url is None and server.poll() is None:
            match = URL_LINE.search(lines.get(timeout=120))
            if match:
                url = match.group(1)
        assert url, "jupyter-server on musl exited before it listened"
        _wait_for_answer(url + "api/status")
        status = _api(url + "api/status")
        assert isinstance(status, dict) and "started" in status
        kernel = _api(url + "api/kernels", "POST", {"name": "python3"})
        assert isinstance(kernel, dict)
        # Talk to the kernel the server started, through its connection file.
        client = BlockingKernelClient(
            connection_file=str(tmp_path / "runtime" / f"kernel-{kernel['id']}.json")
        )
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            printed: list[str] = []
            reply = client.execute_interactive(
                "import sys; print(sys.implementation._multiarch)",
                timeout=120,
                output_hook=lambda msg: printed.append(msg["content"].get("text", "")),
            )
        finally:
            client.stop_channels()
        assert reply["content"]["status"] == "ok"
        assert "".join(printed) == "x86_64-linux-musl\n"
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_a_kernel_with_the_ipydeps_extension_runs_cells(musl_runtime: Path, tmp_path: Path) -> None:
    kernel = Kernel(musl_runtime / "bin" / "python", tmp_path, {"HOME": str(tmp_path)})
    try:
        loaded = kernel.run("%load_ext ipydeps\nimport sys; print(sys.implementation._multiarch)")
        assert loaded.error is None, loaded.text
        assert loaded.stdout == "x86_64-linux-musl\n"
        assert kernel.run("print(6 * 7)").stdout == "42\n"
    finally:
        kernel.stop()
