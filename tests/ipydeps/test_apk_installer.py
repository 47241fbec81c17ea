"""The apk route: one transaction through the ApkRunner protocol, and the root helper script."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from ipydeps.errors import ApkFailedError, InstallError
from ipydeps.installers.apk import (
    APK_SPEC,
    MAX_APK_SPECS,
    ApkOutcome,
    SystemApkRunner,
    apk_specs,
    install_apks,
)
from ipydeps.models import Candidate, Route, Step, StepAction

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "docker" / "ipydeps-apk-add"


class RecordingRunner:
    """A fake ``ApkRunner``: records each ``apk add`` and answers with a set outcome."""

    def __init__(self, outcome: ApkOutcome) -> None:
        self.outcome = outcome
        self.calls: list[list[str]] = []

    def add(self, specs: Sequence[str]) -> ApkOutcome:
        self.calls.append(list(specs))
        return self.outcome


def apk_step(project: str, apk_name: str, apk_version: str) -> Step:
    candidate = Candidate(
        name=canonicalize_name(project),
        version=Version(apk_version.split("-r")[0]),
        route=Route.APK,
        url=f"http://127.0.0.1/alpine/{apk_name}-{apk_version}.apk",
        filename=f"{apk_name}-{apk_version}.apk",
        apk_name=apk_name,
        apk_version=apk_version,
    )
    return Step(candidate, StepAction.INSTALL, "requested")


def test_all_apk_steps_run_in_one_transaction() -> None:
    runner = RecordingRunner(ApkOutcome(0, "OK: 3 packages"))
    install_apks(
        [apk_step("numpy", "py3-numpy", "2.3.5-r0"), apk_step("scipy", "py3-scipy", "1.16.3-r1")],
        runner,
    )
    assert runner.calls == [["py3-numpy=2.3.5-r0", "py3-scipy=1.16.3-r1"]]


def test_apk_failure_is_reported_with_its_output() -> None:
    runner = RecordingRunner(ApkOutcome(1, "ERROR: unable to select packages:\n  py3-numpy"))
    with pytest.raises(ApkFailedError) as caught:
        install_apks([apk_step("numpy", "py3-numpy", "2.3.5-r0")], runner)
    assert caught.value.returncode == 1
    assert "unable to select packages" in str(caught.value)
    assert "apk add py3-numpy=2.3.5-r0 failed with exit code 1" in str(caught.value)


@pytest.mark.parametrize(
    "hostile",
    [
        "--allow-untrusted",
        "py3-x;rm -rf /",
        "../evil",
        "py3-x $(id)",
        "Py3-Upper",
        "py3-evil.apk",
        "py3-x\n",
    ],
)
def test_hostile_apk_names_from_an_index_never_reach_apk(hostile: str) -> None:
    runner = RecordingRunner(ApkOutcome(0, ""))
    with pytest.raises(InstallError, match="not valid apk names"):
        install_apks([apk_step("x", hostile, "1.0-r0")], runner)
    assert runner.calls == []


def test_system_runner_uses_doas_and_the_helper_when_not_root() -> None:
    command = SystemApkRunner(helper="/usr/local/libexec/ipydeps-apk-add").command(
        ["py3-numpy=2.3.5-r0"]
    )
    if os.geteuid() == 0:
        assert command == ["apk", "add", "--no-cache", "--", "py3-numpy=2.3.5-r0"]
    else:
        assert command == ["doas", "-n", "/usr/local/libexec/ipydeps-apk-add", "py3-numpy=2.3.5-r0"]


@pytest.fixture
def fake_apk(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A fake ``apk`` on PATH that records its arguments, one per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apk-args"
    apk = bin_dir / "apk"
    apk.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{log}'\npwd > '{log}.cwd'\n")
    apk.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    return env, log


def run_helper(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(HELPER), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
        cwd=cwd,
    )


def test_helper_runs_one_apk_add_for_valid_names(fake_apk: tuple[dict[str, str], Path]) -> None:
    env, log = fake_apk
    done = run_helper(env, "py3-numpy=2.3.5-r0", "py3-scipy", "libstdc++")
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == [
        "add",
        "--no-cache",
        "--",
        "py3-numpy=2.3.5-r0",
        "py3-scipy",
        "libstdc++",
    ]


@pytest.mark.parametrize(
    "hostile",
    [
        "--allow-untrusted",
        "-X",
        "py3-x;id",
        "py3-x $(id)",
        "py3-x`id`",
        "../../etc/passwd",
        "/tmp/evil.apk",
        "http://evil.example/x.apk",
        "Py3-Upper",
        "py3-x=",
        "py3-x==1",
        "py3-x\nid",
        "",
        ".hidden",
        "py3-x=1.0|id",
        # apk add reads any argument containing ".apk" as a local package file.
        "evil.apk",
        "py3-numpy.apk",
        "py3-x=1.0.apk",
        "py3-x.apk.y",
        "x.APK",
    ],
)
def test_helper_refuses_hostile_names(fake_apk: tuple[dict[str, str], Path], hostile: str) -> None:
    env, log = fake_apk
    done = run_helper(env, "py3-numpy", hostile)
    assert done.returncode == 2
    assert "ipydeps-apk-add: refused" in done.stderr
    assert not log.exists()


def test_helper_runs_apk_from_the_root_directory(
    fake_apk: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    # A file named like a package in the caller's directory must mean nothing to apk.
    env, log = fake_apk
    (tmp_path / "py3-numpy").write_text("not a package")
    done = run_helper(env, "py3-numpy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(f"{log}.cwd").read_text() == "/\n"


def test_helper_needs_at_least_one_name(fake_apk: tuple[dict[str, str], Path]) -> None:
    env, log = fake_apk
    done = run_helper(env)
    assert done.returncode == 2
    assert "usage" in done.stderr
    assert not log.exists()


@pytest.mark.static
def test_helper_and_shim_are_shellcheck_clean() -> None:
    beside = Path(sys.executable).parent / "shellcheck"
    shellcheck = str(beside) if beside.exists() else "shellcheck"
    done = subprocess.run(
        [shellcheck, str(HELPER), str(ROOT / "docker" / "pip-shim")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


# One table for the client's check (APK_SPEC) and the root helper's: what one accepts, the
# other must accept too (issue 15, item 10: the client let versions starting with ".", "_",
# "+" or "-" through, which the helper then refused after every download).
SPEC_CASES = [
    ("py3-numpy", True),
    ("py3-numpy=2.3.5-r0", True),
    ("libstdc++", True),
    ("py3-x=1.0_rc1-r2", True),
    ("py3-x=1.0_p20240101-r0", True),
    ("py3-x=V1", True),
    ("py3.12-x", True),
    ("py3_x", True),
    ("a", True),
    ("0ad", True),
    ("py3-x=1+local", True),
    ("py3-x=.1", False),
    ("py3-x=_1", False),
    ("py3-x=+1", False),
    ("py3-x=-1", False),
    ("py3-x=", False),
    ("py3-x==1", False),
    ("py3-x=1=2", False),
    ("=1.0", False),
    ("Py3-x", False),
    ("-py3-x", False),
    (".py3-x", False),
    ("_x", False),
    ("+x", False),
    ("py3-x.apk", False),
    ("py3-x=1.APK", False),
    ("py3-x y", False),
    ("py3-x/y", False),
    ("py3-x\n", False),
    ("py3-x;id", False),
    ("py3-x=1.0~r1", False),
    ("", False),
]


@pytest.mark.parametrize(("spec", "accepted"), SPEC_CASES)
def test_client_and_root_helper_accept_the_same_apk_specs(
    fake_apk: tuple[dict[str, str], Path], spec: str, accepted: bool
) -> None:
    env, log = fake_apk
    helper = run_helper(env, spec)
    assert (helper.returncode == 0) is accepted, helper.stderr
    assert (APK_SPEC.fullmatch(spec) is not None) is accepted


def test_a_version_the_helper_refuses_is_refused_before_anything_is_downloaded() -> None:
    runner = RecordingRunner(ApkOutcome(0, ""))
    step = apk_step("x", "py3-x", "1-r0")
    hostile = dataclasses.replace(
        step, candidate=dataclasses.replace(step.candidate, apk_version=".1-r0")
    )
    with pytest.raises(InstallError, match="not valid apk names"):
        install_apks([hostile], runner)
    assert runner.calls == []


def test_no_more_apks_than_the_helper_takes_in_one_run(
    fake_apk: tuple[dict[str, str], Path],
) -> None:
    env, log = fake_apk
    names = [f"py3-p{index}" for index in range(MAX_APK_SPECS + 1)]
    assert run_helper(env, *names).returncode == 2
    assert run_helper(env, *names[:-1]).returncode == 0
    with pytest.raises(InstallError, match=f"at most {MAX_APK_SPECS}"):
        apk_specs([apk_step(name, name, "1.0-r0") for name in names])
    assert len(apk_specs([apk_step(name, name, "1.0-r0") for name in names[:-1]])) == 200
