"""ipydeps' trail of decisions (``logging.getLogger("ipydeps")``): it says why, and only when asked.

A support question ("why did it take the wheel and not the stored copy?") is answered by
this log: the settings in force, the route each package takes and why the faster ones did
not serve it, the stored copy's fate, timings. In a kernel it shows nothing unless the
user turns logging on; ``python -m ipydeps install -v`` prints it (tests/e2e/test_cli.py).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tests.ipydeps.test_stored_copies import install, package, routes_for
from tests.support.loopback import scripted_server
from tests.support.venvs import make_venv


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPYDEPS_RETRIES", "1")
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)


def test_the_log_says_why_the_wheel_was_taken_instead_of_the_stored_copy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ipydeps")
    make_venv(tmp_path / "env")
    wheel = package(tmp_path)
    # The "stored copy" is the deflated wheel itself: it cannot be written as it streams.
    with scripted_server(routes=routes_for(wheel, wheel.read_bytes())) as server:
        install(server, tmp_path / "env")
    said = [record.getMessage() for record in caplog.records]
    assert any(
        line.startswith(f"repository {server.url}; upstream deny; apk ")
        and line.endswith("; stored copies auto; shared cache off; 4 jobs")
        for line in said
    ), said
    # The apk route was there but could not serve: not usable here (the first line says
    # why), or, where apk runs, the scripted repository has no apk index.
    assert any(
        re.fullmatch(
            re.escape(f"stream-pkg 1.0: wheel from {server.url}files/{wheel.name}; apk: ")
            + "(cannot be used here|no file of stream-pkg)",
            line,
        )
        for line in said
    ), said
    assert (
        "stream-pkg: the repository offers a stored copy; stored_copies = auto: the "
        "stored copy on trial (the repository is on this machine or a private network)"
    ) in said
    assert (
        "stream-pkg: the stored copy cannot be installed as it streams (a member is "
        "compressed: not a stored copy): the wheel instead"
    ) in said
    assert any(
        line.startswith(
            f"stream-pkg: {wheel.stat().st_size} bytes (the wheel) fetched and staged in "
        )
        for line in said
    ), said
    assert any(line.startswith(f"read {server.url}simple/stream-pkg/: ") for line in said)


def test_nothing_more_is_shown_unless_logging_is_on(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # As in a kernel: no handler configured, so the debug trail goes nowhere.
    make_venv(tmp_path / "env")
    wheel = package(tmp_path)
    capfd.readouterr()
    with scripted_server(routes=routes_for(wheel, wheel.read_bytes())) as server:
        result = install(server, tmp_path / "env")  # its output goes to a StringIO
    assert result.installed
    assert capfd.readouterr() == ("", "")
