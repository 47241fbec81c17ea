"""Fixtures shared by every test suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import RunningServer, start_server


@pytest.fixture
def repo_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A real repository server on 127.0.0.1 with a fresh data directory, keys and a token."""
    server = start_server(tmp_path / "repo-data")
    try:
        yield server
    finally:
        server.stop()
