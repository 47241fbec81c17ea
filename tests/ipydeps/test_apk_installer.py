"""The apk route: one transaction through the ApkRunner protocol, and the root helper script."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from ipydeps.errors import ApkFailedError, InstallError
from ipydeps.installers.apk import ApkOutcome, SystemApkRunner, install_apks
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
        name=canonicalize_name(project), version=Version(apk_version.split("-r")[0]),
        route=Route.APK, url=f"http://127.0.0.1/alpine/{apk_name}-{apk_version}.apk",
        filename=f"{apk_name}-{apk_version}.apk", apk_name=apk_name, apk_version=apk_version)
    return Step(candidate, StepAction.INSTALL, "requested")


def test_all_apk_steps_run_in_one_transaction() -> None:
    runner = RecordingRunner(ApkOutcome(0, "OK: 3 packages"))
    install_apks([apk_step("numpy", "py3-numpy", "2.3.5-r0"),
                  apk_step("scipy", "py3-scipy", "1.16.3-r1")], runner)
    assert runner.calls == [["py3-numpy=2.3.5-r0", "py3-scipy=1.16.3-r1"]]


def test_apk_failure_is_reported_with_its_output() -> None:
    runner = RecordingRunner(ApkOutcome(1, "ERROR: unable to select packages:\n  py3-numpy"))
    with pytest.raises(ApkFailedError) as caught:
        install_apks([apk_step("numpy", "py3-numpy", "2.3.5-r0")], runner)
    assert caught.value.returncode == 1
    assert "unable to select packages" in str(caught.value)
    assert "apk add py3-numpy=2.3.5-r0 failed with exit code 1" in str(caught.value)


@pytest.mark.parametrize("hostile", ["--allow-untrusted", "py3-x;rm -rf /", "../evil",
                                     "py3-x $(id)", "Py3-Upper", "py3-evil.apk", "py3-x\n"])
def test_hostile_apk_names_from_an_index_never_reach_apk(hostile: str) -> None:
    runner = RecordingRunner(ApkOutcome(0, ""))
    with pytest.raises(InstallError, match="not valid apk names"):
        install_apks([apk_step("x", hostile, "1.0-r0")], runner)
    assert runner.calls == []


def test_system_runner_uses_doas_and_the_helper_when_not_root() -> None:
    command = SystemApkRunner(helper="/usr/local/libexec/ipydeps-apk-add").command(
        ["py3-numpy=2.3.5-r0"])
    if os.geteuid() == 0:
        assert command == ["apk", "add", "--no-cache", "--", "py3-numpy=2.3.5-r0"]
    else:
        assert command == ["doas", "-n", "/usr/local/libexec/ipydeps-apk-add",
                           "py3-numpy=2.3.5-r0"]


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


def run_helper(env: dict[str, str], *args: str,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", str(HELPER), *args], capture_output=True, text=True,
                          env=env, timeout=30, check=False, cwd=cwd)


def test_helper_runs_one_apk_add_for_valid_names(fake_apk: tuple[dict[str, str], Path]) -> None:
    env, log = fake_apk
    done = run_helper(env, "py3-numpy=2.3.5-r0", "py3-scipy", "libstdc++")
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == ["add", "--no-cache", "--", "py3-numpy=2.3.5-r0",
                                            "py3-scipy", "libstdc++"]


@pytest.mark.parametrize("hostile", [
    "--allow-untrusted", "-X", "py3-x;id", "py3-x $(id)", "py3-x`id`", "../../etc/passwd",
    "/tmp/evil.apk", "http://evil.example/x.apk", "Py3-Upper", "py3-x=", "py3-x==1",
    "py3-x\nid", "", ".hidden", "py3-x=1.0|id",
    # apk add reads any argument containing ".apk" as a local package file.
    "evil.apk", "py3-numpy.apk", "py3-x=1.0.apk", "py3-x.apk.y", "x.APK",
])
def test_helper_refuses_hostile_names(fake_apk: tuple[dict[str, str], Path],
                                      hostile: str) -> None:
    env, log = fake_apk
    done = run_helper(env, "py3-numpy", hostile)
    assert done.returncode == 2
    assert "ipydeps-apk-add: refused" in done.stderr
    assert not log.exists()


def test_helper_runs_apk_from_the_root_directory(fake_apk: tuple[dict[str, str], Path],
                                                 tmp_path: Path) -> None:
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
    done = subprocess.run([shellcheck, str(HELPER), str(ROOT / "docker" / "pip-shim")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
