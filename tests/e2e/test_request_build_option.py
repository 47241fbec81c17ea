"""``--request-build`` from a terminal and from ``%pip`` (issue 21, item 3), end to end.

The real repository server on 127.0.0.1 holds only sdists of the projects asked for, so
each plan on this interpreter misses a build. ``python -m ipydeps`` (as a child process)
and ``%pip``/``!pip`` in a real kernel ask for it with a request-only token, and the plan
line says the request is queued; the server's public state then says the same. The option
is ipydeps' own: a command handed to the real pip that carries it is refused before
anything runs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.repo_server.test_build_requests import request_token
from tests.support.kernels import Kernel
from tests.support.pipenv import clean_pip_env
from tests.support.sdists import make_sdist
from tests.support.server import RunningServer, start_server
from tests.support.venvs import make_venv, site_packages
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.e2e

QUEUED = "build requested: queued"


@dataclass
class Setup:
    server: RunningServer
    venv: Path
    python: Path
    work: Path
    request_token: str

    def publish_sdist(self, name: str) -> None:
        status, body = self.server.upload(make_sdist(self.work / "dists", name, "1.0"))
        assert status == 201, body

    def publish_wheel(self, name: str) -> None:
        status, body = self.server.upload(make_wheel(self.work / "dists", name, "1.0"))
        assert status == 201, body

    def environment(self, token: str) -> dict[str, str]:
        return {
            "IPYDEPS_REPOSITORY_URL": self.server.url,
            "IPYDEPS_REPOSITORY_TOKEN": token,
            "IPYDEPS_UPSTREAM": "deny",
            "IPYDEPS_APK": "never",
            "HOME": str(self.work),
            "XDG_CONFIG_HOME": str(self.work / "config"),
        }

    def cli(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        environ = clean_pip_env(**self.environment(token or self.request_token))
        return subprocess.run(
            [str(self.python), "-m", "ipydeps", *args],
            capture_output=True,
            text=True,
            env=environ,
            timeout=300,
            check=False,
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("request-build")
    (work / "dists").mkdir()
    server = start_server(work / "repo-data")
    python = make_venv(work / "env", see_test_packages=True)
    try:
        yield Setup(server, work / "env", python, work, request_token(server.data, "notebook"))
    finally:
        server.stop()


def plan_line(output: str, name: str) -> str:
    """The plan's line for ``name``'s missing build."""
    return next(line for line in output.splitlines() if f"no prebuilt build of {name} 1.0" in line)


def test_the_command_line_asks_for_a_build_and_the_plan_says_it_is_queued(setup: Setup) -> None:
    setup.publish_sdist("cli-ext")
    before = setup.cli("plan", "cli-ext")
    assert before.returncode == 1, before.stderr
    assert plan_line(before.stderr, "cli-ext").endswith("build request: none")
    # Its hint names the flag this command takes, not the Python call.
    assert "; or --request-build asks our repository's farm to build it" in before.stderr
    assert "ipydeps.request_build" not in before.stderr
    asked = setup.cli("plan", "--request-build", "cli-ext")
    assert asked.returncode == 1, asked.stderr  # the build is missing still: the plan fails
    assert plan_line(asked.stderr, "cli-ext").endswith(QUEUED), asked.stderr
    # The repository's public state says the same to anyone who plans it now.
    after = setup.cli("plan", "cli-ext")
    assert plan_line(after.stderr, "cli-ext").endswith("build request: queued"), after.stderr
    # install takes it too; the error names the request, and nothing is installed.
    setup.publish_sdist("cli-install-ext")
    installed = setup.cli("install", "--request-build", "cli-install-ext")
    assert installed.returncode == 1, installed.stderr
    assert plan_line(installed.stderr, "cli-install-ext").endswith(QUEUED), installed.stderr
    # A publishing token lacks the request right: the line says so and the plan stands.
    setup.publish_sdist("cli-refused-ext")
    refused = setup.cli("plan", "--request-build", "cli-refused-ext", token=setup.server.token)
    assert refused.returncode == 1
    line = plan_line(refused.stderr, "cli-refused-ext")
    assert "build request not sent: our repository refused the build request (403" in line
    assert "--request-only" in line


def test_the_pip_shim_takes_it_and_never_hands_it_to_the_real_pip(setup: Setup) -> None:
    setup.publish_sdist("shim-ext")
    hinted = setup.cli("pip", "install", "shim-ext")
    assert "; or --request-build asks our repository's farm" in hinted.stderr, hinted.stderr
    asked = setup.cli("pip", "install", "--request-build", "shim-ext")
    assert asked.returncode == 1, asked.stderr
    assert plan_line(asked.stderr, "shim-ext").endswith(QUEUED), asked.stderr
    # --no-deps sends the command to the real pip, which does not know --request-build.
    setup.publish_wheel("shim-wheel")
    handed = setup.cli("pip", "install", "--request-build", "--no-deps", "shim-wheel")
    assert handed.returncode == 1
    assert handed.stderr.startswith(
        "ipydeps: Refused `pip install --request-build --no-deps shim-wheel`: "
        "--request-build is ipydeps' own option"
    ), handed.stderr
    assert "no such option" not in handed.stderr  # pip never ran
    assert not (site_packages(setup.venv) / "shim_wheel-1.0.dist-info").exists()
    # Without the option, the same hand-off runs the real pip as before.
    plain = setup.cli("pip", "install", "--no-deps", "shim-wheel")
    assert plain.returncode == 0, plain.stderr + plain.stdout
    assert (site_packages(setup.venv) / "shim_wheel-1.0.dist-info").is_dir()


def test_pip_in_a_kernel_asks_for_a_build_and_the_plan_says_it_is_queued(
    setup: Setup, tmp_path: Path
) -> None:
    for name in ("nb-dry-ext", "nb-install-ext", "nb-shell-ext"):
        setup.publish_sdist(name)
    setup.publish_wheel("nb-wheel")
    kernel = Kernel(setup.python, tmp_path, setup.environment(setup.request_token))
    try:
        assert kernel.run("%load_ext ipydeps").error is None
        dry = kernel.run("%pip install --dry-run --request-build nb-dry-ext")
        assert dry.error is None, dry.text
        assert plan_line(dry.shown(), "nb-dry-ext").endswith(QUEUED), dry.shown()
        # An install that cannot be met fails its cell; its error names the request.
        failed = kernel.run("%pip install --request-build nb-install-ext")
        assert failed.error is not None and failed.error["ename"] == "NoCandidateError"
        assert QUEUED in failed.error["evalue"], failed.text
        shell = kernel.run("!pip install --dry-run --request-build nb-shell-ext")
        assert shell.error is None, shell.text
        assert plan_line(shell.shown(), "nb-shell-ext").endswith(QUEUED), shell.shown()
        # The state the repository keeps: a plan without the option reads it back.
        again = kernel.run("%pip install --dry-run nb-dry-ext")
        assert plan_line(again.shown(), "nb-dry-ext").endswith("build request: queued")
        # Bound for the real pip (--no-deps): refused, the cell fails, nothing installed.
        handed = kernel.run("%pip install --request-build --no-deps nb-wheel")
        assert handed.error is not None and handed.error["ename"] == "OwnOptionError"
        assert "--request-build is ipydeps' own option" in handed.error["evalue"]
        assert not (site_packages(setup.venv) / "nb_wheel-1.0.dist-info").exists()
    finally:
        kernel.stop()
