"""Sources over the real HttpFetcher: our repository server on loopback, 404s, a dead repository."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from ipydeps.environment_model import PlanPolicy, TargetEnvironment
from ipydeps.errors import HashMismatchError, RepositoryError
from ipydeps.fetch import HttpFetcher, RetryPolicy
from ipydeps.models import Route, StepAction
from ipydeps.plan import resolve
from ipydeps.requirements import parse_requirements
from ipydeps.sources import RepositorySource, UpstreamSource
from tests.support.server import RunningServer
from tests.support.wheels import make_wheel

FETCHER = HttpFetcher(retry=RetryPolicy(attempts=1, initial_delay=0.0, timeout=30.0))


def publish(server: RunningServer, tmp_path: Path, name: str, version: str, *requires: str) -> Path:
    wheel = make_wheel(tmp_path, name, version, requires=requires)
    status, body = server.upload(wheel)
    assert status in (200, 201), body
    return wheel


def test_repository_source_reads_our_server(repo_server: RunningServer, tmp_path: Path) -> None:
    publish(repo_server, tmp_path, "demo-lib", "1.0")
    wheel = publish(repo_server, tmp_path, "demo-lib", "1.1", "six>=1.5", 'tomli; python_version < "3.11"')
    source = RepositorySource(repo_server.url, FETCHER)
    assert source.route is Route.WHEEL
    assert source.location == repo_server.url + "simple/"
    candidates = source.candidates(canonicalize_name("Demo_Lib"))
    assert sorted(c.version for c in candidates) == [Version("1.0"), Version("1.1")]
    [newest] = [c for c in candidates if c.version == Version("1.1")]
    assert newest.filename == wheel.name and newest.is_wheel
    assert newest.url.startswith(repo_server.url)
    assert newest.sha256 is not None and len(newest.sha256) == 64
    assert newest.metadata_url == newest.url + ".metadata"
    assert source.requires_dist(newest) == ("six>=1.5", 'tomli; python_version < "3.11"')
    assert list(source.candidates(canonicalize_name("no-such-project"))) == []


def test_requires_dist_falls_back_to_the_wheel_itself(repo_server: RunningServer, tmp_path: Path) -> None:
    publish(repo_server, tmp_path, "demo-lib", "1.1", "six>=1.5")
    source = RepositorySource(repo_server.url, FETCHER)
    [candidate] = source.candidates(canonicalize_name("demo-lib"))
    import dataclasses

    without_metadata = dataclasses.replace(candidate, metadata_url=None)
    assert source.requires_dist(without_metadata) == ("six>=1.5",)
    tampered = dataclasses.replace(candidate, metadata_url=None, sha256="0" * 64)
    other = RepositorySource(repo_server.url, FETCHER)
    with pytest.raises(HashMismatchError, match="the index says 0000"):
        other.requires_dist(tampered)


def test_resolve_against_our_server_pulls_dependencies_from_it(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    publish(repo_server, tmp_path, "demo-app", "2.0", "demo-lib>=1.1")
    publish(repo_server, tmp_path, "demo-lib", "1.0")
    publish(repo_server, tmp_path, "demo-lib", "1.2")
    plan = resolve(
        parse_requirements(["demo-app"]),
        sources=[RepositorySource(repo_server.url, FETCHER)],
        installed={canonicalize_name("demo-lib"): Version("1.0")},
        environment=TargetEnvironment.current(apk_available=False),
        policy=PlanPolicy(upstream_allowed=False),
    )
    assert plan.ok, plan.unsatisfiable
    assert [(s.candidate.name, str(s.candidate.version), s.action) for s in plan.steps] == [
        ("demo-lib", "1.2", StepAction.UPGRADE), ("demo-app", "2.0", StepAction.INSTALL)]
    assert plan.steps[0].replaces == Version("1.0")
    assert plan.steps[0].reason == "dependency of demo-app"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_repository_that_is_down_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    source = RepositorySource(url, FETCHER)
    with pytest.raises(RepositoryError) as caught:
        source.candidates(canonicalize_name("numpy"))
    message = str(caught.value)
    assert f"Cannot read the package index at {url}simple/numpy/" in message
    assert "hint:" in message


def test_upstream_source_uses_the_given_index_url() -> None:
    source = UpstreamSource("http://127.0.0.1:9/mirror/simple", FETCHER)
    assert source.route is Route.UPSTREAM and source.location == "http://127.0.0.1:9/mirror/simple/"
