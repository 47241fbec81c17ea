"""An interrupt or a kill at any rename of a commit leaves the environment before or after it.

Issue 15, item 6: a SIGINT between a rename and its record left two dist-infos of one
project, and a rollback that met a non-empty directory deleted the backup. Here a real
upgrade of three packages (1.0 -> 2.0, one with a console script) in a real venv stops
after each rename in turn (tests/support/commit_faults.py: a fault-injecting ``Renamer``
passed through the installer's protocol), and is then interrupted (SIGINT) or killed
(SIGKILL). Its files, RECORDs and ``pip list`` must be exactly those before the upgrade
or after it: at once for SIGINT (the commit finishes first), after the next ipydeps call
(the CLI's ``plan``) for SIGKILL.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import ipydeps
from ipydeps.environment import install_scheme
from ipydeps.errors import InstallError
from ipydeps.installers.journal import recover_interrupted
from ipydeps.installers.transaction import WheelTransaction
from tests.support.loopback import Scripted, ScriptedServer, scripted_server
from tests.support.pipenv import clean_pip_env
from tests.support.venvs import make_venv, real_pip, site_packages, snapshot
from tests.support.wheels import make_wheel, wheel_metadata

ROOT = Path(__file__).resolve().parents[2]
JSON = "application/vnd.pypi.simple.v1+json"
PROJECTS = ("tx-alpha", "tx-beta", "tx-gamma")
UPGRADE = [f"{name}==2.0" for name in PROJECTS]


def _wheel(directory: Path, name: str, version: str) -> Path:
    module = name.replace("-", "_")
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n",
        f"{module}/only_{version.replace('.', '_')}.py": "HERE = True\n",
    }
    if name == "tx-gamma":  # a console script: the commit also renames in bin/
        files[f"{module}-{version}.dist-info/entry_points.txt"] = (
            f"[console_scripts]\ntx-gamma = {module}:main\n"
        )
        files[f"{module}/__init__.py"] += "def main():\n    print(__version__)\n"
    return make_wheel(directory, name, version, files=files)


def _routes(wheels: list[Path]) -> dict[str, Scripted]:
    routes: dict[str, Scripted] = {}
    pages: dict[str, list[dict[str, object]]] = {}
    for wheel in wheels:
        data, metadata = wheel.read_bytes(), wheel_metadata(wheel)
        project = wheel.name.split("-")[0].replace("_", "-")
        pages.setdefault(project, []).append(
            {
                "filename": wheel.name,
                "url": f"/files/{wheel.name}",
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "size": len(data),
                "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
            }
        )
        routes[f"/files/{wheel.name}"] = Scripted(body=data)
        routes[f"/files/{wheel.name}.metadata"] = Scripted(body=metadata)
    for project, files in pages.items():
        page = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
        routes[f"/simple/{project}/"] = Scripted(body=json.dumps(page).encode(), content_type=JSON)
    return routes


@dataclass
class Upgrade:
    """A venv with the 1.0s installed (kept as a template), and its state after the upgrade."""

    server: ScriptedServer
    env: Path
    template: Path
    before: dict[str, bytes | None]
    after: dict[str, bytes | None]
    listed_before: str
    listed_after: str
    renames: int

    def restore(self) -> None:
        shutil.rmtree(self.env)
        shutil.copytree(self.template, self.env, symlinks=True)

    def start(self, stop_at: int, where: str = "main") -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.commit_faults",
                self.server.url,
                str(self.env),
                str(stop_at),
                where,
                *UPGRADE,
            ],
            cwd=ROOT,
            env=clean_pip_env(PYTHONPATH=str(ROOT)),
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def listed(self) -> str:
        done = real_pip(self.env / "bin" / "python", "list", "--format=freeze")
        assert done.returncode == 0, done.stderr
        return "\n".join(line for line in done.stdout.splitlines() if line.startswith("tx-"))


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgrade]:
    work = tmp_path_factory.mktemp("torn")
    wheels = [_wheel(work, name, version) for name in PROJECTS for version in ("1.0", "2.0")]
    env = work / "env"
    make_venv(env)
    with scripted_server(routes=_routes(wheels)) as server:
        ipydeps.pip(
            [f"{name}==1.0" for name in PROJECTS],
            index_url=server.url,
            upstream="deny",
            prefix=env,
            stream=io.StringIO(),
        )
        template = work / "template"
        shutil.copytree(env, template, symlinks=True)
        state = Upgrade(server, env, template, snapshot(env), {}, "", "", 0)
        state.listed_before = state.listed()
        process = state.start(0)
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        state.renames = int(out.split("renames: ")[1])
        state.after, state.listed_after = snapshot(env), state.listed()
        assert state.listed_before == "tx-alpha==1.0\ntx-beta==1.0\ntx-gamma==1.0"
        assert state.listed_after == "tx-alpha==2.0\ntx-beta==2.0\ntx-gamma==2.0"
        yield state


def _stop_at(upgrade: Upgrade, position: int, where: str = "main") -> subprocess.Popen[str]:
    upgrade.restore()
    process = upgrade.start(position, where)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line == f"renamed {position}\n", (line, process.communicate(timeout=60))
    return process


@pytest.mark.e2e
def test_sigint_at_any_rename_lets_the_commit_finish_first(upgrade: Upgrade) -> None:
    assert upgrade.renames >= 14  # 4 per package, and the script moved aside and replaced
    for position in range(1, upgrade.renames + 1):
        process = _stop_at(upgrade, position)
        assert process.stdin is not None
        process.send_signal(signal.SIGINT)
        process.stdin.write("\n")  # the commit goes on from the rename it stopped after
        process.stdin.flush()
        _, err = process.communicate(timeout=120)
        assert process.returncode == 130, (position, err)
        assert "the interrupt came during the commit, which was finished first" in err
        assert snapshot(upgrade.env) == upgrade.after, position
        assert upgrade.listed() == upgrade.listed_after, position


@pytest.mark.e2e
def test_sigkill_at_any_rename_is_undone_by_the_next_ipydeps_call(upgrade: Upgrade) -> None:
    for position in range(1, upgrade.renames + 1):
        process = _stop_at(upgrade, position)
        process.kill()
        process.communicate(timeout=60)
        assert snapshot(upgrade.env) not in (upgrade.before, upgrade.after)  # torn, for now
        later = subprocess.run(
            [
                str(sys.executable),
                "-m",
                "ipydeps",
                "plan",
                "tx-alpha",
                "--upstream",
                "deny",
                "-i",
                upgrade.server.url,
                "--prefix",
                str(upgrade.env),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
            env=clean_pip_env(PYTHONPATH=str(ROOT), HOME=str(upgrade.env)),
        )
        assert later.returncode == 0, (position, later.stderr)
        assert "was cut off mid-commit" in later.stdout, (position, later.stdout)
        assert snapshot(upgrade.env) == upgrade.before, position
        assert upgrade.listed() == upgrade.listed_before, position


@pytest.mark.e2e
def test_sigint_while_another_thread_commits(upgrade: Upgrade) -> None:
    # Only the main thread can hold SIGINT, and only it receives KeyboardInterrupt: the
    # interrupt stops the main thread's wait, and the install's thread commits whole.
    process = _stop_at(upgrade, upgrade.renames // 2, where="thread")
    assert process.stdin is not None
    process.send_signal(signal.SIGINT)
    process.stdin.write("\n")
    process.stdin.flush()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "signal only works in main thread" not in err
    assert snapshot(upgrade.env) == upgrade.after
    assert upgrade.listed() == upgrade.listed_after


@pytest.mark.e2e
def test_interrupting_a_kernel_during_the_commit_lets_it_finish(
    upgrade: Upgrade, tmp_path: Path
) -> None:
    """The notebook's stop button (SIGINT to the kernel's main thread) mid-commit."""
    from tests.support.kernels import Kernel

    python = make_venv(tmp_path / "kernel-env", see_test_packages=True)
    upgrade.restore()
    marker, go = tmp_path / "stopped", tmp_path / "go"
    kernel = Kernel(python, tmp_path, {"HOME": str(tmp_path)})
    try:
        assert (
            kernel.run(
                "from pathlib import Path\n"
                "from tests.support.commit_faults import FileStoppingRenamer, upgrade"
            ).error
            is None
        )
        message = kernel.client.execute(
            f"upgrade({upgrade.server.url!r}, Path({str(upgrade.env)!r}), "
            f"FileStoppingRenamer({upgrade.renames // 2}, Path({str(marker)!r}), "
            f"Path({str(go)!r})), {UPGRADE!r})"
        )
        pause = threading.Event()
        for _ in range(1200):  # the cell downloads and stages first: a minute at most
            if marker.exists():
                break
            pause.wait(0.05)
        assert marker.exists(), "the commit never reached the chosen rename"
        kernel.manager.interrupt_kernel()
        go.touch()
        reply = kernel.client.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != message:
            reply = kernel.client.get_shell_msg(timeout=60)
    finally:
        kernel.stop()
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert "which was finished first" in "\n".join(reply["content"]["traceback"])
    assert snapshot(upgrade.env) == upgrade.after
    assert upgrade.listed() == upgrade.listed_after


# The rollback: idempotent, and it never deletes the only copy.


class FailingRenamer:
    """Renames as ``os.rename``; the ``fail_at``-th rename raises ``OSError`` instead."""

    def __init__(self, fail_at: int, before_failing: object = None) -> None:
        self.fail_at = fail_at
        self.count = 0
        self.before_failing = before_failing

    def rename(self, source: Path, destination: Path) -> None:
        self.count += 1
        if self.count == self.fail_at:
            if callable(self.before_failing):
                self.before_failing()
            raise OSError(28, "No space left on device")
        os.rename(source, destination)


def _installed(tmp_path: Path) -> tuple[Path, list[Path]]:
    env = tmp_path / "env"
    make_venv(env)
    old = [_wheel(tmp_path, name, "1.0") for name in PROJECTS]
    (tmp_path / "new").mkdir()
    new = [_wheel(tmp_path / "new", name, "2.0") for name in PROJECTS]
    with WheelTransaction(install_scheme(env)) as transaction:
        for wheel in old:
            transaction.stage(wheel)
        transaction.commit()
    return env, new


def test_a_rollback_that_meets_a_changed_path_keeps_every_copy_and_says_so(tmp_path: Path) -> None:
    env, new = _installed(tmp_path)
    before = snapshot(env)
    lib = site_packages(env)

    def squat() -> None:  # something takes the old package's place meanwhile
        (lib / "tx_alpha").mkdir()
        (lib / "tx_alpha" / "squatter.py").write_text("MINE = 1\n")

    # Renames 1-2 move tx-alpha 1.0 aside, 3 would put 2.0 in: it fails, and the rollback
    # cannot move 1.0 back onto the squatter's directory (the old ENOTEMPTY).
    renamer = FailingRenamer(3, squat)
    scheme = install_scheme(env)
    with (
        pytest.raises(InstallError, match="could not be restored completely") as caught,
        WheelTransaction(scheme, renamer=renamer) as transaction,
    ):
        for wheel in new:
            transaction.stage(wheel)
        transaction.commit(order=[*PROJECTS])
    assert "both exist" in str(caught.value) and "nothing was deleted" in (caught.value.hint or "")
    # The moved-aside 1.0 package is still there, in staging, with the journal.
    kept = [path for path in lib.glob(".ipydeps-tx-*/backup/*tx_alpha") if path.is_dir()]
    assert kept and (kept[0] / "only_1_0.py").is_file()
    assert list(lib.glob(".ipydeps-tx-*.journal"))
    # The next call cannot undo it either while the squatter stays: nothing is lost.
    assert recover_interrupted(lib, set(scheme.roots().values())).problems
    assert (kept[0] / "only_1_0.py").is_file()
    # Once the path is free again, the next ipydeps call finishes the rollback.
    shutil.rmtree(lib / "tx_alpha")
    recovery = recover_interrupted(lib, set(scheme.roots().values()))
    assert recovery.problems == [] and len(recovery.undone) == 1
    assert snapshot(env) == before


def test_a_rollback_run_twice_changes_nothing_more(tmp_path: Path) -> None:
    env, new = _installed(tmp_path)
    before = snapshot(env)
    scheme = install_scheme(env)
    with (
        pytest.raises(InstallError, match="the environment was restored"),
        WheelTransaction(scheme, renamer=FailingRenamer(7)) as transaction,
    ):
        for wheel in new:
            transaction.stage(wheel)
        try:
            transaction.commit(order=[*PROJECTS])
        finally:
            transaction.rollback()  # again, after commit's own rollback
    assert snapshot(env) == before
