"""A forward proxy on 127.0.0.1 that wants Basic credentials, for tests of proxy support.

It serves plain-http requests in absolute form and opens ``CONNECT`` tunnels, each only
with the right ``Proxy-Authorization`` (else 407), and records what it was asked. Host
names are looked up in ``hosts`` (name -> loopback address), so the client can ask for a
name only the proxy can resolve, as behind a corporate proxy.
"""

from __future__ import annotations

import http.client
import http.server
import select
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Asked:
    """One request the proxy received: method, target, and its Proxy-Authorization."""

    method: str
    target: str
    authorization: str | None


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: AuthProxy  # set on the subclass each AuthProxy makes

    def _allowed(self) -> bool:
        given = self.headers.get("Proxy-Authorization")
        self.owner.asked.append(Asked(self.command, self.path, given))
        if given == self.owner.authorization:
            return True
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        return False

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self._allowed():
            return
        target = urllib.parse.urlsplit(self.path)
        host = self.owner.hosts.get(target.hostname or "", target.hostname or "")
        upstream = http.client.HTTPConnection(host, target.port or 80, timeout=30)
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in ("proxy-authorization", "connection")
        }
        upstream.request(
            "GET", target.path + (f"?{target.query}" if target.query else ""), headers=headers
        )
        response = upstream.getresponse()
        body = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        upstream.close()

    def do_CONNECT(self) -> None:  # noqa: N802 (http.server's naming)
        if not self._allowed():
            return
        name, _, port = self.path.rpartition(":")
        upstream = socket.create_connection(
            (self.owner.hosts.get(name, name), int(port)), timeout=30
        )
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        _relay(self.connection, upstream)
        upstream.close()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        return


class AuthProxy:
    """A threaded forward proxy that wants ``authorization``; see the module docstring."""

    def __init__(self, authorization: str, hosts: dict[str, str]) -> None:
        self.authorization = authorization
        self.hosts = dict(hosts)
        self.asked: list[Asked] = []
        handler = type("Handler", (_ProxyHandler,), {"owner": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [client, upstream]
    while True:
        readable, _, _ = select.select(sockets, [], [], 30)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (upstream if sock is client else client).sendall(data)


@contextmanager
def auth_proxy(authorization: str, hosts: dict[str, str]) -> Iterator[AuthProxy]:
    """Run an ``AuthProxy`` for the duration of a ``with`` block."""
    proxy = AuthProxy(authorization, hosts)
    proxy.thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
