"""pip() against a hostile repository: bounded reads, bounded inflating, RECORD checked.

Every hostile file is built here and served from a loopback server; the environment is
compared before and after.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ipydeps
from ipydeps.errors import DownloadError, InvalidWheelError, RecordMismatchError, RepositoryError
from tests.ipydeps.test_stored_copies import routes_for
from tests.ipydeps.test_wheelstream import stored_copy
from tests.support.loopback import Scripted, ScriptedServer, scripted_server
from tests.support.pipenv import clean_pip_env
from tests.support.venvs import make_venv, site_packages, snapshot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPYDEPS_RETRIES", "1")
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    directory: Path,
    files: dict[str, bytes],
    *,
    record: dict[str, bytes | None] | None = None,
    name: str = "hostile",
    declared: dict[str, int] | None = None,
) -> Path:
    """A wheel of ``files``; ``record`` gives the bytes RECORD describes (None: no row).

    ``declared`` makes a member's headers declare another uncompressed size than it has.
    """
    dist = f"{name}-1.0.dist-info"
    members = {
        **files,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    described = {path: data for path, data in members.items()}
    described.update(record or {})
    rows = "".join(
        f"{path},{_hash(data)},{(declared or {}).get(path, len(data))}\n"
        for path, data in described.items()
        if data is not None
    )
    members[f"{dist}/RECORD"] = (rows + f"{dist}/RECORD,,\n").encode()
    wheel = directory / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    for path, size in (declared or {}).items():
        _declare_size(wheel, path, size)
    return wheel


def _declare_size(wheel: Path, member: str, size: int) -> None:
    """Make the local header and central directory of ``member`` declare ``size`` bytes."""
    data = bytearray(wheel.read_bytes())
    name = member.encode()
    local = _find(data, b"PK\x03\x04", 30, name)
    central = _find(data, b"PK\x01\x02", 46, name)
    struct.pack_into("<L", data, local + 22, size)
    struct.pack_into("<L", data, central + 24, size)
    wheel.write_bytes(bytes(data))


def _find(data: bytearray, signature: bytes, fixed: int, name: bytes) -> int:
    position = data.find(signature)
    while position >= 0:
        if data[position + fixed : position + fixed + len(name)] == name:
            return position
        position = data.find(signature, position + 1)
    raise LookupError(name)


def install(server: ScriptedServer, env: Path, project: str = "hostile") -> ipydeps.api.Result:
    return ipydeps.pip(
        [project],
        index_url=server.url + "simple/",
        upstream="deny",
        prefix=env,
        stream=io.StringIO(),
    )


@pytest.mark.parametrize("fetched", ["wheel", "stored copy"])
def test_a_member_that_differs_from_record_is_refused(
    tmp_path: Path, fetched: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYDEPS_STORED_COPIES", "always")
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = build_wheel(
        tmp_path,
        {"hostile/__init__.py": b"print('altered')\n"},
        record={"hostile/__init__.py": b"print('asbuilt')\n"},
    )
    copy = stored_copy(wheel) if fetched == "stored copy" else None
    with (
        scripted_server(routes=routes_for(wheel, copy)) as server,
        pytest.raises(RecordMismatchError) as caught,
    ):
        install(server, tmp_path / "env")
    assert caught.value.member == "hostile/__init__.py"
    assert "'hostile/__init__.py' has sha256=" in str(caught.value)
    assert snapshot(tmp_path / "env") == before
    if copy is not None:
        assert f"/files/{wheel.name}.stored" in server.requests


@pytest.mark.parametrize("fetched", ["wheel", "stored copy"])
def test_the_installed_record_describes_what_was_written(
    tmp_path: Path, fetched: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYDEPS_STORED_COPIES", "always" if fetched == "stored copy" else "never")
    make_venv(tmp_path / "env")
    # One member RECORD leaves out: installed as pip does, but with its real hash and size.
    wheel = build_wheel(
        tmp_path,
        {"hostile/__init__.py": b"VALUE = 1\n", "hostile/unlisted.txt": b"not in RECORD\n"},
        record={"hostile/unlisted.txt": None},
    )
    with scripted_server(routes=routes_for(wheel, stored_copy(wheel))) as server:
        install(server, tmp_path / "env")
    assert (f"/files/{wheel.name}.stored" in server.requests) == (fetched == "stored copy")
    lib = site_packages(tmp_path / "env")
    with open(lib / "hostile-1.0.dist-info" / "RECORD", newline="") as handle:
        rows = list(csv.reader(handle))
    assert {row[0] for row in rows} >= {"hostile/__init__.py", "hostile/unlisted.txt"}
    for path, digest, size in rows:
        if path.endswith("/RECORD"):
            assert (digest, size) == ("", "")
            continue
        data = (lib / path).read_bytes()
        assert (digest, size) == (_hash(data), str(len(data))), path


def test_a_member_that_inflates_past_its_declared_size_is_refused_in_bounded_memory(
    tmp_path: Path,
) -> None:
    """A zip bomb whose headers lie: 256 MB of zeros declared as 1000 bytes."""
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    bomb = bytes(256 << 20)
    wheel = build_wheel(
        tmp_path,
        {"hostile/__init__.py": b"", "hostile/bomb.bin": bomb},
        declared={"hostile/bomb.bin": 1000},
    )
    assert wheel.stat().st_size < 2 << 20
    code = (
        "import io, json, sys, ipydeps\n"
        "from ipydeps.errors import InvalidWheelError\n"
        "try:\n"
        "    ipydeps.pip(['hostile'], index_url=sys.argv[1], upstream='deny',"
        " prefix=sys.argv[2], stream=io.StringIO())\n"
        "except InvalidWheelError as error:\n"
        "    outcome = str(error)\n"
        # VmHWM, not ru_maxrss: that one also counts the parent's peak (kept over exec).
        "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')]\n"
        "print(json.dumps([outcome, int(peak[0].split()[1])]))\n"
    )
    environ = clean_pip_env(
        IPYDEPS_RETRIES="1", IPYDEPS_STORED_COPIES="never", PYTHONPATH=str(ROOT)
    )
    with scripted_server(routes=routes_for(wheel, None)) as server:
        finished = subprocess.run(
            [sys.executable, "-c", code, server.url + "simple/", str(tmp_path / "env")],
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert finished.returncode == 0, finished.stderr
    message, peak_kib = json.loads(finished.stdout)
    assert "'hostile/bomb.bin' inflates to more than the 1000 bytes it declares" in message
    assert peak_kib < 150 << 10  # the bomb inflated whole would be 256 MB more
    assert snapshot(tmp_path / "env") == before


def test_a_metadata_member_declared_huge_is_refused(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = build_wheel(
        tmp_path, {"hostile/__init__.py": b""}, declared={"hostile-1.0.dist-info/WHEEL": 3 << 30}
    )
    with (
        scripted_server(routes=routes_for(wheel, None)) as server,
        pytest.raises(InvalidWheelError, match="more than the 67108864 a metadata file"),
    ):
        install(server, tmp_path / "env")
    assert snapshot(tmp_path / "env") == before


@pytest.mark.parametrize("fetched", ["wheel", "stored copy"])
def test_a_download_bigger_than_the_index_announced_is_cut_off(
    tmp_path: Path, fetched: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYDEPS_STORED_COPIES", "always")
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = build_wheel(tmp_path, {"hostile/__init__.py": b""})
    copy = stored_copy(wheel)
    routes = routes_for(wheel, copy if fetched == "stored copy" else None)
    path = f"/files/{wheel.name}" + (".stored" if fetched == "stored copy" else "")
    # The index announces the real size and hash; the file served is 8 MB bigger.
    routes[path] = Scripted(body=routes[path].body + bytes(8 << 20))
    with (
        scripted_server(routes=routes) as server,
        pytest.raises(DownloadError, match="more than the .* bytes its index announced"),
    ):
        install(server, tmp_path / "env")
    assert snapshot(tmp_path / "env") == before


def test_a_file_of_unknown_size_is_cut_off_at_max_download_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYDEPS_MAX_DOWNLOAD_BYTES", str(1 << 20))
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = build_wheel(tmp_path, {"hostile/__init__.py": b""})
    routes = routes_for(wheel, None)
    page = json.loads(routes["/simple/hostile/"].body)
    del page["files"][0]["size"]  # no size announced: the configured ceiling applies
    routes["/simple/hostile/"] = Scripted(
        body=json.dumps(page).encode(), content_type="application/vnd.pypi.simple.v1+json"
    )
    routes[f"/files/{wheel.name}"] = Scripted(body=bytes(2 << 20))
    with (
        scripted_server(routes=routes) as server,
        pytest.raises(DownloadError, match=r"bigger than 1048576 bytes.*max_download_bytes"),
    ):
        install(server, tmp_path / "env")
    assert snapshot(tmp_path / "env") == before


def test_an_index_page_bigger_than_max_page_bytes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYDEPS_MAX_PAGE_BYTES", str(1 << 20))
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    huge = json.dumps(
        {"meta": {"api-version": "1.1"}, "name": "hostile", "files": [], "padding": "x" * (4 << 20)}
    ).encode()
    page = "/simple/hostile/"
    with (
        scripted_server(routes={page: Scripted(body=huge)}) as server,
        pytest.raises(RepositoryError) as caught,
    ):
        install(server, tmp_path / "env")
    message = str(caught.value)
    assert f"{server.url}simple/hostile/" in message and "1048576 bytes" in message
    assert "max_page_bytes" in message
    assert snapshot(tmp_path / "env") == before


def test_a_deeply_nested_index_page_is_a_repository_error(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    body = b'{"files": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with (
        scripted_server(routes={"/simple/hostile/": Scripted(body=body)}) as server,
        pytest.raises(RepositoryError, match="nested too deeply"),
    ):
        install(server, tmp_path / "env")
    assert snapshot(tmp_path / "env") == before


def test_metadata_read_from_a_wheel_is_bounded(tmp_path: Path) -> None:
    """Without PEP 658 metadata the wheel is read for it: a METADATA declared huge is refused."""
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = build_wheel(
        tmp_path, {"hostile/__init__.py": b""}, declared={"hostile-1.0.dist-info/METADATA": 3 << 30}
    )
    routes = routes_for(wheel, None)
    page = json.loads(routes["/simple/hostile/"].body)
    del page["files"][0]["core-metadata"]
    routes["/simple/hostile/"] = Scripted(
        body=json.dumps(page).encode(), content_type="application/vnd.pypi.simple.v1+json"
    )
    del routes[f"/files/{wheel.name}.metadata"]
    with (
        scripted_server(routes=routes) as server,
        pytest.raises(RepositoryError, match="METADATA declares 3221225472 bytes"),
    ):
        install(server, tmp_path / "env")
    assert f"/files/{wheel.name}" in server.requests
    assert snapshot(tmp_path / "env") == before
