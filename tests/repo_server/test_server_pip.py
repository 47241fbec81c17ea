"""Real pip against the real server: the index is usable by the ecosystem's own client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer
from tests.support.wheels import make_wheel


@pytest.mark.e2e
def test_pip_installs_from_the_index(repo_server: RunningServer, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "ipd-fixture-app", "1.0", requires=["ipd-fixture-lib>=2"])
    make_wheel(wheels, "ipd-fixture-lib", "1.0")
    make_wheel(wheels, "ipd-fixture-lib", "2.0")
    make_wheel(wheels, "ipd-fixture-lib", "3.0", requires_python=">=3.99")
    for wheel in sorted(wheels.iterdir()):
        assert repo_server.upload(wheel)[0] == 201

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean_pip_env())
    python = venv / "bin" / "python"
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--index-url",
            repo_server.url + "simple",
            "ipd-fixture-app",
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # 3.0 needs Python >= 3.99 (data-requires-python / requires-python), so 2.0 is chosen.
    assert "Successfully installed ipd-fixture-app-1.0 ipd-fixture-lib-2.0" in result.stdout
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import ipd_fixture_app, ipd_fixture_lib; print(ipd_fixture_lib.__version__)",
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        check=True,
    )
    assert check.stdout.strip() == "2.0"
