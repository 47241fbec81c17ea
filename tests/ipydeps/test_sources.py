"""Sources over the real HttpFetcher: our repository server on loopback, 404s, a dead repository."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from ipydeps.apkclosure import parse_installed_db
from ipydeps.environment_model import PlanPolicy, TargetEnvironment
from ipydeps.errors import HashMismatchError, NotFoundError, RepositoryError
from ipydeps.fetch import HttpFetcher, RetryPolicy
from ipydeps.models import Route, StepAction
from ipydeps.plan import resolve
from ipydeps.render import render_text
from ipydeps.requirements import parse_requirements
from ipydeps.settings import load_config
from ipydeps.sources import (
    ApkRepositorySource,
    RepositorySource,
    UpstreamSource,
    sources_from_settings,
)
from tests.support.loopback import Scripted, scripted_server
from tests.support.server import RunningServer, start_server
from tests.support.wheels import make_wheel

DATA = Path(__file__).parent / "data"
FETCHER = HttpFetcher(retry=RetryPolicy(attempts=1, initial_delay=0.0, timeout=30.0))


@pytest.fixture(scope="module")
def repo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server for this module (keys take a while); each test uses its own projects."""
    server = start_server(tmp_path_factory.mktemp("sources") / "repo-data")
    try:
        yield server
    finally:
        server.stop()


def publish(server: RunningServer, tmp_path: Path, name: str, version: str, *requires: str) -> Path:
    wheel = make_wheel(tmp_path, name, version, requires=requires)
    status, body = server.upload(wheel)
    assert status in (200, 201), body
    return wheel


def test_repository_source_reads_our_server(repo_server: RunningServer, tmp_path: Path) -> None:
    publish(repo_server, tmp_path, "demo-lib", "1.0")
    wheel = publish(
        repo_server, tmp_path, "demo-lib", "1.1", "six>=1.5", 'tomli; python_version < "3.11"'
    )
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


class RecordingFetcher:
    """The real HttpFetcher, remembering which URLs were read."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
        self.urls.append(url)
        return FETCHER.get_bytes(url, accept=accept)

    def download(
        self,
        url: str,
        destination: Path,
        *,
        sha256: str | None,
        progress: Callable[[int, int | None], None] | None = None,
        size: int | None = None,
    ) -> Path:
        raise AssertionError("planning never downloads to disk")


def test_requires_dist_checks_metadata_and_falls_back_to_the_wheel(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = publish(repo_server, tmp_path, "meta-lib", "1.1", "six>=1.5")
    [candidate] = RepositorySource(repo_server.url, FETCHER).candidates(
        canonicalize_name("meta-lib")
    )
    assert candidate.metadata_sha256 is not None
    tampered_metadata = dataclasses.replace(candidate, metadata_sha256="0" * 64)
    with pytest.raises(HashMismatchError, match=r"\.whl\.metadata: its sha256 is"):
        RepositorySource(repo_server.url, FETCHER).requires_dist(tampered_metadata)

    # Not advertised: the .metadata beside the wheel is still tried before the wheel itself.
    unadvertised = dataclasses.replace(candidate, metadata_url=None, metadata_sha256=None)
    fetcher = RecordingFetcher()
    assert RepositorySource(repo_server.url, fetcher).requires_dist(unadvertised) == ("six>=1.5",)
    assert fetcher.urls == [candidate.url + ".metadata"]

    # No metadata file at all: the wheel is read, and only if its sha256 matches.
    [metadata_file] = (repo_server.data / "tree").rglob(wheel.name + ".metadata")
    metadata_file.unlink()
    fetcher = RecordingFetcher()
    assert RepositorySource(repo_server.url, fetcher).requires_dist(unadvertised) == ("six>=1.5",)
    assert fetcher.urls == [candidate.url + ".metadata", candidate.url]
    tampered = dataclasses.replace(unadvertised, sha256="0" * 64)
    with pytest.raises(HashMismatchError, match="the index says 0000"):
        RepositorySource(repo_server.url, FETCHER).requires_dist(tampered)

    # A wheel whose bytes match the index but are no zip: a typed error, not BadZipFile.
    [wheel_file] = (repo_server.data / "tree").rglob(wheel.name)
    garbage = b"PK\x03\x04" + b"\x00" * 200
    wheel_file.write_bytes(garbage)
    damaged = dataclasses.replace(unadvertised, sha256=hashlib.sha256(garbage).hexdigest())
    with pytest.raises(RepositoryError, match="it is not a valid wheel"):
        RepositorySource(repo_server.url, FETCHER).requires_dist(damaged)


def test_resolve_against_our_server_pulls_dependencies_from_it(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    publish(repo_server, tmp_path, "res-app", "2.0", "res-lib>=1.1")
    publish(repo_server, tmp_path, "res-lib", "1.0")
    publish(repo_server, tmp_path, "res-lib", "1.2")
    plan = resolve(
        parse_requirements(["res-app"]),
        sources=[RepositorySource(repo_server.url, FETCHER)],
        installed={canonicalize_name("res-lib"): Version("1.0")},
        environment=TargetEnvironment.current(apk_available=False),
        policy=PlanPolicy(upstream_allowed=False),
    )
    assert plan.ok, plan.unsatisfiable
    assert [(s.candidate.name, str(s.candidate.version), s.action) for s in plan.steps] == [
        ("res-lib", "1.2", StepAction.UPGRADE),
        ("res-app", "2.0", StepAction.INSTALL),
    ]
    assert plan.steps[0].replaces == Version("1.0")
    assert plan.steps[0].reason == "dependency of res-app"


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


def _publish_apk(
    server: RunningServer,
    tmp_path: Path,
    name: str,
    version: str,
    *depends: str,
    arch: str = "x86_64",
    provides: tuple[str, ...] = (),
) -> None:
    from ipydeps_repo.apk.keys import load_key
    from ipydeps_repo.apk.package import ApkEntry, build_apk
    from ipydeps_repo.apk.pkginfo import PkgInfo

    (key_path,) = (server.data / "keys").glob("*.rsa")
    info = PkgInfo(
        pkgname=name,
        pkgver=version,
        arch=arch,
        pkgdesc=f"{name} fixture",
        license="MIT",
        builddate=1700000000,
        depends=depends,
        provides=provides,
    )
    data = build_apk(
        [ApkEntry.file(f"usr/share/{name}/VERSION", version.encode())], info, load_key(key_path)
    )
    path = tmp_path / f"{name}-{version}.apk"
    path.write_bytes(data)
    status, body = server.upload(path, query="branch=v3.22&repo=sci")
    assert status == 201, body


def test_apk_source_reads_our_signed_index(repo_server: RunningServer, tmp_path: Path) -> None:
    _publish_apk(
        repo_server, tmp_path, "py3-demo-app", "2.0-r1", "python3", "py3-demo-lib>=1.1", "openblas"
    )
    _publish_apk(repo_server, tmp_path, "py3-demo-lib", "1.2-r0", arch="noarch")
    _publish_apk(repo_server, tmp_path, "openblas", "0.3.28-r0")
    source = ApkRepositorySource(
        repo_server.url, FETCHER, branch="v3.22", repo="sci", arch="x86_64"
    )
    assert source.location == repo_server.url + "alpine/v3.22/sci"
    [app] = source.candidates(canonicalize_name("demo-app"))
    assert (app.route, app.version, app.apk_name, app.apk_version) == (
        Route.APK,
        Version("2.0"),
        "py3-demo-app",
        "2.0-r1",
    )
    assert app.url == repo_server.url + "alpine/v3.22/sci/x86_64/py3-demo-app-2.0-r1.apk"
    assert source.requires_dist(app) == ("demo-lib>=1.1",)
    assert list(source.candidates(canonicalize_name("openblas"))) == []
    # The planner takes both from apk on a target where apk runs.
    plan = resolve(
        parse_requirements("demo-app"),
        sources=[source],
        installed={},
        environment=TargetEnvironment.simulated(apk_available=True),
        policy=PlanPolicy(upstream_allowed=False),
    )
    assert [(s.candidate.apk_name, s.reason) for s in plan.steps] == [
        ("py3-demo-lib", "dependency of demo-app"),
        ("py3-demo-app", "requested"),
    ]
    # An arch the repository has no index for offers nothing rather than failing.
    other = ApkRepositorySource(repo_server.url, FETCHER, branch="v3.22", repo="sci", arch="s390x")
    assert list(other.candidates(canonicalize_name("demo-app"))) == []


def test_a_malformed_apk_index_is_a_repository_error_naming_it() -> None:
    # An index that is not gzip'd tar reads like a repository that cannot be read: the
    # error says which index, and pip() callers catch it as the RepositoryError it is.
    not_an_index = Scripted(body=b"<html>maintenance</html>")
    with scripted_server(not_an_index) as server:
        source = ApkRepositorySource(server.url, FETCHER, branch="v3.22", repo="sci", arch="x86_64")
        with pytest.raises(RepositoryError) as caught:
            source.candidates(canonicalize_name("numpy"))
    message = str(caught.value)
    assert (
        f"Cannot read the apk index at {server.url}alpine/v3.22/sci/x86_64/APKINDEX.tar.gz"
        in message
    )
    assert "not a gzip stream" in message and "hint: rebuild the index" in message


def test_plan_shows_every_package_apk_will_add(repo_server: RunningServer, tmp_path: Path) -> None:
    # NumPy is in the kernel's venv as a wheel, so the planner keeps it for pandas; apk
    # does not know the venv and pulls its own numpy, plus a library from Alpine.
    _publish_apk(
        repo_server,
        tmp_path,
        "py3-frame",
        "3.1-r0",
        "python3~3.12",
        "py3-arrays>=1.26",
        "so:libfast.so.2",
        "so:libc.musl-x86_64.so.1",
    )
    _publish_apk(
        repo_server,
        tmp_path,
        "py3-arrays",
        "2.5-r0",
        "python3~3.12",
        provides=("py3.12:arrays=2.5-r0",),
    )
    _publish_apk(repo_server, tmp_path, "libfast", "2.0-r1", provides=("so:libfast.so.2=2",))
    source = ApkRepositorySource(
        repo_server.url, FETCHER, branch="v3.22", repo="sci", arch="x86_64"
    )
    image = parse_installed_db(
        "P:python3\nV:3.12.12-r0\n\nP:musl\nV:1.2.5-r10\np:so:libc.musl-x86_64.so.1=1\n\n"
    )
    plan = resolve(
        parse_requirements("frame"),
        sources=[source],
        installed={canonicalize_name("arrays"): Version("2.4")},
        environment=TargetEnvironment.simulated(apk_available=True),
        policy=PlanPolicy(upstream_allowed=False),
        installed_apks=image,
    )
    assert [s.candidate.apk_name for s in plan.steps] == ["py3-frame"]
    assert [
        (a.name, a.record.version if a.record else None, a.dependency, a.location)
        for a in plan.apk_dependencies
    ] == [
        ("py3-arrays", "2.5-r0", "py3-arrays>=1.26", source.location),
        ("libfast", "2.0-r1", "so:libfast.so.2", source.location),
    ]
    table = render_text(plan).splitlines()
    host = repo_server.url.split("/")[2]
    assert table[2].split()[:5] == ["py3-arrays", "2.5-r0", "install", "apk", host]
    assert table[2].endswith("apk dependency of py3-frame (py3-arrays>=1.26)")
    assert "apk dependency of py3-frame (so:libfast.so.2)" in table[3]
    assert table[4].split()[:3] == ["py3-frame", "3.1-r0", "install"]


def test_apks_that_apk_would_refuse_together_are_refused_when_planning(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    gcc = "so:libgcc_s-0cd532bd.so.1=1"
    _publish_apk(repo_server, tmp_path, "py3-oldarrays", "2.0-r0", provides=(gcc,))
    _publish_apk(
        repo_server, tmp_path, "py3-oldframe", "3.0-r0", "py3-oldarrays>=2", provides=(gcc,)
    )
    source = ApkRepositorySource(
        repo_server.url, FETCHER, branch="v3.22", repo="sci", arch="x86_64"
    )
    plan = resolve(
        parse_requirements("oldframe"),
        sources=[source],
        installed={},
        environment=TargetEnvironment.simulated(apk_available=True),
        policy=PlanPolicy(upstream_allowed=False),
    )
    assert not plan.ok and plan.steps == ()
    [problem] = plan.unsatisfiable
    assert problem.text == "py3-oldarrays + py3-oldframe"
    assert problem.reason == "apk cannot install both: each provides so:libgcc_s-0cd532bd.so.1"
    assert problem.hint is not None and 'apk = "never"' in problem.hint


def test_sources_from_settings_follow_the_configuration() -> None:
    settings = load_config(
        environ={"IPYDEPS_REPOSITORY_URL": "http://127.0.0.1:9/repo/"}, system_path=None
    )
    sources = sources_from_settings(settings, FETCHER, arch="aarch64")
    assert [(s.route, s.location) for s in sources] == [
        (Route.APK, "http://127.0.0.1:9/repo/alpine/v3.22/sci"),
        (Route.WHEEL, "http://127.0.0.1:9/repo/simple/"),
        (Route.UPSTREAM, "https://pypi.org/simple/"),
    ]
    assert isinstance(sources[0], ApkRepositorySource) and sources[0].arch == "aarch64"
    airgapped = load_config(
        environ={
            "IPYDEPS_REPOSITORY_URL": "http://127.0.0.1:9/",
            "IPYDEPS_UPSTREAM": "deny",
            "IPYDEPS_APK": "never",
        },
        system_path=None,
    )
    assert [s.route for s in sources_from_settings(airgapped, FETCHER, arch="x86_64")] == [
        Route.WHEEL
    ]
    nothing_but_upstream = load_config(environ={}, system_path=None)
    assert [
        s.route for s in sources_from_settings(nothing_but_upstream, FETCHER, arch="x86_64")
    ] == [Route.UPSTREAM]


class RecordedFetcher:
    """Serves the recorded PyPI pages of ``six`` (tests/ipydeps/data), 404 for anything else."""

    def __init__(self) -> None:
        self.accepts: list[str | None] = []

    def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
        self.accepts.append(accept)
        if url == "https://pypi.org/simple/six/":
            return (DATA / "pypi-six.json").read_bytes()
        if "/six-" in url and url.endswith(".whl.metadata"):
            return b"Metadata-Version: 2.1\nName: six\nVersion: 1.17.0\n"
        raise NotFoundError(url)

    def download(
        self,
        url: str,
        destination: Path,
        *,
        sha256: str | None,
        progress: Callable[[int, int | None], None] | None = None,
        size: int | None = None,
    ) -> Path:
        raise AssertionError("planning never downloads to disk")


def test_planning_over_the_recorded_pypi_page() -> None:
    fetcher = RecordedFetcher()
    pypi = UpstreamSource("https://pypi.org/simple/", fetcher)
    result = resolve(
        parse_requirements(["six", "nosuchthing"]),
        sources=[pypi],
        installed={},
        environment=TargetEnvironment.simulated(python="3.12.1"),
        policy=PlanPolicy(),
    )
    [problem] = result.unsatisfiable
    assert problem.text == "nosuchthing"
    assert problem.reason == "nosuchthing was not found in https://pypi.org/simple/"
    ok = resolve(
        parse_requirements("six<1.17"),
        sources=[pypi],
        installed={},
        environment=TargetEnvironment.simulated(python="3.12.1"),
        policy=PlanPolicy(),
    )
    [step] = ok.steps
    assert step.candidate.filename == "six-1.16.0-py2.py3-none-any.whl"
    assert step.candidate.sha256 is not None and step.candidate.route is Route.UPSTREAM
    # PEP 691: JSON is asked for first, HTML accepted.
    assert fetcher.accepts[0] is not None
    assert fetcher.accepts[0].startswith("application/vnd.pypi.simple.v1+json")
