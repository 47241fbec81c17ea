"""A full disk during an upload is a clear 507 that leaves nothing behind (issue 15, item 4).

The server's data directory sits on a real, small tmpfs (mounted for the test; root is
needed, as in CI), so the disk fills up for real: ENOSPC from the kernel, not a fake.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ipydeps_repo.errors import StorageFullError
from ipydeps_repo.store.layout import DataLayout
from ipydeps_repo.store.store import Store

from tests.support.sdists import legacy_form
from tests.support.server import RunningServer, repo_cli, start_server
from tests.support.wheels import make_wheel

from .test_legacy_upload import post_form

DISK_SIZE = "3m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs mounted at ``tmp_path/disk`` for the test's duration."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        if "permission denied" in mounted.stderr.lower() or "not permitted" in mounted.stderr:
            pytest.skip(f"this machine does not let root mount a tmpfs: {mounted.stderr}")
        raise AssertionError(mounted.stderr)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def full_server(small_disk: Path) -> Iterator[RunningServer]:
    server = start_server(small_disk / "data")
    try:
        yield server
    finally:
        server.stop()


def left_behind(server: RunningServer) -> list[str]:
    """Every file of the upload's that is still on the disk: part files, temp files, the wheel."""
    found = [path.name for path in (server.data / "state" / "tmp").iterdir()]
    found += [
        str(path.relative_to(server.data / "tree"))
        for path in (server.data / "tree" / "files").rglob("*")
    ]
    return found


def test_an_upload_larger_than_the_free_space_is_507(
    full_server: RunningServer, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "big", "1.0", files={"big/blob.bin": os.urandom(4 << 20)})
    # The publish command says what happened, not "check the URL".
    result = repo_cli(
        "publish",
        str(wheel),
        "--url",
        full_server.url,
        "--token",
        full_server.token,
        data=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert (
        "error: big-1.0-py3-none-any.whl: no space left on device: "
        "big-1.0-py3-none-any.whl could not be stored"
    ) in result.stderr
    assert "check the URL" not in result.stderr
    assert left_behind(full_server) == []
    # The PUT API and the legacy form answer the same, in JSON and in text.
    status, body = full_server.upload(wheel)
    assert status == 507
    assert str(body["error"]).startswith("no space left on device")
    assert "free space there" in str(body["hint"])
    form, content_type = legacy_form(wheel)
    status, reason, text = post_form(full_server, form, content_type)
    assert (status, reason.startswith("no space left on device")) == (507, True)
    assert left_behind(full_server) == []
    # Nothing was torn: the server goes on, and a file that fits is published.
    (tmp_path / "small").mkdir()
    assert full_server.upload(make_wheel(tmp_path / "small", "small", "1.0"))[0] == 201


def test_a_disk_filled_by_the_metadata_is_507_too(
    full_server: RunningServer, tmp_path: Path
) -> None:
    # The wheel is small (its METADATA compresses well) but its .metadata file, written
    # beside it, does not fit.
    wheel = make_wheel(tmp_path, "wordy", "1.0", summary="word " * (800 * 1024))
    assert wheel.stat().st_size < 1 << 20
    status, body = full_server.upload(wheel)
    assert status == 507
    assert str(body["error"]).startswith("no space left on device")
    assert left_behind(full_server) == []
    assert full_server.get("simple/wordy/")[0] == 404
    assert full_server.get("api/v1/health")[0] == 200


def test_the_maintainers_local_publish_on_a_full_disk_is_a_storage_error(
    small_disk: Path, tmp_path: Path
) -> None:
    # The path of `mirror` and the farm's --data: Store.publish_file copies the file in first.
    store = Store(DataLayout(small_disk / "data"))
    wheel = make_wheel(tmp_path, "big", "1.0", files={"big/blob.bin": os.urandom(4 << 20)})
    with pytest.raises(StorageFullError) as caught:
        store.publish_file(wheel)
    assert str(caught.value).startswith(
        "no space left on device: big-1.0-py3-none-any.whl could not be stored"
    )
    assert list(store.layout.tmp.iterdir()) == []
    assert not (store.layout.tree / "files" / "big").exists()
    assert wheel.exists()
