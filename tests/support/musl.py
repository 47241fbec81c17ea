"""The musl CPython harness (scripts/musl_harness.py) and what tests and benches build on it.

- ``harness_python()`` builds or reuses the harness and returns its interpreter;
- ``runtime_env(python)`` makes (once, cached) a venv of that interpreter with what our runtime
  image ships: jupyter-server, ipykernel and ipydeps built from this checkout as a wheel;
- ``mirrored_repository()`` seeds (once, cached) a repository data directory with the
  musllinux wheels of NumPy, SciPy and pandas through ``ipydeps-repo mirror``.

Everything lives under ``.cache/musl/`` (git-ignored); pip children run with this machine's
pip defaults cleared.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from .pipenv import clean_pip_env

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "musl"
PLATFORM = "musllinux_1_2_x86_64"
SCIENCE = ("numpy", "scipy", "pandas")
RUNTIME_PACKAGES = ("jupyter-server", "ipykernel")


class MuslHarnessError(RuntimeError):
    """The harness or an environment on it could not be built; the message has the output."""


def _run(args: list[str], *, what: str, timeout: float = 1800) -> str:
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise MuslHarnessError(
            f"{what} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    return result.stdout


def harness_python() -> Path:
    """Build or reuse the musl harness; return its interpreter (``python3``).

    Raises ``MuslHarnessError`` with the script's output when it cannot be built.
    """
    out = _run(
        [sys.executable, str(ROOT / "scripts" / "musl_harness.py")], what="scripts/musl_harness.py"
    )
    return Path(out.strip().splitlines()[-1])


def python_version(python: Path) -> str:
    """The ``X.Y`` of an interpreter."""
    return _run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        what="python --version",
    ).strip()


def _ipydeps_wheel(into: Path) -> Path:
    """Build ipydeps from this checkout as a wheel (as the runtime image installs it)."""
    for old in into.glob("ipydeps_client-*.whl"):
        old.unlink()
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
        what="building the ipydeps wheel",
    )
    return next(into.glob("ipydeps_client-*.whl"))


def runtime_env(python: Path, env: Path | None = None) -> Path:
    """Build (or reuse) a venv of ``python`` with jupyter-server, ipykernel and ipydeps.

    The third-party part is cached by its package list and interpreter; ipydeps' wheel is
    rebuilt and reinstalled each call, since its source changes often. Returns the venv.
    Raises ``MuslHarnessError`` if pip fails.
    """
    env = env or CACHE / "runtime"
    stamp = json.dumps([str(python), *RUNTIME_PACKAGES])
    stamp_file = env / ".stamp"
    venv_python = env / "bin" / "python"
    if not (stamp_file.is_file() and stamp_file.read_text() == stamp):
        if env.exists():
            shutil.rmtree(env)
        _run([str(python), "-m", "venv", str(env)], what="creating the musl venv")
        _run(
            [str(venv_python), "-m", "pip", "install", "--quiet", *RUNTIME_PACKAGES],
            what="pip install jupyter-server ipykernel (musl)",
        )
        stamp_file.write_text(stamp)
    wheel = _ipydeps_wheel(CACHE / "wheels")
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
        what="pip install ipydeps (musl)",
    )
    _run(
        [str(venv_python), "-m", "pip", "install", "--quiet", str(wheel)],
        what="pip install ipydeps' dependencies (musl)",
    )
    return env


def mirrored_repository(python_version: str) -> Path:
    """Seed (once) a repository data directory with NumPy, SciPy and pandas for musl.

    Runs the real ``ipydeps-repo mirror`` for ``musllinux_1_2_x86_64`` and ``python_version``
    into ``.cache/musl/repo-<version>``; a finished one (``.mirrored`` holds the request) is
    reused. Returns the data directory. Raises ``MuslHarnessError`` if the mirror fails.
    """
    data = CACHE / f"repo-{python_version}"
    request = json.dumps([*SCIENCE, PLATFORM, python_version])
    done = data / ".mirrored"
    if not (done.is_file() and done.read_text() == request):
        if data.exists():
            shutil.rmtree(data)
        _run(
            [
                sys.executable,
                "-m",
                "ipydeps_repo",
                "mirror",
                *SCIENCE,
                "--platform",
                PLATFORM,
                "--python-version",
                python_version,
                "--data",
                str(data),
            ],
            what="ipydeps-repo mirror numpy scipy pandas (musllinux)",
        )
        done.write_text(request)
    return data


def link_copy(source: Path, target: Path) -> Path:
    """Copy the tree ``source`` to ``target`` with hard links (cheap; files are not changed)."""
    shutil.copytree(source, target, symlinks=True, copy_function=_link)
    return target


def _link(source: str, target: str) -> None:
    Path(target).hardlink_to(source)


def digest(path: Path) -> str:
    """The sha256 of a file (to tell wheels apart in messages)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
