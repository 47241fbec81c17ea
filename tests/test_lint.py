"""The codebase stays ruff-clean and ``mypy --strict``-clean (STYLE.md: types, docs, comments)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.static


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_both_packages(tmp_path: Path) -> None:
    # repo-server/ is importable as ipydeps_repo only through the package-dir mapping, which
    # mypy does not read: give it a directory where that name exists.
    (tmp_path / "ipydeps_repo").symlink_to(ROOT / "repo-server", target_is_directory=True)
    env = dict(os.environ, MYPYPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "-p", "ipydeps", "-p", "ipydeps_repo"],
        capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
