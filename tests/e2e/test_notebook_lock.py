"""Notebooks that carry their environment: the lock an install writes, and what uv makes of it.

Real kernels (their notebook named in JPY_SESSION_NAME, as jupyter-server sets it), the real
repository server on 127.0.0.1, real uv.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from packaging.pylock import Pylock
from packaging.utils import parse_wheel_filename

from ipydeps.lockfile import LockedFile, LockedPackage, NotebookLock, lock_path_for, render_lock
from tests.ipydeps.test_stored_copies import routes_for
from tests.support.kernels import Kernel
from tests.support.loopback import Scripted, scripted_server
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, start_server
from tests.support.venvs import make_venv, site_packages, snapshot
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


def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(1200):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the condition did not come true within a minute")


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
    kernel, _ = start_kernel(tmp_path, {**env, **with_extension_at_start(tmp_path)})
    try:
        # A cell that changes the working folder does not move the notebook (the extension,
        # loaded at kernel start as in the runtime, noted the folder the kernel started in).
        (tmp_path / "elsewhere").mkdir()
        done = kernel.run("import os\nos.chdir('elsewhere')\n%pip install lk-rel")
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


# Restoring at kernel start: the runtime's ipython_kernel_config loads the extension.


def with_extension_at_start(work: Path) -> dict[str, str]:
    profile = work / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["ipydeps"]\n'
    )
    return {"IPYTHONDIR": str(work / "ipython")}


def write_lock(notebook: Path, wheels: list[Path], **changes: str) -> Path:
    """A lock of ``wheels`` beside ``notebook``; ``changes`` replaces a file's sha256 by name."""
    packages = []
    for wheel in wheels:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        digest = changes.get(wheel.name, sha256(wheel))
        locked = LockedFile(wheel.name, f"http://127.0.0.1:9/{wheel.name}", digest)
        packages.append(
            LockedPackage(name, str(version), None, (locked,), (name.replace("-", "_"),))
        )
    path = lock_path_for(notebook)
    path.write_text(render_lock(NotebookLock(tuple(packages))))
    return path


def test_a_new_kernel_restores_the_lock_and_imports_wait_for_it(
    repository: Repository, tmp_path: Path
) -> None:
    repository.publish("rs-dep", "1.0")
    repository.publish("rs-top", "2.0", requires=["rs-dep"])
    notebook = tmp_path / "restore me.ipynb"
    notebook.write_text("{}")
    first = tmp_path / "first"
    first.mkdir()
    env = kernel_env(repository, tmp_path, JPY_SESSION_NAME=str(notebook))
    kernel, _ = start_kernel(first, env)
    try:
        assert kernel.run("import ipydeps\n_ = ipydeps.pip(['rs-top'])").error is None
    finally:
        kernel.stop()
    assert (tmp_path / "pylock.restore-me.toml").is_file()

    # A fresh runtime (a new, empty venv) opens the same notebook.
    second = tmp_path / "second"
    second.mkdir()
    kernel, venv = start_kernel(second, {**env, **with_extension_at_start(second)})
    try:
        cell = kernel.run("import rs_top, rs_dep\nprint(rs_top.__version__, rs_dep.__version__)")
        assert cell.error is None, cell.text
        assert cell.stdout == "2.0 1.0\n"
        assert "ipydeps: restored pylock.restore-me.toml: installed rs-dep 1.0, rs-top 2.0" in (
            cell.text
        )
        # One line, updated in place: a display and its updates, nothing printed.
        assert "restor" not in cell.stdout + cell.stderr
        assert cell.kinds[0] == "display_data"
        assert set(cell.kinds[1:]) <= {"update_display_data"}
        # The next cell shows nothing of it.
        assert "restor" not in kernel.run("print('next')").text
    finally:
        kernel.stop()
    assert (site_packages(venv) / "rs_top-2.0.dist-info").is_dir()


def test_a_file_whose_hash_differs_from_the_lock_is_refused_and_nothing_is_installed(
    repository: Repository, tmp_path: Path
) -> None:
    good = repository.publish("rs-good", "1.0")
    bad = repository.publish("rs-bad", "1.0")
    notebook = tmp_path / "tampered.ipynb"
    notebook.write_text("{}")
    write_lock(notebook, [good, bad], **{bad.name: "0" * 64})
    env = kernel_env(repository, tmp_path, JPY_SESSION_NAME=str(notebook))
    venv = tmp_path / "env"
    python = make_venv(venv, see_test_packages=True)
    before = snapshot(venv)
    kernel = Kernel(python, tmp_path, {**env, **with_extension_at_start(tmp_path)})
    try:
        cell = kernel.run("import rs_good")
        assert cell.error is not None and cell.error["ename"] == "ModuleNotFoundError"
        assert "ipydeps: cannot restore pylock.tampered.toml:" in cell.text
        assert "nothing was installed" in cell.text
        # The file the lock does not allow is named.
        assert "has no file of rs-bad 1.0 with the sha256 the lock names" in cell.text
    finally:
        kernel.stop()
    assert snapshot(venv) == before


@pytest.mark.parametrize("opt_out", ["runtime", "notebook"])
def test_opting_out_restores_nothing(repository: Repository, tmp_path: Path, opt_out: str) -> None:
    wheel = repository.publish(f"rs-optout-{opt_out}", "1.0")
    notebook = tmp_path / "optout.ipynb"
    notebook.write_text("{}")
    lock = write_lock(notebook, [wheel])
    env = kernel_env(repository, tmp_path, JPY_SESSION_NAME=str(notebook))
    if opt_out == "runtime":
        env["IPYDEPS_RESTORE_LOCK"] = "0"
    else:
        lock.write_text(lock.read_text().replace("restore = true", "restore = false"))
    venv = tmp_path / "env"
    python = make_venv(venv, see_test_packages=True)
    before = snapshot(venv)
    kernel = Kernel(python, tmp_path, {**env, **with_extension_at_start(tmp_path)})
    try:
        cell = kernel.run(f"import rs_optout_{opt_out}")
        assert cell.error is not None and cell.error["ename"] == "ModuleNotFoundError"
        assert "restor" not in cell.text
    finally:
        kernel.stop()
    assert snapshot(venv) == before


@pytest.mark.parametrize("first_cell", ["import", "install"])
def test_the_first_cell_waits_for_a_restore_under_way(tmp_path: Path, first_cell: str) -> None:
    wheel = make_wheel(tmp_path, "rs-slow", "1.0")
    routes = routes_for(wheel, None)
    # The wheel arrives slowly: the restore is still downloading when the first cell runs.
    routes[f"/files/{wheel.name}"] = Scripted(body=wheel.read_bytes(), trickle=0.004)
    notebook = tmp_path / "slow.ipynb"
    notebook.write_text("{}")
    write_lock(notebook, [wheel])
    with scripted_server(routes=routes) as server:
        env = {
            "IPYDEPS_REPOSITORY_URL": server.url,
            "IPYDEPS_UPSTREAM": "deny",
            "IPYDEPS_APK": "never",
            "IPYDEPS_STORED_COPIES": "never",
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "JPY_SESSION_NAME": str(notebook),
        }
        kernel, _ = start_kernel(tmp_path, {**env, **with_extension_at_start(tmp_path)})
        try:
            wait_until(lambda: f"/files/{wheel.name}" in server.requests)
            if first_cell == "import":
                cell = kernel.run(
                    "import rs_slow\nprint(rs_slow.__version__, rs_slow.__spec__.origin)"
                )
                assert cell.error is None, cell.text
                version, origin = cell.stdout.split()
                assert version == "1.0" and origin.endswith("site-packages/rs_slow/__init__.py")
                # The line said the restore was under way, then was updated in place.
                assert "restoring pylock.slow.toml (1 package(s))" in str(cell.displays[0])
                assert cell.kinds[0] == "display_data"
                assert set(cell.kinds[1:]) == {"update_display_data"}
            else:
                # An install during the restore waits for it, then has nothing left to do.
                cell = kernel.run("import ipydeps\nprint(ipydeps.pip(['rs-slow']).summary())")
                assert cell.error is None, cell.text
                assert "waiting for the restore of pylock.slow.toml" in cell.text
                assert "Nothing to install" in cell.text
            assert "ipydeps: restored pylock.slow.toml: installed rs-slow 1.0" in cell.text
        finally:
            kernel.stop()
        assert server.requests.count(f"/files/{wheel.name}") == 1


def test_a_restore_never_asks_the_upstream_index(repository: Repository, tmp_path: Path) -> None:
    # The lock names a package our repository does not have; upstream is allowed for
    # installs, but a lock may come with any notebook, so its restore reads ours only.
    elsewhere = make_wheel(tmp_path, "rs-upstream-only", "1.0")
    notebook = tmp_path / "upstream.ipynb"
    notebook.write_text("{}")
    write_lock(notebook, [elsewhere])
    with scripted_server(routes=routes_for(elsewhere, None)) as upstream:
        env = kernel_env(repository, tmp_path, JPY_SESSION_NAME=str(notebook))
        env |= {"IPYDEPS_UPSTREAM": "allow", "IPYDEPS_UPSTREAM_URL": upstream.url + "simple/"}
        kernel, _ = start_kernel(tmp_path, {**env, **with_extension_at_start(tmp_path)})
        try:
            cell = kernel.run("import rs_upstream_only")
            assert cell.error is not None and cell.error["ename"] == "ModuleNotFoundError"
            assert "ipydeps: cannot restore pylock.upstream.toml:" in cell.text
        finally:
            kernel.stop()
        assert upstream.requests == []


def test_a_lock_that_is_not_a_regular_file_is_refused_without_blocking(
    repository: Repository, tmp_path: Path
) -> None:
    notebook = tmp_path / "fifo.ipynb"
    notebook.write_text("{}")
    os.mkfifo(tmp_path / "pylock.fifo.toml")  # reading it would block the kernel's start
    env = kernel_env(repository, tmp_path, JPY_SESSION_NAME=str(notebook))
    kernel, _ = start_kernel(tmp_path, {**env, **with_extension_at_start(tmp_path)})
    try:
        cell = kernel.run("print('started')")
        assert cell.stdout == "started\n"
        assert "cannot restore pylock.fifo.toml: pylock.fifo.toml is not a regular file" in (
            cell.text
        )
    finally:
        kernel.stop()


def test_bytes_that_differ_from_the_locked_hash_are_refused_and_nothing_is_installed(
    tmp_path: Path,
) -> None:
    good = make_wheel(tmp_path, "rs-fine", "1.0")
    bad = make_wheel(tmp_path, "rs-swapped", "1.0")
    routes = {**routes_for(good, None), **routes_for(bad, None)}
    # The index and the lock agree on the hash; the server sends other bytes.
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    routes[f"/files/{bad.name}"] = Scripted(body=bytes(data))
    notebook = tmp_path / "swapped.ipynb"
    notebook.write_text("{}")
    write_lock(notebook, [good, bad])
    venv = tmp_path / "env"
    python = make_venv(venv, see_test_packages=True)
    before = snapshot(venv)
    with scripted_server(routes=routes) as server:
        env = {
            "IPYDEPS_REPOSITORY_URL": server.url,
            "IPYDEPS_UPSTREAM": "deny",
            "IPYDEPS_APK": "never",
            "IPYDEPS_RETRIES": "0",
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "JPY_SESSION_NAME": str(notebook),
        }
        kernel = Kernel(python, tmp_path, {**env, **with_extension_at_start(tmp_path)})
        try:
            cell = kernel.run("import rs_fine")
            assert cell.error is not None and cell.error["ename"] == "ModuleNotFoundError"
            assert "ipydeps: cannot restore pylock.swapped.toml:" in cell.text
            assert "sha256" in cell.text and "nothing was installed" in cell.text
        finally:
            kernel.stop()
    assert snapshot(venv) == before


def test_a_lock_that_cannot_be_updated_is_a_warning_and_the_install_stands(
    repository: Repository, tmp_path: Path
) -> None:
    repository.publish("lk-warned", "1.0")
    notebook = tmp_path / "broken.ipynb"
    notebook.write_text("{}")
    (tmp_path / "pylock.broken.toml").write_text("this is not [toml\n")
    env = kernel_env(repository, tmp_path, JPY_SESSION_NAME=str(notebook))
    kernel, _ = start_kernel(tmp_path, env)
    try:
        done = kernel.run("import ipydeps\nr = ipydeps.pip(['lk-warned'])\nprint(r.warnings)")
        assert done.error is None, done.text
        assert "pylock.broken.toml was not updated" in done.stdout
        assert kernel.run("import lk_warned").error is None
    finally:
        kernel.stop()
    assert (tmp_path / "pylock.broken.toml").read_text() == "this is not [toml\n"


@pytest.mark.parametrize("named", [True, False], ids=["lab-names-the-session", "path-only"])
def test_jupyter_server_starts_the_kernel_and_it_restores_the_notebooks_lock(
    repository: Repository, tmp_path: Path, named: bool
) -> None:
    # jupyter-server itself sets JPY_SESSION_NAME: absolute when the session has a name
    # (JupyterLab's requests), else the path relative to the server's root.
    wheel = repository.publish(f"rs-served-{named}".lower(), "1.0")
    root = tmp_path / "root"
    notebook = root / "course" / "week 1.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.write_text(json.dumps(nbformat.v4.new_notebook()))
    write_lock(notebook, [wheel])
    venv = tmp_path / "env"
    python = make_venv(venv, see_test_packages=True)
    spec = tmp_path / "jupyter" / "kernels" / "throwaway"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))
    env = clean_pip_env(
        **kernel_env(repository, tmp_path),
        **with_extension_at_start(tmp_path),
        JUPYTER_PATH=str(tmp_path / "jupyter"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        JUPYTER_TOKEN="test-token-not-secret",
    )
    env.pop("JPY_SESSION_NAME", None)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}",
            "--allow-root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stderr is not None
        url = next(
            match.group(1)
            for line in server.stderr
            if (match := re.search(r"(http://127\.0\.0\.1:\d+/)", line))
        )
        threading.Thread(target=server.stderr.read, daemon=True).start()
        session = {"path": "course/week 1.ipynb", "type": "notebook"}
        session |= {"name": "week 1.ipynb"} if named else {}
        request = urllib.request.Request(
            url + "api/sessions",
            data=json.dumps({**session, "kernel": {"name": "throwaway"}}).encode(),
            headers={"Authorization": "token test-token-not-secret"},
            method="POST",
        )
        for _ in range(600):  # the server may log its URL a moment before it accepts
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    assert response.status == 201
                break
            except urllib.error.URLError as error:
                if not isinstance(error.reason, ConnectionRefusedError):
                    raise
                time.sleep(0.05)
        installed = site_packages(venv) / f"rs_served_{str(named).lower()}-1.0.dist-info"
        wait_until(installed.is_dir)  # no cell ran: the kernel restored the lock at its start
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_a_dependency_the_lock_does_not_name_is_said_and_nothing_is_installed(
    repository: Repository, tmp_path: Path
) -> None:
    repository.publish("rs-unlocked-dep", "1.0")
    top = repository.publish("rs-needs", "1.0", requires=["rs-unlocked-dep"])
    notebook = tmp_path / "partial.ipynb"
    notebook.write_text("{}")
    write_lock(notebook, [top])  # as if another notebook had installed the dependency
    env = kernel_env(repository, tmp_path, JPY_SESSION_NAME=str(notebook))
    venv = tmp_path / "env"
    python = make_venv(venv, see_test_packages=True)
    before = snapshot(venv)
    kernel = Kernel(python, tmp_path, {**env, **with_extension_at_start(tmp_path)})
    try:
        cell = kernel.run("import rs_needs")
        assert cell.error is not None and cell.error["ename"] == "ModuleNotFoundError"
        assert "cannot restore pylock.partial.toml: rs-unlocked-dep: the lock does not name it" in (
            cell.text
        )
        assert "nothing was installed" in cell.text
        assert "run the notebook's install cells again" in cell.text
    finally:
        kernel.stop()
    assert snapshot(venv) == before
