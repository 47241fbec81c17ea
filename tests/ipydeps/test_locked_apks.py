"""A notebook's lock and apks: recorded by an install, restored through one ``apk add``.

The real repository server on 127.0.0.1 serves signed apks and wheels; apk itself is a
fake ``ApkRunner`` (this machine has no apk) that records what it was asked to add.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from ipydeps_repo.apk.keys import load_key
from ipydeps_repo.apk.package import ApkEntry, build_apk
from ipydeps_repo.apk.pkginfo import PkgInfo
from packaging.pylock import Pylock
from packaging.version import Version

from ipydeps.apkclosure import InstalledApks
from ipydeps.fetch import HttpFetcher, RetryPolicy
from ipydeps.formats.apkindex import ApkIndexRecord
from ipydeps.installers.apk import ApkOutcome
from ipydeps.locked import LockMismatchError
from ipydeps.locked_apks import plan_locked_apks
from ipydeps.lockfile import LockedApk, NotebookLock, lock_path_for, parse_lock, render_lock
from ipydeps.restore import ImportWait, Restore, install_lock, restore_wanted
from ipydeps.settings import Settings, load_config
from ipydeps.sources import ApkRepositorySource
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer
from tests.support.venvs import make_venv, run_python, site_packages, snapshot
from tests.support.wheels import make_wheel

ARCH = "x86_64"
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


class RecordingApkRunner:
    """A fake ``ApkRunner``: records each ``apk add`` and answers with a set exit code."""

    def __init__(self, returncode: int = 0, output: str = "OK") -> None:
        self.returncode = returncode
        self.output = output
        self.calls: list[list[str]] = []

    def add(self, specs: Sequence[str]) -> ApkOutcome:
        self.calls.append(list(specs))
        return ApkOutcome(self.returncode, self.output)


def publish_apk(
    server: RunningServer, directory: Path, name: str, version: str, depends: tuple[str, ...] = ()
) -> None:
    (key_path,) = (server.data / "keys").glob("*.rsa")
    info = PkgInfo(pkgname=name, pkgver=version, arch=ARCH, depends=depends, builddate=1)
    data = build_apk(
        [ApkEntry.file(f"usr/share/{name}/VERSION", version.encode())], info, load_key(key_path)
    )
    path = directory / f"{name}-{version}.apk"
    path.write_bytes(data)
    status, body = server.upload(path, query="branch=v3.22&repo=sci")
    assert status == 201, body


@pytest.fixture
def published(repo_server: RunningServer, tmp_path: Path) -> RunningServer:
    """py3-apkdemo (NumPy's part: a Python project as an apk) needs the library apk
    libapkdemo; the wheel uses-apkdemo needs the project apkdemo."""
    apks = tmp_path / "apks"
    apks.mkdir()
    publish_apk(repo_server, apks, "libapkdemo", "1.0-r0")
    publish_apk(repo_server, apks, "py3-apkdemo", "1.5-r0", depends=("libapkdemo",))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    status, body = repo_server.upload(
        make_wheel(wheels, "uses-apkdemo", "1.0", requires=("apkdemo",))
    )
    assert status == 201, body
    return repo_server


def index_checksums(server: RunningServer) -> dict[str, str]:
    """``name-version`` -> the ``C:`` checksum our APKINDEX gives, read as the client reads it."""
    fetcher = HttpFetcher(retry=RetryPolicy(attempts=1))
    source = ApkRepositorySource(server.url, fetcher, branch="v3.22", repo="sci", arch=ARCH)
    return {f"{r.name}-{r.version}": r.checksum for r in source.index_records()}


def index_installed_sizes(server: RunningServer) -> dict[str, int]:
    """``name-version`` -> the installed size (``I:``) our APKINDEX gives."""
    fetcher = HttpFetcher(retry=RetryPolicy(attempts=1))
    source = ApkRepositorySource(server.url, fetcher, branch="v3.22", repo="sci", arch=ARCH)
    return {f"{r.name}-{r.version}": r.installed_size for r in source.index_records()}


def settings_for(server: RunningServer) -> Settings:
    return load_config(
        environ={"IPYDEPS_REPOSITORY_URL": server.url, "IPYDEPS_UPSTREAM": "deny"},
        system_path=None,
        user_path=None,
    )


# An install from a notebook, in its own interpreter (prefix None: what records a lock).
# The fake apk puts py3-apkdemo's Python project in place as the real apk would.
INSTALL_FROM_NOTEBOOK = """
import io, json, os, pathlib, sysconfig
from ipydeps.installers.apk import ApkOutcome
os.environ["JPY_SESSION_NAME"] = {notebook!r}
class Runner:
    calls = []
    def add(self, specs):
        self.calls.append(list(specs))
        site = pathlib.Path(sysconfig.get_paths()["purelib"])
        (site / "apkdemo").mkdir()
        (site / "apkdemo" / "__init__.py").write_text("")
        info = site / "apkdemo-1.5.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\\nName: apkdemo\\nVersion: 1.5\\n")
        (info / "RECORD").write_text("apkdemo/__init__.py,,\\n")
        return ApkOutcome(0, "OK")
runner = Runner()
import ipydeps
result = ipydeps.pip(["uses-apkdemo"], index_url={url!r}, upstream="deny", apk_runner=runner,
                     stream=io.StringIO())
print(json.dumps({{"calls": runner.calls,
                   "routes": {{item.name: item.route for item in result.installed}},
                   "on_disk": {{item.name: item.on_disk for item in result.installed}},
                   "summary": result.summary()}}))
"""


def test_an_install_from_a_notebook_locks_the_apks_it_added(
    published: RunningServer, tmp_path: Path
) -> None:
    notebook = tmp_path / "apks.ipynb"
    notebook.write_text("{}")
    python = make_venv(tmp_path / "env", see_test_packages=True)
    ran = run_python(
        python, INSTALL_FROM_NOTEBOOK.format(notebook=str(notebook), url=published.url)
    )
    assert ran.returncode == 0, ran.stderr
    outcome = json.loads(ran.stdout.splitlines()[-1])
    assert outcome["calls"] == [["py3-apkdemo=1.5-r0"]]  # apk adds libapkdemo itself
    assert outcome["routes"] == {"apkdemo": "apk", "uses-apkdemo": "wheel"}
    # What the apk takes on disk is its index's installed size (I:), so the total is said.
    sizes = index_installed_sizes(published)
    assert outcome["on_disk"]["apkdemo"] == sizes["py3-apkdemo-1.5-r0"] > 0
    assert " on disk)" in outcome["summary"], outcome["summary"]
    text = lock_path_for(notebook).read_text()
    document = tomllib.loads(text)
    Pylock.from_dict(document)  # still valid PEP 751
    assert [package["name"] for package in document["packages"]] == ["uses-apkdemo"]
    checksums = index_checksums(published)
    repository = f"{published.url.rstrip('/')}/alpine/v3.22/sci"
    # The requested apk and the closure apk added for it, each with our index's checksum.
    assert sorted(document["tool"]["ipydeps"]["apks"], key=lambda apk: apk["name"]) == [
        {
            "name": "libapkdemo",
            "version": "1.0-r0",
            "checksum": checksums["libapkdemo-1.0-r0"],
            "repository": repository,
            "arch": ARCH,
            "top-level": [],
        },
        {
            "name": "py3-apkdemo",
            "version": "1.5-r0",
            "checksum": checksums["py3-apkdemo-1.5-r0"],
            "repository": repository,
            "arch": ARCH,
            "top-level": ["apkdemo"],  # what it installed: an import of it waits for a restore
        },
    ]
    assert checksums["libapkdemo-1.0-r0"].startswith("Q1")
    lock = parse_lock(text, where="x")
    waits = ImportWait(Restore(lock_path_for(notebook), lock, settings_for(published)))
    assert waits.names == {"apkdemo", "uses_apkdemo"}
    # uv reads past the tool table and installs the wheels part.
    if UV is not None:
        fresh = make_venv(tmp_path / "fresh")
        env = clean_pip_env(UV_CACHE_DIR=str(tmp_path / "uv-cache"))
        command = [UV, "pip", "install", "--python", str(fresh), "-r", lock_path_for(notebook)]
        uv = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert uv.returncode == 0, uv.stderr
        assert (site_packages(tmp_path / "fresh") / "uses_apkdemo").is_dir()


def test_a_lock_of_apks_only_is_restored(published: RunningServer, tmp_path: Path) -> None:
    notebook = tmp_path / "only apks.ipynb"
    notebook.write_text("{}")
    lock = NotebookLock((), apks=(locked_apk(published, "py3-apkdemo", "1.5-r0"),))
    lock_path_for(notebook).write_text(render_lock(lock))
    wanted = restore_wanted(settings_for(published), {"JPY_SESSION_NAME": str(notebook)})
    assert wanted == (lock_path_for(notebook), lock)


def locked_apk(
    server: RunningServer, name: str, version: str, changes: dict[str, str] | None = None
) -> LockedApk:
    """The apk as an install locks it; ``changes`` alters fields (the index did not)."""
    checksum = index_checksums(server)[f"{name}-{version}"]
    repository = f"{server.url.rstrip('/')}/alpine/v3.22/sci"
    return replace(LockedApk(name, version, checksum, repository, ARCH), **(changes or {}))


def wheel_lock(published: RunningServer, tmp_path: Path, *apks: LockedApk) -> NotebookLock:
    """The lock an install of uses-apkdemo wrote (its wheel part), with ``apks``."""
    notebook = tmp_path / "book.ipynb"
    notebook.write_text("{}")
    python = make_venv(tmp_path / "writer", see_test_packages=True)
    ran = run_python(
        python, INSTALL_FROM_NOTEBOOK.format(notebook=str(notebook), url=published.url)
    )
    assert ran.returncode == 0, ran.stderr
    written = parse_lock(lock_path_for(notebook).read_text(), where="x")
    return replace(written, apks=apks)


def test_a_restore_adds_exactly_the_locked_apks_before_the_wheels(
    published: RunningServer, tmp_path: Path
) -> None:
    lock = wheel_lock(
        published,
        tmp_path,
        locked_apk(published, "py3-apkdemo", "1.5-r0"),
        locked_apk(published, "libapkdemo", "1.0-r0"),
    )
    make_venv(tmp_path / "env")
    runner = RecordingApkRunner()
    installed = install_lock(
        lock, settings_for(published), apk_runner=runner, prefix=tmp_path / "env"
    )
    # One apk transaction of the locked versions; the wheel's need of apkdemo is met by it.
    assert runner.calls == [["py3-apkdemo=1.5-r0", "libapkdemo=1.0-r0"]]
    assert installed == ["py3-apkdemo 1.5-r0", "libapkdemo 1.0-r0", "uses-apkdemo 1.0"]
    assert (site_packages(tmp_path / "env") / "uses_apkdemo").is_dir()


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"checksum": "Q1" + "A" * 27 + "="}, "not the locked Q1AAAA"),
        ({"version": "1.4-r0"}, "py3-apkdemo 1.4-r0: "),
    ],
    ids=["checksum", "version"],
)
def test_a_locked_apk_the_index_no_longer_has_is_refused_and_nothing_is_installed(
    published: RunningServer, tmp_path: Path, changes: dict[str, str], said: str
) -> None:
    lock = wheel_lock(
        published,
        tmp_path,
        locked_apk(published, "py3-apkdemo", "1.5-r0", changes),
        locked_apk(published, "libapkdemo", "1.0-r0"),
    )
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    runner = RecordingApkRunner()
    with pytest.raises(LockMismatchError, match=said) as raised:
        install_lock(lock, settings_for(published), apk_runner=runner, prefix=tmp_path / "env")
    assert "no such apk" in str(raised.value) or "checksum" in str(raised.value)
    assert runner.calls == []  # apk was never run
    assert snapshot(tmp_path / "env") == before  # and no wheel went in


def test_apk_refusing_the_locked_apks_leaves_the_wheels_uninstalled(
    published: RunningServer, tmp_path: Path
) -> None:
    lock = wheel_lock(published, tmp_path, locked_apk(published, "py3-apkdemo", "1.5-r0"))
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    runner = RecordingApkRunner(1, "ERROR: BAD signature")
    with pytest.raises(Exception, match="BAD signature"):
        install_lock(lock, settings_for(published), apk_runner=runner, prefix=tmp_path / "env")
    assert runner.calls == [["py3-apkdemo=1.5-r0"]]
    assert snapshot(tmp_path / "env") == before


def test_a_lock_with_apks_where_apk_is_turned_off_says_so(
    published: RunningServer, tmp_path: Path
) -> None:
    lock = NotebookLock((), apks=(locked_apk(published, "py3-apkdemo", "1.5-r0"),))
    settings = replace(settings_for(published), apk="never")
    runner = RecordingApkRunner()
    with pytest.raises(LockMismatchError, match=r"names apks \(py3-apkdemo 1.5-r0\).*turned off"):
        install_lock(lock, settings, apk_runner=runner, prefix=tmp_path)
    assert runner.calls == []


def test_a_lock_entry_of_apks_missing_a_field_is_a_clear_error(
    published: RunningServer,
) -> None:
    lock = NotebookLock((), apks=(locked_apk(published, "py3-apkdemo", "1.5-r0"),))
    text = render_lock(lock)
    assert parse_lock(text, where="x") == lock
    broken = text.replace('checksum = "', 'sum = "')
    with pytest.raises(Exception, match="lacks one of name, version, checksum"):
        parse_lock(broken, where="x")


def test_a_locked_apk_installed_at_its_version_is_not_added_again_but_still_counts() -> None:
    records = [
        ApkIndexRecord("Q1" + "B" * 27 + "=", "py3-apkdemo", "1.5-r0", ARCH, depends=("libx",)),
        ApkIndexRecord("Q1" + "C" * 27 + "=", "libx", "1.0-r0", ARCH),
    ]
    apks = [
        LockedApk(record.name, record.version, record.checksum, "http://127.0.0.1:9/a", ARCH)
        for record in records
    ]
    plan = plan_locked_apks(
        apks,
        records,
        repository_url="http://127.0.0.1:9/alpine/v3.22/sci",
        arch=ARCH,
        installed=InstalledApks({"py3-apkdemo": "1.5-r0", "libx": "0.9-r0"}),
        apk_map={},
    )
    assert [(s.candidate.apk_name, s.candidate.apk_version) for s in plan.steps] == [
        ("libx", "1.0-r0")
    ]
    assert plan.provided == {"apkdemo": Version("1.5")}
