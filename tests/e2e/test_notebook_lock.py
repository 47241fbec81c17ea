"""Notebooks that carry their environment: the lock an install writes, and what uv makes of it.

Real kernels (their notebook named in JPY_SESSION_NAME, as jupyter-server sets it), the real
repository server on 127.0.0.1, real uv.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from tests.support.kernels import Kernel
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, start_server
from tests.support.venvs import make_venv
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.e2e

UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


@dataclass
class Repository:
    server: RunningServer
    wheels: Path

    def publish(self, name: str, version: str, **options: object) -> Path:
        wheel = make_wheel(self.wheels, name, version, **options)  # type: ignore[arg-type]
        status, body = self.server.upload(wheel)
        assert status == 201, body
        return wheel


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    work = tmp_path_factory.mktemp("lock-repo")
    server = start_server(work / "data")
    (work / "wheels").mkdir()
    try:
        yield Repository(server, work / "wheels")
    finally:
        server.stop()


def kernel_env(repository: Repository, home: Path, **extra: str) -> dict[str, str]:
    return {
        "IPYDEPS_REPOSITORY_URL": repository.server.url,
        "IPYDEPS_UPSTREAM": "deny",
        "IPYDEPS_APK": "never",
        "IPYDEPS_RETRIES": "1",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        **extra,
    }


def start_kernel(work: Path, env: dict[str, str]) -> tuple[Kernel, Path]:
    """A kernel on a fresh throwaway venv, run in ``work``; returns it and the venv."""
    venv = work / "env"
    python = make_venv(venv, see_test_packages=True)
    return Kernel(python, work, env), venv


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_install_writes_the_lock_beside_the_notebook(
    repository: Repository, tmp_path: Path
) -> None:
    dep = repository.publish("lk-dep", "1.1")
    top = repository.publish("lk-top", "1.0", requires=["lk-dep>=1"])
    notebook = tmp_path / "analysis.v2.ipynb"
    notebook.write_text("{}")
    env = kernel_env(repository, tmp_path, JPY_SESSION_NAME=str(notebook))
    kernel, _ = start_kernel(tmp_path, env)
    try:
        done = kernel.run("import ipydeps\n_ = ipydeps.pip(['lk-top'])")
        assert done.error is None, done.text
        lock = tmp_path / "pylock.analysis-v2.toml"
        document = tomllib.loads(lock.read_text())
        pylock = Pylock.from_dict(document)
        assert [(p.name, str(p.version)) for p in pylock.packages] == [
            ("lk-dep", "1.1"),
            ("lk-top", "1.0"),
        ]
        for package, wheel in zip(pylock.packages, (dep, top), strict=True):
            (locked,) = package.wheels or ()
            assert locked.hashes == {"sha256": sha256(wheel)}
            assert locked.url and locked.url.startswith(repository.server.url)
            assert locked.size == wheel.stat().st_size
            assert package.index == repository.server.url + "simple/"
        assert document["packages"][1]["tool"]["ipydeps"]["top-level"] == ["lk_top"]
        assert document["tool"]["ipydeps"]["repository"] == repository.server.url

        # A later install merges: the lock is the union, the newest install of a project wins.
        repository.publish("lk-other", "3.0")
        newer = repository.publish("lk-dep", "1.2")
        done = kernel.run("_ = ipydeps.pip(['lk-other', 'lk-dep==1.2'])")
        assert done.error is None, done.text
        pylock = Pylock.from_dict(tomllib.loads(lock.read_text()))
        versions = {p.name: str(p.version) for p in pylock.packages}
        assert versions == {"lk-dep": "1.2", "lk-top": "1.0", "lk-other": "3.0"}
        (locked,) = next(p for p in pylock.packages if p.name == "lk-dep").wheels or ()
        assert locked.hashes == {"sha256": sha256(newer)}
        assert not list(tmp_path.glob(".pylock.*"))  # no temporary file left behind
    finally:
        kernel.stop()


def test_a_relative_session_name_is_the_notebook_in_the_kernels_folder(
    repository: Repository, tmp_path: Path
) -> None:
    repository.publish("lk-rel", "1.0")
    (tmp_path / "Relative Book.ipynb").write_text("{}")
    # Without a name from the front end, the server root's relative path; the kernel runs
    # in the notebook's folder.
    env = kernel_env(repository, tmp_path, JPY_SESSION_NAME="course/week1/Relative Book.ipynb")
    kernel, _ = start_kernel(tmp_path, env)
    try:
        done = kernel.run("%load_ext ipydeps\n%pip install lk-rel")
        assert done.error is None, done.text
        lock = tmp_path / "pylock.Relative-Book.toml"
        assert [p.name for p in Pylock.from_dict(tomllib.loads(lock.read_text())).packages] == [
            "lk-rel"
        ]
    finally:
        kernel.stop()


def test_no_notebook_no_lock(repository: Repository, tmp_path: Path) -> None:
    repository.publish("lk-none", "1.0")
    # A console session, and a notebook name that does not exist.
    for session in ("console-1", "missing.ipynb"):
        work = tmp_path / session
        work.mkdir()
        kernel, _ = start_kernel(work, kernel_env(repository, work, JPY_SESSION_NAME=session))
        try:
            done = kernel.run("import ipydeps\n_ = ipydeps.pip(['lk-none'])")
            assert done.error is None, done.text
            assert not list(work.glob("pylock*")), session
        finally:
            kernel.stop()


@pytest.mark.skipif(UV is None, reason="uv is not installed in the test venv")
def test_uv_installs_the_lock(repository: Repository, tmp_path: Path) -> None:
    repository.publish("lk-uv-dep", "2.0")
    repository.publish("lk-uv", "1.0", requires=["lk-uv-dep"])
    notebook = tmp_path / "uv.ipynb"
    notebook.write_text("{}")
    kernel, _ = start_kernel(
        tmp_path, kernel_env(repository, tmp_path, JPY_SESSION_NAME=str(notebook))
    )
    try:
        assert kernel.run("import ipydeps\n_ = ipydeps.pip(['lk-uv'])").error is None
    finally:
        kernel.stop()
    fresh = make_venv(tmp_path / "fresh")
    env = clean_pip_env(UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_NO_CONFIG="1")
    installed = subprocess.run(
        [str(UV), "pip", "install", "--python", str(fresh), "-r", "pylock.uv.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    probe = subprocess.run(
        [
            str(fresh),
            "-c",
            "import lk_uv, lk_uv_dep; print(lk_uv.__version__, lk_uv_dep.__version__)",
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        check=False,
    )
    assert probe.stdout == "1.0 2.0\n", probe.stderr
