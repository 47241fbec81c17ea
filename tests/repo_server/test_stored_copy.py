"""The ``.stored`` copy beside each wheel: its bytes, its JSON key, the setting, and upkeep."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import resource
import signal
import urllib.parse
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ipydeps_repo.errors import ConfigurationError
from ipydeps_repo.settings import (
    STORED_COPIES_ENV,
    DataLayout,
    build_settings,
    stored_copies_enabled,
)
from ipydeps_repo.store.pages import Project, WheelFile, render_project_html, render_project_json
from ipydeps_repo.store.store import Store

from ipydeps.formats.outline import outline_sha256
from tests.support.server import RunningServer, repo_cli, start_server
from tests.support.wheels import make_wheel
from tests.support.zips import restamp_members, walk_local_headers

JSON = "application/vnd.pypi.simple.v1+json"
KEY = "_ipydeps-stored"


def demo_wheel(directory: Path, version: str = "1.0", *, body: str = "x = 1\n") -> Path:
    """A wheel of deflated members, one executable script, a .dist-info, and varied dates."""
    plain = directory / "plain"
    plain.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes | str] = {
        "demo/__init__.py": body * 200,
        "demo/data.txt": "compressible " * 3000,
        f"demo-{version}.data/scripts/demo-run": "#!/bin/sh\necho demo\n",
    }
    wheel = make_wheel(plain, "demo", version, files=files)
    return restamp_members(
        wheel,
        directory / wheel.name,
        modes={f"demo-{version}.data/scripts/demo-run": 0o100755},
        date_times={"demo/data.txt": (2001, 2, 3, 4, 5, 6)},
    )


def assert_is_stored_copy_of(copy: Path, wheel: Path) -> None:
    """Same members, order, names, bytes, modes and dates; all stored; sizes up front."""
    with zipfile.ZipFile(wheel) as original, zipfile.ZipFile(copy) as stored:
        wanted = original.infolist()
        got = stored.infolist()
        assert [i.filename for i in got] == [i.filename for i in wanted]
        for mine, theirs in zip(got, wanted, strict=True):
            assert mine.compress_type == zipfile.ZIP_STORED
            assert mine.external_attr == theirs.external_attr
            assert mine.date_time == theirs.date_time
            assert stored.read(mine) == original.read(theirs)
        assert stored.comment == b""
        assert stored.testzip() is None
    walk = walk_local_headers(copy)
    assert [header.name for header in walk.members] == [info.filename for info in wanted]
    for header, theirs in zip(walk.members, wanted, strict=True):
        assert header.flags & 0x08 == 0, header.name
        assert header.method == zipfile.ZIP_STORED
        assert header.compressed_size == header.file_size == theirs.file_size
        assert header.crc == theirs.CRC
        assert header.date_time == theirs.date_time
        assert b"\x01\x00" not in header.extra[:2]  # no zip64 extra field
    assert (walk.comment, walk.zip64_locator) == (b"", False)


def file_entries(server: RunningServer, project: str) -> list[dict[str, Any]]:
    """The ``files`` of the project's PEP 691 page, fetched over HTTP."""
    status, headers, body = server.get(f"simple/{project}/", accept=JSON)
    assert (status, headers["Content-Type"]) == (200, JSON)
    files: list[dict[str, Any]] = json.loads(body)["files"]
    return files


def test_publish_writes_the_copy_the_json_page_advertises(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = demo_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        script = archive.getinfo("demo-1.0.data/scripts/demo-run")
        assert script.external_attr >> 16 == 0o100755
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    status, body = repo_server.upload(wheel)
    assert (status, body.get("warnings")) == (201, [])
    copy = repo_server.data / "tree" / "files" / "demo" / f"{wheel.name}.stored"
    assert_is_stored_copy_of(copy, wheel)
    assert not copy.samefile(copy.with_name(wheel.name))
    copy_bytes = copy.read_bytes()

    (entry,) = file_entries(repo_server, "demo")
    assert entry["filename"] == wheel.name
    assert entry[KEY] == {
        "url": f"../../files/demo/{wheel.name}.stored",
        "hashes": {"sha256": hashlib.sha256(copy_bytes).hexdigest()},
        "size": len(copy_bytes),
        "outline_sha256": outline_sha256(copy),
    }
    stored = entry[KEY]
    assert stored["url"] == f"{entry['url']}.stored"
    url = urllib.parse.urljoin(repo_server.url + "simple/demo/", str(stored["url"]))
    code, headers, served = repo_server.get(url.removeprefix(repo_server.url))
    assert (code, served) == (200, copy_bytes)
    assert headers["Content-Type"] == "application/octet-stream"

    _, _, html_page = repo_server.get("simple/demo/")
    assert b".stored" not in html_page
    assert b"_ipydeps" not in html_page


def test_a_wheel_stored_already_still_gets_a_copy(tmp_path: Path) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    (tmp_path / "stored").mkdir()
    wheel = restamp_members(
        demo_wheel(tmp_path),
        tmp_path / "stored" / "demo-1.0-py3-none-any.whl",
        compression=zipfile.ZIP_STORED,
        directories=("demo/empty/",),
    )
    store.publish_file(wheel)
    published = store.layout.tree / "files" / "demo" / wheel.name
    copy = store.layout.tree / "files" / "demo" / f"{wheel.name}.stored"
    assert_is_stored_copy_of(copy, wheel)
    # Byte for byte the wheel itself: one file on disk under both names.
    assert copy.read_bytes() == wheel.read_bytes()
    assert copy.samefile(published)
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    assert (
        page["files"][0][KEY]["hashes"]["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    )


def test_setting_off_makes_no_copy_and_no_key(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--no-stored-copies")
    try:
        wheel = demo_wheel(tmp_path)
        assert server.upload(wheel)[0] == 201
        assert not (server.data / "tree/files/demo" / f"{wheel.name}.stored").exists()
        (entry,) = file_entries(server, "demo")
        assert KEY not in entry
        listing = json.loads(server.get("api/v1/packages")[2])
        assert listing["wheels"]["demo"][0]["stored_sha256"] is None
    finally:
        server.stop()


def test_the_setting_comes_from_flag_then_environment() -> None:
    assert stored_copies_enabled(None, {}) is True
    assert stored_copies_enabled(None, {STORED_COPIES_ENV: "off"}) is False
    assert stored_copies_enabled(None, {STORED_COPIES_ENV: " 0 "}) is False
    assert stored_copies_enabled(None, {STORED_COPIES_ENV: "Yes"}) is True
    assert stored_copies_enabled(True, {STORED_COPIES_ENV: "off"}) is True
    assert stored_copies_enabled(False, {}) is False
    with pytest.raises(ConfigurationError, match=STORED_COPIES_ENV):
        stored_copies_enabled(None, {STORED_COPIES_ENV: "maybe"})
    settings = build_settings(data=Path("d"), environ={STORED_COPIES_ENV: "false"})
    assert settings.stored_copies is False
    assert build_settings(data=Path("d"), environ={}).stored_copies is True


def test_environment_turns_copies_off_for_the_cli(tmp_path: Path) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    wheel = demo_wheel(tmp_path)
    store.publish_file(wheel)
    copy = store.layout.tree / "files" / "demo" / f"{wheel.name}.stored"
    assert copy.is_file()
    result = repo_cli("index", "--no-stored-copies", data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert not copy.exists()
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    assert KEY not in page["files"][0]
    result = repo_cli("index", "--stored-copies", data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert_is_stored_copy_of(copy, wheel)


def _forget_copies(store: Store, project: str) -> None:
    """Make the store look like one written before stored copies existed."""
    for copy in (store.layout.tree / "files" / project).glob("*.stored"):
        copy.unlink()
    cache = store.layout.cache / "simple" / f"{project}.json"
    entries = json.loads(cache.read_text())
    for entry in entries.values():
        entry.pop("stored_sha256")
        entry.pop("stored_size")
    cache.write_text(json.dumps(entries))
    page = store.layout.tree / "simple" / project / "index.json"
    document = json.loads(page.read_text())
    for item in document["files"]:
        item.pop(KEY)
    page.write_text(json.dumps(document))


def test_an_older_store_gets_its_copies_at_the_next_rescan(tmp_path: Path) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    first = demo_wheel(tmp_path / "a", "1.0")
    store.publish_file(first)
    _forget_copies(store, "demo")
    second = demo_wheel(tmp_path / "b", "1.1")
    store.publish_file(second)  # rescans the project: 1.0 comes from the old cache entry
    folder = store.layout.tree / "files" / "demo"
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    for wheel, entry in zip((first, second), page["files"], strict=True):
        copy = folder / f"{wheel.name}.stored"
        assert_is_stored_copy_of(copy, wheel)
        assert entry[KEY]["hashes"]["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
        assert entry[KEY]["size"] == copy.stat().st_size


def test_an_older_store_gets_its_copies_from_rebuild(tmp_path: Path) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    wheel = demo_wheel(tmp_path)
    store.publish_file(wheel)
    _forget_copies(store, "demo")
    result = repo_cli("index", data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    copy = store.layout.tree / "files" / "demo" / f"{wheel.name}.stored"
    assert_is_stored_copy_of(copy, wheel)
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    assert page["files"][0][KEY]["size"] == copy.stat().st_size


def test_force_replace_gives_a_fresh_copy(repo_server: RunningServer, tmp_path: Path) -> None:
    first = demo_wheel(tmp_path / "a")
    second = demo_wheel(tmp_path / "b", body="y = 2\n")
    assert first.name == second.name
    assert repo_server.upload(first)[0] == 201
    copy = repo_server.data / "tree" / "files" / "demo" / f"{first.name}.stored"
    old = copy.read_bytes()
    status, body = repo_server.upload(second, query="force=1")
    assert (status, body["status"]) == (201, "replaced")
    assert copy.read_bytes() != old
    assert_is_stored_copy_of(copy, second)
    (entry,) = file_entries(repo_server, "demo")
    assert entry["hashes"] == {"sha256": hashlib.sha256(second.read_bytes()).hexdigest()}
    assert entry[KEY]["hashes"] == {"sha256": hashlib.sha256(copy.read_bytes()).hexdigest()}


def test_a_linked_copy_follows_a_forced_replacement(tmp_path: Path) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    wheels = []
    for folder, body in (("a", "x = 1\n"), ("b", "y = 2\n")):
        (tmp_path / folder / "stored").mkdir(parents=True)
        wheels.append(
            restamp_members(
                demo_wheel(tmp_path / folder, body=body),
                tmp_path / folder / "stored" / "demo-1.0-py3-none-any.whl",
                compression=zipfile.ZIP_STORED,
            )
        )
    first, second = wheels
    published = store.layout.tree / "files" / "demo" / first.name
    copy = published.with_name(f"{first.name}.stored")
    store.publish_file(first)
    assert copy.samefile(published)
    store.publish_file(second, force=True)
    # The replaced wheel is a new file; the copy is made (and linked) again, not left
    # pointing at the old bytes.
    assert copy.samefile(published)
    assert copy.read_bytes() == second.read_bytes()
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    assert (
        page["files"][0][KEY]["hashes"]["sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()
    )


def test_a_copy_that_cannot_be_written_leaves_the_wheel_listed(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = demo_wheel(tmp_path)
    folder = repo_server.data / "tree" / "files" / "demo"
    (folder / f"{wheel.name}.stored").mkdir(parents=True)  # a directory in the copy's way
    status, body = repo_server.upload(wheel)
    assert status == 201
    warnings = body["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1
    warning = str(warnings[0])
    assert f"files/demo/{wheel.name}.stored: the stored copy could not be written" in warning
    (entry,) = file_entries(repo_server, "demo")
    assert entry["filename"] == wheel.name
    assert KEY not in entry
    assert repo_server.get(f"files/demo/{wheel.name}")[2] == wheel.read_bytes()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []

    result = repo_cli("index", data=repo_server.data, check=False)
    assert result.returncode == 1
    assert f"warning: files/demo/{wheel.name}.stored: the stored copy" in result.stderr
    assert "error: 1 wheel(s) are listed without their stored copy" in result.stderr

    (folder / f"{wheel.name}.stored").rmdir()
    assert repo_cli("index", data=repo_server.data).returncode == 0
    assert KEY in file_entries(repo_server, "demo")[0]


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Make writing past ``limit`` bytes of any file fail with EFBIG, like a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_failed_copy_is_logged_and_an_old_copy_does_not_survive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    first = demo_wheel(tmp_path / "a")
    store.publish_file(first)
    copy = store.layout.tree / "files" / "demo" / f"{first.name}.stored"
    assert copy.stat().st_size > 32_000 > 4 * first.stat().st_size
    second = demo_wheel(tmp_path / "b", body="y = 2\n")
    with caplog.at_level(logging.WARNING, logger="ipydeps_repo"), file_size_limit(16_000):
        result = store.publish_file(second, force=True)
    assert result.status == "replaced"
    (warning,) = result.warnings
    assert f"files/demo/{first.name}.stored: the stored copy could not be written" in warning
    assert [record.getMessage() for record in caplog.records] == [warning]
    assert not copy.exists()  # the old copy would not match the new wheel
    assert [p.name for p in copy.parent.iterdir() if p.name.startswith(".")] == []
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    assert KEY not in page["files"][0]
    assert page["files"][0]["hashes"]["sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()
    assert store.listing()["wheels"]["demo"][0]["stored_sha256"] is None


def test_copies_of_removed_wheels_are_deleted(tmp_path: Path) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    first = demo_wheel(tmp_path / "a", "1.0")
    second = demo_wheel(tmp_path / "b", "1.1")
    store.publish_file(first)
    store.publish_file(second)
    store.publish_file(make_wheel(tmp_path, "gone", "1.0"))
    folder = store.layout.tree / "files" / "demo"
    (folder / first.name).unlink()
    (store.layout.tree / "files/gone/gone-1.0-py3-none-any.whl").unlink()
    assert store.rebuild() == []
    assert sorted(p.name for p in folder.glob("*.stored")) == [f"{second.name}.stored"]
    assert list((store.layout.tree / "files/gone").glob("*.stored")) == []
    assert not (store.layout.tree / "simple/gone/index.json").exists()


def test_project_json_carries_the_key_only_for_wheels_with_a_copy() -> None:
    without = WheelFile(
        filename="x-1.0-py2-none-any.whl",
        url="../../files/x/x-1.0-py2-none-any.whl",
        version="1.0",
        sha256="a" * 64,
        size=10,
        metadata_sha256="b" * 64,
    )
    with_copy = dataclasses.replace(
        without,
        filename="x-1.0-py3-none-any.whl",
        url="../../files/x/x-1.0-py3-none-any.whl",
        stored_sha256="c" * 64,
        stored_size=30,
        stored_outline_sha256="d" * 64,
    )
    project = Project(name="x", files=(with_copy, without))
    page = json.loads(render_project_json(project))
    by_name = {item["filename"]: item for item in page["files"]}
    assert by_name[with_copy.filename][KEY] == {
        "url": "../../files/x/x-1.0-py3-none-any.whl.stored",
        "hashes": {"sha256": "c" * 64},
        "size": 30,
        "outline_sha256": "d" * 64,
    }
    assert KEY not in by_name[without.filename]
    assert len(page["files"]) == 2
    assert ".stored" not in render_project_html(project)
    # A copy without an outline (zip64) is listed without the key: checked as a whole file.
    no_outline = dataclasses.replace(with_copy, stored_outline_sha256=None)
    page = json.loads(render_project_json(Project(name="x", files=(no_outline,))))
    assert "outline_sha256" not in page["files"][0][KEY]
