"""HttpFetcher against real loopback HTTP servers: retries, 404s, cut bodies, hash checks."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from ipydeps.connections import system_proxies
from ipydeps.errors import DownloadError, HashMismatchError, NotFoundError, RepositoryError
from ipydeps.fetch import HttpFetcher, RetryPolicy
from tests.support.loopback import Scripted, scripted_server

BODY = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(BODY).hexdigest()
FAST = RetryPolicy(attempts=3, initial_delay=0.01, factor=2.0, timeout=10.0)


def fetcher() -> HttpFetcher:
    return HttpFetcher(retry=FAST)


def test_download_streams_and_verifies(tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    with scripted_server(Scripted(body=BODY)) as server:
        path = fetcher().download(
            server.url + "f.whl",
            tmp_path / "f.whl",
            sha256=SHA,
            progress=lambda done, total: seen.append((done, total)),
        )
    assert path.read_bytes() == BODY
    assert seen[-1] == (len(BODY), len(BODY))
    assert list(tmp_path.iterdir()) == [path]


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    with scripted_server(
        Scripted(503, b"busy"), Scripted(body=BODY, cut=1000), Scripted(body=BODY)
    ) as server:
        path = fetcher().download(server.url + "f.whl", tmp_path / "f.whl", sha256=SHA)
    assert path.read_bytes() == BODY
    assert len(server.requests) == 3


def test_body_cut_short_every_time_fails_and_leaves_no_file(tmp_path: Path) -> None:
    with (
        scripted_server(Scripted(body=BODY, cut=len(BODY) // 2)) as server,
        pytest.raises(DownloadError) as caught,
    ):
        fetcher().download(server.url + "f.whl", tmp_path / "f.whl", sha256=SHA)
    assert f"connection closed after {len(BODY) // 2} of {len(BODY)} bytes" in str(caught.value)
    assert len(server.requests) == FAST.attempts
    assert list(tmp_path.iterdir()) == []


def test_a_write_error_is_reported_once_not_retried_as_a_network_error(tmp_path: Path) -> None:
    def disk_full(done: int, total: int | None) -> None:
        raise OSError(28, "No space left on device")

    with (
        scripted_server(Scripted(body=BODY), Scripted(body=BODY)) as server,
        pytest.raises(DownloadError) as caught,
    ):
        fetcher().download(server.url + "f.whl", tmp_path / "f.whl", sha256=SHA, progress=disk_full)
    assert "No space left on device" in str(caught.value)
    assert "free space" in (caught.value.hint or "")
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_404_is_not_retried(tmp_path: Path) -> None:
    with scripted_server(Scripted(404, b"no")) as server:
        with pytest.raises(DownloadError, match=r"not found \(HTTP 404\)"):
            fetcher().download(server.url + "f.whl", tmp_path / "f.whl", sha256=SHA)
        with pytest.raises(NotFoundError) as caught:
            fetcher().get_bytes(server.url + "simple/nothing/")
    assert caught.value.status == 404
    assert len(server.requests) == 2


def test_hash_mismatch_is_refused_without_retry(tmp_path: Path) -> None:
    with scripted_server(Scripted(body=BODY)) as server, pytest.raises(HashMismatchError) as caught:
        fetcher().download(server.url + "f.whl", tmp_path / "f.whl", sha256="0" * 64)
    assert caught.value.actual == SHA
    assert "tampered" in str(caught.value)
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_client_errors_are_repository_errors() -> None:
    with (
        scripted_server(Scripted(403, b"forbidden")) as server,
        pytest.raises(RepositoryError, match="HTTP 403"),
    ):
        fetcher().get_bytes(server.url + "simple/")
    assert len(server.requests) == 1


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RepositoryError, match="connection refused") as caught:
        fetcher().get_bytes(f"http://127.0.0.1:{port}/simple/")
    assert caught.value.hint and "server is running" in caught.value.hint


def test_get_bytes_sends_accept_header() -> None:
    with scripted_server(Scripted(body=b"{}")) as server:
        assert fetcher().get_bytes(server.url + "simple/x/", accept="application/json") == b"{}"
    assert server.headers[0]["Accept"] == "application/json"


def test_redirects_are_followed(tmp_path: Path) -> None:
    routes = {
        "/simple/x/": Scripted(302, b"", headers={"Location": "/moved/x/"}),
        "/moved/x/": Scripted(body=b"page"),
        "/f.whl": Scripted(301, b"", headers={"Location": "/files/f.whl"}),
        "/files/f.whl": Scripted(body=BODY),
    }
    with scripted_server(routes=routes) as server:
        assert fetcher().get_bytes(server.url + "simple/x/") == b"page"
        path = fetcher().download(server.url + "f.whl", tmp_path / "f.whl", sha256=SHA)
    assert path.read_bytes() == BODY


def test_redirect_loops_and_downgrades_are_refused() -> None:
    routes = {"/loop/": Scripted(302, b"", headers={"Location": "/loop/"})}
    with (
        scripted_server(routes=routes) as server,
        pytest.raises(RepositoryError, match="more than 5 redirects"),
    ):
        fetcher().get_bytes(server.url + "loop/")
    routes = {"/away/": Scripted(302, b"", headers={"Location": "file:///etc/passwd"})}
    with (
        scripted_server(routes=routes) as server,
        pytest.raises(RepositoryError, match="refused redirect"),
    ):
        fetcher().get_bytes(server.url + "away/")


def test_system_proxies_are_the_environment_s_and_empty_without_any(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import urllib.request

    for key in list(os.environ):
        if key.lower().endswith("_proxy"):
            monkeypatch.delenv(key)
    assert system_proxies() == {} == urllib.request.getproxies()
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "internal.example")
    assert system_proxies() == urllib.request.getproxies()
    assert system_proxies()["https"] == "http://proxy.example:3128"
    assert system_proxies()["no"] == "internal.example"


def test_plain_http_goes_through_a_configured_proxy() -> None:
    with scripted_server(Scripted(body=b"via proxy")) as proxy:
        proxied = HttpFetcher(retry=FAST, proxies={"http": proxy.url})
        assert proxied.get_bytes("http://repo.example.invalid/simple/x/") == b"via proxy"
        # Loopback never goes through the proxy.
        with scripted_server(Scripted(body=b"direct")) as origin:
            assert proxied.get_bytes(origin.url + "simple/") == b"direct"
    assert proxy.requests == ["http://repo.example.invalid/simple/x/"]
