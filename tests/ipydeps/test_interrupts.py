"""Ctrl-C during an install: in-flight downloads stop at once and the environment is unchanged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ipydeps.cancel import CancelEvent
from ipydeps.errors import CancelledError
from ipydeps.fetch import HttpFetcher, RetryPolicy
from tests.ipydeps.test_stored_copies import routes_for
from tests.support.loopback import Scripted, scripted_server
from tests.support.pipenv import clean_pip_env
from tests.support.venvs import make_venv, snapshot
from tests.support.wheels import make_wheel

# Slow enough that the 300 kB wheel would take minutes, with a socket timeout of a minute.
_PACE = 2000.0


def test_setting_the_cancel_event_ends_a_blocked_read(tmp_path: Path) -> None:
    cancel = CancelEvent()
    fetcher = HttpFetcher(retry=RetryPolicy(attempts=3, timeout=60), cancel=cancel)
    outcome: list[BaseException] = []

    def download() -> None:
        try:
            fetcher.download(server.url + "slow.whl", tmp_path / "slow.whl", sha256=None)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            outcome.append(error)

    with scripted_server(Scripted(body=b"x" * 1_000_000, pace=_PACE)) as server:
        thread = threading.Thread(target=download)
        thread.start()
        assert server.pacing.wait(30)
        cancel.set()
        thread.join(10)  # a generous bound: without the shutdown it would wait a minute
        assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], CancelledError)
    assert list(tmp_path.iterdir()) == []  # the partial file is gone
    assert len(server.requests) == 1  # a cancelled download is not retried


def test_sigint_stops_a_slow_install_and_changes_nothing(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    # Random bytes: they do not deflate, so the wheel is as big as they are.
    wheel = make_wheel(
        tmp_path,
        "stream-pkg",
        "1.0",
        files={"stream_pkg/__init__.py": "", "stream_pkg/blob.bin": os.urandom(300_000)},
    )
    routes = routes_for(wheel, None)
    routes[f"/files/{wheel.name}"] = Scripted(body=wheel.read_bytes(), pace=_PACE)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    before = snapshot(tmp_path / "env")
    code = (
        "import io, sys, ipydeps\n"
        "ipydeps.pip(['stream-pkg'], index_url=sys.argv[1], upstream='deny',"
        " prefix=sys.argv[2], stream=io.StringIO())\n"
    )
    environ = {
        **clean_pip_env(),
        "IPYDEPS_TIMEOUT": "60",
        "IPYDEPS_RETRIES": "3",
        "TMPDIR": str(scratch),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    with scripted_server(routes=routes) as server:
        process = subprocess.Popen(
            [sys.executable, "-c", code, server.url + "simple/", str(tmp_path / "env")],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            assert server.pacing.wait(60), process.communicate(timeout=60)
            os.kill(process.pid, signal.SIGINT)
            _, stderr = process.communicate(timeout=10)  # generous: it used to take 50 s
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr
    assert snapshot(tmp_path / "env") == before
    shm = Path("/dev/shm")
    assert not any(
        path.name.startswith(f"ipydeps-download-{process.pid}-")
        for path in (shm.iterdir() if shm.is_dir() else ())
    )
    assert list(scratch.iterdir()) == []


@pytest.fixture(autouse=True)
def _no_stored_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)


@pytest.mark.e2e
def test_interrupting_the_kernel_stops_a_slow_install(tmp_path: Path) -> None:
    """The notebook's stop button (SIGINT to the kernel) during a download from a slow server."""
    from tests.support.kernels import Kernel

    python = make_venv(tmp_path / "env", see_test_packages=True)
    wheel = make_wheel(
        tmp_path,
        "stream-pkg",
        "1.0",
        files={"stream_pkg/__init__.py": "", "stream_pkg/blob.bin": os.urandom(300_000)},
    )
    routes = routes_for(wheel, None)
    routes[f"/files/{wheel.name}"] = Scripted(body=wheel.read_bytes(), pace=_PACE)
    with scripted_server(routes=routes) as server:
        kernel = Kernel(
            python,
            tmp_path,
            {
                "IPYDEPS_TIMEOUT": "60",
                "IPYDEPS_RETRIES": "3",
                "IPYDEPS_UPSTREAM": "deny",
                "IPYDEPS_APK": "never",
                "HOME": str(tmp_path),
            },
        )
        try:
            assert kernel.run("import ipydeps").error is None
            before = snapshot(tmp_path / "env")
            message = kernel.client.execute(
                f"ipydeps.pip(['stream-pkg'], index_url={server.url + 'simple/'!r})"
            )
            assert server.pacing.wait(60)
            kernel.manager.interrupt_kernel()
            reply = kernel.client.get_shell_msg(timeout=10)  # generous: it used to take 50 s
            while reply["parent_header"].get("msg_id") != message:
                reply = kernel.client.get_shell_msg(timeout=10)
            assert reply["content"]["status"] == "error"
            assert reply["content"]["ename"] == "KeyboardInterrupt"
            after = kernel.run(
                "import importlib.util; print(importlib.util.find_spec('stream_pkg'))"
            )
            assert after.stdout == "None\n"
        finally:
            kernel.stop()
    assert snapshot(tmp_path / "env") == before
    assert python.exists()
