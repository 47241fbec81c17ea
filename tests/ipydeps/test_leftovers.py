"""What a killed install leaves behind is cleaned by the next one, and nothing more than that.

kill -9 leaves download scratch directories (in /dev/shm or the temporary directory) and
staging directories inside the environment; the next install removes those whose owner is
dead, never those of a live install. A journal is trusted only for renames inside the
environment, and a wheel that ships one is refused.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import multiprocessing.synchronize
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

import ipydeps
from ipydeps.errors import InvalidWheelError
from ipydeps.scratch import PREFIX, remove_orphans, scratch_directory
from tests.ipydeps.test_hostile_repository import build_wheel
from tests.ipydeps.test_stored_copies import routes_for
from tests.ipydeps.test_wheelstream import stored_copy
from tests.support.loopback import Scripted, scripted_server
from tests.support.pipenv import clean_pip_env
from tests.support.venvs import make_venv, run_python, site_packages, snapshot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPYDEPS_RETRIES", "1")
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)


def _scratch_dirs(pid: int) -> list[Path]:
    parents = [Path("/dev/shm"), Path(tempfile.gettempdir())]
    return [
        path
        for parent in parents
        if parent.is_dir()
        for path in parent.iterdir()
        if path.name.startswith(f"{PREFIX}{pid}-")
    ]


def _staging_of(pid: int, lib: Path) -> list[Path]:
    """Wait (30 s at most) for the first bytes of the copy to reach staging; return it.

    The server has started sending; the client makes the directory when its first member
    arrives, an instant later, and nothing tells a test when: so look a few times.
    """
    pause = threading.Event()
    for _ in range(600):
        staging = [
            path
            for path in lib.iterdir()
            if path.name.startswith(f".ipydeps-tx-{pid}-") and any(path.iterdir())
        ]
        if staging:
            return staging
        pause.wait(0.05)
    raise AssertionError(f"never staged: {sorted(p.name for p in lib.iterdir())}")


def test_a_killed_install_s_leftovers_are_removed_by_the_next_install(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = build_wheel(
        tmp_path, {"hostile/__init__.py": b"VALUE = 7\n", "hostile/blob.bin": os.urandom(3 << 20)}
    )
    copy = stored_copy(wheel)
    slow = routes_for(wheel, copy)
    # The stored copy streams into staging inside site-packages (a read at a time: 1 MB).
    slow[f"/files/{wheel.name}.stored"] = Scripted(body=copy, pace=200_000)
    code = (
        "import io, sys, ipydeps\n"
        "ipydeps.pip(['hostile'], index_url=sys.argv[1], upstream='deny',"
        " prefix=sys.argv[2], stream=io.StringIO())\n"
    )
    with scripted_server(routes=slow) as server:
        process = subprocess.Popen(
            [sys.executable, "-c", code, server.url + "simple/", str(tmp_path / "env")],
            env=clean_pip_env(IPYDEPS_STORED_COPIES="always", PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert server.pacing.wait(60)
            staging = _staging_of(process.pid, site_packages(tmp_path / "env"))
            # Taken while the install lives (its lock keeps other installs' clean-up away):
            # after the kill, any install on this machine may already remove them.
            scratch = _scratch_dirs(process.pid)
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
    assert scratch, "the install made no download scratch directory"
    assert snapshot(tmp_path / "env") != before  # the staging directory is still there
    with scripted_server(routes=routes_for(wheel, copy)) as server:
        ipydeps.pip(
            ["hostile"],
            index_url=server.url + "simple/",
            upstream="deny",
            prefix=tmp_path / "env",
            stream=io.StringIO(),
        )
    assert not any(path.exists() for path in scratch)
    assert not any(path.exists() for path in staging)
    assert not [
        path
        for path in site_packages(tmp_path / "env").iterdir()
        if path.name.startswith(".ipydeps-tx-")
    ]
    assert run_python(python, "import hostile; print(hostile.VALUE)").stdout == "7\n"


def test_a_live_install_s_scratch_directory_is_left_alone(tmp_path: Path) -> None:
    holder = (
        "import sys\n"
        "from ipydeps.scratch import scratch_directory\n"
        "with scratch_directory(sys.argv[1]) as path:\n"
        "    print(path, flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    live = subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert live.stdout is not None and live.stdin is not None
    live_dir = Path(live.stdout.readline().strip())
    # A dead owner's directory: its lock file is there, and nobody holds it.
    dead = tmp_path / f"{PREFIX}{live.pid + 1_000_000}-abcd1234"
    dead.mkdir()
    (dead / ".owner.lock").touch()
    (dead / "numpy.whl").write_bytes(b"x" * 1000)
    # An older version's directory, without a pid or a lock: whose it is cannot be told.
    legacy = tmp_path / f"{PREFIX}k2j4_x9z"
    legacy.mkdir()
    try:
        assert remove_orphans([tmp_path]) == [dead]
        assert live_dir.is_dir() and legacy.is_dir() and not dead.exists()
    finally:
        live.stdin.write("\n")
        live.stdin.close()
        live.wait(30)
    assert not live_dir.exists()  # its owner removed it on the way out


def _sweep_until(parent: str, stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        remove_orphans([parent])


def test_installs_starting_at_once_never_sweep_each_others_live_scratch(tmp_path: Path) -> None:
    # Fleets start together: other installs sweep the shared scratch folder while this one
    # makes its own directories. Before its lock was taken under another name and renamed
    # into place, about 2 in 1,000 new directories were removed under a live owner here.
    parent = str(tmp_path)
    stop = multiprocessing.Event()
    sweepers = [multiprocessing.Process(target=_sweep_until, args=(parent, stop)) for _ in "ab"]
    for sweeper in sweepers:
        sweeper.start()
    lost = 0
    try:
        for _ in range(4000):
            with scratch_directory(parent) as path:
                try:
                    (path / "first.whl.part").write_bytes(b"x")  # a download's first write
                except FileNotFoundError:
                    lost += 1
    finally:
        stop.set()
        for sweeper in sweepers:
            sweeper.join()
    assert lost == 0


@pytest.mark.parametrize("fetched", ["wheel", "stored copy"])
def test_a_wheel_that_ships_a_journal_is_refused(
    tmp_path: Path, fetched: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYDEPS_STORED_COPIES", "always" if fetched == "stored copy" else "never")
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    planted = json.dumps([str(tmp_path / "restored"), str(tmp_path / "victim")]) + "\n"
    wheel = build_wheel(
        tmp_path,
        {"hostile/__init__.py": b"", ".ipydeps-tx-1-000000000000.journal": planted.encode()},
    )
    with (
        scripted_server(routes=routes_for(wheel, stored_copy(wheel))) as server,
        pytest.raises(InvalidWheelError, match="named like ipydeps' own install journals"),
    ):
        ipydeps.pip(
            ["hostile"],
            index_url=server.url + "simple/",
            upstream="deny",
            prefix=tmp_path / "env",
            stream=io.StringIO(),
        )
    assert snapshot(tmp_path / "env") == before


def test_a_planted_journal_renames_nothing_outside_the_environment(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "env")
    lib = site_packages(tmp_path / "env")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep me\n")
    inside = lib / "planted-victim.txt"
    inside.write_text("inside\n")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    journal = lib / f".ipydeps-tx-{gone.stdout.strip()}-deadbeef0000.journal"
    journal.write_text(
        json.dumps([str(outside / "restored"), str(outside / "victim")])
        + "\n"
        + json.dumps(
            [str(lib / "x" / ".." / ".." / ".." / ".." / ".." / ".." / "escaped"), str(inside)]
        )
        + "\n"
        + "[" * 100_000
        + "\n"
    )
    wheel = build_wheel(tmp_path, {"hostile/__init__.py": b"VALUE = 1\n"})
    with scripted_server(routes=routes_for(wheel, None)) as server:
        ipydeps.pip(
            ["hostile"],
            index_url=server.url + "simple/",
            upstream="deny",
            prefix=tmp_path / "env",
            stream=io.StringIO(),
        )
    assert (outside / "victim").read_text() == "keep me\n"
    assert not (outside / "restored").exists()
    assert inside.read_text() == "inside\n"  # its "source" escapes with "..": not replayed
    assert not journal.exists()
    assert run_python(python, "import hostile; print(hostile.VALUE)").stdout == "1\n"
