"""A stored copy's outline: what it is, what the stager computes, and what checking it refuses."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from pathlib import Path

import pytest

from ipydeps.environment import install_scheme
from ipydeps.errors import HashMismatchError, InvalidWheelError
from ipydeps.formats.errors import FormatError
from ipydeps.formats.outline import NotAStoredCopyError, OutlineHasher, outline_sha256
from ipydeps.installers.transaction import WheelTransaction
from tests.ipydeps.test_stored_copies import install, package, routes_for
from tests.ipydeps.test_wheelstream import demo_wheel, stored_copy
from tests.support.loopback import scripted_server
from tests.support.venvs import make_venv, run_python, snapshot


def outline_by_hand(data: bytes) -> bytes:
    """The outline as the spec words it, from ``zipfile``'s view of the same archive."""
    out = bytearray()
    position = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = sorted(archive.infolist(), key=lambda info: info.header_offset)
    for info in infos:
        names, extra = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + names + extra
        out += data[position:start]
        out += hashlib.sha256(data[start : start + info.file_size]).digest()
        position = start + info.file_size
    return bytes(out + data[position:])


def test_the_outline_of_a_copy_file_is_the_spec_s(tmp_path: Path) -> None:
    data = stored_copy(demo_wheel(tmp_path))
    copy = tmp_path / "demo.whl.stored"
    copy.write_bytes(data)
    expected = outline_by_hand(data)
    with zipfile.ZipFile(copy) as archive:
        members = archive.infolist()
    # The data bytes are gone, 32 bytes per member (the empty member's too) in their place.
    assert len(expected) == len(data) - sum(m.file_size for m in members) + 32 * len(members)
    assert outline_sha256(copy) == hashlib.sha256(expected).hexdigest()
    hasher = OutlineHasher(keep=True)
    hasher.frame(expected[:10])
    hasher.frame(memoryview(expected)[10:])
    assert hasher.outline() == expected
    assert hasher.hexdigest() == hashlib.sha256(expected).hexdigest()


def test_an_archive_that_is_not_a_stored_copy_has_no_outline(tmp_path: Path) -> None:
    wheel = demo_wheel(tmp_path)  # deflated members
    with pytest.raises(NotAStoredCopyError, match="compressed"):
        outline_sha256(wheel)
    truncated = tmp_path / "cut.stored"
    truncated.write_bytes(stored_copy(wheel)[:5000])
    with pytest.raises(FormatError, match="cut off"):
        outline_sha256(truncated)
    with pytest.raises(ValueError, match="32 bytes"):
        OutlineHasher().member(b"short")


@pytest.mark.parametrize("chunk", [1, 4096, 1 << 20])
def test_the_stager_computes_the_copy_s_outline_and_what_it_wrote(
    tmp_path: Path, chunk: int
) -> None:
    wheel = demo_wheel(tmp_path)
    data = stored_copy(wheel)
    copy = tmp_path / "copy.stored"
    copy.write_bytes(data)
    env = tmp_path / "env"
    make_venv(env)
    scheme = install_scheme(env)
    with WheelTransaction(scheme) as transaction:
        stager = transaction.stream_stager(
            wheel.name, len(data), expected_outline=outline_sha256(copy)
        )
        sink = stager.restart()
        for start in range(0, len(data), chunk):
            sink(data[start : start + chunk])
        transaction.add(stager.finish())
        transaction.commit()
    assert stager.outline_sha256 == outline_sha256(copy)
    assert stager.outline_bytes == outline_by_hand(data)
    written = {path: (sha, size) for path, sha, size in stager.written_members}
    # Every member written to a file, by its installed path, with the hash of its bytes.
    assert "demo_pkg/big.bin" in written and "demo_pkg/empty.txt" in written
    assert written["demo_pkg/empty.txt"] == (hashlib.sha256(b"").hexdigest(), 0)
    for path, (sha, size) in written.items():
        installed = (scheme.purelib / path).resolve()
        assert hashlib.sha256(installed.read_bytes()).hexdigest() == sha, path
        assert installed.stat().st_size == size
    assert not any(path.endswith("demo-script") for path in written)  # scripts are rewritten
    assert not any(path.endswith("/RECORD") for path in written)
    shown = run_python(env / "bin" / "python", "import demo_pkg; print(demo_pkg.__version__)")
    assert shown.stdout.strip() == "1.0"


def test_the_stager_describes_a_copy_only_once_it_is_finished(tmp_path: Path) -> None:
    wheel = demo_wheel(tmp_path)
    make_venv(tmp_path / "env")
    with WheelTransaction(install_scheme(tmp_path / "env")) as transaction:
        stager = transaction.stream_stager(wheel.name)
        stager.restart()(stored_copy(wheel))
        with pytest.raises(RuntimeError, match="finish"):
            stager.outline_sha256  # noqa: B018 - the property raises
        stager.discard()


def _stream(env: Path, filename: str, data: bytes, outline: str | None) -> None:
    with WheelTransaction(install_scheme(env)) as transaction:
        stager = transaction.stream_stager(
            filename, len(data), expected_outline=outline, url="http://127.0.0.1/x.stored"
        )
        sink = stager.restart()
        try:
            for start in range(0, len(data), 65536):
                sink(data[start : start + 65536])
            transaction.add(stager.finish())
        except BaseException:
            stager.discard()
            raise
        transaction.commit()


def _flip(data: bytes, needle: bytes) -> bytes:
    changed = bytearray(data)
    changed[data.index(needle)] ^= 0x01
    return bytes(changed)


def test_a_member_byte_changed_is_a_hash_mismatch_not_its_symptom(tmp_path: Path) -> None:
    # The CRC no longer matches either: the outline is checked first, so the user is told
    # that the copy is not what the index describes, and nothing is installed.
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = demo_wheel(tmp_path)
    data = stored_copy(wheel)
    good = hashlib.sha256(outline_by_hand(data)).hexdigest()
    with pytest.raises(HashMismatchError, match="outline sha256") as raised:
        _stream(tmp_path / "env", wheel.name, _flip(data, b"def main()"), good)
    assert raised.value.expected == good
    assert snapshot(tmp_path / "env") == before
    # Without the outline, the same copy's symptom (found after the fetcher's whole-file
    # check in real use) is what the stager reports.
    with pytest.raises(InvalidWheelError, match="corrupt"):
        _stream(tmp_path / "env", wheel.name, _flip(data, b"def main()"), None)


def test_a_header_byte_changed_is_caught_by_the_outline(tmp_path: Path) -> None:
    # A local header's date, which no member check covers: only the outline sees it.
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = demo_wheel(tmp_path)
    data = stored_copy(wheel)
    good = hashlib.sha256(outline_by_hand(data)).hexdigest()
    changed = bytearray(data)
    changed[12] ^= 0x01  # the first local header's modification date
    with pytest.raises(HashMismatchError, match="outline sha256"):
        _stream(tmp_path / "env", wheel.name, bytes(changed), good)
    assert snapshot(tmp_path / "env") == before


@pytest.mark.parametrize("damage", ["unsafe path", "not walkable", "cut short", "extra bytes"])
def test_a_copy_the_outline_refuses_is_refused_whatever_else_is_wrong(
    tmp_path: Path, damage: str
) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = demo_wheel(tmp_path)
    data = stored_copy(wheel)
    good = hashlib.sha256(outline_by_hand(data)).hexdigest()
    if damage == "unsafe path":
        data = stored_copy(wheel, rename={"demo_pkg/cli.py": "../../../../escape.py"})
    elif damage == "not walkable":
        start = data.index(b"PK\x03\x04", 4)  # the second local header's signature
        data = data[:start] + b"XXXX" + data[start + 4 :]
    elif damage == "cut short":
        data = data[: len(data) // 2]
    else:
        data = data + b"trailing"
    with pytest.raises(HashMismatchError, match="outline sha256"):
        _stream(tmp_path / "env", wheel.name, data, good)
    assert snapshot(tmp_path / "env") == before
    assert not list(tmp_path.rglob("escape.py"))


# -- through the fetcher, from a repository on 127.0.0.1 ---------------------------------------


def _key(wheel: Path, advertised: bytes, outline: str | None) -> dict[str, object]:
    key: dict[str, object] = {
        "url": f"/files/{wheel.name}.stored",
        "hashes": {"sha256": hashlib.sha256(advertised).hexdigest()},
        "size": len(advertised),
    }
    if outline is not None:
        key["outline_sha256"] = outline
    return key


def test_an_index_outline_installs_the_copy(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "env")
    wheel = package(tmp_path)
    copy = stored_copy(wheel)
    outline = hashlib.sha256(outline_by_hand(copy)).hexdigest()
    routes = routes_for(wheel, copy, key=_key(wheel, copy, outline))
    with scripted_server(routes=routes) as server:
        result = install(server, tmp_path / "env")
    assert f"/files/{wheel.name}" not in server.requests
    assert [(item.name, item.stored_copy) for item in result.installed] == [("stream-pkg", True)]
    assert run_python(python, "import stream_pkg; print(stream_pkg.VALUE)").stdout.strip() == "42"


def test_with_an_outline_the_outline_is_what_is_checked(tmp_path: Path) -> None:
    # The whole-file sha256 the index gives matches the bytes served, a changed local
    # header date that no member check sees: only checking the outline refuses it.
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = package(tmp_path)
    copy = stored_copy(wheel)
    outline = hashlib.sha256(outline_by_hand(copy)).hexdigest()
    changed = bytearray(copy)
    changed[12] ^= 0x01
    served = bytes(changed)
    routes = routes_for(wheel, served, key=_key(wheel, served, outline))
    with (
        scripted_server(routes=routes) as server,
        pytest.raises(HashMismatchError, match="outline sha256") as raised,
    ):
        install(server, tmp_path / "env")
    assert raised.value.url.endswith(f"/files/{wheel.name}.stored")
    assert f"/files/{wheel.name}" not in server.requests  # a mismatch is not a reason to retry
    assert snapshot(tmp_path / "env") == before


def test_a_tampered_member_under_an_unchanged_outline_is_a_hash_mismatch(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = package(tmp_path)
    copy = stored_copy(wheel)
    outline = hashlib.sha256(outline_by_hand(copy)).hexdigest()
    tampered = _flip(copy, b"VALUE = 42")
    routes = routes_for(wheel, tampered, key=_key(wheel, copy, outline))
    with scripted_server(routes=routes) as server, pytest.raises(HashMismatchError):
        install(server, tmp_path / "env")
    assert f"/files/{wheel.name}" not in server.requests
    assert snapshot(tmp_path / "env") == before


@pytest.mark.parametrize("outline", [None, "not-a-sha256", 42])
def test_without_a_usable_outline_the_whole_file_is_checked(
    tmp_path: Path, outline: object
) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = package(tmp_path)
    copy = stored_copy(wheel)
    key = _key(wheel, copy, None)
    if outline is not None:
        key["outline_sha256"] = outline
    routes = routes_for(wheel, _flip(copy, b"VALUE = 42"), key=key)
    with (
        scripted_server(routes=routes) as server,
        pytest.raises(HashMismatchError, match="its sha256 is"),
    ):
        install(server, tmp_path / "env")
    assert snapshot(tmp_path / "env") == before
