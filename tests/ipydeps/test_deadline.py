"""A silent or trickling repository: each retry is shown with its reason, and a deadline ends it.

Issue 15, item 9: a silent repository cost 30 s x 4 tries in silence, and an index page
trickled a byte every 2 s never timed out. The servers here are loopback ones that say
nothing, stall mid-body, trickle, or fail a few times before answering; the deadline is
set small by configuration (IPYDEPS_DEADLINE), the socket timeout left far above it.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ipydeps
from ipydeps.errors import DownloadError, RepositoryError
from tests.ipydeps.test_stored_copies import routes_for
from tests.support.loopback import Scripted, scripted_server
from tests.support.pipenv import clean_pip_env
from tests.support.venvs import make_venv, run_python
from tests.support.wheels import make_wheel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A socket timeout far above the deadline: only the deadline can end these waits soon.
    monkeypatch.setenv("IPYDEPS_TIMEOUT", "20")
    monkeypatch.setenv("IPYDEPS_RETRIES", "3")
    monkeypatch.setenv("IPYDEPS_DEADLINE", "2")
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A listening socket that never accepts: connections open, and nothing ever answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        listener.close()


def _pip(url: str, tmp_path: Path, out: io.StringIO | None = None) -> ipydeps.Result:
    make_venv(tmp_path / "env")
    return ipydeps.pip(
        ["slow-pkg"],
        index_url=url,
        upstream="deny",
        prefix=tmp_path / "env",
        stream=out or io.StringIO(),
    )


def _wheel(tmp_path: Path) -> Path:
    return make_wheel(
        tmp_path,
        "slow-pkg",
        "1.0",
        files={"slow_pkg/__init__.py": "VALUE = 1\n", "slow_pkg/blob.bin": os.urandom(200_000)},
    )


def test_a_silent_repository_ends_at_the_deadline_with_a_clear_error(
    tmp_path: Path, silent_server: str
) -> None:
    out = io.StringIO()
    with pytest.raises(RepositoryError) as caught:
        _pip(silent_server, tmp_path, out)
    message = str(caught.value)
    assert "the 2 s deadline to read it whole is over" in message
    assert "timed out" in message
    assert "IPYDEPS_DEADLINE" in (caught.value.hint or "")


def test_an_index_page_trickled_a_byte_at_a_time_ends_at_the_deadline(tmp_path: Path) -> None:
    # 200 bytes at a byte every 0.2 s: 40 s of a page that never goes silent for long.
    routes = {
        "/simple/slow-pkg/": Scripted(
            body=b"<a href='x'>" + b" " * 188, trickle=0.2, content_type="text/html"
        )
    }
    with scripted_server(routes=routes) as server, pytest.raises(RepositoryError) as caught:
        _pip(server.url, tmp_path)
    assert "the 2 s deadline to read it whole is over" in str(caught.value)


def test_a_download_that_stalls_ends_at_the_deadline(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    routes = routes_for(wheel, None)
    routes[f"/files/{wheel.name}"] = Scripted(body=wheel.read_bytes(), cut=50_000, stall=True)
    with scripted_server(routes=routes) as server, pytest.raises(DownloadError) as caught:
        _pip(server.url, tmp_path)
    assert "the 2 s deadline without a byte arriving is over" in str(caught.value)
    assert "IPYDEPS_DEADLINE" in (caught.value.hint or "")


def test_a_slow_download_that_keeps_moving_is_not_cut(tmp_path: Path) -> None:
    # 200 kB at 40 kB/s: five seconds, more than the deadline, but never silent for long.
    wheel = _wheel(tmp_path)
    routes = routes_for(wheel, None)
    routes[f"/files/{wheel.name}"] = Scripted(body=wheel.read_bytes(), pace=40_000)
    with scripted_server(routes=routes) as server:
        result = _pip(server.url, tmp_path)
    assert [item.name for item in result.installed] == ["slow-pkg"]


def test_each_retry_and_its_reason_are_shown(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    routes = routes_for(wheel, None)
    page = routes.pop("/simple/slow-pkg/")
    data = routes.pop(f"/files/{wheel.name}")
    unavailable = Scripted(503, b"busy")
    # In order of requests: the page fails once, then answers; the metadata (its own
    # route, which takes the third request's turn); the wheel fails twice, then answers.
    with scripted_server(
        unavailable, page, page, unavailable, unavailable, data, routes=routes
    ) as server:
        out = io.StringIO()
        result = _pip(server.url, tmp_path, out)
    assert [item.name for item in result.installed] == ["slow-pkg"]
    shown = out.getvalue()
    assert (
        f"ipydeps: reading {server.url}simple/slow-pkg/: attempt 1 of 4 failed "
        "(HTTP 503 Service Unavailable); retrying in 0.2 s"
    ) in shown
    assert (
        "ipydeps: slow-pkg: attempt 1 of 4 failed (HTTP 503 Service Unavailable); retrying in 0.2 s"
    ) in shown
    assert (
        "ipydeps: slow-pkg: attempt 2 of 4 failed (HTTP 503 Service Unavailable); retrying in 0.6 s"
    ) in shown
    assert (
        run_python(
            tmp_path / "env" / "bin" / "python", "import slow_pkg; print(slow_pkg.VALUE)"
        ).stdout
        == "1\n"
    )


def test_the_cli_shows_retries_and_the_deadline(tmp_path: Path, silent_server: str) -> None:
    make_venv(tmp_path / "env")
    # Waits of 1 s within a deadline of 3: the first attempts time out and are retried.
    environ = clean_pip_env(
        PYTHONPATH=str(ROOT),
        IPYDEPS_TIMEOUT="1",
        IPYDEPS_RETRIES="3",
        IPYDEPS_DEADLINE="3",
        HOME=str(tmp_path),
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ipydeps",
            "install",
            "slow-pkg",
            "--upstream",
            "deny",
            "-i",
            silent_server,
            "--prefix",
            str(tmp_path / "env"),
        ],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert (
        f"ipydeps: reading {silent_server}simple/slow-pkg/: attempt 1 of 4 failed "
        "(timed out); retrying in 0.2 s" in done.stderr
    ), done.stderr
    assert "attempt 2 of 4 failed (timed out); retrying in 0.6 s" in done.stderr
    assert "the 3 s deadline to read it whole is over (" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
def test_the_notebook_progress_table_shows_a_retried_download(tmp_path: Path) -> None:
    from tests.support.kernels import Kernel

    python = make_venv(tmp_path / "env", see_test_packages=True)
    wheel = _wheel(tmp_path)
    routes = routes_for(wheel, None)
    data = routes.pop(f"/files/{wheel.name}")
    page = routes.pop("/simple/slow-pkg/")
    # In order of requests: the page, the metadata (its own route), the wheel twice.
    with scripted_server(page, page, Scripted(503, b"busy"), data, routes=routes) as server:
        kernel = Kernel(
            python,
            tmp_path,
            {
                "IPYDEPS_UPSTREAM": "deny",
                "IPYDEPS_APK": "never",
                "IPYDEPS_REPOSITORY_URL": server.url,
                "HOME": str(tmp_path),
            },
        )
        try:
            output = kernel.run("import ipydeps; ipydeps.pip(['slow-pkg'])")
        finally:
            kernel.stop()
    assert output.error is None, output.error
    rows = [
        str(data.get("text/plain", "")) + str(data.get("text/html", "")) for data in output.displays
    ]
    retried = [
        row
        for row in rows
        if "attempt 1 of 4 failed (HTTP 503 Service Unavailable) retrying" in row.replace(";", "")
    ]
    assert retried, rows
    # The install's one display ends as its summary (what the notebook shows once it is done).
    assert "Installed slow-pkg 1.0" in output.shown()
