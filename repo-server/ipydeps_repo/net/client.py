"""The server side's one HTTP client: stdlib ``http.client``, one error, one timeout policy.

Every request the server's programs make goes through here: ``ipydeps-repo publish`` and
the farm's uploads, ``yank``/``unyank``/``delete`` with ``--url``, the mirror's reading of
upstream upload times, the farm's PyPI JSON API and sdist downloads.

- One error: ``HttpError`` (a ``RepoError``, 502) for a peer that cannot be reached, goes
  silent, or does not answer in HTTP, and (``get``/``open``) for a status of 400 or more.
  ``send`` returns every status: the upload API's callers map them to their own errors.
- One timeout policy, ``Timeouts``: ``idle`` seconds the peer may stay silent while we
  connect, send or read (a slow but moving transfer never times out); ``reply`` seconds an
  upload waits for its answer once the body is sent (the server checks the file first).
- Proxies as urllib finds them (``http_proxy``, ``https_proxy``, ``no_proxy``): plain
  http through the proxy with the whole URL as the target, https through a CONNECT tunnel
  (credentials in the proxy URL go as ``Proxy-Authorization``). Loopback is reached
  directly, as the ipydeps client does: no proxy can reach this machine's own servers.
- Credentials in a URL (``https://user:secret@host/``) are sent as Basic auth and never
  appear in a message. A ``file:`` URL is read from disk (``get`` and ``open``).

Why not tornado's client: its simple client ignores proxies (only the curl one, which needs
pycurl, honours them), and every caller here is synchronous. Why not the ipydeps client's
fetcher: the server uses the client only through ``ipydeps.formats``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import ssl
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .. import __version__
from ..errors import RepoError
from .proxies import Proxies, basic_credentials

MAX_REDIRECTS = 5
# An API answer is a small JSON document: a hostile server's is cut here.
MAX_REPLY_BYTES = 1 << 20
# A page read whole (PyPI's JSON of a project with thousands of files is tens of MB).
MAX_PAGE_BYTES = 256 << 20
_EXCERPT = 4096
_MAX_LINE = 65536
_REDIRECTS = (301, 302, 303, 307, 308)


class HttpError(RepoError):
    """A request failed: no connection, a silent peer, not HTTP, or an error status.

    ``url`` has no credentials; ``http_status`` is None when no answer came; ``body`` is
    the start of an error answer.
    """

    status = 502

    def __init__(
        self,
        message: str,
        *,
        url: str,
        http_status: int | None = None,
        body: bytes = b"",
        hint: str | None = None,
    ) -> None:
        self.url = url
        self.http_status = http_status
        self.body = body
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class Timeouts:
    """The one timeout policy, in seconds.

    ``idle``: the most a peer may stay silent while we connect, send or read (a socket
    timeout: a slow transfer that keeps moving never hits it). ``reply``: how long an
    upload waits for its answer once the body is sent, as the server checks the whole file
    first. ``expect_continue``: how long an upload waits for ``100 Continue`` before it
    sends the body anyway (a server that ignores ``Expect`` never answers it).
    """

    idle: float = 60.0
    reply: float = 600.0
    expect_continue: float = 5.0


@dataclass(frozen=True)
class Reply:
    """An answer read whole: status, headers and body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


def without_credentials(url: str) -> str:
    """Return ``url`` without a ``user:password@`` part (for requests and messages)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class HttpClient:
    """Makes requests with one timeout policy, the proxies of ``environ`` and one error type."""

    def __init__(
        self,
        *,
        timeouts: Timeouts = Timeouts(),
        cafile: str | None = None,
        user_agent: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.timeouts = timeouts
        self.user_agent = user_agent or f"ipydeps-repo/{__version__}"
        self._tls = ssl.create_default_context(cafile=cafile)
        self._proxies = Proxies.from_environment(os.environ if environ is None else environ)

    def get(
        self, url: str, *, headers: Mapping[str, str] | None = None, max_bytes: int = MAX_PAGE_BYTES
    ) -> Reply:
        """Return the answer to ``GET url`` (redirects followed), read whole.

        Raises:
            HttpError: no answer, a status of 400 or more, or a body over ``max_bytes``.
        """
        shown = without_credentials(url)
        with self.open(url, headers=headers) as response:
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise HttpError(f"{shown} answered more than {max_bytes} bytes", url=shown)
            check_complete(response, shown)
        if isinstance(response, http.client.HTTPResponse):
            return Reply(response.status, response.headers, body)
        return Reply(200, http.client.HTTPMessage(), body)  # a file: URL

    @contextlib.contextmanager
    def open(self, url: str, *, headers: Mapping[str, str] | None = None) -> Iterator[BinaryIO]:
        """Yield the body of ``GET url`` (redirects followed) for the caller to read.

        A ``file:`` URL yields the local file (the farm's ``--pypi-api`` may be a copy of
        PyPI's JSON API on disk).

        Raises:
            HttpError: no answer, a status of 400 or more, too many redirects, or the
                connection failed while the caller read the body.
        """
        if urllib.parse.urlsplit(url).scheme == "file":
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
            try:
                stream = path.open("rb")
            except OSError as error:
                raise HttpError(f"cannot read {url}: {error.strerror}", url=url) from None
            with stream:
                yield stream
            return
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            shown = without_credentials(current)
            connection, target, extra = self._connect(current)
            try:
                try:
                    connection.putrequest("GET", target, skip_accept_encoding=True)
                    for name, value in {**self._headers(current, url, headers), **extra}.items():
                        connection.putheader(name, value)
                    connection.endheaders()
                    response = connection.getresponse()
                except (OSError, http.client.HTTPException) as error:
                    raise _failed("GET", shown, error) from None
                location = response.getheader("Location")
                if response.status in _REDIRECTS and location:
                    current = _redirect(current, location)
                    continue
                if response.status >= 400:
                    raise HttpError(
                        f"{shown} answered {response.status} {response.reason}",
                        url=shown,
                        http_status=response.status,
                        body=_excerpt(response),
                    )
                try:
                    yield response
                except (OSError, http.client.HTTPException) as error:
                    raise _failed("GET", shown, error) from None
                return
            finally:
                connection.close()
        raise HttpError(
            f"{without_credentials(url)} redirects more than {MAX_REDIRECTS} times",
            url=without_credentials(url),
        )

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | BinaryIO | None = None,
        size: int | None = None,
        expect_continue: bool = False,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> Reply:
        """Send one request (redirects are not followed) and return the answer, any status.

        A ``body`` file is streamed (``size`` bytes). With ``expect_continue`` the body
        goes only once the server says ``100 Continue`` (or has not answered within
        ``timeouts.expect_continue``): a refusal is read as the server sent it, not as a
        connection reset halfway through a large body.

        Raises:
            HttpError: the server could not be reached or did not answer in HTTP.
        """
        shown = without_credentials(url)
        connection, target, extra = self._connect(url)
        try:
            connection.putrequest(method, target, skip_accept_encoding=True)
            for name, value in {**self._headers(url, url, headers), **extra}.items():
                connection.putheader(name, value)
            if body is not None:
                length = len(body) if isinstance(body, bytes) else size
                connection.putheader("Content-Length", str(length))
            if expect_continue and body is not None:
                connection.putheader("Expect", "100-continue")
            connection.endheaders()
            if expect_continue and body is not None:
                early = self._early_answer(connection, max_bytes)
                if early is not None:
                    return early
            return self._send_body(connection, body, max_bytes)
        except (OSError, http.client.HTTPException) as error:
            raise _failed(method, shown, error) from None
        finally:
            connection.close()

    def _send_body(
        self, connection: http.client.HTTPConnection, body: bytes | BinaryIO | None, max_bytes: int
    ) -> Reply:
        if body is not None:
            try:
                connection.send(body)
            except OSError:
                # The server may have answered and closed while the body was on its way
                # (too large, too slow): its answer says more than the broken pipe.
                with contextlib.suppress(OSError, http.client.HTTPException):
                    return _read_reply(connection.getresponse(), max_bytes)
                raise
        if connection.sock is not None:
            connection.sock.settimeout(self.timeouts.reply)
        return _read_reply(connection.getresponse(), max_bytes)

    def _early_answer(self, connection: http.client.HTTPConnection, max_bytes: int) -> Reply | None:
        """Return the server's final answer if it came instead of ``100 Continue``."""
        sock = connection.sock
        readable, _, _ = select.select([sock], [], [], self.timeouts.expect_continue)
        if not readable:
            return None
        # Only the interim answer is read here: after a 100 the server sends nothing
        # until the body is in, so no byte of the final response is taken from the socket.
        with sock.makefile("rb") as reader:
            status, headers = _read_head(reader)
            if status == 100:
                return None
            length = int(headers.get("Content-Length") or 0)
            return Reply(status, headers, reader.read(min(length, max_bytes)))

    def _headers(self, url: str, first_url: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, **(extra or {})}
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None and "Authorization" not in headers:
            headers["Authorization"] = basic_credentials(parts)
        elif url != first_url and urllib.parse.urlsplit(first_url).netloc != parts.netloc:
            # Credentials given for one host are not sent to the host it redirects to.
            headers.pop("Authorization", None)
        return headers

    def _connect(self, url: str) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
        """Return an unopened connection for ``url``, the request target and proxy headers."""
        shown = without_credentials(url)
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise HttpError(
                f"{shown!r} is not an http(s) URL",
                url=shown,
                hint="for example https://repo.example.org/",
            )
        host = parts.hostname
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        proxy = self._proxies.for_url(parts.scheme, host, port)
        if proxy is None:
            if parts.scheme == "https":
                return (
                    http.client.HTTPSConnection(
                        host, port, timeout=self.timeouts.idle, context=self._tls
                    ),
                    path,
                    {},
                )
            return http.client.HTTPConnection(host, port, timeout=self.timeouts.idle), path, {}
        proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        proxy_headers = {}
        if proxy_parts.username is not None:
            proxy_headers["Proxy-Authorization"] = basic_credentials(proxy_parts)
        proxy_host, proxy_port = proxy_parts.hostname or "", proxy_parts.port or 80
        if parts.scheme == "https":
            # TLS runs end to end with the origin, inside the proxy's CONNECT tunnel.
            tunnel = http.client.HTTPSConnection(
                proxy_host, proxy_port, timeout=self.timeouts.idle, context=self._tls
            )
            tunnel.set_tunnel(host, port or 443, headers=proxy_headers)
            return tunnel, path, {}
        plain = http.client.HTTPConnection(proxy_host, proxy_port, timeout=self.timeouts.idle)
        return plain, without_credentials(url), proxy_headers


def _redirect(current: str, location: str) -> str:
    target = urllib.parse.urljoin(current, location)
    if urllib.parse.urlsplit(current).scheme == "https" and not target.startswith("https://"):
        raise HttpError(
            f"{without_credentials(current)} redirects to a plain http URL",
            url=without_credentials(current),
        )
    return target


def _excerpt(response: http.client.HTTPResponse) -> bytes:
    with contextlib.suppress(OSError, http.client.HTTPException):
        return response.read(_EXCERPT)
    return b""


def check_complete(response: BinaryIO, shown: str) -> None:
    """Refuse a body that ended before its ``Content-Length`` (``read(n)`` does not).

    Raises:
        HttpError: the connection closed early.
    """
    if isinstance(response, http.client.HTTPResponse) and response.length:
        raise HttpError(
            f"the answer from {shown} was cut off {response.length} bytes before its end",
            url=shown,
            http_status=response.status,
            hint="retry; the connection broke",
        )


def _read_reply(response: http.client.HTTPResponse, max_bytes: int) -> Reply:
    return Reply(response.status, response.headers, response.read(max_bytes))


def _read_head(reader: BinaryIO) -> tuple[int, http.client.HTTPMessage]:
    """Read a status line and headers; return (status, headers).

    Raises:
        http.client.HTTPException: the answer is not HTTP.
    """
    line = reader.readline(_MAX_LINE + 1)
    fields = line.decode("latin-1").split(None, 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise http.client.BadStatusLine(line.decode("latin-1", "replace")[:100])
    return int(fields[1]), http.client.parse_headers(reader)


def _failed(method: str, shown: str, error: BaseException) -> HttpError:
    reason = str(error) or type(error).__name__
    if isinstance(error, TimeoutError):
        reason = "no answer in time"
    return HttpError(
        f"{method} {shown} failed: {reason}",
        url=shown,
        hint="check the URL, the network and any proxy settings",
    )
