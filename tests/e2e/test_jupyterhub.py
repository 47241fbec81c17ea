"""The runtime as a JupyterHub single-user server, under a real hub on 127.0.0.1.

JupyterHub (from the test venv) and configurable-http-proxy (from npm, cached in
``.cache/hub/``; needs node and npm, which ``.ci/run`` installs: the tests FAIL without them)
run with a shared test password and a local-process spawner. The spawner runs the runtime
image's start script (``docker/start-jupyter``) from a venv of the image's package set
(``tests/support/runtime.py``: jupyter-server, ipykernel, ipydeps, jupyterhub at the
Dockerfile's JUPYTERHUB_VERSION, the UIs; the hub's web assets removed as in the image), with
the image's Jupyter and IPython settings and the repository settings in the spawner's
environment, as an operator passes them. The repository is the real server on 127.0.0.1,
seeded by ``ipydeps-repo mirror numpy scipy``.

Kernels that install run a throwaway venv over the runtime's packages, made fresh before
each server start: like a new container, every start begins from the image's environment,
and the cached runtime venv is never changed.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from tests.support.hub import CACHE, HubSetupError, host_repository
from tests.support.hubclient import HubUser, LoginRefused, ServerClient
from tests.support.hubsite import HubSite, SiteUser, open_site
from tests.support.musl import link_copy
from tests.support.runtime import RuntimeBuildError, build_runtime
from tests.support.server import start_server
from tests.support.venvs import site_packages

# The first run builds the runtime venvs and seeds the repository from PyPI (minutes).
pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.timeout(1800)]

INSTALL = "import ipydeps\nipydeps.pip(['scipy'])"
SOLVE = (
    "import numpy as np, scipy.linalg\n"
    "print(scipy.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]),"
    " np.array([9.0, 8.0])).round(6).tolist())\n"
    "print(scipy.__file__)"
)
WITH_UI = CACHE / "runtime-lab-notebook"  # Notebook 7 needs JupyterLab: one venv for both
HEADLESS = CACHE / "runtime-none"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSite]:
    python = Path(sys.executable)
    try:
        build_runtime(python, WITH_UI, ("lab", "notebook"))
        build_runtime(python, HEADLESS, ())
        seeded = host_repository()
        work = tmp_path_factory.mktemp("hub")
        repository = start_server(link_copy(seeded, work / "repo-data"))
        # One user per test (the tests share the hub, never a server).
        opened = open_site(
            work,
            {
                "alice": SiteUser(WITH_UI, "lab", installs=True),
                "bob": SiteUser(WITH_UI, "lab", installs=True),
                "nora": SiteUser(WITH_UI, "notebook"),
                "hedy": SiteUser(HEADLESS, "none"),
            },
            repository,
        )
    except (HubSetupError, RuntimeBuildError) as error:
        # Fail, never skip: e.g. without node and npm the message says how to install them.
        pytest.fail(str(error), pytrace=False)
    try:
        yield opened
    finally:
        opened.close()


def _browse(user: HubUser, url: str) -> tuple[int, str]:
    """GET ``url`` as a browser with the user's hub login cookie; (status, final URL)."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(user.cookies))
    try:
        with browser.open(url, timeout=60) as response:
            return response.status, response.geturl()
    except urllib.error.HTTPError as error:
        return error.code, error.geturl()


def _last_activity(user: HubUser) -> datetime:
    stamp = user.model()["servers"].get("", {}).get("last_activity")
    return datetime.fromisoformat(stamp) if stamp else datetime.min.replace(tzinfo=UTC)


def test_a_user_logs_in_and_installs_scipy_in_a_server_the_hub_started(site: HubSite) -> None:
    with pytest.raises(LoginRefused):
        HubUser.login(site.hub.url, "alice", site.hub.password + "-wrong")
    alice = site.login("alice")
    env = site.fresh_kernel_env("alice")
    started = time.monotonic()
    server = site.start(alice)
    ready = time.monotonic() - started
    try:
        assert server.url == f"{site.hub.url}user/alice/"  # the hub's base URL, via the proxy
        # The hub's authentication: no token or a made-up one is refused, the user's works,
        # and a browser with the hub's login lands in JupyterLab (the image's default UI).
        assert ServerClient(server.url, None).api("GET", "status")[0] == 403
        assert ServerClient(server.url, "not-a-token").api("GET", "status")[0] == 403
        assert server.api("GET", "status")[0] == 200
        assert _browse(alice, server.url) == (200, f"{server.url}lab")
        # JupyterLab's language list works with babel's locale data pruned to English
        # (docker/runtime-prune), as in the image.
        status, languages = server.get("lab/api/translations/")
        assert status == 200 and "en" in languages["data"], languages
        # Where the hub said, not where the image's config would listen (0.0.0.0:8888).
        info = site.server_info("alice")
        assert info["url"] == f"http://127.0.0.1:{info['port']}/user/alice/"
        listening = {
            c.laddr.ip
            for c in psutil.Process(int(str(info["pid"]))).net_connections()
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {"127.0.0.1"}
        health = site.healthcheck("alice")
        assert health.returncode == 0, health.stderr

        channel = server.channel(server.start_kernel())
        try:
            installed = channel.execute(INSTALL, timeout=600)
            first_cell = time.monotonic() - started
            solved = channel.execute(SOLVE)
        finally:
            channel.close()
        assert installed.output.error is None, installed.output.text
        source = site.repository.url.split("//", 1)[1].rstrip("/")
        assert f"(wheel from {source})" in installed.output.text, installed.output.text
        assert solved.output.error is None, solved.output.text
        result, where = solved.output.stdout.splitlines()
        assert result == "[2.0, 3.0]"
        assert where.startswith(str(site_packages(env)))  # the kernel's env, not the runtime
        # The server reports the kernel's messages (the install's progress, the cells) to the
        # hub as activity, which is what the hub's idle culler reads.
        deadline = time.monotonic() + 60
        while _last_activity(alice) < solved.finished:
            assert time.monotonic() < deadline, (alice.model(), solved.finished)
            time.sleep(0.2)
        print(
            f"\nhub: start server -> ready {ready:.2f} s, -> first cell "
            f"(ipydeps.pip(['scipy'])) done {first_cell:.2f} s"
        )
    finally:
        alice.stop_server()


def test_a_restarted_server_starts_from_the_images_environment(site: HubSite) -> None:
    # Stopped and started again through the REST API (as after the idle culler or a
    # restart): the user's files stay (the home directory is the persistent volume), the
    # kernel environment is the image's again, as in a new container.
    bob = site.login("bob")
    site.fresh_kernel_env("bob")
    server = site.start(bob)
    notebook = {
        "type": "notebook",
        "content": {
            "cells": [
                {
                    "cell_type": "code",
                    "source": INSTALL,
                    "metadata": {},
                    "outputs": [],
                    "execution_count": None,
                }
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        },
    }
    assert server.api("PUT", "contents/analysis.ipynb", notebook)[0] in (200, 201)
    channel = server.channel(server.start_session("analysis.ipynb"))
    try:
        installed = channel.execute(INSTALL, timeout=600)
    finally:
        channel.close()
    assert installed.output.error is None, installed.output.text

    bob.stop_server()
    assert bob.model()["servers"] == {}
    assert ServerClient(server.url, bob.token).api("GET", "status")[0] != 200

    site.fresh_kernel_env("bob")
    server = site.start(bob)
    try:
        status, saved = server.api("GET", "contents/analysis.ipynb?content=0")
        assert status == 200 and saved["type"] == "notebook"
        channel = server.channel(server.start_session("analysis.ipynb"))
        try:
            # The kernel environment is the image's again, and the notebook carries its own:
            # a new kernel for analysis.ipynb restores pylock.analysis.toml (written beside
            # it by the install above) in the background, so scipy is back without another
            # ipydeps.pip(), from the repository, and the import waits for it.
            restored = channel.execute(SOLVE, timeout=600)
            assert restored.output.error is None, restored.output.text
            assert restored.output.stdout.startswith("[2.0, 3.0]\n"), restored.output.text
            assert "restored pylock.analysis.toml: installed" in restored.output.text, (
                restored.output.text
            )
            status, lock = server.api("GET", "contents/pylock.analysis.toml?type=file")
            assert status == 200, lock
            source = site.repository.url.split("//", 1)[1].rstrip("/")
            assert 'name = "scipy"' in lock["content"] and source in lock["content"]
        finally:
            channel.close()
    finally:
        bob.stop_server()


@pytest.mark.parametrize(("user", "landing"), [("nora", "tree"), ("hedy", "")])
def test_the_other_ui_variants_run_under_the_hub(site: HubSite, user: str, landing: str) -> None:
    hub_user = site.login(user)
    server = site.start(hub_user)
    try:
        # The notebook image opens Notebook 7 (start-jupyter sets the default URL); the
        # headless one has no front end, its root answers for API clients.
        assert _browse(hub_user, server.url) == (200, f"{server.url}{landing}")
        if not landing:
            assert _browse(hub_user, f"{server.url}lab")[0] == 404
        health = site.healthcheck(user)
        assert health.returncode == 0, health.stderr
        channel = server.channel(server.start_kernel())
        try:
            ran = channel.execute(
                "import os, sys\n"
                "print(sys.prefix)\n"
                "print('ipydeps' in get_ipython().extension_manager.loaded)\n"
                "print(os.environ['IPYDEPS_REPOSITORY_URL'])"
            )
        finally:
            channel.close()
        assert ran.output.error is None, ran.output.text
        # The runtime's kernel, the image's IPython config, the spawner's environment.
        assert ran.output.stdout.splitlines() == [
            str(site.users[user].runtime),
            "True",
            site.repository.url,
        ]
    finally:
        hub_user.stop_server()
