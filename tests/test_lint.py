"""The code stays ruff-clean, ruff-formatted and ``mypy --strict``-clean: one style."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.static


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_changes_nothing() -> None:
    # One layout for all code, so a diff shows what changed and not who formatted it.
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--diff", str(ROOT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_both_packages(tmp_path: Path) -> None:
    # From the repository root, as a developer or an IDE runs it: pyproject.toml's mypy_path
    # is what finds ipydeps_repo in repo-server/.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "cache"),
            "-p",
            "ipydeps",
            "-p",
            "ipydeps_repo",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_imports_another_modules_private_names() -> None:
    # A name starting with "_" is its module's own: another module that needs it needs a
    # public seam instead (as the two wheel readers share installers/staging.py).
    borrowed = []
    for package in (ROOT / "ipydeps", ROOT / "repo-server" / "ipydeps_repo", ROOT / "bench"):
        for path in package.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and (
                    node.level or (node.module or "").split(".")[0].startswith("ipydeps")
                ):
                    borrowed += [
                        f"{path.relative_to(ROOT)}: {node.module}.{alias.name}"
                        for alias in node.names
                        if alias.name.startswith("_") and not alias.name.startswith("__")
                    ]
    assert borrowed == []
