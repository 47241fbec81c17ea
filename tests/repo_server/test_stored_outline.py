"""The outline sha256 of each stored copy: published by the server, migrated, checked by ipydeps."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from ipydeps_repo.settings import DataLayout
from ipydeps_repo.store.store import Store

import ipydeps
from ipydeps.environment import install_scheme
from ipydeps.errors import HashMismatchError
from ipydeps.formats.outline import outline_sha256
from ipydeps.installers.transaction import WheelTransaction
from tests.repo_server.test_stored_copy import KEY, demo_wheel, file_entries
from tests.support.server import RunningServer, repo_cli, start_server
from tests.support.venvs import make_venv, run_python, snapshot


@pytest.fixture(autouse=True)
def _always_stored_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    # "auto" may take the wheel on a busy machine: these tests are about the copy.
    monkeypatch.setenv("IPYDEPS_STORED_COPIES", "always")
    monkeypatch.setenv("IPYDEPS_RETRIES", "1")


def copy_of(data: Path, wheel: Path, project: str = "demo") -> Path:
    return data / "tree" / "files" / project / f"{wheel.name}.stored"


def test_the_page_carries_the_outline_of_the_copy_it_lists(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = demo_wheel(tmp_path)
    assert repo_server.upload(wheel)[0] == 201
    copy = copy_of(repo_server.data, wheel)
    (entry,) = file_entries(repo_server, "demo")
    assert entry[KEY]["outline_sha256"] == outline_sha256(copy)
    assert entry[KEY]["outline_sha256"] != entry[KEY]["hashes"]["sha256"]
    # The file a static host serves as the JSON page, and the packages API, say the same.
    static = json.loads((repo_server.data / "tree/simple/demo/index.json").read_text())
    assert static["files"][0][KEY]["outline_sha256"] == outline_sha256(copy)
    listing = json.loads(repo_server.get("api/v1/packages")[2])
    assert listing["wheels"]["demo"][0]["stored_outline_sha256"] == outline_sha256(copy)


def test_the_stager_computes_the_outline_the_server_published(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = demo_wheel(tmp_path)
    assert repo_server.upload(wheel)[0] == 201
    (entry,) = file_entries(repo_server, "demo")
    copy = copy_of(repo_server.data, wheel)
    make_venv(tmp_path / "env")
    with WheelTransaction(install_scheme(tmp_path / "env")) as transaction:
        stager = transaction.stream_stager(wheel.name)
        stager.restart()(copy.read_bytes())
        transaction.add(stager.finish())
        transaction.commit()
    assert stager.outline_sha256 == entry[KEY]["outline_sha256"]


def install(server: RunningServer, env: Path) -> ipydeps.api.Result:
    return ipydeps.pip(
        ["demo"],
        index_url=server.url + "simple/",
        upstream="deny",
        prefix=env,
        stream=io.StringIO(),
    )


def test_ipydeps_installs_a_copy_checked_by_its_outline(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    python = make_venv(tmp_path / "env")
    wheel = demo_wheel(tmp_path)
    assert repo_server.upload(wheel)[0] == 201
    result = install(repo_server, tmp_path / "env")
    assert [(item.name, item.stored_copy) for item in result.installed] == [("demo", True)]
    assert run_python(python, "import demo; print(demo.x)").stdout.strip() == "1"


def test_a_copy_changed_on_the_server_s_disk_is_refused_by_its_outline(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = demo_wheel(tmp_path)
    assert repo_server.upload(wheel)[0] == 201
    copy = copy_of(repo_server.data, wheel)
    (entry,) = file_entries(repo_server, "demo")
    data = bytearray(copy.read_bytes())
    data[data.index(b"x = 1")] = ord("y")  # one member byte; the page is left as it was
    copy.write_bytes(bytes(data))
    assert file_entries(repo_server, "demo") == [entry]
    with pytest.raises(HashMismatchError, match="outline sha256"):
        install(repo_server, tmp_path / "env")
    assert snapshot(tmp_path / "env") == before


def _forget_outlines(store: Store, project: str) -> None:
    """Make the listing cache and pages look like ones written before outlines."""
    cache = store.layout.cache / "simple" / f"{project}.json"
    entries: dict[str, dict[str, Any]] = json.loads(cache.read_text())
    for entry in entries.values():
        entry.pop("stored_outline_sha256")
    cache.write_text(json.dumps(entries))
    page = store.layout.tree / "simple" / project / "index.json"
    document = json.loads(page.read_text())
    for item in document["files"]:
        item[KEY].pop("outline_sha256")
    page.write_text(json.dumps(document))


def test_an_entry_from_an_older_cache_gets_its_outline_from_the_copy_as_it_is(
    tmp_path: Path,
) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    first = demo_wheel(tmp_path / "a", "1.0")
    store.publish_file(first)
    _forget_outlines(store, "demo")
    copy = copy_of(tmp_path / "data", first)
    before = copy.stat()
    store.publish_file(demo_wheel(tmp_path / "b", "1.1"))  # rescans: 1.0 from the old entry
    after = copy.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    assert page["files"][0][KEY]["outline_sha256"] == outline_sha256(copy)
    cache = json.loads((store.layout.cache / "simple/demo.json").read_text())
    assert cache[first.name]["stored_outline_sha256"] == outline_sha256(copy)


def test_an_older_entry_whose_copy_changed_on_disk_gets_a_new_copy_not_its_outline(
    tmp_path: Path,
) -> None:
    # The outline vouches for the copy in place of its sha256: it must not be computed
    # from a copy that no longer has the sha256 the listing holds.
    store = Store(DataLayout(tmp_path / "data"))
    wheel = demo_wheel(tmp_path)
    store.publish_file(wheel)
    copy = copy_of(tmp_path / "data", wheel)
    genuine = copy.read_bytes()
    _forget_outlines(store, "demo")
    data = bytearray(genuine)
    data[data.index(b"x = 1")] = ord("y")
    copy.write_bytes(bytes(data))
    result = repo_cli("index", data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert copy.read_bytes() == genuine
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    assert page["files"][0][KEY]["outline_sha256"] == outline_sha256(copy)
    assert page["files"][0][KEY]["hashes"]["sha256"] == hashlib.sha256(genuine).hexdigest()


def test_a_copy_without_an_outline_is_listed_without_the_key(tmp_path: Path) -> None:
    # An old cache entry whose copy cannot be walked (here: made unwalkable by hand, with
    # the sha256 the entry lists) keeps its copy and gets no outline: clients check it whole.
    store = Store(DataLayout(tmp_path / "data"))
    wheel = demo_wheel(tmp_path)
    store.publish_file(wheel)
    copy = copy_of(tmp_path / "data", wheel)
    data = bytearray(copy.read_bytes())
    data[8] = 8  # the first member's compression method: "deflated"
    copy.write_bytes(bytes(data))
    os.utime(copy)
    cache_path = store.layout.cache / "simple" / "demo.json"
    entries = json.loads(cache_path.read_text())
    entry = entries[wheel.name]
    entry.pop("stored_outline_sha256")
    entry["stored_sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    cache_path.write_text(json.dumps(entries))
    store.publish_file(demo_wheel(tmp_path / "b", "1.1"))
    page = json.loads((store.layout.tree / "simple/demo/index.json").read_text())
    assert page["files"][0][KEY]["hashes"]["sha256"] == entry["stored_sha256"]
    assert "outline_sha256" not in page["files"][0][KEY]
    assert json.loads(cache_path.read_text())[wheel.name]["stored_outline_sha256"] is None


def test_a_server_started_on_an_older_store_publishes_the_outlines(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(DataLayout(data))
    wheel = demo_wheel(tmp_path)
    store.publish_file(wheel)
    _forget_outlines(store, "demo")
    copy = copy_of(data, wheel)
    before = copy.stat()
    server = start_server(data)
    try:
        (entry,) = file_entries(server, "demo")
    finally:
        server.stop()
    assert entry[KEY]["outline_sha256"] == outline_sha256(copy)
    after = copy.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not store.add_outlines()  # once: a second start has nothing to do
