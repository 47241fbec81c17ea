"""Alpine targets: a clear refusal without a Docker engine, and the abuild run the driver makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ipydeps_repo.farm.alpine import docker_run_command
from ipydeps_repo.farm.manifest import Target

from tests.farm.helpers import make_sdist, write_json_api, write_recipes

ROOT = Path(__file__).resolve().parents[2]

# A stand-in for the docker CLI (the protocol the driver talks to): `info` as the engine
# would answer, and `run ... abuild -r` writing the apks abuild would write, logging its argv.
FAKE_DOCKER = """#!{python}
import os, re, sys
from pathlib import Path
args = sys.argv[1:]
if args[:1] == ["info"]:
    if os.environ.get("FAKE_DOCKER_ENGINE") != "up":
        sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                         "Is the docker daemon running?\\n")
        sys.exit(1)
    sys.exit(0)
with open(os.environ["FAKE_DOCKER_CALLS"], "a") as calls:
    calls.write(" ".join(args) + "\\n")
volumes = [args[i + 1] for i, a in enumerate(args) if a == "--volume"]
mounts = dict(v.split(":")[1::-1] for v in volumes)
workdir = args[args.index("--workdir") + 1]
recipe = Path(mounts[workdir])
text = (recipe / "APKBUILD").read_text()
get = lambda name: re.search(rf"^{{name}}=(\\S+)", text, re.M).group(1)
name, version, release = get("pkgname"), get("pkgver"), get("pkgrel")
out = Path(mounts["/home/builder/packages"]) / "sci" / "x86_64"
out.mkdir(parents=True, exist_ok=True)
for package in (name, name + "-pyc"):
    apk = out / f"{{package}}-{{version}}-r{{release}}.apk"
    apk.write_bytes(b"apk bytes of " + package.encode())
print(">>> abuild: fake build of", name)
"""


def _fake_docker(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["FAKE_DOCKER_CALLS"] = str(tmp_path / "calls.txt")
    return env


def _farm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", "farm", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def test_without_a_docker_engine_it_says_so_and_exits_3(tmp_path: Path) -> None:
    env = _fake_docker(tmp_path)
    result = _farm(env, "build", "--target", "alpine-3.22-x86_64",
                   "--apkbuilds", str(ROOT / "apkbuilds"), "--out", str(tmp_path / "out"),
                   "--cache", str(tmp_path / "cache"))  # fmt: skip
    assert result.returncode == 3
    assert "cannot build Alpine targets: `docker info` failed (no Docker engine)" in result.stderr
    assert "Cannot connect to the Docker daemon" in result.stderr
    assert "on this machine use --target host" in result.stderr
    assert not (tmp_path / "calls.txt").exists()


def test_without_a_docker_command_it_says_so(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))
    result = _farm(env, "build", "--target", "alpine-3.22-x86_64",
                   "--apkbuilds", str(ROOT / "apkbuilds"),
                   "--out", str(tmp_path / "out"))  # fmt: skip
    assert result.returncode == 3
    assert "cannot build Alpine targets: no 'docker' command on this machine" in result.stderr


def test_abuild_runs_in_the_builder_with_key_and_outputs_mounted(tmp_path: Path) -> None:
    key = tmp_path / "farm-1a2b3c4d.rsa"
    command = docker_run_command(
        image="ipydeps-farm-builder:3.22",
        target=Target("alpine-3.22-aarch64", "alpine", "v3.22", "3.22", "3.12", "aarch64"),
        repo="sci",
        recipe="py3-numpy",
        workspace=tmp_path / "work",
        packages=tmp_path / "packages",
        key_path=key,
    )
    assert command[:3] == ["docker", "run", "--rm"]
    assert command[-3:] == ["ipydeps-farm-builder:3.22", "abuild", "-r"]
    assert command[command.index("--platform") + 1] == "linux/arm64"
    volumes = [command[i + 1] for i, arg in enumerate(command) if arg == "--volume"]
    assert f"{key}:/home/builder/.abuild/farm-1a2b3c4d.rsa:ro" in volumes
    assert f"{key}.pub:/etc/apk/keys/farm-1a2b3c4d.rsa.pub:ro" in volumes
    # abuild names the repository after the recipe's parent folder: .../aports/sci/py3-numpy.
    assert f"{tmp_path / 'work'}:/home/builder/aports/sci/py3-numpy" in volumes
    assert "PACKAGER_PRIVKEY=/home/builder/.abuild/farm-1a2b3c4d.rsa" in command


def test_alpine_build_order_collect_and_skip_with_a_docker_stand_in(tmp_path: Path) -> None:
    env = _fake_docker(tmp_path)
    env["FAKE_DOCKER_ENGINE"] = "up"
    base = make_sdist(tmp_path / "dist", "farmdemo", "1.0")
    plus = make_sdist(tmp_path / "dist", "farmdemo-plus", "2.0")
    write_json_api(tmp_path / "api", "farmdemo", {"1.0": base})
    apkbuilds = tmp_path / "apkbuilds"
    write_recipes(apkbuilds, {"py3-farmdemo-plus": ("farmdemo-plus", plus, "py3-farmdemo"),
                              "py3-farmdemo": ("farmdemo", base, "")})  # fmt: skip
    key = tmp_path / "keys" / "farm-1a2b3c4d.rsa"
    key.parent.mkdir()
    key.write_text("private")
    Path(f"{key}.pub").write_text("public")
    args = [
        "build",
        "--target",
        "alpine-3.22-x86_64",
        "--apkbuilds",
        str(apkbuilds),
        "--key",
        str(key),
        "--out",
        str(tmp_path / "out"),
        "--cache",
        str(tmp_path / "cache"),
    ]
    first = _farm(env, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert [c.split("--workdir ")[1].split()[0].rsplit("/", 1)[1] for c in calls] == [
        "py3-farmdemo", "py3-farmdemo-plus"
    ]  # fmt: skip
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    first_result = summary["results"][0]
    assert first_result["status"] == "built" and first_result["version"] == "1.0-r0"
    assert [a["filename"] for a in first_result["artifacts"]] == [
        "py3-farmdemo-1.0-r0.apk", "py3-farmdemo-pyc-1.0-r0.apk"
    ]  # fmt: skip
    log = tmp_path / "out" / "logs" / "py3-farmdemo-alpine-3.22-x86_64.log"
    assert ">>> abuild: fake build of py3-farmdemo" in log.read_text()

    second = _farm(env, *args)
    assert second.returncode == 0
    assert "py3-farmdemo: 1.0-r0 cached for alpine-3.22-x86_64, skipped" in second.stdout
    assert len((tmp_path / "calls.txt").read_text().splitlines()) == 2


def test_alpine_build_needs_the_signing_key(tmp_path: Path) -> None:
    env = _fake_docker(tmp_path)
    env["FAKE_DOCKER_ENGINE"] = "up"
    result = _farm(env, "build", "--target", "alpine-3.22-x86_64", "--recipe", "py3-numpy",
                   "--apkbuilds", str(ROOT / "apkbuilds"), "--out", str(tmp_path / "out"),
                   "--cache", str(tmp_path / "cache"))  # fmt: skip
    assert result.returncode == 1
    assert "Alpine builds need --key PATH.rsa with PATH.rsa.pub beside it" in result.stdout
