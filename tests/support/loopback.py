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

    ``pace`` (bytes per second) sends the body no faster than that, like a slow network;
    ``trickle`` sends it one byte every ``trickle`` seconds; ``stall`` (with ``cut``)
    keeps the connection open in silence after the cut, until the server stops.
    """

    status: int = 200
    body: bytes = b""
    cut: int | None = None
    pace: float | None = None
    content_type: str = "application/octet-stream"
    headers: dict[str, str] | None = None
    trickle: float | None = None
    stall: bool = False


class ScriptedServer:
    """Serves ``responses`` in order (the last one repeats) and records request paths."""

    def __init__(
        self,
        responses: list[Scripted],
        routes: dict[str, Scripted] | None = None,
        *,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.responses = list(responses)
        self.routes = dict(routes or {})
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        # Set once a paced body has started to go out: a slow download is under way.
        self.pacing = threading.Event()
        self.stopping = threading.Event()
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
                self.close_connection = owner.send_body(self.wfile, response)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def send_body(self, stream: BinaryIO, response: Scripted) -> bool:
        """Send ``response``'s body as scripted; return whether to close the connection."""
        if response.cut is not None:
            stream.write(response.body[: response.cut])
            stream.flush()
            if response.stall:
                self.stopping.wait()
            return True
        if response.trickle is not None:
            _trickle(stream, response.body, response.trickle, self.stopping)
            return True
        if response.pace is not None:
            self.pacing.set()
            _paced_write(stream, response.body, response.pace)
            return False
        stream.write(response.body)
        return False

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def _trickle(stream: BinaryIO, body: bytes, every: float, stopping: threading.Event) -> None:
    """Send ``body`` a byte at a time, one every ``every`` seconds, until done or stopped."""
    for offset in range(len(body)):
        try:
            stream.write(body[offset : offset + 1])
            stream.flush()
        except OSError:  # the client went away
            return
        if stopping.wait(every):
            return


def _paced_write(stream: BinaryIO, body: bytes, pace: float) -> None:
    piece = 16 * 1024
    started = time.monotonic()
    for offset in range(0, len(body), piece):
        stream.write(body[offset : offset + piece])
        stream.flush()
        ahead = started + (offset + piece) / pace - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


@contextmanager
def scripted_server(
    *responses: Scripted,
    routes: dict[str, Scripted] | None = None,
    host: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
) -> Iterator[ScriptedServer]:
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
