"""The farm's musl target, short path: a C extension sdist built for musl with zig, used on musl.

``ipydeps-repo farm build --target musl-...`` builds a tiny C-extension sdist (made here) on the
musl harness's CPython with PyPI's zig compilers, checks its links, and publishes it to the real
server as a ``musllinux_1_2`` wheel and as an apk. Then the apk is resolved from the server's
APKINDEX with the planner's own resolver, laid out under a system site-packages (a copy of the
harness prefix standing for /usr) and imported; and pip installs the wheel from the server's
index into a musl venv. The heavy builds (OpenBLAS, NumPy, pandas, scikit-learn) run the same
code under ``-m slow`` (tests/musl/test_musl_science.py). Skips only with IPYDEPS_SKIP_MUSL=1.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ipydeps.apkclosure import InstalledApks, resolve_apks
from ipydeps.formats.apkindex import parse_apkindex, read_apkindex_archive
from tests.farm.helpers import make_sdist, write_json_api, write_recipes
from tests.support.musl import CACHE, link_copy, python_version
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer

pytestmark = [pytest.mark.musl, pytest.mark.e2e, pytest.mark.network, pytest.mark.timeout(1800)]

TARGET = "musl-cp311-x86_64"


def _manifest_target(python: str) -> str:
    return (
        f'\n[[targets]]\nname = "{TARGET}"\nkind = "musl"\nbranch = "v3.22"\n'
        f'python = "{python}"\narch = "x86_64"\n'
    )


def _farm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", "farm", *args],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
    )


def _lay_out(apk: bytes, prefix: Path) -> list[str]:
    """Extract an apk's files as apk would under /usr, with ``prefix`` standing for /usr."""
    names = []
    with (
        gzip.GzipFile(fileobj=io.BytesIO(apk)) as stream,
        tarfile.open(fileobj=stream, mode="r|", ignore_zeros=True) as archive,
    ):
        for member in archive:
            if member.name.startswith(".") or member.name == "usr":
                continue
            assert member.name.startswith("usr/"), member.name
            member.name = member.name.removeprefix("usr/")
            names.append(member.name)
            archive.extract(member, prefix, filter="data")
    return names


def test_c_extension_built_for_musl_published_resolved_and_imported(
    musl_python: Path, repo_server: RunningServer, tmp_path: Path
) -> None:
    version = python_version(musl_python)
    sdist = make_sdist(tmp_path / "dist", "muslsum", "1.0")
    write_json_api(tmp_path / "api", "muslsum", {"1.0": sdist})
    apkbuilds = tmp_path / "apkbuilds"
    write_recipes(apkbuilds, {"py3-muslsum": ("muslsum", sdist, "")})
    with (apkbuilds / "manifest.toml").open("a") as manifest:
        manifest.write(_manifest_target(version))
    key = next((repo_server.data / "keys").glob("*.rsa"))
    # zig builds musl's libc and compiler-rt once per cache: share that part across runs.
    zig_cache = CACHE / "zig-cache"
    zig_cache.mkdir(parents=True, exist_ok=True)
    toolchain = tmp_path / "cache" / "musl" / "x86_64" / "toolchain"
    toolchain.mkdir(parents=True)
    (toolchain / "zig-cache").symlink_to(zig_cache)
    done = _farm(
        "build", "--target", TARGET, "--apkbuilds", str(apkbuilds),
        "--pypi-api", (tmp_path / "api").as_uri(), "--musl-python", str(musl_python),
        "--key", str(key), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
        "--publish-url", repo_server.url, "--token", repo_server.token,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (result,) = json.loads((tmp_path / "out" / "summary.json").read_text())["results"]
    assert result["status"] == "built"
    # No OpenBLAS was built: this recipe does not makedepend on openblas-dev.
    assert "openblas" not in done.stdout
    wheel, apk = result["artifacts"]
    assert (
        wheel["filename"] == f"muslsum-1.0-cp{version.replace('.', '')}-cp"
        f"{version.replace('.', '')}-musllinux_1_2_x86_64.whl"
    )
    assert apk["filename"] == "py3-muslsum-1.0-r0.apk"

    status, _, index = repo_server.get("alpine/v3.22/sci/x86_64/APKINDEX.tar.gz")
    assert status == 200
    records = parse_apkindex(read_apkindex_archive(index)[1])
    resolution = resolve_apks([("py3-muslsum", "")], records, InstalledApks())
    assert resolution.conflicts == ()
    external = {a.dependency for a in resolution.additions if a.record is None}
    assert external == {f"python3~{version}"}
    status, _, apk_bytes = repo_server.get("alpine/v3.22/sci/x86_64/py3-muslsum-1.0-r0.apk")
    assert status == 200

    system = link_copy(musl_python.parent.parent, tmp_path / "usr")
    files = _lay_out(apk_bytes, system)
    assert any(name.endswith("-linux-musl.so") for name in files), files
    venv = tmp_path / "venv"
    subprocess.run([str(system / "bin" / "python3"), "-m", "venv", "--system-site-packages",
                    str(venv)], check=True, env=clean_pip_env())  # fmt: skip
    code = "import muslsum; print(muslsum.sumsq([1.0, 2.0, 3.0]), muslsum.__file__)"
    ran = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, env=clean_pip_env())  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    answer, module_file = ran.stdout.split()
    assert answer == "14.0" and module_file.startswith(str(system / "lib"))

    # The wheel route: pip on musl takes the musllinux wheel from our index.
    wheel_venv = tmp_path / "wheel-venv"
    subprocess.run([str(musl_python), "-m", "venv", str(wheel_venv)], check=True,
                   env=clean_pip_env())  # fmt: skip
    # The harness's bundled pip 22.3 trips over PEP 658 metadata links; a current one does not.
    subprocess.run([str(wheel_venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "pip>=23.1"], check=True, env=clean_pip_env())  # fmt: skip
    installed = subprocess.run(
        [str(wheel_venv / "bin" / "python"), "-m", "pip", "install", "--only-binary", ":all:",
         "--index-url", repo_server.url + "simple/", "muslsum==1.0"],
        capture_output=True, text=True, env=clean_pip_env(),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    ran = subprocess.run([str(wheel_venv / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, env=clean_pip_env())  # fmt: skip
    assert ran.returncode == 0 and ran.stdout.split()[0] == "14.0", ran.stderr
