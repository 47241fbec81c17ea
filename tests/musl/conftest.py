"""Fixtures of the ``musl`` tests: the musl CPython harness, its runtime venv, a seeded repository.

The harness is built on demand by ``scripts/musl_harness.py`` (cached under ``.cache/musl/``).
When it cannot be built these tests FAIL, in CI too: they are the project's only proof that
the Alpine half runs on musl. A developer without the means to build it (not root, not
Debian, no access to the registries) opts out explicitly with ``IPYDEPS_SKIP_MUSL=1``,
which skips them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.musl import (
    MuslHarnessError,
    harness_python,
    link_copy,
    mirrored_repository,
    python_version,
    runtime_env,
)
from tests.support.server import RunningServer, start_server

OPT_OUT = "IPYDEPS_SKIP_MUSL"


T = TypeVar("T")


def _guard(build: Callable[..., T], *args: object) -> T:
    """Run a harness step; skip on the explicit opt-out, else fail with the step's output."""
    if os.environ.get(OPT_OUT) == "1":
        pytest.skip(f"{OPT_OUT}=1: the musl harness tests were switched off")
    try:
        return build(*args)
    except MuslHarnessError as error:
        pytest.fail(f"{error}\n(set {OPT_OUT}=1 to skip the musl tests on purpose)", pytrace=False)


@pytest.fixture(scope="session")
def musl_python() -> Path:
    """The harness's interpreter (a bare Alpine-built CPython running on musl)."""
    return _guard(harness_python)


@pytest.fixture(scope="session")
def musl_runtime(musl_python: Path) -> Path:
    """A venv of the harness interpreter with jupyter-server, ipykernel and ipydeps."""
    return _guard(runtime_env, musl_python)


@pytest.fixture(scope="session")
def musl_repository(
    musl_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The real repository server on 127.0.0.1 serving NumPy, SciPy, pandas for musllinux.

    The mirrored data directory is cached; each session serves a hard-linked copy of it.
    """
    cached = _guard(mirrored_repository, python_version(musl_python))
    data = link_copy(cached, tmp_path_factory.mktemp("musl-repo") / "data")
    server = start_server(data)
    try:
        yield server
    finally:
        server.stop()
