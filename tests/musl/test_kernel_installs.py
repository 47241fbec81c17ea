"""ipydeps inside a real musl kernel installs NumPy, SciPy and pandas from our repository.

The repository is the real server on 127.0.0.1 serving what ``ipydeps-repo mirror`` seeded
for ``musllinux_1_2_x86_64`` (cached under .cache/musl/). The kernel runs a throwaway venv of
the musl harness that sees the runtime venv's packages (ipykernel, ipydeps) after its own, so
every install lands in the throwaway venv. Fails when the harness cannot be built; skips only
with IPYDEPS_SKIP_MUSL=1.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.kernels import Kernel
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer
from tests.support.venvs import site_packages

# The first test builds the harness (a few minutes: downloads from PyPI and Debian, compiling)
# in its fixtures.
pytestmark = [pytest.mark.musl, pytest.mark.e2e, pytest.mark.network, pytest.mark.timeout(1800)]


def test_ipydeps_installs_the_scientific_stack_then_the_next_cell_computes(
    musl_python: Path, musl_runtime: Path, musl_repository: RunningServer, tmp_path: Path
) -> None:
    venv = tmp_path / "env"
    subprocess.run(
        [str(musl_python), "-m", "venv", "--without-pip", str(venv)],
        check=True,
        env=clean_pip_env(),
    )
    (site_packages(venv) / "zz-runtime.pth").write_text(f"{site_packages(musl_runtime)}\n")
    kernel = Kernel(
        venv / "bin" / "python",
        tmp_path,
        {
            "IPYDEPS_REPOSITORY_URL": musl_repository.url,
            "IPYDEPS_UPSTREAM": "deny",
            "IPYDEPS_APK": "never",
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        },
    )
    try:
        installed = kernel.run(
            "import ipydeps\nipydeps.pip(['numpy', 'scipy', 'pandas'])", timeout=600
        )
        assert installed.error is None, installed.text
        source = musl_repository.url.split("//", 1)[1].rstrip("/")
        for name in ("numpy", "scipy", "pandas"):
            assert re.search(
                rf"\b{name} [\d.]+ \(wheel from {re.escape(source)}\)", installed.text
            ), installed.text
        computed = kernel.run(
            "import numpy as np, scipy.linalg, pandas as pd\n"
            "x = scipy.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([9.0, 8.0]))\n"
            "frame = pd.DataFrame({'k': ['a', 'b', 'a', 'b'], 'v': [1, 2, 3, 4]})\n"
            "print(x.round(6).tolist(), frame.groupby('k')['v'].sum().to_dict())\n"
            "print(np.__file__)"
        )
        assert computed.error is None, computed.text
        result, where = computed.stdout.splitlines()
        assert result == "[2.0, 3.0] {'a': 4, 'b': 6}"
        assert where.startswith(str(site_packages(venv)))
        wheel_tags = (next(site_packages(venv).glob("scipy-*.dist-info")) / "WHEEL").read_text()
        assert "musllinux_1_2_x86_64" in wheel_tags
    finally:
        kernel.stop()
