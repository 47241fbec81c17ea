"""Throwaway virtual environments for install tests, and snapshots to prove nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from .pipenv import clean_pip_env

ROOT = Path(__file__).resolve().parents[2]


def make_venv(
    path: Path, *, see_test_packages: bool = False, system_site_packages: bool = False
) -> Path:
    """Create a venv without pip at ``path``; return its python.

    With ``see_test_packages`` a .pth file puts this test venv's site-packages (ipykernel,
    ipydeps, packaging ...) AFTER the new venv's own site-packages, so kernels started
    with it can run ipydeps while every install lands in the throwaway venv.
    """
    options = ["--system-site-packages"] if system_site_packages else []
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", *options, str(path)],
        check=True,
        env=clean_pip_env(),
    )
    if see_test_packages:
        site = site_packages(path)
        paths = [sysconfig.get_paths()["purelib"], str(ROOT)]
        (site / "zz-test-packages.pth").write_text("\n".join(paths) + "\n")
    return path / "bin" / "python"


def site_packages(venv: Path) -> Path:
    """The venv's site-packages directory."""
    return next((venv / "lib").glob("python3*/site-packages"))


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for directories), skipping bytecode."""
    result: dict[str, bytes | None] = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if name != "__pycache__"]
        for name in dirs:
            result[os.path.relpath(os.path.join(directory, name), root)] = None
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                result[os.path.relpath(path, root)] = os.readlink(path).encode()
            else:
                with open(path, "rb") as handle:
                    result[os.path.relpath(path, root)] = handle.read()
    return result


def run_python(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python`` in a clean environment; return the finished process."""
    return subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=120,
        check=False,
    )


def real_pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run this machine's real pip against the interpreter ``python``."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *args],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
        check=False,
    )
