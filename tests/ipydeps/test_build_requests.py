"""A plan says where a missing build's request stands, and can ask for it (issue 21, item 3).

The real repository server on 127.0.0.1 holds only an sdist of ``demo-ext``; ``ipydeps.pip``
plans it on this interpreter, asks for a build with a request-only token, and shows the
farm's decision once ``farm queue --decide`` has made it. The pure part runs on a fake queue.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ipydeps
from ipydeps.build_requests import (
    BuildRequestError,
    RepositoryBuildQueue,
    annotate_plan,
    build_request_states,
)
from ipydeps.environment_model import TargetEnvironment
from ipydeps.errors import RepositoryError
from ipydeps.models import UnbuiltBuild, Unsatisfiable
from ipydeps.plan_model import Plan
from tests.repo_server.test_build_requests import request_token
from tests.support.pipenv import clean_pip_env
from tests.support.sdists import make_sdist
from tests.support.server import RunningServer

BUILD = UnbuiltBuild("scikit-learn", "1.9.1", "musllinux_1_2_x86_64", "3.12")
LINE = "no prebuilt build of scikit-learn 1.9.1 ...; build request: none"


class FakeQueue:
    """A BuildQueue that answers from a script and records what it was asked."""

    def __init__(self, state: str | None = "", refuse: BuildRequestError | None = None) -> None:
        self.answer = state
        self.refuse = refuse
        self.asked: list[tuple[str, UnbuiltBuild]] = []

    def state(self, build: UnbuiltBuild) -> str | None:
        self.asked.append(("state", build))
        return self.answer

    def request(self, build: UnbuiltBuild) -> str:
        self.asked.append(("request", build))
        if self.refuse is not None:
            raise self.refuse
        return "queued"


def missing_plan() -> Plan:
    return Plan(unsatisfiable=(Unsatisfiable("scikit-learn", LINE, "hint", BUILD),))


def reason(plan: Plan) -> str:
    [problem] = plan.unsatisfiable
    return problem.reason


def test_the_line_says_where_the_request_stands() -> None:
    assert reason(annotate_plan(missing_plan(), FakeQueue(""))) == LINE
    assert reason(annotate_plan(missing_plan(), FakeQueue(None))) == LINE  # nobody can tell
    queued = annotate_plan(missing_plan(), FakeQueue("scheduled (recipe py3-scikit-learn)"))
    assert reason(queued).endswith("build request: scheduled (recipe py3-scikit-learn)")
    queue = FakeQueue()
    sent = annotate_plan(missing_plan(), queue, send=True)
    assert reason(sent).endswith("build requested: queued")
    assert queue.asked == [("request", BUILD)]


def test_a_refused_request_is_said_and_the_plan_stands() -> None:
    refused = BuildRequestError(
        "our repository refused the build request (429: too many)", hint="try again in 60 s"
    )
    plan = annotate_plan(missing_plan(), FakeQueue(refuse=refused), send=True)
    assert reason(plan).endswith(
        "build request not sent: our repository refused the build request (429: too many) "
        "(try again in 60 s)"
    )


def test_a_plan_without_a_missing_build_asks_nothing() -> None:
    class Recording:
        urls: list[str] = []

        def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
            self.urls.append(url)
            return b"{}"

    reader = Recording()
    plain = Plan(unsatisfiable=(Unsatisfiable("x", "x was not found in ...", None),))
    assert build_request_states(plain, "http://repo/", reader, lambda url: {}, send=True) is plain
    assert reader.urls == []


def test_hostile_server_text_is_cut_and_cleaned() -> None:
    class Hostile:
        def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
            entry = {
                **BUILD.__dict__,
                "version": "",
                "state": "queued\x1b[2J",
                "note": "n" * 10_000,
            }
            return json.dumps({"requests": [entry]}).encode()

    state = RepositoryBuildQueue("http://repo/", Hostile(), {}).state(BUILD)
    assert state is not None and "\x1b" not in state and len(state) < 420

    class Absent:
        def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
            raise RepositoryError("404")

    assert RepositoryBuildQueue("http://repo/", Absent(), {}).state(BUILD) is None


def plan_text(server: RunningServer, **options: object) -> str:
    out = io.StringIO()
    ipydeps.pip(
        ["demo-ext"], index_url=server.url, upstream="deny", dry_run=True, stream=out, **options
    )  # type: ignore[arg-type]
    line = next(line for line in out.getvalue().splitlines() if "no prebuilt build" in line)
    return line


def test_a_plan_requests_a_build_and_shows_the_farms_decision(
    repo_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    sdist = make_sdist(tmp_path, "demo-ext", "1.0")
    status, body = repo_server.upload(sdist)
    assert status == 201, body
    here = TargetEnvironment.current(apk_available=False).platform_tag
    assert here.startswith(("manylinux_", "musllinux_"))
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    line = plan_text(repo_server)
    assert line.split(": ", 1)[1].startswith(
        f"no prebuilt build of demo-ext 1.0 for {here} / cp{python}"
    )
    assert line.endswith("build request: none")
    # The publishing token may not ask; the plan says so and still stands.
    monkeypatch.setenv("IPYDEPS_REPOSITORY_TOKEN", repo_server.token)
    monkeypatch.setenv("IPYDEPS_REPOSITORY_URL", repo_server.url)
    assert "build request not sent: our repository refused the build request (403" in (
        plan_text(repo_server, request_build=True)
    )
    with pytest.raises(BuildRequestError, match="may not request") as refused:
        ipydeps.request_build("demo-ext")
    assert refused.value.hint is not None and "--request-only" in refused.value.hint
    monkeypatch.setenv("IPYDEPS_REPOSITORY_TOKEN", request_token(repo_server.data, "notebook"))
    assert plan_text(repo_server, request_build=True).endswith("build requested: queued")
    assert plan_text(repo_server).endswith("build request: queued")
    decided = subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", "farm", "queue", "--decide"]
        + ["--data", str(repo_server.data), "--apkbuilds", "apkbuilds"],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
        check=False,
    )
    assert decided.returncode == 0, decided.stderr
    assert plan_text(repo_server).endswith(
        "build request: no recipe (the farm has no recipe for demo-ext; nothing is built "
        "until one is added)"
    )
    # The same request from a notebook cell, for the runtime's platform, is queued too.
    assert ipydeps.request_build("demo-ext", platform_tag="musllinux_1_2_x86_64") == "queued"
