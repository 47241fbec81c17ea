"""A scripted HTTP server on 127.0.0.1 for client tests: responses by path, or in order.

A response can be a full body, a status error, or a body cut off half-way (the server
sends the headers and part of the body, then closes the connection), which is how a
server killed mid-download looks to a client.
"""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO


@dataclass
class Scripted:
    """One response: ``status``, ``body``; ``cut`` sends only that many body bytes, then closes.

    ``pace`` (bytes per second) sends the body no faster than that, like a slow network.
    """

    status: int = 200
    body: bytes = b""
    cut: int | None = None
    pace: float | None = None
    content_type: str = "application/octet-stream"
    headers: dict[str, str] | None = None


class ScriptedServer:
    """Serves ``responses`` in order (the last one repeats) and records request paths."""

    def __init__(self, responses: list[Scripted],
                 routes: dict[str, Scripted] | None = None, *, host: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None) -> None:
        self.responses = list(responses)
        self.routes = dict(routes or {})
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        # Set once a paced body has started to go out: a slow download is under way.
        self.pacing = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                owner.requests.append(self.path)
                owner.headers.append(dict(self.headers))
                if self.path in owner.routes:
                    response = owner.routes[self.path]
                elif owner.responses:
                    index = min(len(owner.requests), len(owner.responses)) - 1
                    response = owner.responses[index]
                else:
                    response = Scripted(404, b"not found")
                self.send_response(response.status)
                self.send_header("Content-Length", str(len(response.body)))
                self.send_header("Content-Type", response.content_type)
                for name, value in (response.headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if response.cut is not None:
                    self.wfile.write(response.body[: response.cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if response.pace is not None:
                    owner.pacing.set()
                    _paced_write(self.wfile, response.body, response.pace)
                    return
                self.wfile.write(response.body)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _paced_write(stream: BinaryIO, body: bytes, pace: float) -> None:
    piece = 16 * 1024
    started = time.monotonic()
    for offset in range(0, len(body), piece):
        stream.write(body[offset:offset + piece])
        stream.flush()
        ahead = started + (offset + piece) / pace - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


@contextmanager
def scripted_server(*responses: Scripted, routes: dict[str, Scripted] | None = None,
                    host: str = "127.0.0.1",
                    tls: ssl.SSLContext | None = None) -> Iterator[ScriptedServer]:
    """Run a ``ScriptedServer`` for the duration of a ``with`` block (``routes`` by path first).

    ``host`` is the loopback address it listens on (127.0.0.2 plays another host); with
    ``tls`` (a server context) it speaks https.
    """
    server = ScriptedServer(list(responses), routes, host=host, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
