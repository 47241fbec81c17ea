"""The shared cache (IPYDEPS_SHARED_CACHE): filled by one install, used by the next, trusted never.

A real repository stand-in on 127.0.0.1 serves two wheels, their stored copies and an index
page giving each copy's outline sha256; real venvs install from it with ``ipydeps.pip``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import stat
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import ipydeps
from ipydeps.cachefill import wait_for_fills
from ipydeps.formats.outline import outline_sha256
from ipydeps.sharedcache import SharedCache, UnusableEntry, replay
from tests.ipydeps.test_stored_copies import big_package, routes_for
from tests.ipydeps.test_stored_copies import install as stored_install
from tests.ipydeps.test_wheelstream import stored_copy
from tests.support.loopback import Scripted, ScriptedServer, scripted_server
from tests.support.venvs import make_venv, run_python, site_packages, snapshot
from tests.support.wheels import make_wheel, wheel_metadata

JSON = "application/vnd.pypi.simple.v1+json"
BLOB = os.urandom(1 << 20)  # a compiled extension's worth of bytes
SHARED = b"shared between two files and two wheels\n"


@pytest.fixture(autouse=True)
def _plain_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPYDEPS_RETRIES", "1")
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)
    monkeypatch.delenv("IPYDEPS_SHARED_CACHE", raising=False)


class Repository:
    """Two numpy-like wheels (subpackages, a 1 MiB blob, an empty file, repeated content)."""

    def __init__(self, directory: Path, *, unhashed: str | None = None) -> None:
        directory.mkdir()
        self.wheels = [
            make_wheel(
                directory,
                "numlike",
                "1.0",
                files={
                    "numlike/__init__.py": "from .core import VALUE\n",
                    "numlike/core/__init__.py": "VALUE = 42\n",
                    "numlike/core/_multiarray.bin": BLOB,
                    "numlike/linalg/__init__.py": "",
                    "numlike/py.typed": "",
                    "numlike/data/a.txt": SHARED,
                    "numlike/data/b.txt": SHARED,
                },
            ),
            make_wheel(
                directory,
                "framelike",
                "2.0",
                requires=["numlike"],
                files={
                    "framelike/__init__.py": "import numlike\nROWS = numlike.VALUE + 1\n",
                    "framelike/notes.txt": SHARED,
                },
            ),
        ]
        if unhashed is not None:
            _without_record_hash(self.wheels[0], unhashed)
        self.copies = {wheel.name: stored_copy(wheel) for wheel in self.wheels}
        self.outlines: dict[str, str] = {}
        for wheel in self.wheels:
            path = directory / f"{wheel.name}.stored"
            path.write_bytes(self.copies[wheel.name])
            self.outlines[wheel.name] = outline_sha256(path)

    def routes(self) -> dict[str, Scripted]:
        routes: dict[str, Scripted] = {}
        for wheel in self.wheels:
            data, copy = wheel.read_bytes(), self.copies[wheel.name]
            metadata = wheel_metadata(wheel)
            entry = {
                "filename": wheel.name,
                "url": f"/files/{wheel.name}",
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "size": len(data),
                "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
                "_ipydeps-stored": {
                    "url": f"/files/{wheel.name}.stored",
                    "hashes": {"sha256": hashlib.sha256(copy).hexdigest()},
                    "size": len(copy),
                    "outline_sha256": self.outlines[wheel.name],
                },
            }
            project = wheel.name.split("-")[0]
            page = {"meta": {"api-version": "1.1"}, "name": project, "files": [entry]}
            routes[f"/simple/{project}/"] = Scripted(
                body=json.dumps(page).encode(), content_type=JSON
            )
            routes[f"/files/{wheel.name}"] = Scripted(body=data)
            routes[f"/files/{wheel.name}.metadata"] = Scripted(body=metadata)
            routes[f"/files/{wheel.name}.stored"] = Scripted(body=copy)
        return routes

    def outline_of(self, project: str) -> str:
        return next(value for name, value in self.outlines.items() if name.startswith(project))


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "wheels")


@pytest.fixture
def server(repository: Repository) -> Iterator[ScriptedServer]:
    with scripted_server(routes=repository.routes()) as running:
        yield running


def install(
    server: ScriptedServer, env: Path, cache: Path | None, monkeypatch: pytest.MonkeyPatch
) -> ipydeps.api.Result:
    if cache is None:
        monkeypatch.delenv("IPYDEPS_SHARED_CACHE", raising=False)
    else:
        monkeypatch.setenv("IPYDEPS_SHARED_CACHE", str(cache))
    make_venv(env)
    server.requests.clear()
    result = ipydeps.pip(
        ["framelike"],
        index_url=server.url + "simple/",
        upstream="deny",
        prefix=env,
        stream=io.StringIO(),
    )
    wait_for_fills()  # the fill runs after pip() returned, in a thread of its own
    return result


def copies_fetched(server: ScriptedServer) -> list[str]:
    return sorted(path for path in server.requests if path.endswith(".stored"))


def sources(result: ipydeps.api.Result) -> dict[str, tuple[bool, bool, int]]:
    return {
        item.name: (item.from_shared_cache, item.stored_copy, item.bytes)
        for item in result.installed
    }


def test_a_second_environment_installs_from_the_cache_and_fetches_no_copy(
    tmp_path: Path,
    server: ScriptedServer,
    repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "cache"
    reference = tmp_path / "reference"
    install(server, reference, None, monkeypatch)  # a normal install, no cache at all
    first = install(server, tmp_path / "first", cache, monkeypatch)
    assert len(copies_fetched(server)) == 2
    assert {name: used for name, (used, _, _) in sources(first).items()} == {
        "numlike": False,
        "framelike": False,
    }
    # Filled: the outlines by their index sha256, every object read-only and named by content.
    for wheel in repository.wheels:
        outline = cache / "v1" / "outlines" / repository.outlines[wheel.name]
        assert hashlib.sha256(outline.read_bytes()).hexdigest() == repository.outlines[wheel.name]
    blob = cache / "v1" / "objects" / hashlib.sha256(BLOB).hexdigest()[:2]
    blob = blob / hashlib.sha256(BLOB).hexdigest()
    assert blob.read_bytes() == BLOB and stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert (cache / "v1" / "objects" / hashlib.sha256(SHARED).hexdigest()[:2]).is_dir()

    second = install(server, tmp_path / "second", cache, monkeypatch)
    assert copies_fetched(server) == []
    # Planning still reads the metadata files; no wheel and no copy is downloaded.
    assert [path for path in server.requests if path.endswith((".whl", ".stored"))] == []
    assert sources(second) == {"numlike": (True, False, 0), "framelike": (True, False, 0)}
    assert "(shared cache)" in repr(second)
    expected = snapshot(site_packages(reference))
    assert snapshot(site_packages(tmp_path / "second")) == expected
    assert snapshot(site_packages(tmp_path / "first")) == expected
    python = tmp_path / "second" / "bin" / "python"
    assert run_python(python, "import framelike; print(framelike.ROWS)").stdout.strip() == "43"


def _object(cache: Path, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return cache / "v1" / "objects" / digest[:2] / digest


def _poison(kind: str, cache: Path, repository: Repository, elsewhere: Path) -> None:
    target = _object(cache, BLOB)
    if kind == "outline swapped":
        numlike = cache / "v1" / "outlines" / repository.outline_of("numlike")
        framelike = cache / "v1" / "outlines" / repository.outline_of("framelike")
        numlike.chmod(0o644)
        numlike.write_bytes(framelike.read_bytes())
        return
    target.unlink()
    if kind == "one byte changed":
        target.write_bytes(BLOB[:1000] + bytes([BLOB[1000] ^ 1]) + BLOB[1001:])
    elif kind == "wrong size":
        target.write_bytes(BLOB + b"\0")
    elif kind == "symlink":
        # Even to the right bytes: a link's target can change after the check.
        elsewhere.write_bytes(BLOB)
        target.symlink_to(elsewhere)
    elif kind == "fifo":
        os.mkfifo(target)


@pytest.mark.parametrize(
    "kind", ["one byte changed", "outline swapped", "symlink", "wrong size", "fifo"]
)
def test_a_poisoned_entry_is_not_used_the_copy_is_downloaded_and_the_entry_put_right(
    kind: str,
    tmp_path: Path,
    server: ScriptedServer,
    repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = tmp_path / "cache"
    install(server, tmp_path / "first", cache, monkeypatch)
    expected = snapshot(site_packages(tmp_path / "first"))
    _poison(kind, cache, repository, tmp_path / "elsewhere.bin")
    caplog.set_level(logging.DEBUG, logger="ipydeps")

    second = install(server, tmp_path / "second", cache, monkeypatch)
    numlike = next(wheel.name for wheel in repository.wheels if wheel.name.startswith("numlike"))
    assert copies_fetched(server) == [f"/files/{numlike}.stored"]
    assert sources(second)["numlike"] == (False, True, len(repository.copies[numlike]))
    assert sources(second)["framelike"][0] is True  # its entry was not touched
    # Nothing of the poisoned entry was installed, and no staging is left behind.
    assert snapshot(site_packages(tmp_path / "second")) == expected
    assert "holds an entry that is not used" in caplog.text  # the -v trail says why

    # The download put the entry right: the next environment takes everything from it.
    assert _object(cache, BLOB).read_bytes() == BLOB and not _object(cache, BLOB).is_symlink()
    third = install(server, tmp_path / "third", cache, monkeypatch)
    assert copies_fetched(server) == []
    assert {name: used for name, (used, _, _) in sources(third).items()} == {
        "numlike": True,
        "framelike": True,
    }
    assert snapshot(site_packages(tmp_path / "third")) == expected


def test_an_interrupted_fill_is_not_used_and_the_next_install_completes_it(
    tmp_path: Path,
    server: ScriptedServer,
    repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "cache"
    install(server, tmp_path / "first", cache, monkeypatch)
    expected = snapshot(site_packages(tmp_path / "first"))
    # What a filler killed before its outline leaves: some objects, no outline, and a
    # temporary file it was writing (an hour old, so the next filler may remove it).
    outline = cache / "v1" / "outlines" / repository.outline_of("numlike")
    outline.unlink()
    _object(cache, BLOB).unlink()
    half = _object(cache, BLOB).parent / ".tmp-99999-0123456789ab"
    half.write_bytes(BLOB[:1000])
    os.utime(half, (1, 1))
    fresh = _object(cache, BLOB).parent / ".tmp-99998-0123456789ab"  # another filler's, live
    fresh.write_bytes(b"")

    second = install(server, tmp_path / "second", cache, monkeypatch)
    assert sources(second)["numlike"][0] is False  # no outline: not an entry at all
    assert snapshot(site_packages(tmp_path / "second")) == expected
    assert outline.is_file() and _object(cache, BLOB).read_bytes() == BLOB
    assert not half.exists() and fresh.exists()

    third = install(server, tmp_path / "third", cache, monkeypatch)
    assert copies_fetched(server) == []
    assert sources(third)["numlike"][0] is True


def test_two_environments_filling_at_once_both_succeed_and_the_entry_verifies(
    tmp_path: Path,
    server: ScriptedServer,
    repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "cache"
    code = (
        "import io, sys, ipydeps; ipydeps.pip(['framelike'], index_url=sys.argv[1], "
        "upstream='deny', prefix=sys.argv[2], stream=io.StringIO())"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("IPYDEPS_")}
    env.update(IPYDEPS_SHARED_CACHE=str(cache), IPYDEPS_RETRIES="1")
    processes = []
    for name in ("a", "b"):
        make_venv(tmp_path / name)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", code, server.url + "simple/", str(tmp_path / name)],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    expected = snapshot(site_packages(tmp_path / "a"))
    assert snapshot(site_packages(tmp_path / "b")) == expected
    leftovers = [path for path in cache.rglob(".tmp-*")]
    assert leftovers == []

    third = install(server, tmp_path / "third", cache, monkeypatch)
    assert copies_fetched(server) == []
    assert all(used for used, _, _ in sources(third).values())
    assert snapshot(site_packages(tmp_path / "third")) == expected


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody here can write: mode 0555, or as root a read-only bind mount."""
    directory = tmp_path / "read-only-cache"
    directory.mkdir()
    if os.geteuid() != 0:
        directory.chmod(0o555)
        yield directory
        directory.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(directory), str(directory)], check=False)
    if mounted.returncode != 0:
        pytest.skip("running as root and cannot bind-mount: no read-only directory to test")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], check=True)
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def test_a_read_only_cache_changes_nothing_and_says_nothing(
    tmp_path: Path,
    server: ScriptedServer,
    read_only: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(OSError):
        (read_only / "probe").write_bytes(b"")
    result = install(server, tmp_path / "env", read_only, monkeypatch)
    assert sources(result)["numlike"][:2] == (False, True)
    assert result.warnings == ()
    assert "shared cache" not in repr(result)
    assert list(read_only.iterdir()) == []
    python = tmp_path / "env" / "bin" / "python"
    assert run_python(python, "import framelike; print(framelike.ROWS)").stdout.strip() == "43"


def _forge_crc(data: bytes, changed_at: int, patch_at: int) -> bytes:
    """Return ``data`` with the byte at ``changed_at`` changed and 4 bytes at ``patch_at``
    chosen so that the CRC-32 (and the size) stay the same: what a neighbour can do.

    CRC-32 is affine over GF(2): flipping bits changes it by a fixed linear map of them,
    so the 32 bits to flip are found by Gaussian elimination.
    """
    evil = bytearray(data)
    evil[changed_at] ^= 0xFF
    length, zero = len(data), zlib.crc32(bytes(len(data)))

    def effect(bit: int) -> int:
        delta = bytearray(length)
        delta[patch_at + bit // 8] = 1 << (bit % 8)
        return zlib.crc32(delta) ^ zero

    basis: list[tuple[int, int]] = []  # (crc effect, which bits flipped), reduced
    for bit in range(32):
        value, combo = effect(bit), 1 << bit
        for pivot_value, pivot_combo in basis:
            if value ^ pivot_value < value:
                value, combo = value ^ pivot_value, combo ^ pivot_combo
        if value:
            basis.append((value, combo))
            basis.sort(reverse=True)
    need, flips = zlib.crc32(evil) ^ zlib.crc32(data), 0
    for pivot_value, pivot_combo in basis:
        if need ^ pivot_value < need:
            need, flips = need ^ pivot_value, flips ^ pivot_combo
    assert need == 0
    for index in range(4):
        evil[patch_at + index] ^= (flips >> (8 * index)) & 0xFF
    assert zlib.crc32(evil) == zlib.crc32(data) and len(evil) == len(data) and evil != data
    return bytes(evil)


def _without_record_hash(wheel: Path, member: str) -> None:
    """Rewrite ``wheel`` so that its RECORD gives no hash for ``member`` (the spec allows it)."""
    with zipfile.ZipFile(wheel) as source:
        items = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in items:
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = (
                    "\n".join(
                        f"{member},," if line.startswith(member + ",") else line for line in lines
                    ).encode()
                    + b"\n"
                )
            target.writestr(info, data)


def test_an_object_forged_past_every_other_check_is_caught_by_the_outline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A member its RECORD gives no hash for, and a forged object of the same size and CRC:
    # only the outline sha256 from the index tells the two apart.
    repository = Repository(tmp_path / "wheels", unhashed="numlike/core/_multiarray.bin")
    cache = tmp_path / "cache"
    with scripted_server(routes=repository.routes()) as server:
        install(server, tmp_path / "first", cache, monkeypatch)
        os.chmod(_object(cache, BLOB), 0o644)
        _object(cache, BLOB).write_bytes(_forge_crc(BLOB, 1000, 2000))
        second = install(server, tmp_path / "second", cache, monkeypatch)
    assert sources(second)["numlike"][0] is False
    installed = site_packages(tmp_path / "second") / "numlike" / "core" / "_multiarray.bin"
    assert installed.read_bytes() == BLOB


def test_over_a_slow_network_a_cache_miss_still_fetches_the_copy_to_fill_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a cache, stored_copies = "auto" takes the wheel at 20 MB/s
    # (test_stored_copies.py); only a copy can fill the cache for the host's next runtimes.
    wheel = big_package(tmp_path / "wheels")
    copy = stored_copy(wheel)
    (tmp_path / "copy").write_bytes(copy)
    key = {
        "url": f"/files/{wheel.name}.stored",
        "hashes": {"sha256": hashlib.sha256(copy).hexdigest()},
        "size": len(copy),
        "outline_sha256": outline_sha256(tmp_path / "copy"),
    }
    routes = routes_for(wheel, copy, key=key)
    routes[f"/files/{wheel.name}.stored"].pace = 20e6
    cache = tmp_path / "cache"
    monkeypatch.setenv("IPYDEPS_SHARED_CACHE", str(cache))
    with scripted_server(routes=routes) as server:
        make_venv(tmp_path / "first")
        first = stored_install(server, tmp_path / "first")
        wait_for_fills()
        assert first.installed[0].stored_copy
        assert f"/files/{wheel.name}" not in server.requests
        server.requests.clear()
        make_venv(tmp_path / "second")
        second = stored_install(server, tmp_path / "second")
    assert second.installed[0].from_shared_cache
    assert copies_fetched(server) == [] and f"/files/{wheel.name}" not in server.requests


def test_outlines_that_are_links_absurdly_big_or_not_outlines_are_refused_unread(
    tmp_path: Path, repository: Repository
) -> None:
    cache = SharedCache(tmp_path / "cache")
    good = next(iter(repository.outlines.values()))
    assert cache.read_outline(good, bound=1 << 20) is None  # no entry: a plain miss
    path = cache.outline_path(good)
    path.parent.mkdir(parents=True)
    (tmp_path / "elsewhere").write_bytes(b"x")
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnusableEntry, match="cannot be opened"):
        cache.read_outline(good, bound=1 << 20)
    path.unlink()
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(UnusableEntry, match="absurd"):
        cache.read_outline(good, bound=1000)
    with pytest.raises(UnusableEntry, match="does not have the sha256"):
        cache.read_outline(good, bound=1 << 20)
    # Bytes that hash right but are no outline stop the replay before any object is read.
    junk = b"not an outline at all"
    with pytest.raises(UnusableEntry, match="unexpected bytes"):
        replay(junk, cache, lambda data: None)


def test_an_entry_another_install_is_adding_is_left_to_it_until_its_claim_is_stale(
    tmp_path: Path,
    server: ScriptedServer,
    repository: Repository,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "cache"
    outlines = cache / "v1" / "outlines"
    outlines.mkdir(parents=True)
    numlike = repository.outline_of("numlike")
    claim = outlines / f".tmp-claim-{numlike}"
    claim.write_bytes(b"")  # another runtime, copying numlike right now
    install(server, tmp_path / "first", cache, monkeypatch)
    assert not (outlines / numlike).exists()  # left to the claim's holder
    assert (outlines / repository.outline_of("framelike")).is_file()
    assert claim.exists()  # not ours to remove

    os.utime(claim, (1, 1))  # its holder died long ago
    install(server, tmp_path / "second", cache, monkeypatch)
    assert (outlines / numlike).is_file() and not claim.exists()
    third = install(server, tmp_path / "third", cache, monkeypatch)
    assert all(used for used, _, _ in sources(third).values())
