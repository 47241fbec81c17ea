"""The README's first command: ``./quickstart.sh --check`` runs the example notebook for real.

The first run builds the venvs and downloads NumPy/SciPy/pandas from PyPI into the local
repository (hence ``network``); everything lives in ``.cache/quickstart-e2e/`` at the
repository root (git-ignored), so later runs reuse it and take seconds. A fresh throwaway
kernel environment is made on every run, so SciPy is really installed each time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.support.pipenv import clean_pip_env

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "quickstart.sh"
STATE = ROOT / ".cache" / "quickstart-e2e"
SETUP_SECONDS = 1800


def run_quickstart(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run quickstart.sh with the shared cache home and a pip env free of machine defaults."""
    return subprocess.run(
        [str(QUICKSTART), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SETUP_SECONDS,
        env=clean_pip_env(IPYDEPS_QUICKSTART_HOME=str(STATE), **env),
        check=False,
    )


def port_is_closed(url: str) -> bool:
    """True if nothing accepts connections at the host:port of ``url`` any more."""
    match = re.match(r"http://([\d.]+):(\d+)/", url)
    assert match, url
    with socket.socket() as probe:
        return probe.connect_ex((match.group(1), int(match.group(2)))) != 0


@pytest.mark.e2e
@pytest.mark.network
@pytest.mark.timeout(SETUP_SECONDS + 60)
def test_check_runs_the_example_notebook_against_the_local_repository() -> None:
    result = run_quickstart("--check")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "quickstart check passed" in result.stdout
    # The Jupyter server was up, with token auth on.
    assert "ok   Jupyter server answers /api/status" in result.stdout
    assert "ok   token auth is on" in result.stdout
    # What the printed URL opens: JupyterLab, the notebook under that path, and a kernel
    # started through the server that runs code over its websocket (the browser's route).
    assert "ok   JupyterLab answers /lab" in result.stdout
    assert "ok   the URL's notebook exists: lab/tree/scipy-in-seconds.ipynb" in result.stdout
    assert "ok   a kernel started through the server runs code over its websocket" in result.stdout
    # SciPy and NumPy came from the local repository, as wheels, into the throwaway kernel env.
    repository = re.search(r"repository server: (http://127\.0\.0\.1:\d+/)", result.stderr)
    assert repository, result.stderr
    host = repository.group(1).removeprefix("http://").rstrip("/")
    # The kernel was configured for the local repository with the upstream index off.
    assert re.search(rf"repository_url\s+= '{re.escape(repository.group(1))}", result.stdout)
    assert re.search(r"upstream\s+= 'deny'", result.stdout)
    assert re.search(rf"Installed numpy \S+ \(wheel from {re.escape(host)}\)", result.stdout)
    assert re.search(rf"scipy \S+ \(wheel from {re.escape(host)}\)", result.stdout)
    # The notebook's own checks: the scipy.linalg solution and the pandas group sums.
    assert "x = [ 1. -2. -2.]" in result.stdout
    assert "Oslo    7.5" in result.stdout
    assert "FAIL" not in result.stdout
    # Everything was shut down: the repository server no longer listens, and the throwaway
    # kernel environment is gone.
    assert port_is_closed(repository.group(1))
    kernel_env = re.search(r"runs in (\S+/kernel-env)", result.stdout)
    assert kernel_env, result.stdout
    assert not Path(kernel_env.group(1)).exists()


@pytest.mark.e2e
@pytest.mark.network
@pytest.mark.timeout(SETUP_SECONDS + 60)
def test_check_fails_when_a_notebook_cell_fails(tmp_path: Path) -> None:
    notebook = tmp_path / "broken.ipynb"
    nbformat.write(
        new_notebook(
            cells=[
                new_code_cell("import ipydeps"),
                new_code_cell("assert 1 + 1 == 3, 'arithmetic is broken'"),
                new_code_cell("print('never reached')"),
            ]
        ),
        notebook,
    )
    result = run_quickstart("--check", IPYDEPS_QUICKSTART_NOTEBOOK=str(notebook))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ok   cell  1: import ipydeps" in result.stdout
    assert "FAIL cell  2: assert 1 + 1 == 3" in result.stdout
    assert "skip cell  3" in result.stdout
    assert "arithmetic is broken" in result.stderr
    assert "quickstart check passed" not in result.stdout


def test_unknown_option_is_refused_with_a_hint() -> None:
    result = run_quickstart("--bogus")
    assert result.returncode == 2
    assert "unknown option '--bogus' (try --help)" in result.stderr


def test_missing_python_is_reported_with_what_to_install() -> None:
    result = run_quickstart("--check", PYTHON="/nonexistent/python3")
    assert result.returncode == 1
    assert "'/nonexistent/python3' was not found" in result.stderr
    assert "apt-get install python3" in result.stderr


def start_serving(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``quickstart.sh *args`` in its own session; return it and its banner."""
    # Ctrl-C in a terminal sends SIGINT to the whole foreground process group: do the same,
    # with SIGINT at its default (a test runner may have it ignored, which bash would keep).
    process = subprocess.Popen(
        [str(QUICKSTART), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_pip_env(IPYDEPS_QUICKSTART_HOME=str(STATE)),
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None and process.stderr is not None
    banner = []
    for line in process.stdout:
        banner.append(line)
        if "Press Ctrl-C to stop." in line:
            break
    return process, "".join(banner)


def status_of(url: str) -> int:
    """The HTTP status of GET ``url`` (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.e2e
@pytest.mark.network
@pytest.mark.timeout(SETUP_SECONDS + 60)
def test_headless_serves_no_browser_ui_and_says_so() -> None:
    process, text = start_serving("--headless")
    try:
        jupyter = re.search(r"Jupyter server: +(http://127\.0\.0\.1:\d+/)\?token=(\w+)", text)
        assert jupyter, text
        assert "Headless (no browser UI)" in text and "/lab/" not in text
        assert status_of(f"{jupyter.group(1)}api/status?token={jupyter.group(2)}") == 200
        assert status_of(f"{jupyter.group(1)}lab?token={jupyter.group(2)}") == 404
    finally:
        # Stopped whatever the outcome: a failed assertion must not leave servers running.
        os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    for stream in (process.stdout, process.stderr):
        assert stream is not None
        stream.close()


@pytest.mark.e2e
@pytest.mark.network
@pytest.mark.timeout(SETUP_SECONDS + 60)
def test_ctrl_c_stops_the_repository_and_jupyter() -> None:
    process, text = start_serving()
    assert process.stdout is not None and process.stderr is not None
    try:
        jupyter = re.search(r"Jupyter server: +(http://127\.0\.0\.1:\d+/)\?token=\w+", text)
        repository = re.search(r"repository: +(http://127\.0\.0\.1:\d+/)", text)
        assert jupyter and repository, text
        # The first line is the URL that opens the example notebook in JupyterLab.
        opened = re.search(
            r"Open in your browser: +(\S+/lab/tree/scipy-in-seconds\.ipynb\?token=\w+)", text
        )
        assert opened and opened.group(1).startswith(jupyter.group(1)), text
        assert status_of(opened.group(1)) == 200
        # JupyterLab works in the git-ignored workspace: the example is a copy there, and a
        # notebook the user saves lands there too, never among the checkout's files.
        token = opened.group(1).rsplit("token=", 1)[1]
        scratch = f"scratch-{os.getpid()}.ipynb"
        saved = urllib.request.Request(
            f"{jupyter.group(1)}api/contents/{scratch}?token={token}",
            method="PUT",
            data=json.dumps({"type": "notebook", "content": new_notebook()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(saved, timeout=60) as response:
            assert response.status in (200, 201)  # 200: a file of that name was replaced
        assert (STATE / "notebooks" / "scipy-in-seconds.ipynb").is_file()
        assert (STATE / "notebooks" / scratch).is_file()
        assert not (ROOT / "examples" / scratch).exists()
        (STATE / "notebooks" / scratch).unlink()
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)  # a failed check leaves no servers running
        raise
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) == 130
    assert "==> stopped" in process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert port_is_closed(jupyter.group(1))
    assert port_is_closed(repository.group(1))
    leftovers = subprocess.run(
        ["ps", "-o", "pid=", "-g", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []
