"""pip() and plan execution in-process against the real server, into a throwaway prefix."""

from __future__ import annotations

import gc
import io
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from ipydeps_repo.apk.keys import load_key
from ipydeps_repo.apk.package import ApkEntry, build_apk
from ipydeps_repo.apk.pkginfo import PkgInfo

import ipydeps
from ipydeps.errors import ApkFailedError, DownloadError
from ipydeps.fetch import HttpFetcher, RetryPolicy
from ipydeps.installers.apk import ApkOutcome
from ipydeps.progress import PackageProgress
from tests.support.server import RunningServer
from tests.support.venvs import make_venv, run_python, snapshot
from tests.support.wheels import make_wheel


class InterruptingFetcher:
    """A ``Fetcher`` that reads through HttpFetcher but fails the n-th download."""

    def __init__(self, fail_on: int, error: BaseException) -> None:
        self.inner = HttpFetcher(retry=RetryPolicy(attempts=1))
        self.fail_on = fail_on
        self.error = error
        self.downloads = 0

    def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
        return self.inner.get_bytes(url, accept=accept)

    def download(
        self,
        url: str,
        destination: Path,
        *,
        sha256: str | None,
        progress: Callable[[int, int | None], None] | None = None,
        size: int | None = None,
    ) -> Path:
        self.downloads += 1
        if self.downloads == self.fail_on:
            raise self.error
        return self.inner.download(url, destination, sha256=sha256, progress=progress, size=size)


class RecordingProgress:
    """A ``Progress`` that keeps every state change per package."""

    def __init__(self) -> None:
        self.states: dict[str, list[str]] = {}
        self.summary = ""

    def start(self, packages: list[PackageProgress]) -> None:
        self.states = {package.name: [package.state] for package in packages}

    def update(
        self,
        name: str,
        *,
        state: str | None = None,
        done: int | None = None,
        total: int | None = None,
        fetching: str | None = None,
    ) -> None:
        if state is not None and self.states[name][-1] != state:
            self.states[name].append(state)

    def finish(self, summary: str) -> None:
        self.summary = summary

    def retrying(self, name: str, text: str) -> None:
        self.states[name].append(f"retrying: {text}")


@pytest.fixture
def published(repo_server: RunningServer, tmp_path: Path) -> RunningServer:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, version, requires in (
        ("one-pkg", "1.0", ()),
        ("two-pkg", "1.0", ()),
        ("top-pkg", "1.0", ("one-pkg", "two-pkg")),
    ):
        status, body = repo_server.upload(make_wheel(wheels, name, version, requires=requires))
        assert status == 201, body
    return repo_server


def test_pip_into_a_prefix_reports_what_it_did(published: RunningServer, tmp_path: Path) -> None:
    python = make_venv(tmp_path / "env")
    out = io.StringIO()
    result = ipydeps.pip(
        ["top-pkg"], index_url=published.url, upstream="deny", prefix=tmp_path / "env", stream=out
    )
    assert sorted((item.name, item.version, item.route) for item in result.installed) == [
        ("one-pkg", "1.0", "wheel"),
        ("top-pkg", "1.0", "wheel"),
        ("two-pkg", "1.0", "wheel"),
    ]
    assert result.installed[-1].name == "top-pkg"  # dependencies first
    source = published.url.split("//", 1)[1].rstrip("/")
    assert all(item.source == source and item.bytes > 0 for item in result.installed)
    assert "top-pkg 1.0 (wheel from" in repr(result)
    assert "<table>" in result._repr_html_()
    assert "dependency of top-pkg" in out.getvalue()  # the plan was printed first
    assert run_python(python, "import top_pkg, one_pkg, two_pkg").returncode == 0


def test_quiet_prints_nothing(published: RunningServer, tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    out = io.StringIO()
    ipydeps.pip(
        ["one-pkg"],
        index_url=published.url,
        upstream="deny",
        prefix=tmp_path / "env",
        stream=out,
        quiet=True,
    )
    assert out.getvalue() == ""


@pytest.mark.parametrize("error", [KeyboardInterrupt(), DownloadError("http://x/", "boom")])
def test_failure_in_a_download_thread_changes_nothing(
    published: RunningServer, tmp_path: Path, error: BaseException
) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    fetcher = InterruptingFetcher(fail_on=2, error=error)
    with pytest.raises(type(error)):
        ipydeps.pip(
            ["top-pkg"],
            index_url=published.url,
            upstream="deny",
            prefix=tmp_path / "env",
            fetcher=fetcher,
            stream=io.StringIO(),
        )
    assert snapshot(tmp_path / "env") == before


class GcObservingFetcher(InterruptingFetcher):
    """Records whether the cyclic garbage collector was on during each download."""

    def __init__(self) -> None:
        super().__init__(fail_on=0, error=RuntimeError())
        self.collector_on: list[bool] = []

    def download(
        self,
        url: str,
        destination: Path,
        *,
        sha256: str | None,
        progress: Callable[[int, int | None], None] | None = None,
        size: int | None = None,
    ) -> Path:
        self.collector_on.append(gc.isenabled())
        return super().download(url, destination, sha256=sha256, progress=progress, size=size)


@pytest.mark.parametrize("fail", [False, True])
def test_collector_is_paused_while_installing_and_restored_after(
    published: RunningServer, tmp_path: Path, fail: bool
) -> None:
    make_venv(tmp_path / "env")
    fetcher = GcObservingFetcher()
    if fail:
        fetcher.fail_on, fetcher.error = 1, DownloadError("http://x/", "boom")
    assert gc.isenabled()
    try:
        ipydeps.pip(
            ["top-pkg"],
            index_url=published.url,
            upstream="deny",
            prefix=tmp_path / "env",
            fetcher=fetcher,
            stream=io.StringIO(),
        )
    except DownloadError:
        assert fail
    assert fetcher.collector_on and not any(fetcher.collector_on)
    assert gc.isenabled()


def test_progress_goes_through_every_state(published: RunningServer, tmp_path: Path) -> None:
    from ipydeps.api import execute_plan, resolve  # the same functions pip() composes
    from ipydeps.environment import inspect_environment
    from ipydeps.environment_model import PlanPolicy, TargetEnvironment
    from ipydeps.requirements import parse_requirements
    from ipydeps.settings import load_config
    from ipydeps.sources import sources_from_settings

    make_venv(tmp_path / "env")
    fetcher = HttpFetcher()
    settings = load_config(
        overrides={"repository_url": published.url, "upstream": "deny"},
        environ={},
        system_path=None,
    )
    environment = inspect_environment(tmp_path / "env", apk=False)
    plan = resolve(
        parse_requirements(["top-pkg"]),
        sources=sources_from_settings(settings, fetcher, arch="x86_64"),
        installed=environment.installed,
        environment=TargetEnvironment.current(apk_available=False),
        policy=PlanPolicy(upstream_allowed=False, apk_allowed=False),
    )
    progress = RecordingProgress()
    execution = execute_plan(
        plan, scheme=environment.scheme, fetcher=fetcher, apk_runner=None, progress=progress
    )
    assert len(execution.wheels) == 3
    for states in progress.states.values():
        assert states == [
            "queued",
            "downloading",
            "verified",
            "unpacked",
            "installing",
            "installed",
        ]


class RecordingApkRunner:
    """A fake ``ApkRunner``: records each ``apk add`` and answers with a set exit code."""

    def __init__(self, returncode: int = 0, output: str = "OK") -> None:
        self.returncode = returncode
        self.output = output
        self.calls: list[list[str]] = []

    def add(self, specs: Sequence[str]) -> ApkOutcome:
        self.calls.append(list(specs))
        return ApkOutcome(self.returncode, self.output)


def publish_apk(server: RunningServer, directory: Path, name: str, version: str) -> None:
    (key_path,) = (server.data / "keys").glob("*.rsa")
    info = PkgInfo(
        pkgname=name,
        pkgver=version,
        arch="x86_64",
        pkgdesc="fixture",
        url="https://example.org",
        license="MIT",
        builddate=1700000000,
    )
    data = build_apk(
        [ApkEntry.file(f"usr/share/{name}/VERSION", version.encode())], info, load_key(key_path)
    )
    path = directory / f"{name}-{version}.apk"
    path.write_bytes(data)
    status, body = server.upload(path, query="branch=v3.22&repo=sci")
    assert status == 201, body


def test_apk_and_wheel_steps_together(published: RunningServer, tmp_path: Path) -> None:
    publish_apk(published, tmp_path, "py3-apkdemo", "1.5-r0")
    make_venv(tmp_path / "env")
    runner = RecordingApkRunner()
    result = ipydeps.pip(
        ["apkdemo", "one-pkg"],
        index_url=published.url,
        upstream="deny",
        prefix=tmp_path / "env",
        apk_runner=runner,
        stream=io.StringIO(),
    )
    assert runner.calls == [["py3-apkdemo=1.5-r0"]]  # one apk transaction
    routes = {item.name: item.route for item in result.installed}
    assert routes == {"apkdemo": "apk", "one-pkg": "wheel"}


def test_apk_refusal_leaves_the_wheels_uninstalled(
    published: RunningServer, tmp_path: Path
) -> None:
    publish_apk(published, tmp_path, "py3-apkdemo", "1.5-r0")
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    runner = RecordingApkRunner(1, "ERROR: unable to select packages: py3-apkdemo")
    with pytest.raises(ApkFailedError, match="unable to select packages"):
        ipydeps.pip(
            ["apkdemo", "one-pkg"],
            index_url=published.url,
            upstream="deny",
            prefix=tmp_path / "env",
            apk_runner=runner,
            stream=io.StringIO(),
        )
    assert runner.calls == [["py3-apkdemo=1.5-r0"]]
    assert snapshot(tmp_path / "env") == before


class FailingCommitProgress(RecordingProgress):
    """A ``Progress`` whose hook, called as each wheel is moved into place, raises ``error``.

    The commit calls it inside its rename loop, so the error stands for a rename that
    fails after ``apk add`` succeeded (a full disk, an interrupt).
    """

    def __init__(self, wheel: str, error: BaseException) -> None:
        super().__init__()
        self.wheel = wheel
        self.error = error

    def update(
        self,
        name: str,
        *,
        state: str | None = None,
        done: int | None = None,
        total: int | None = None,
        fetching: str | None = None,
    ) -> None:
        if name == self.wheel and state == "installing":
            raise self.error
        super().update(name, state=state, done=done, total=total, fetching=fetching)


def _mixed_plan(server: RunningServer, environment: object) -> object:
    from ipydeps.api import resolve
    from ipydeps.environment_model import PlanPolicy, TargetEnvironment
    from ipydeps.requirements import parse_requirements
    from ipydeps.settings import load_config
    from ipydeps.sources import sources_from_settings

    settings = load_config(
        overrides={"repository_url": server.url, "upstream": "deny"}, environ={}, system_path=None
    )
    return resolve(
        parse_requirements(["apkdemo", "top-pkg"]),
        sources=sources_from_settings(settings, HttpFetcher(), arch="x86_64"),
        installed=environment.installed,  # type: ignore[attr-defined]
        environment=TargetEnvironment.current(apk_available=True),
        policy=PlanPolicy(upstream_allowed=False),
    )


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_commit_failing_after_apk_rolls_the_wheels_back_and_names_the_apks_kept(
    published: RunningServer, tmp_path: Path, error: BaseException
) -> None:
    from ipydeps.api import execute_plan
    from ipydeps.environment import inspect_environment
    from ipydeps.errors import PartialInstallError

    publish_apk(published, tmp_path, "py3-apkdemo", "1.5-r0")
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    environment = inspect_environment(tmp_path / "env", apk=True)
    plan = _mixed_plan(published, environment)
    runner = RecordingApkRunner()
    # two-pkg is committed second (dependencies first, by name): one-pkg is in place by then.
    progress = FailingCommitProgress("two-pkg", error)
    expected = PartialInstallError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as caught:
        execute_plan(
            plan,
            scheme=environment.scheme,
            fetcher=HttpFetcher(),  # type: ignore[arg-type]
            apk_runner=runner,
            progress=progress,
        )
    assert runner.calls == [["py3-apkdemo=1.5-r0"]]
    assert snapshot(tmp_path / "env") == before
    if isinstance(caught.value, PartialInstallError):
        assert caught.value.apk_packages == ["py3-apkdemo=1.5-r0"]
        assert "apk installed py3-apkdemo=1.5-r0, then installing the wheels failed" in str(
            caught.value
        )
        assert "No space left on device" in str(caught.value)
        assert "run the same install again" in str(caught.value)
    else:
        assert caught.value.__notes__ == [
            "apk had already installed py3-apkdemo=1.5-r0; those stay installed, the wheels "
            "were rolled back"
        ]


class SignallingRenamer:
    """Renames as ``os.rename``; after rename ``at`` this process gets SIGINT (Ctrl-C)."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.count = 0

    def rename(self, source: Path, destination: Path) -> None:
        os.rename(source, destination)
        self.count += 1
        if self.count == self.at:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_during_a_commit_after_apk_waits_for_it_and_says_all_is_installed(
    published: RunningServer, tmp_path: Path
) -> None:
    from ipydeps.api import execute_plan
    from ipydeps.environment import inspect_environment

    publish_apk(published, tmp_path, "py3-apkdemo", "1.5-r0")
    python = make_venv(tmp_path / "env")
    environment = inspect_environment(tmp_path / "env", apk=True)
    runner = RecordingApkRunner()
    with pytest.raises(KeyboardInterrupt) as caught:
        execute_plan(
            _mixed_plan(published, environment),  # type: ignore[arg-type]
            scheme=environment.scheme,
            fetcher=HttpFetcher(),
            apk_runner=runner,
            progress=RecordingProgress(),
            renamer=SignallingRenamer(1),
        )
    # Held until the commit was whole: the wheels are in place, and the note says so
    # (not that they were rolled back, as for a failure after apk).
    assert caught.value.__notes__ == [
        "ipydeps: the interrupt came during the commit, which was finished first: the "
        "wheels are installed"
    ]
    assert runner.calls == [["py3-apkdemo=1.5-r0"]]
    assert run_python(python, "import top_pkg, one_pkg, two_pkg").returncode == 0


def test_apk_failure_says_what_apk_said_and_that_no_wheel_landed(
    published: RunningServer, tmp_path: Path
) -> None:
    publish_apk(published, tmp_path, "py3-apkdemo", "1.5-r0")
    make_venv(tmp_path / "env")
    conflict = (
        "ERROR: unable to select packages:\n  py3-scipy-1.18.1-r0:\n"
        "    conflicts: py3-numpy-2.5.5-r0[so:libgcc_s-0cd532bd.so.1=1]"
    )
    with pytest.raises(ApkFailedError) as caught:
        ipydeps.pip(
            ["apkdemo", "one-pkg"],
            index_url=published.url,
            upstream="deny",
            prefix=tmp_path / "env",
            apk_runner=RecordingApkRunner(1, conflict),
            stream=io.StringIO(),
        )
    assert "No wheel of this install was installed." in str(caught.value)
    assert caught.value.hint is not None and "/etc/apk/keys" not in caught.value.hint
    assert "cannot install these packages together" in caught.value.hint


class TerminalStream(io.StringIO):
    """A text stream that says it is a terminal, as stderr is in an interactive shell."""

    def isatty(self) -> bool:
        return True


def test_terminal_progress_is_one_line_redrawn(published: RunningServer, tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    out = TerminalStream()
    ipydeps.pip(
        ["top-pkg"], index_url=published.url, upstream="deny", prefix=tmp_path / "env", stream=out
    )
    plan_text, _, progress = out.getvalue().partition("\r")
    assert "top-pkg" in plan_text
    # Redraws use carriage returns; the only newline ends the final summary line.
    assert progress.count("\n") == 1 and progress.endswith("\n")
    assert "3/3 installed" in progress
    summary = progress.rstrip("\n").split("\r")[-1]
    assert summary.startswith("Installed ") and "top-pkg 1.0 (wheel from" in summary
