"""Two distributions: the runtime installs only ipydeps; ipydeps-repo pins it in lockstep."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _project(pyproject: Path) -> dict[str, object]:
    with pyproject.open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def test_repo_server_pins_the_ipydeps_version_it_ships_with() -> None:
    root = _project(ROOT / "pyproject.toml")
    server = _project(ROOT / "repo-server" / "pyproject.toml")
    requirements = [Requirement(text) for text in server["dependencies"]]  # type: ignore[attr-defined]
    ipydeps = [r for r in requirements if r.name == "ipydeps-client"]
    assert len(ipydeps) == 1
    assert str(ipydeps[0].specifier) == f"=={root['version']}"
    assert server["version"] == root["version"]


@pytest.mark.e2e
def test_each_wheel_holds_only_its_own_package(tmp_path: Path) -> None:
    """The runtime's ipydeps wheel carries no server code; ipydeps-repo carries the CLI."""
    for source in (ROOT, ROOT / "repo-server"):
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--wheel-dir",
                str(tmp_path),
                str(source),
            ],
            check=True,
            capture_output=True,
            text=True,
            env={"PIP_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
        )
        # A subpackage left out of pyproject's `packages` (ipydeps.formats, which the server
        # imports) is only shipped by a deprecated fallback that setuptools warns about.
        assert "absent from the `packages` configuration" not in built.stderr, built.stderr
    (client,) = tmp_path.glob("ipydeps_client-*.whl")
    (server,) = tmp_path.glob("ipydeps_repo-*.whl")
    client_tops = {name.split("/")[0] for name in zipfile.ZipFile(client).namelist()}
    server_tops = {name.split("/")[0] for name in zipfile.ZipFile(server).namelist()}
    assert "ipydeps" in client_tops and "ipydeps_repo" not in client_tops
    assert "ipydeps_repo" in server_tops and "ipydeps" not in server_tops
    # Every module of the client is in its wheel: a subpackage missing from pyproject's
    # `packages` (ipydeps.formats, which the server imports) would be left out silently.
    sources = {path.relative_to(ROOT).as_posix() for path in (ROOT / "ipydeps").rglob("*.py")}
    assert sources - set(zipfile.ZipFile(client).namelist()) == set()
    entry_points = zipfile.ZipFile(server).read(
        next(n for n in zipfile.ZipFile(server).namelist() if n.endswith("entry_points.txt"))
    )
    assert b"ipydeps-repo = ipydeps_repo.cli:main" in entry_points
    client_metadata = zipfile.ZipFile(client).read(
        next(n for n in zipfile.ZipFile(client).namelist() if n.endswith("/METADATA"))
    )
    # The client needs neither the server's web framework nor its signing library, in any
    # extra (the README, its long description, may well name them).
    requires = [
        line for line in client_metadata.decode().splitlines() if line.startswith("Requires-Dist:")
    ]
    assert requires, client_metadata
    assert not [line for line in requires if "tornado" in line or "cryptography" in line]
