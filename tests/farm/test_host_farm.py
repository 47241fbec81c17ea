"""Host farm end to end: a tiny C extension built from its sdist, published, installed, skipped."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.farm.helpers import make_sdist, write_json_api, write_recipes
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e


def _farm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", "farm", *args],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=600,
    )


def _setup(tmp_path: Path, c_source: str | None = None) -> tuple[Path, str]:
    sdist = make_sdist(
        tmp_path / "dist", "farmdemo", "1.0", **({"c_source": c_source} if c_source else {})
    )
    write_json_api(tmp_path / "api", "farmdemo", {"1.0": sdist})
    other = make_sdist(tmp_path / "dist", "farmdemo-plus", "2.0")
    write_json_api(tmp_path / "api", "farmdemo-plus", {"2.0": other})
    apkbuilds = tmp_path / "apkbuilds"
    write_recipes(
        apkbuilds,
        {
            "py3-farmdemo": ("farmdemo", sdist, ""),
            "py3-farmdemo-plus": ("farmdemo-plus", other, "py3-farmdemo"),
        },
    )
    return apkbuilds, (tmp_path / "api").as_uri()


def _build_args(tmp_path: Path, apkbuilds: Path, api: str) -> list[str]:
    return [
        "build", "--target", "host", "--apkbuilds", str(apkbuilds), "--pypi-api", api,
        "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
        "--no-build-isolation", "--jobs", "1",
    ]  # fmt: skip


def test_build_publish_install_then_skip(tmp_path: Path, repo_server: RunningServer) -> None:
    apkbuilds, api = _setup(tmp_path)
    key = next((repo_server.data / "keys").glob("*.rsa"))
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    publish = ["--publish-url", repo_server.url, "--token", repo_server.token,
               # The apk route too: the host wheel wrapped as an apk (format-level on glibc).
               "--apk-target", f"v3.22/{python}/x86_64", "--key", str(key)]  # fmt: skip
    first = _farm(*_build_args(tmp_path, apkbuilds, api), *publish)
    assert first.returncode == 0, first.stdout + first.stderr
    # Dependency order comes from the recipes: plus depends on py3-farmdemo.
    assert first.stdout.index("py3-farmdemo: building") < first.stdout.index(
        "py3-farmdemo-plus: building"
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["status"] for r in summary["results"]] == ["built", "built"]
    wheel = summary["results"][0]["artifacts"][0]
    # Honest tag: compiled here against this system, so linux_*, never manylinux.
    assert wheel["platform_tag"].startswith("linux_")
    assert wheel["filename"].startswith("farmdemo-1.0-cp3")
    log = tmp_path / "out" / "logs" / "py3-farmdemo-host.log"
    assert "pip wheel" in log.read_text() and "native.c" in log.read_text()

    apk = summary["results"][0]["artifacts"][1]
    assert apk["filename"] == "py3-farmdemo-1.0-r0.apk" and apk["kind"] == "apk"
    status, _, body = repo_server.get(f"alpine/v3.22/sci/x86_64/{apk['filename']}")
    assert status == 200 and hashlib.sha256(body).hexdigest() == apk["sha256"]

    status, _, page = repo_server.get("simple/farmdemo/")
    assert status == 200 and wheel["filename"].encode() in page

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    venv_python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(venv_python), "-m", "pip", "install", "--index-url", repo_server.url + "simple/",
         "farmdemo==1.0"],
        capture_output=True, text=True, env=clean_pip_env(), timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    run = subprocess.run(
        [str(venv_python), "-c", "import farmdemo; print(farmdemo.sumsq([1.0, 2.0, 3.0]))"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    )  # fmt: skip
    assert run.stdout.strip() == "14.0"

    second = _farm(*_build_args(tmp_path, apkbuilds, api), *publish)
    assert second.returncode == 0, second.stderr
    assert "py3-farmdemo: 1.0 cached for host-cp" in second.stdout
    assert "building" not in second.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["status"] for r in summary["results"]] == ["skipped", "skipped"]
    assert summary["results"][0]["published"] == {
        wheel["filename"]: "already published",
        apk["filename"]: "already published",
    }


def test_recipe_change_rebuilds_and_data_dir_publishing(tmp_path: Path) -> None:
    apkbuilds, api = _setup(tmp_path)
    data = tmp_path / "data"
    args = [*_build_args(tmp_path, apkbuilds, api), "--recipe", "py3-farmdemo", "--data", str(data)]
    assert _farm(*args).returncode == 0
    published = list((data / "tree" / "files").rglob("farmdemo-1.0-*.whl"))
    assert len(published) == 1
    before = published[0].read_bytes()
    recipe = apkbuilds / "py3-farmdemo" / "APKBUILD"
    recipe.write_text(recipe.read_text().replace("pkgrel=0", "pkgrel=1"))
    again = _farm(*args)
    # A different recipe text is a different build key: built again, not skipped...
    assert "py3-farmdemo: building" in again.stdout
    assert "py3-farmdemo-plus" not in again.stdout
    # ...but the same upstream version makes a wheel of the same name with other bytes:
    # the store refuses to replace a published file silently, and the farm says so.
    assert again.returncode == 1
    assert "a different file named farmdemo-1.0-" in again.stdout
    assert published[0].read_bytes() == before


def test_failed_build_reports_log_and_blocks_dependents(tmp_path: Path) -> None:
    apkbuilds, api = _setup(tmp_path, c_source="this is not C;\n")
    result = _farm(*_build_args(tmp_path, apkbuilds, api))
    assert result.returncode == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    by_name = {r["recipe"]: r for r in summary["results"]}
    assert by_name["py3-farmdemo"]["status"] == "failed"
    assert "pip wheel exited with 1" in by_name["py3-farmdemo"]["message"]
    assert by_name["py3-farmdemo-plus"] == {
        **by_name["py3-farmdemo-plus"],
        "status": "blocked",
        "message": "needs py3-farmdemo",
    }
    log = Path(by_name["py3-farmdemo"]["log"])
    assert "error" in log.read_text().lower()
    assert summary["ok"] is False


def test_http_publisher_streams_and_reports_the_servers_refusal(
    tmp_path: Path, repo_server: RunningServer
) -> None:
    from ipydeps_repo.errors import BuildError
    from ipydeps_repo.farm.publish import HttpPublisher

    from tests.support.wheels import make_wheel

    wheel = make_wheel(tmp_path, "farmpub", "1.0")
    with pytest.raises(BuildError, match="failed: farmpub-1.0-py3-none-any.whl: invalid token"):
        HttpPublisher(repo_server.url, "wrong").publish(wheel, None)
    publisher = HttpPublisher(repo_server.url, repo_server.token)
    assert publisher.publish(wheel, None) == "created"
    assert publisher.publish(wheel, None) == "unchanged"
