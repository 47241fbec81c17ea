"""The runtime on musl as a JupyterHub single-user server, under a real hub on 127.0.0.1.

The same hub as ``tests/e2e/test_jupyterhub.py`` (JupyterHub from the test venv,
configurable-http-proxy from npm; node and npm required), spawning the runtime image's start
script from a venv of the musl harness with the image's headless package set (jupyter-server,
ipykernel, ipydeps, jupyterhub at the Dockerfile's JUPYTERHUB_VERSION; not pinned by
docker/runtime-constraints.txt, whose soupsieve needs a newer CPython than the harness's
3.11.2). Its kernel installs SciPy's musllinux wheels from the repository seeded for musl.
Fails when the harness cannot be built; skips only with IPYDEPS_SKIP_MUSL=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.hub import HubSetupError
from tests.support.hubsite import HubSite, SiteUser, open_site
from tests.support.musl import (
    CACHE,
    MuslHarnessError,
    link_copy,
    mirrored_repository,
    python_version,
)
from tests.support.runtime import RuntimeBuildError, build_runtime
from tests.support.server import start_server
from tests.support.venvs import site_packages

pytestmark = [pytest.mark.musl, pytest.mark.e2e, pytest.mark.network, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def musl_site(musl_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSite]:
    work = tmp_path_factory.mktemp("musl-hub")
    try:
        runtime = build_runtime(musl_python, CACHE / "runtime-hub", (), pinned=False)
        # The repository the musl tests seed (NumPy, SciPy, pandas for musllinux), hard-linked.
        seeded = mirrored_repository(python_version(musl_python))
        repository = start_server(link_copy(seeded, work / "repo-data"))
        site = open_site(work, {"maud": SiteUser(runtime, "none", installs=True)}, repository)
    except (HubSetupError, RuntimeBuildError, MuslHarnessError) as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield site
    finally:
        site.close()


def test_a_musl_single_user_server_installs_scipy_through_the_hub(
    musl_site: HubSite, musl_python: Path
) -> None:
    maud = musl_site.login("maud")
    env = musl_site.fresh_kernel_env("maud")
    server = musl_site.start(maud)
    try:
        assert server.url == f"{musl_site.hub.url}user/maud/"
        # The single-user server itself runs on the harness's musl interpreter.
        pid = int(str(musl_site.server_info("maud")["pid"]))
        assert Path(psutil.Process(pid).exe()) == musl_python.resolve()
        health = musl_site.healthcheck("maud")
        assert health.returncode == 0, health.stderr
        channel = server.channel(server.start_kernel())
        try:
            installed = channel.execute("import ipydeps\nipydeps.pip(['scipy'])", timeout=600)
            solved = channel.execute(
                "import sys, numpy as np, scipy.linalg\n"
                "print(sys.implementation._multiarch)\n"
                "print(scipy.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]),"
                " np.array([9.0, 8.0])).round(6).tolist())"
            )
        finally:
            channel.close()
        assert installed.output.error is None, installed.output.text
        source = musl_site.repository.url.split("//", 1)[1].rstrip("/")
        assert f"(wheel from {source})" in installed.output.text, installed.output.text
        assert solved.output.error is None, solved.output.text
        assert solved.output.stdout == "x86_64-linux-musl\n[2.0, 3.0]\n"
        wheel = (next(site_packages(env).glob("scipy-*.dist-info")) / "WHEEL").read_text()
        assert "musllinux_1_2_x86_64" in wheel
    finally:
        maud.stop_server()
