"""pip() with a repository that offers stored copies: when they are used, and failures in them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from pathlib import Path

import pytest

import ipydeps
from ipydeps.errors import DownloadError, HashMismatchError
from tests.ipydeps.test_wheelstream import stored_copy
from tests.support.loopback import Scripted, ScriptedServer, scripted_server
from tests.support.venvs import make_venv, run_python, snapshot
from tests.support.wheels import make_wheel, wheel_metadata

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPYDEPS_RETRIES", "1")
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)


def routes_for(
    wheel: Path,
    copy: bytes | None,
    *,
    advertised: bytes | None = None,
    cut: int | None = None,
    key: object = None,
) -> dict[str, Scripted]:
    """A one-project index: the wheel, its metadata and (when given) its stored copy.

    ``advertised`` is what the index's sha256 and size describe (default: ``copy``);
    ``key`` replaces the whole ``_ipydeps-stored`` value.
    """
    data, metadata = wheel.read_bytes(), wheel_metadata(wheel)
    entry: dict[str, object] = {
        "filename": wheel.name,
        "url": f"/files/{wheel.name}",
        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
        "size": len(data),
        "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
    }
    routes = {
        f"/files/{wheel.name}": Scripted(body=data),
        f"/files/{wheel.name}.metadata": Scripted(body=metadata),
    }
    if copy is not None:
        described = copy if advertised is None else advertised
        entry["_ipydeps-stored"] = (
            key
            if key is not None
            else {
                "url": f"/files/{wheel.name}.stored",
                "hashes": {"sha256": hashlib.sha256(described).hexdigest()},
                "size": len(described),
            }
        )
        routes[f"/files/{wheel.name}.stored"] = Scripted(body=copy, cut=cut)
    project = wheel.name.split("-")[0].replace("_", "-")
    page = {"meta": {"api-version": "1.1"}, "name": project, "files": [entry]}
    routes[f"/simple/{project}/"] = Scripted(body=json.dumps(page).encode(), content_type=JSON)
    return routes


def package(tmp_path: Path) -> Path:
    return make_wheel(
        tmp_path,
        "stream-pkg",
        "1.0",
        files={"stream_pkg/__init__.py": "VALUE = 42\n", "stream_pkg/blob.bin": b"\1" * 300_000},
    )


def install(server: ScriptedServer, env: Path) -> ipydeps.api.Result:
    return ipydeps.pip(
        ["stream-pkg"],
        index_url=server.url + "simple/",
        upstream="deny",
        prefix=env,
        stream=io.StringIO(),
    )


def test_a_loopback_repository_s_stored_copy_is_what_gets_installed(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "env")
    wheel = package(tmp_path)
    copy = stored_copy(wheel)
    with scripted_server(routes=routes_for(wheel, copy)) as server:
        result = install(server, tmp_path / "env")
    assert f"/files/{wheel.name}.stored" in server.requests
    assert f"/files/{wheel.name}" not in server.requests
    assert [(item.name, item.bytes, item.stored_copy) for item in result.installed] == [
        ("stream-pkg", len(copy), True)
    ]
    assert "(stored copy)" in repr(result) and "(stored copy)" in result._repr_html_()
    assert run_python(python, "import stream_pkg; print(stream_pkg.VALUE)").stdout.strip() == "42"


def test_stored_copies_never_fetches_the_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYDEPS_STORED_COPIES", "never")
    make_venv(tmp_path / "env")
    wheel = package(tmp_path)
    with scripted_server(routes=routes_for(wheel, stored_copy(wheel))) as server:
        result = install(server, tmp_path / "env")
    assert f"/files/{wheel.name}" in server.requests
    assert f"/files/{wheel.name}.stored" not in server.requests
    assert result.installed[0].bytes == wheel.stat().st_size
    assert not result.installed[0].stored_copy
    assert "stored copy" not in repr(result)


def test_a_tampered_stored_copy_is_refused_without_falling_back(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = package(tmp_path)
    good = stored_copy(wheel)
    (tmp_path / "evil").mkdir()
    evil_wheel = make_wheel(
        tmp_path / "evil",
        "stream-pkg",
        "1.0",
        files={"stream_pkg/__init__.py": "print('evil code ran')\n"},
    )
    routes = routes_for(wheel, stored_copy(evil_wheel), advertised=good)
    with scripted_server(routes=routes) as server, pytest.raises(HashMismatchError):
        install(server, tmp_path / "env")
    assert f"/files/{wheel.name}" not in server.requests  # a mismatch is not a reason to retry
    assert snapshot(tmp_path / "env") == before


def test_a_stored_copy_longer_than_announced_is_refused_at_once(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = package(tmp_path)
    copy = stored_copy(wheel)
    endless = copy + b"\0" * (4 << 20)  # e.g. a hostile server streaming on and on
    key = {
        "url": f"/files/{wheel.name}.stored",
        "hashes": {"sha256": hashlib.sha256(copy).hexdigest()},
        "size": len(copy),
    }
    routes = routes_for(wheel, endless, key=key)
    with (
        scripted_server(routes=routes) as server,
        pytest.raises(DownloadError, match="more than the .* bytes its index announced"),
    ):
        install(server, tmp_path / "env")
    assert snapshot(tmp_path / "env") == before


def test_a_stored_copy_cut_short_leaves_nothing_installed(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = package(tmp_path)
    copy = stored_copy(wheel)
    with (
        scripted_server(routes=routes_for(wheel, copy, cut=len(copy) // 2)) as server,
        pytest.raises(DownloadError, match="connection closed after"),
    ):
        install(server, tmp_path / "env")
    assert server.requests.count(f"/files/{wheel.name}.stored") == 2  # retried once
    assert snapshot(tmp_path / "env") == before
    assert not [path for path in (tmp_path / "env").rglob("*") if "ipydeps-tx" in path.name]


def test_a_copy_that_cannot_be_streamed_falls_back_to_the_wheel(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "env")
    wheel = package(tmp_path)
    # Deflated members: valid and correctly hashed, but not a stored copy.
    with scripted_server(routes=routes_for(wheel, wheel.read_bytes())) as server:
        result = install(server, tmp_path / "env")
    assert server.requests.index(f"/files/{wheel.name}.stored") < server.requests.index(
        f"/files/{wheel.name}"
    )
    assert result.installed[0].bytes == wheel.stat().st_size
    assert not result.installed[0].stored_copy
    assert run_python(python, "import stream_pkg; print(stream_pkg.VALUE)").stdout.strip() == "42"


def big_package(tmp_path: Path, name: str = "stream-pkg") -> Path:
    # Past the probe's first reads (2 left out, 6 judged, 1 MiB each), and incompressible,
    # so the wheel is about as big as its copy.
    blob = random.Random(name).randbytes(12 << 20)
    module = name.replace("-", "_")
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_wheel(
        tmp_path,
        name,
        "1.0",
        files={f"{module}/__init__.py": "VALUE = 42\n", f"{module}/blob.bin": blob},
    )


@pytest.mark.parametrize(("setting", "stored"), [("auto", False), ("always", True)])
def test_over_a_slow_network_auto_drops_the_copy_for_the_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, stored: bool
) -> None:
    monkeypatch.setenv("IPYDEPS_STORED_COPIES", setting)
    python = make_venv(tmp_path / "env")
    wheel = big_package(tmp_path)
    routes = routes_for(wheel, stored_copy(wheel))
    # 20 MB/s: the install drains each read before the next arrives.
    routes[f"/files/{wheel.name}.stored"].pace = 20e6
    with scripted_server(routes=routes) as server:
        result = install(server, tmp_path / "env")
    assert result.installed[0].stored_copy is stored
    assert (f"/files/{wheel.name}" in server.requests) is not stored
    assert result.warnings == ()  # a choice made for speed, not something to fix
    assert run_python(python, "import stream_pkg; print(stream_pkg.VALUE)").stdout.strip() == "42"
    leftovers = [path for path in (tmp_path / "env").rglob("*") if "ipydeps-tx" in path.name]
    assert not leftovers


def test_the_first_verdict_holds_for_the_whole_install(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "env")
    names = ["slow-a", "slow-b", "slow-c"]
    wheels = [big_package(tmp_path / name, name) for name in names]
    routes: dict[str, Scripted] = {}
    for wheel in wheels:
        routes |= routes_for(wheel, stored_copy(wheel))
        routes[f"/files/{wheel.name}.stored"].pace = 20e6
    with scripted_server(routes=routes) as server:
        result = ipydeps.pip(
            names,
            index_url=server.url + "simple/",
            upstream="deny",
            prefix=tmp_path / "env",
            stream=io.StringIO(),
        )
    assert sorted(item.name for item in result.installed if not item.stored_copy) == names
    # One stream per core: a package that gets its turn after the verdict goes straight
    # to its wheel.
    copies = [path for path in server.requests if path.endswith(".stored")]
    assert len(copies) <= max(os.cpu_count() or 1, 1)
    assert all(f"/files/{wheel.name}" in server.requests for wheel in wheels)
    check = "import slow_a, slow_b, slow_c; print(slow_a.VALUE + slow_c.VALUE)"
    assert run_python(python, check).stdout.strip() == "84"


def test_over_a_fast_network_auto_keeps_the_copy(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    wheel = big_package(tmp_path)
    with scripted_server(routes=routes_for(wheel, stored_copy(wheel))) as server:
        result = install(server, tmp_path / "env")
    assert result.installed[0].stored_copy
    assert f"/files/{wheel.name}" not in server.requests


@pytest.mark.parametrize("status", [404, 403])
def test_a_missing_stored_copy_falls_back_to_the_wheel_with_a_warning(
    tmp_path: Path, status: int
) -> None:
    python = make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = package(tmp_path)
    routes = routes_for(wheel, stored_copy(wheel))
    routes[f"/files/{wheel.name}.stored"] = Scripted(status, b"no such file")
    with scripted_server(routes=routes) as server:
        if status == 403:
            # Refused is not missing: the server is saying something about access, which
            # the wheel would most likely meet too.
            with pytest.raises(DownloadError, match="HTTP 403"):
                install(server, tmp_path / "env")
            assert f"/files/{wheel.name}" not in server.requests
            assert snapshot(tmp_path / "env") == before
            return
        result = install(server, tmp_path / "env")
    assert server.requests.index(f"/files/{wheel.name}.stored") < server.requests.index(
        f"/files/{wheel.name}"
    )
    assert not result.installed[0].stored_copy
    (warning,) = result.warnings
    assert "stored copy" in warning and "HTTP 404" in warning and "ipydeps-repo index" in warning
    assert warning in repr(result)
    assert run_python(python, "import stream_pkg; print(stream_pkg.VALUE)").stdout.strip() == "42"


@pytest.mark.parametrize(
    "key",
    [
        "not a table",
        {"url": "/x.stored", "hashes": {"sha256": "0" * 63}, "size": 10},
        {"url": "/x.stored", "hashes": {"sha256": "0" * 64}, "size": "10"},
        {"hashes": {"sha256": "0" * 64}, "size": 10},
    ],
)
def test_a_malformed_stored_copy_entry_is_ignored(tmp_path: Path, key: object) -> None:
    make_venv(tmp_path / "env")
    wheel = package(tmp_path)
    with scripted_server(routes=routes_for(wheel, stored_copy(wheel), key=key)) as server:
        install(server, tmp_path / "env")
    assert f"/files/{wheel.name}" in server.requests
    assert not any(request.endswith(".stored") for request in server.requests)
