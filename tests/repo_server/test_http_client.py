"""The server side's one HTTP client against real loopback servers: redirects, errors, proxies,
timeouts and the verified download."""

from __future__ import annotations

import base64
import hashlib
import socket
from pathlib import Path

import pytest
from ipydeps_repo.errors import ValidationError
from ipydeps_repo.net.client import HttpClient, HttpError, Timeouts, without_credentials
from ipydeps_repo.net.download import download_verified

from tests.support.loopback import Scripted, scripted_server
from tests.support.proxy import auth_proxy
from tests.support.tls import make_certificates

NO_PROXY = {"no_proxy": "*"}


def test_get_follows_redirects_and_sends_url_credentials_as_basic_auth() -> None:
    with scripted_server(
        routes={
            "/old": Scripted(301, headers={"Location": "/new"}),
            "/new": Scripted(200, b"moved here"),
        }
    ) as server:
        url = server.url.replace("http://", "http://alice:s3cret@") + "old"
        reply = HttpClient(environ=NO_PROXY).get(url)
    assert (reply.status, reply.body) == (200, b"moved here")
    assert server.requests == ["/old", "/new"]
    assert server.headers[0]["Authorization"] == "Basic YWxpY2U6czNjcmV0"


def test_an_error_status_is_one_error_type_without_the_credentials() -> None:
    with scripted_server(Scripted(503, b"maintenance")) as server:
        url = server.url.replace("http://", "http://alice:s3cret@") + "page"
        with pytest.raises(HttpError) as caught:
            HttpClient(environ=NO_PROXY).get(url)
    assert caught.value.http_status == 503
    assert caught.value.body == b"maintenance"
    assert "s3cret" not in str(caught.value) and "503" in str(caught.value)


def test_a_refused_connection_is_the_same_error_type() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(HttpError) as caught:
        HttpClient(environ=NO_PROXY).get(f"http://127.0.0.1:{port}/")
    assert caught.value.http_status is None
    assert caught.value.hint


def test_a_redirect_loop_is_refused() -> None:
    with (
        scripted_server(Scripted(302, headers={"Location": "/again"})) as server,
        pytest.raises(HttpError, match="redirects more than 5 times"),
    ):
        HttpClient(environ=NO_PROXY).get(server.url)


def test_a_silent_server_times_out_after_the_idle_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = HttpClient(timeouts=Timeouts(idle=0.5), environ=NO_PROXY)
        with pytest.raises(HttpError, match="no answer in time"):
            client.get(f"http://127.0.0.1:{port}/")


def test_http_proxy_from_the_environment_is_used_and_no_proxy_is_honoured() -> None:
    # The loopback server stands in for the proxy: it sees the absolute URL as the target.
    with scripted_server(Scripted(200, b"via proxy")) as proxy:
        client = HttpClient(environ={"http_proxy": proxy.url})
        reply = client.get("http://upstream.invalid/simple/demo/")
        assert reply.body == b"via proxy"
        assert proxy.requests == ["http://upstream.invalid/simple/demo/"]
        bypass = HttpClient(environ={"http_proxy": "http://127.0.0.1:9/", "no_proxy": "127.0.0.1"})
        assert bypass.get(proxy.url + "direct").body == b"via proxy"
    assert proxy.requests[-1] == "/direct"


def test_send_returns_any_status_with_the_answer() -> None:
    with scripted_server(Scripted(409, b'{"error": "taken"}')) as server:
        reply = HttpClient(environ=NO_PROXY).send("GET", server.url + "x")
    assert (reply.status, reply.body) == (409, b'{"error": "taken"}')


def test_verified_download_renames_only_the_right_bytes(tmp_path: Path) -> None:
    good = b"sdist bytes" * 1000
    digest = hashlib.sha256(good).hexdigest()
    target = tmp_path / "cache" / "demo-1.0.tar.gz"
    with scripted_server(
        routes={"/good": Scripted(200, good), "/bad": Scripted(200, b"tampered")}
    ) as server:
        client = HttpClient(environ=NO_PROXY)
        with pytest.raises(ValidationError, match="its sha256 is"):
            download_verified(client, server.url + "bad", target, digest)
        assert list(target.parent.iterdir()) == []
        assert download_verified(client, server.url + "good", target, digest) == target
        assert target.read_bytes() == good
        requests = len(server.requests)
        download_verified(client, server.url + "good", target, digest)
        assert len(server.requests) == requests  # the file there already is kept


def test_a_download_cut_off_leaves_nothing(tmp_path: Path) -> None:
    body = b"x" * 100_000
    with scripted_server(Scripted(200, body, cut=1000)) as server, pytest.raises(HttpError):
        download_verified(
            HttpClient(environ=NO_PROXY),
            server.url,
            tmp_path / "f",
            hashlib.sha256(body).hexdigest(),
        )
    assert list(tmp_path.iterdir()) == []


def test_without_credentials() -> None:
    assert without_credentials("https://u:p@host:8443/x?y") == "https://host:8443/x?y"
    assert without_credentials("http://host/") == "http://host/"


def test_https_goes_through_a_connect_tunnel_with_the_proxy_s_credentials(
    tmp_path: Path,
) -> None:
    certificates = make_certificates(tmp_path, "repo.example")
    authorization = "Basic " + base64.b64encode(b"proxy-user:s3cr@t").decode()
    with (
        scripted_server(Scripted(200, b"over tls"), tls=certificates.server_context()) as origin,
        auth_proxy(authorization, {"repo.example": "127.0.0.1"}) as proxy,
    ):
        client = HttpClient(
            cafile=str(certificates.ca),
            environ={"HTTPS_PROXY": f"http://proxy-user:s3cr%40t@127.0.0.1:{proxy.port}"},
        )
        assert client.get(f"https://repo.example:{origin.port}/page").body == b"over tls"
    assert [(asked.method, asked.target, asked.authorization) for asked in proxy.asked] == [
        ("CONNECT", f"repo.example:{origin.port}", authorization)
    ]
    assert origin.requests == ["/page"]
    assert not any("Proxy-Authorization" in headers for headers in origin.headers)
