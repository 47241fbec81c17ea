"""Keep-alive HTTP connections for the fetcher: one per thread and host, proxies, one TLS context.

A plan alternates between an index host and a files host (PyPI), so each thread keeps one
connection per host; the TLS context is made once, since loading the CA store costs
milliseconds each time (and a loopback repository over plain HTTP never pays it).
"""

from __future__ import annotations

import array
import http.client
import os
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Mapping

from .fetch_failures import OutOfTime
from .proxies import Proxy, bypasses_proxy, parse_proxy
from .retries import Deadline


def system_proxies(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return ``urllib.request.getproxies()``: the proxies from the environment (and system).

    On Linux, where only ``*_proxy`` variables count, urllib.request (about 15 ms to
    import, a tenth of ``python -m ipydeps``'s start-up) is imported only when one is set.
    """
    environ = os.environ if environ is None else environ
    if sys.platform.startswith("linux") and not any(
        key.lower().endswith("_proxy") for key in environ
    ):
        return {}
    import urllib.request

    return urllib.request.getproxies()


class ConnectionPool:
    """The fetcher's connections, by thread and by (scheme, host).

    ``proxies`` maps "http"/"https" to a proxy URL (credentials allowed, see proxies.py),
    "no" to a NO_PROXY-style list; loopback is never proxied. Only http and https URLs
    may be passed in (the caller checks the scheme).
    """

    def __init__(self, *, proxies: Mapping[str, str], timeout: float) -> None:
        self.proxies = dict(proxies)
        self.timeout = timeout
        self._local = threading.local()
        self._tls_lock = threading.Lock()
        self._tls_context: ssl.SSLContext | None = None

    def connection(self, parts: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        """Return this thread's connection for ``parts``'s host, made if needed; it is current."""
        key = (parts.scheme, parts.netloc)
        connections = self._connections()
        self._local.current = key
        connection = connections.get(key)
        if connection is None:
            connection = connections[key] = self._new_connection(parts)
        self.live()[0] = connection
        return connection

    def current(self) -> http.client.HTTPConnection | None:
        """Return the connection this thread used last, if it is still open."""
        key = getattr(self._local, "current", None)
        return self._connections().get(key) if key is not None else None

    def drop_current(self) -> None:
        """Close this thread's connection to the host it used last (after an error)."""
        key = getattr(self._local, "current", None)
        connection = self._connections().pop(key, None) if key is not None else None
        if connection is not None:
            connection.close()

    def live(self) -> list[http.client.HTTPConnection | None]:
        """Return this thread's box holding the connection in use (for cancelling)."""
        live = getattr(self._local, "live", None)
        if live is None:
            live = self._local.live = [None]
        return live

    def proxy_for(self, parts: urllib.parse.SplitResult) -> Proxy | None:
        """Return the proxy for ``parts``, or None (no proxy, loopback, or a NO_PROXY match).

        Raises ``ValueError`` for a proxy URL that cannot be used (see ``parse_proxy``).
        """
        proxy = self.proxies.get(parts.scheme)
        if not proxy:
            return None
        try:
            port = parts.port
        except ValueError:
            port = None
        if bypasses_proxy(parts.hostname or "", port, self.proxies.get("no", "")):
            return None
        return parse_proxy(proxy)

    def _new_connection(self, parts: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        proxy = self.proxy_for(parts)
        timeout = self.timeout
        if proxy is None and parts.scheme == "https":
            return http.client.HTTPSConnection(parts.netloc, timeout=timeout, context=self._tls())
        if proxy is None:
            return http.client.HTTPConnection(parts.netloc, timeout=timeout)
        if parts.scheme == "https":
            # HTTPS through a proxy: a CONNECT tunnel (authenticated to the proxy), TLS end
            # to end with the origin.
            connection = http.client.HTTPSConnection(
                proxy.host, proxy.port, timeout=timeout, context=self._tls()
            )
            connection.set_tunnel(parts.hostname or "", parts.port, headers=proxy.headers)
            return connection
        return http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)

    def _connections(self) -> dict[tuple[str, str], http.client.HTTPConnection]:
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        return connections

    def _tls(self) -> ssl.SSLContext:
        with self._tls_lock:
            if self._tls_context is None:
                self._tls_context = ssl.create_default_context()
            return self._tls_context


def waiting_bytes(connection: http.client.HTTPConnection) -> int | None:
    """Return how many received bytes wait in the connection's socket, or None if unknown."""
    try:
        import fcntl
        import termios
    except ImportError:  # not a POSIX system
        return None
    if connection.sock is None:
        return None
    waiting = array.array("i", [0])
    try:
        fcntl.ioctl(connection.sock.fileno(), termios.FIONREAD, waiting)
    except (OSError, ValueError):
        return None
    return waiting[0]


def limit_wait(connection: http.client.HTTPConnection, clock: Deadline, timeout: float) -> None:
    """Bound the connection's next socket wait by ``timeout`` and the deadline's time left.

    Raises ``_TransientError`` when no time is left (the retry loop then gives up).
    """
    wait = clock.wait_limit(timeout)
    if wait is None:
        raise OutOfTime("out of time")
    connection.timeout = wait  # for a connection not opened yet
    if connection.sock is not None:
        connection.sock.settimeout(wait)
