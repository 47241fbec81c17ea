"""Build (once, cached) the two Python environments the runtime benchmarks compare.

- ``runtime``: what our image ships: jupyter-server, ipykernel and ipydeps (built from
  this checkout as a wheel, not editable, so its files are counted like in the image).
- ``baseline``: the package set of the official Jupyter Docker Stacks ``scipy-notebook``
  (base-notebook + minimal-notebook + scipy-notebook), installed with pip from PyPI.

Both are plain venvs under ``.cache/bench/`` at the repository root (git-ignored). Every
pip child runs with ``clean_pip_env()`` so this machine's pip defaults don't leak in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.pipenv import clean_pip_env  # noqa: E402

CACHE = ROOT / ".cache" / "bench"

# Jupyter Docker Stacks: base-notebook (jupyterlab, notebook, jupyterhub-singleuser,
# nbclassic), minimal-notebook (nbconvert) and scipy-notebook's conda list, mapped to PyPI
# names (pytables -> tables, matplotlib-base -> matplotlib). Kept in the stacks' order.
BASELINE_PACKAGES = (
    "jupyterlab",
    "notebook",
    "jupyterhub",
    "nbclassic",
    "nbconvert",
    "altair",
    "beautifulsoup4",
    "bokeh",
    "bottleneck",
    "cloudpickle",
    "cython",
    "dask",
    "dill",
    "h5py",
    "ipympl",
    "ipywidgets",
    "jupyterlab-git",
    "matplotlib",
    "numba",
    "numexpr",
    "openpyxl",
    "pandas",
    "patsy",
    "protobuf",
    "scikit-image",
    "scikit-learn",
    "scipy",
    "seaborn",
    "sqlalchemy",
    "statsmodels",
    "sympy",
    "tables",
    "xlrd",
)

RUNTIME_PACKAGES = ("jupyter-server", "ipykernel")

# Jupyter Docker Stacks base-notebook, whose Python packages minimal-notebook keeps (it adds
# only OS packages): what its Dockerfile installs with mamba, by PyPI name. The single-user
# server, jupyterhub-singleuser, comes from jupyterhub (what start-singleuser.py runs).
STACKS_SINGLEUSER_PACKAGES = ("jupyterlab", "notebook", "jupyterhub", "nbclassic")


def env_python(env: Path) -> Path:
    """Return the interpreter of the venv at ``env``."""
    return env / "bin" / "python"


def _pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "--quiet", *args], check=True, env=clean_pip_env())


def _build(env: Path, requirements: list[str], stamp: str) -> Path:
    """Create the venv at ``env`` with ``requirements`` unless its stamp already matches."""
    stamp_file = env / ".bench-stamp"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return env
    print(f"==> building {env.name} environment (cached in {env})", file=sys.stderr)
    venv.EnvBuilder(clear=True, with_pip=True).create(env)
    python = env_python(env)
    _pip(python, "install", *requirements)
    stamp_file.write_text(stamp)
    return env


def runtime_env() -> Path:
    """Build (or reuse) the runtime venv: jupyter-server + ipykernel + ipydeps from this tree.

    Raises ``subprocess.CalledProcessError`` if pip fails.
    """
    wheel_dir = CACHE / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    for old in wheel_dir.glob("ipydeps_client-*.whl"):
        old.unlink()
    # The build backend's warnings are noise here; pip's output is shown only on failure.
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--quiet",
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(wheel_dir),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
    )
    if build.returncode != 0:
        sys.stderr.write(build.stdout + build.stderr)
        build.check_returncode()
    wheel = next(wheel_dir.glob("ipydeps_client-*.whl"))
    requirements = [*RUNTIME_PACKAGES, str(wheel)]
    # The ipydeps source changes often; rebuild only its wheel, not the whole env.
    env = _build(CACHE / "runtime", [*RUNTIME_PACKAGES], json.dumps(RUNTIME_PACKAGES))
    _pip(env_python(env), "install", "--force-reinstall", "--no-deps", str(wheel))
    _pip(env_python(env), "install", *requirements)
    return env


def baseline_env() -> Path:
    """Build (or reuse) the Docker Stacks scipy-notebook baseline venv (large: ~1-2 GB).

    Raises ``subprocess.CalledProcessError`` if pip fails.
    """
    return _build(CACHE / "baseline", list(BASELINE_PACKAGES), json.dumps(BASELINE_PACKAGES))


def stacks_singleuser_env(jupyterhub_version: str) -> Path:
    """Build (or reuse) the Docker Stacks base-notebook set, with ``jupyterhub_version``.

    Raises ``subprocess.CalledProcessError`` if pip fails.
    """
    requirements = [
        f"jupyterhub=={jupyterhub_version}" if name == "jupyterhub" else name
        for name in STACKS_SINGLEUSER_PACKAGES
    ]
    return _build(CACHE / "stacks-singleuser", requirements, json.dumps(requirements))


if __name__ == "__main__":
    for built in (runtime_env(), baseline_env()):
        print(built)
