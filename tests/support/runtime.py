"""The runtime image's Python environment as a venv: what tests and benches run without Docker.

``build_runtime(python, env, uis)`` makes (once, cached by its package list) a venv of
``python`` with what ``docker/runtime.Dockerfile`` installs into ``/opt/kernel``:
jupyter-server, ipykernel, the single-user server ``jupyterhub`` at the Dockerfile's
JUPYTERHUB_VERSION, the chosen front ends at the Dockerfile's versions, all pinned by
``docker/runtime-constraints.txt``, and ipydeps built from this checkout as a wheel (rebuilt
and reinstalled whenever its sources changed since the last call). Like the image, it runs
``docker/runtime-prune`` on it (the hub's own web assets, babel's non-English locale data go),
so whatever runs on it proves the servers work without them.

``throwaway_kernel_env(runtime, target)`` makes a venv without pip that sees the runtime's
packages after its own: a kernel running its python installs into it, never into the
cached runtime (as a fresh container starts from the image each time).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .pipenv import clean_pip_env
from .venvs import site_packages

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "runtime.Dockerfile"
CONSTRAINTS = ROOT / "docker" / "runtime-constraints.txt"
PRUNE = ROOT / "docker" / "runtime-prune"
# The front ends the image's UI build arg adds, and the build arg holding each one's version.
UI_PACKAGES = {
    "lab": ("jupyterlab", "JUPYTERLAB_VERSION"),
    "notebook": ("notebook", "NOTEBOOK_VERSION"),
}


class RuntimeBuildError(RuntimeError):
    """A runtime venv could not be built; the message has pip's output."""


def dockerfile_default(name: str) -> str:
    """The default of the build arg ``name`` in docker/runtime.Dockerfile (first declaration).

    Raises ``KeyError`` when the Dockerfile does not declare it.
    """
    match = re.search(
        rf"^ARG {re.escape(name)}=\"?([^\"\n]*)\"?$", DOCKERFILE.read_text(), re.MULTILINE
    )
    if match is None:
        raise KeyError(f"docker/runtime.Dockerfile declares no ARG {name}")
    return match.group(1)


def runtime_requirements(uis: tuple[str, ...]) -> list[str]:
    """The third-party requirements of the image's kernel venv with the front ends ``uis``."""
    requirements = [
        "jupyter-server",
        "ipykernel",
        f"jupyterhub=={dockerfile_default('JUPYTERHUB_VERSION')}",
    ]
    for ui in uis:
        package, version_arg = UI_PACKAGES[ui]
        requirements.append(f"{package}=={dockerfile_default(version_arg)}")
    return requirements


def _run(args: list[str], *, what: str) -> str:
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        stdin=subprocess.DEVNULL,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeBuildError(
            f"{what} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    return result.stdout


def _client_wheel(into: Path) -> Path:
    """Build this checkout's client distribution as a wheel in the empty directory ``into``."""
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--quiet",
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(into),
            str(ROOT),
        ],
        what="building the client wheel from this checkout",
    )
    return next(into.glob("*.whl"))


def _client_sources_digest() -> str:
    """A digest of what the client wheel is built from (its package, pyproject, README)."""
    digest = hashlib.sha256()
    files = [
        ROOT / "pyproject.toml",
        ROOT / "README.md",
        *sorted(
            path
            for path in (ROOT / "ipydeps").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        ),
    ]
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_runtime(python: Path, env: Path, uis: tuple[str, ...], *, pinned: bool = True) -> Path:
    """Build (or reuse) the runtime venv of ``python`` at ``env``; return ``env``.

    ``pinned=False`` leaves the image's constraints out, for interpreters some pins do not
    support (the musl harness's CPython 3.11.2 is older than soupsieve's Requires-Python).
    Raises ``RuntimeBuildError`` with pip's output when an install fails.
    """
    requirements = runtime_requirements(uis)
    constraints = ["--constraint", str(CONSTRAINTS)] if pinned else []
    pins = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest() if pinned else None
    pruned = hashlib.sha256(PRUNE.read_bytes()).hexdigest()
    stamp = json.dumps([str(python), requirements, pins, pruned])
    stamp_file = env / ".stamp"
    venv_python = env / "bin" / "python"
    if not (stamp_file.is_file() and stamp_file.read_text() == stamp):
        if env.exists():
            shutil.rmtree(env)
        _run([str(python), "-m", "venv", str(env)], what=f"creating the venv {env}")
        _run(
            [str(venv_python), "-m", "pip", "install", "--quiet", *constraints, *requirements],
            what=f"pip install {' '.join(requirements)} (the runtime image's set)",
        )
        _run([str(PRUNE), str(env)], what="docker/runtime-prune (as the image does)")
        stamp_file.write_text(stamp)
    client_stamp = env / ".client-stamp"
    sources = _client_sources_digest()
    if client_stamp.is_file() and client_stamp.read_text() == sources:
        return env
    # As the image does: a wheel built from this checkout (never the name on an index).
    with tempfile.TemporaryDirectory() as directory:
        wheel = _client_wheel(Path(directory))
        _run(
            [
                str(venv_python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--force-reinstall",
                "--no-deps",
                str(wheel),
            ],
            what="installing the client wheel",
        )
        _run(
            [str(venv_python), "-m", "pip", "install", "--quiet", *constraints, str(wheel)],
            what="installing the client's dependencies",
        )
    client_stamp.write_text(sources)
    return env


def throwaway_kernel_env(runtime: Path, target: Path) -> Path:
    """A fresh venv at ``target`` (replacing any) that sees ``runtime``'s packages after its own.

    Returns its python. Raises ``RuntimeBuildError`` if the venv cannot be made.
    """
    if target.exists():
        shutil.rmtree(target)
    _run(
        [str(runtime / "bin" / "python"), "-m", "venv", "--without-pip", str(target)],
        what=f"creating the kernel venv {target}",
    )
    (site_packages(target) / "zz-runtime.pth").write_text(f"{site_packages(runtime)}\n")
    return target / "bin" / "python"
