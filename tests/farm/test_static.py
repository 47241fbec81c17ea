"""Static checks: shellcheck on every APKBUILD, hadolint on every Dockerfile, actionlint on CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
APKBUILDS = sorted(ROOT.glob("apkbuilds/*/APKBUILD"))
DOCKERFILES = sorted(ROOT.glob("docker/*.Dockerfile"))
WORKFLOWS = sorted(ROOT.glob(".github/workflows/*.yml"))


def _tool(name: str) -> str:
    """Find a linter installed by the test extra (beside this Python first, then on PATH)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' provides it")
    return found


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # actionlint runs shellcheck on `run:` scripts when it finds it on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_there_is_something_to_check() -> None:
    assert {p.parent.name for p in APKBUILDS} >= {"py3-numpy", "py3-scipy", "py3-pandas"}
    assert ROOT / "docker" / "builder.Dockerfile" in DOCKERFILES
    assert ROOT / ".github" / "workflows" / "farm.yml" in WORKFLOWS


@pytest.mark.parametrize("recipe", APKBUILDS, ids=lambda p: p.parent.name)
def test_shellcheck_apkbuild(recipe: Path) -> None:
    # apkbuilds/.shellcheckrc declares busybox sh and abuild's own variables.
    result = _run(_tool("shellcheck"), str(recipe.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_config_still_catches_real_problems(tmp_path: Path) -> None:
    # The same .shellcheckrc, applied to a recipe with real mistakes, must still fail.
    shutil.copy(ROOT / "apkbuilds" / ".shellcheckrc", tmp_path / ".shellcheckrc")
    (tmp_path / "py3-probe").mkdir()
    probe = tmp_path / "py3-probe" / "APKBUILD"
    probe.write_text("pkgname=py3-probe\nbuild() {\n\tcd $builddir\n}\n")
    result = subprocess.run(
        [_tool("shellcheck"), "APKBUILD"], capture_output=True, text=True, cwd=probe.parent
    )
    assert result.returncode == 1
    assert "SC2164" in result.stdout and "SC2086" in result.stdout
    assert "SC2154" not in result.stdout and "SC2034" not in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_dockerfile(dockerfile: Path) -> None:
    result = _run(_tool("hadolint"), str(dockerfile.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_workflow(workflow: Path) -> None:
    result = _run(_tool("actionlint"), str(workflow.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_actions_are_pinned_by_commit() -> None:
    for workflow in WORKFLOWS:
        for line in workflow.read_text().splitlines():
            if "uses:" in line and not line.strip().startswith("#"):
                reference = line.split("uses:", 1)[1].split("#", 1)[0].strip()
                if reference.startswith("./"):
                    continue
                pin = reference.rsplit("@", 1)[-1]
                assert len(pin) == 40 and all(c in "0123456789abcdef" for c in pin), line
