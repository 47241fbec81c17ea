"""The real thing: NumPy, SciPy and pandas compiled here against OpenBLAS, published, installed.

Marked slow: the first run compiles for about an hour on two cores. The farm cache
(IPYDEPS_FARM_CACHE, default /var/cache/ipydeps-farm) keeps the wheels, so later runs
skip every build and take seconds. Needs libopenblas-dev, gfortran and pkg-config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer

# A from-source build of SciPy alone takes hours on 2 cores: the suite-wide 600 s limit is not it.
pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(5 * 3600)]

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("IPYDEPS_FARM_CACHE", "/var/cache/ipydeps-farm"))

CHECK = """
import numpy as np, pandas as pd, scipy
from scipy import linalg
x = linalg.solve(np.array([[4.0, 3.0, 0.0], [3.0, 4.0, -1.0], [0.0, -1.0, 4.0]]),
                 np.array([24.0, 30.0, -24.0]))
assert np.allclose(x, [3.0, 4.0, -5.0]), x
lu_x = linalg.lu_solve(linalg.lu_factor([[3.0, 1.0], [1.0, 2.0]]), [9.0, 8.0])
assert np.allclose(lu_x, [2.0, 3.0]), lu_x
frame = pd.DataFrame({"k": ["a", "b", "a"], "v": [1.0, 2.0, 3.0]})
assert frame.groupby("k")["v"].sum().to_dict() == {"a": 4.0, "b": 2.0}
print("BLAS", np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
print("LAPACK", scipy.show_config(mode="dicts")["Build Dependencies"]["lapack"]["name"])
print("VERSIONS", np.__version__, scipy.__version__, pd.__version__)
"""


def test_numpy_scipy_pandas_from_source_against_openblas(
    tmp_path: Path, repo_server: RunningServer
) -> None:
    out = tmp_path / "out"
    build = subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", "farm", "build", "--target", "host",
         "--recipe", "py3-numpy", "--recipe", "py3-scipy", "--recipe", "py3-pandas",
         "--apkbuilds", str(ROOT / "apkbuilds"), "--cache", str(CACHE), "--out", str(out),
         "--publish-url", repo_server.url, "--token", repo_server.token],
        capture_output=True, text=True, env=clean_pip_env(), timeout=4 * 3600,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    summary = json.loads((out / "summary.json").read_text())
    results = {r["recipe"]: r for r in summary["results"]}
    assert set(results) == {"py3-numpy", "py3-scipy", "py3-pandas"}
    for name in ("py3-numpy", "py3-scipy"):
        wheel = results[name]["artifacts"][0]
        # Linked against this system's OpenBLAS: tagged linux_*, and the need is recorded.
        assert wheel["platform_tag"] == "linux_x86_64"
        assert "libopenblas.so.0" in wheel["needed_libraries"]

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    ours = [python, "-m", "pip", "install", "--no-deps", "--index-url", repo_server.url + "simple/"]
    install = subprocess.run(
        [*ours, "numpy", "scipy", "pandas"],
        capture_output=True, text=True, env=clean_pip_env(), timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    for result in results.values():
        assert result["artifacts"][0]["filename"] in install.stdout
    # pandas' pure-Python dependencies come from PyPI (they are not part of the farm).
    deps = subprocess.run(
        [python, "-m", "pip", "install", "python-dateutil", "tzdata"],
        capture_output=True, text=True, env=clean_pip_env(), timeout=600,
    )  # fmt: skip
    assert deps.returncode == 0, deps.stdout + deps.stderr
    check = subprocess.run(
        [python, "-c", CHECK], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "BLAS openblas" in check.stdout
    assert "LAPACK openblas" in check.stdout
