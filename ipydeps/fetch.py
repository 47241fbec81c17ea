"""HTTP fetching for ipydeps: index pages and streamed, sha256-verified downloads with retries."""

from __future__ import annotations

import array
import contextlib
import hashlib
import http.client
import os
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path

from .cancel import CancelEvent, shut_down
from .connections import ConnectionPool
from .credentials import CREDENTIALS_HINT
from .errors import (
    CancelledError,
    DownloadError,
    FileMissingError,
    HashMismatchError,
    NotFoundError,
    RepositoryError,
)
from .protocols import Page
from .proxies import Proxy
from .retries import Deadline, RetryListener, RetryListeners, RetryNotice, RetryPolicy

__all__ = ["HttpFetcher", "RetryNotice", "RetryPolicy", "USER_AGENT"]

USER_AGENT = "ipydeps/0.1"
_CHUNK = 1 << 20
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Default bounds on what a repository can make us hold or write (config: max_page_bytes,
# max_download_bytes): an index page is parsed whole in memory, at about 10 bytes of
# Python objects per byte of JSON.
MAX_PAGE_BYTES = 64 << 20
MAX_DOWNLOAD_BYTES = 4 << 30


class _TransientError(Exception):
    """A failure worth retrying (connection refused/reset, timeout, HTTP 5xx); internal only."""


class _OutOfTime(_TransientError):
    """The deadline left no time for the next wait; internal only (the retry loop ends)."""


class _PermanentError(Exception):
    """A failure not worth retrying (4xx other than 404, bad URL); internal only."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)


class _DeadlineOver(_PermanentError):
    """The retry policy's deadline ended the wait; internal only."""

    def __init__(self, deadline: Deadline, reasons: list[str]) -> None:
        self.deadline = deadline
        self.reasons = reasons
        super().__init__(f"{deadline.explain()} ({_attempts(reasons)})")


class _Cancelled(Exception):
    """The fetcher's cancel event was set; internal only, never retried."""


class _TooLarge(Exception):
    """The body is bigger than the limit of the read; internal only, never retried."""


class _Missing(Exception):
    """HTTP 404; internal only, turned into ``NotFoundError``/``FileMissingError``."""


def _attempts(reasons: list[str]) -> str:
    """Say how the attempts failed: ``2 attempts: timed out; timed out``."""
    count = len(reasons)
    if not count:
        return "no attempt finished"
    return f"{count} attempt{'s' if count != 1 else ''}: {'; '.join(reasons)}"


# What to try when a server stays silent past the deadline.
_DEADLINE_HINT = ("the server is not answering, or too slowly: check that it is up and "
                  "reachable; the wait is bounded by deadline (IPYDEPS_DEADLINE)")


class HttpFetcher:
    """Implements ``ipydeps.protocols.Fetcher`` over ``http.client``, with keep-alive per thread.

    Transient errors (connection refused or reset, timeouts, HTTP 5xx, a body cut
    short) are retried with exponential backoff; a 404 or a hash mismatch is not. Each
    retry is told to the listener of ``reporting_retries``; the policy's ``deadline``
    bounds the wait for a silent server (see retries.py).
    """

    def __init__(self, *, retry: RetryPolicy | None = None, cancel: threading.Event | None = None,
                 proxies: Mapping[str, str] | None = None, max_page_bytes: int = MAX_PAGE_BYTES,
                 max_download_bytes: int = MAX_DOWNLOAD_BYTES,
                 credentials: Callable[[str], Mapping[str, str]] | None = None) -> None:
        """``proxies`` maps "http"/"https" to a proxy URL, "no" to a NO_PROXY-style list.

        The edge passes ``system_proxies()``; loopback is never proxied. ``get_bytes``
        refuses a body over ``max_page_bytes``; a download whose size is not given is
        refused past ``max_download_bytes``. A ``CancelEvent`` as ``cancel`` also ends
        reads blocked on the network when it is set. ``credentials`` returns the headers
        for one URL (``ipydeps.credentials``: the repository's origin only); it is asked
        again for every redirect hop.
        """
        self.max_page_bytes = max_page_bytes
        self.max_download_bytes = max_download_bytes
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.cancel = cancel or threading.Event()
        self._pool = ConnectionPool(proxies=proxies or {}, timeout=self.retry.timeout)
        self._listeners = RetryListeners()

    def reporting_retries(self, listener: RetryListener) -> contextlib.AbstractContextManager[None]:
        """Tell ``listener`` (from the retrying thread) of each retry while the block runs."""
        return self._listeners.listening(listener)

    def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
        """Return the body of ``url``.

        Raises ``NotFoundError`` for a 404 and ``RepositoryError`` when the
        repository stays unreachable or answers with an error after retries, or when the
        body is bigger than ``max_page_bytes`` (read no further than that).
        """
        return self.get_page(url, accept=accept).body

    def get_page(self, url: str, *, accept: str | None = None) -> Page:
        """Return the body of ``url`` and the URL that answered it, after redirects.

        Raises like ``get_bytes``.
        """
        chunks: list[bytes] = []
        final = [url]
        limit = self.max_page_bytes

        def attempt(clock: Deadline) -> None:
            chunks.clear()
            final[0] = self._stream(url, accept, chunks.append, limit=limit, clock=clock)

        try:
            self._with_retries(url, attempt, Deadline(self.retry.deadline, whole=True))
        except _Missing:
            raise NotFoundError(url) from None
        except _Cancelled:
            raise CancelledError(f"Reading {url}") from None
        except _TooLarge:
            raise RepositoryError(
                f"Refused {url}: it is bigger than {limit} bytes, the limit for index pages "
                "and metadata (max_page_bytes)",
                hint="if the repository is trusted and its pages are that big, raise "
                     "max_page_bytes (IPYDEPS_MAX_PAGE_BYTES)") from None
        except (_TransientError, _PermanentError) as error:
            raise RepositoryError(
                f"Could not read {url}: {error}",
                hint=_hint_for(error, "check that the repository URL is right and the "
                                      "server is running"),
            ) from None
        return Page(final[0], b"".join(chunks))

    def download(
        self,
        url: str,
        destination: Path,
        *,
        sha256: str | None,
        progress: Callable[[int, int | None], None] | None = None,
        size: int | None = None,
    ) -> Path:
        """Stream ``url`` to ``destination`` while hashing it; return ``destination``.

        The file is written next to ``destination`` and renamed into place only when
        its sha256 matches. Raises ``DownloadError`` (unreachable after retries;
        ``FileMissingError``, a subclass, for a 404; more bytes than ``size``, the size
        the index announced, or than ``max_download_bytes`` without one: no more is
        written) and ``HashMismatchError`` (not retried: the bytes are wrong).
        """
        partial = destination.with_name(destination.name + ".part")
        try:
            with open(partial, "wb") as handle:

                def write(chunk: bytes) -> None:
                    handle.write(chunk)

                def open_partial() -> Callable[[bytes], None]:
                    handle.seek(0)  # a retried attempt writes the file again from the start
                    handle.truncate()
                    return write

                self.stream(url, sha256=sha256, open_sink=open_partial, progress=progress,
                            size=size)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise DownloadError(url, f"could not write {partial}: {error.strerror or error}",
                                hint="check free space in the temporary directory") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, destination)
        return destination

    def stream(
        self,
        url: str,
        *,
        sha256: str | None,
        open_sink: Callable[[], Callable[[bytes], None]],
        progress: Callable[[int, int | None], None] | None = None,
        backlog: Callable[[float], None] | None = None,
        size: int | None = None,
    ) -> int:
        """Feed the body of ``url`` to a sink as it arrives; verify ``sha256`` at the end.

        ``open_sink`` is called before every attempt, a retried one included, and returns
        the function that takes the bytes: a consumer starts over when it is called again.
        Returns the number of bytes. Raises ``DownloadError`` (unreachable after retries;
        ``FileMissingError``, a subclass, for a 404) and ``HashMismatchError`` once every
        byte has been fed; an exception from the sink ends the download at once and
        propagates unchanged. ``backlog``, if given, is told after each read how many
        reads' worth of bytes were already waiting in the socket (where the system says);
        an exception from it ends the download like one from the sink. A body bigger
        than ``size`` (or ``max_download_bytes`` when None) is refused before the sink
        gets more than that.
        """
        limit = self.max_download_bytes if size is None else size
        digest_box: list[hashlib._Hash] = []
        done_box = [0]

        def attempt(clock: Deadline) -> None:
            digest = hashlib.sha256()
            digest_box[:] = [digest]
            done_box[0] = 0
            sink = open_sink()
            total_box: list[int | None] = []

            def feed(chunk: bytes) -> None:
                digest.update(chunk)
                sink(chunk)
                done_box[0] += len(chunk)
                if progress is not None:
                    progress(done_box[0], total_box[0] if total_box else None)

            self._stream(url, None, feed, total_box, backlog, limit=limit, clock=clock)

        try:
            self._with_retries(url, attempt, Deadline(self.retry.deadline, whole=False))
        except _Missing:
            raise FileMissingError(url) from None
        except _Cancelled:
            raise CancelledError(f"Download of {url}") from None
        except _TooLarge:
            if size is not None:
                raise DownloadError(url, f"the server sends more than the {size} bytes its "
                                         "index announced; refused",
                                    hint="the repository is misconfigured or hostile; tell "
                                         "its maintainer") from None
            raise DownloadError(url, f"bigger than {limit} bytes, the limit for a file whose "
                                     "size the index does not give (max_download_bytes)",
                                hint="if the repository is trusted, raise max_download_bytes "
                                     "(IPYDEPS_MAX_DOWNLOAD_BYTES)") from None
        except (_TransientError, _PermanentError) as error:
            raise DownloadError(url, str(error),
                                hint=_hint_for(error, "check the network and that the "
                                                      "repository is up, then retry")) from None
        actual = digest_box[0].hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise HashMismatchError(url, sha256.lower(), actual)
        return done_box[0]

    def _with_retries(self, url: str, attempt: Callable[[Deadline], None],
                      clock: Deadline) -> None:
        """Run ``attempt`` until it succeeds, retrying transient errors while time is left.

        Raises ``_DeadlineOver`` when the deadline ends the wait, else the last error.
        """
        delays = self.retry.delays()
        reasons: list[str] = []
        for index in range(len(delays) + 1):
            try:
                if self.cancel.is_set():
                    raise _Cancelled()
                with self._cancellable():
                    attempt(clock)
                return
            except _TransientError as error:
                self._drop_connection()
                delay = delays[index] if index < len(delays) else None
                self._before_retry(error, RetryNotice(url, index + 1, len(delays) + 1,
                                                      str(error), delay or 0.0),
                                   clock, reasons, last=delay is None)
            except _Cancelled:
                self._drop_connection()
                raise
            except _PermanentError:
                self._drop_connection()
                raise
            except _Missing:
                raise  # its body was read: the connection is still good
            except BaseException:
                # A consumer's error or an interrupt, maybe mid-body: this connection is done.
                self._drop_connection()
                raise

    def _before_retry(self, error: _TransientError, notice: RetryNotice, clock: Deadline,
                      reasons: list[str], *, last: bool) -> None:
        """Tell of the retry and wait for it; raise when there is none to make.

        Raises ``_DeadlineOver`` when the deadline leaves no time for another attempt,
        ``error`` after the last attempt, ``_Cancelled`` once the cancel event is set
        (during the wait too).
        """
        if not isinstance(error, _OutOfTime):
            reasons.append(str(error))
        if self.cancel.is_set():
            raise _Cancelled()  # the failure was most likely our own socket shutdown
        if clock.over(after=notice.delay):
            raise _DeadlineOver(clock, reasons) from None
        if last:
            raise error
        self._listeners.tell(notice)
        # Event.wait doubles as an interruptible backoff: cancelling ends it at once.
        if self.cancel.wait(notice.delay):
            raise _Cancelled()

    def _cancellable(self) -> contextlib.AbstractContextManager[None]:
        """While the block runs, setting a ``CancelEvent`` shuts down this thread's socket."""
        cancel = self.cancel
        if not isinstance(cancel, CancelEvent):
            return contextlib.nullcontext()  # a plain Event: checked between reads only
        live = self._pool.live()
        return cancel.on_set(lambda: shut_down(live[0]))

    def _drop_connection(self) -> None:
        self._pool.drop_current()

    def _proxy_for(self, parts: urllib.parse.SplitResult) -> Proxy | None:
        """Return the proxy for ``parts``; an unusable proxy setting is a permanent error."""
        try:
            return self._pool.proxy_for(parts)
        except ValueError as error:
            raise _PermanentError(f"{error} (HTTP_PROXY/HTTPS_PROXY)") from None

    def _request(self, parts: urllib.parse.SplitResult, path: str,
                 headers: dict[str, str], clock: Deadline) -> http.client.HTTPResponse:
        """Send one GET; sort failures into transient, permanent and missing."""
        if parts.scheme not in ("http", "https"):
            raise _PermanentError(f"unsupported URL scheme {parts.scheme!r}")
        connection = self._pool.connection(parts)
        _limit_wait(connection, clock, self.retry.timeout)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
            refused = _tunnel_refusal(error)
            if refused is not None:
                raise _PermanentError(f"the proxy refused the tunnel: HTTP {refused}",
                                      refused) from None
            raise _TransientError(_describe(error)) from None
        status = response.status
        if status >= 400:
            response.read()
            if status == 404:
                raise _Missing()
            if status >= 500 or status == 429:
                raise _TransientError(f"HTTP {status} {response.reason}")
            raise _PermanentError(f"HTTP {status} {response.reason}", status)
        return response

    def _open(self, url: str, accept: str | None,
              clock: Deadline) -> tuple[http.client.HTTPResponse, str]:
        """GET ``url``, following up to ``_MAX_REDIRECTS`` redirects (never https -> http).

        Returns the response and the URL that gave it.
        """
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if accept:
            headers["Accept"] = accept
        for _ in range(_MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            hop = {**headers, **self.credentials(url)} if self.credentials else headers
            proxy = self._proxy_for(parts)
            if parts.scheme == "http" and proxy is not None:
                path = url  # a forward proxy takes the absolute URL (RFC 9112, 3.2.2)
                hop = {**hop, **proxy.headers}
            response = self._request(parts, path, hop, clock)
            if response.status not in _REDIRECTS:
                return response, url
            location = response.getheader("Location")
            response.read()
            if response.will_close:
                self._drop_connection()
            if not location:
                raise _PermanentError(f"HTTP {response.status} without a Location header")
            target = urllib.parse.urljoin(url, location)
            scheme = urllib.parse.urlsplit(target).scheme
            if scheme not in ("http", "https") or (parts.scheme == "https" and scheme != "https"):
                raise _PermanentError(f"refused redirect from {url} to {target}")
            url = target
        raise _PermanentError(f"more than {_MAX_REDIRECTS} redirects")

    def _stream(
        self,
        url: str,
        accept: str | None,
        sink: Callable[[bytes], None],
        total_box: list[int | None] | None = None,
        backlog: Callable[[float], None] | None = None,
        *,
        limit: int,
        clock: Deadline,
    ) -> str:
        """Read the body of ``url`` into ``sink``; return the URL that answered (redirects).

        Raises ``_TooLarge`` past ``limit`` bytes. Under a whole-read deadline (pages) each
        read returns what has arrived, so a body trickled a byte at a time cannot hold
        the reader past the deadline; a download reads whole chunks (see transfer.py).
        """
        response, final = self._open(url, accept, clock)
        # The connection _open used last: its socket's backlog is what ``backlog`` hears.
        connection = self._pool.current()
        total = _content_length(response, limit)
        if total_box is not None:
            total_box[:] = [total]
        received = 0
        while chunk := self._read(response, min(_CHUNK, limit + 1 - received), connection,
                                  clock):
            clock.moved()
            received += len(chunk)
            if received > limit:  # one byte past the limit is enough to tell
                raise _TooLarge()
            sink(chunk)  # its errors are the consumer's, not the network's: not retried
            # After the last read nothing more can be waiting: no news about the network.
            if backlog is not None and connection is not None and received != total:
                waiting = _waiting_bytes(connection)
                if waiting is not None:
                    backlog(waiting / _CHUNK)
        if total is not None and received != total:
            raise _TransientError(f"connection closed after {received} of {total} bytes")
        if not response.isclosed():
            # read1 does not release the connection once the body is all read; read does.
            response.read()
        if response.will_close:
            self._drop_connection()
        return final

    def _read(self, response: http.client.HTTPResponse, size: int,
              connection: http.client.HTTPConnection | None, clock: Deadline) -> bytes:
        """Return up to ``size`` bytes of the body; raise ``_Cancelled`` once cancelled."""
        if self.cancel.is_set():
            raise _Cancelled()
        if connection is not None:
            _limit_wait(connection, clock, self.retry.timeout)
        try:
            return response.read1(size) if clock.whole else response.read(size)
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
            raise _TransientError(_describe(error)) from None


def _limit_wait(connection: http.client.HTTPConnection, clock: Deadline, timeout: float) -> None:
    """Bound the connection's next socket wait by ``timeout`` and the deadline's time left.

    Raises ``_TransientError`` when no time is left (the retry loop then gives up).
    """
    wait = clock.wait_limit(timeout)
    if wait is None:
        raise _OutOfTime("out of time")
    connection.timeout = wait  # for a connection not opened yet
    if connection.sock is not None:
        connection.sock.settimeout(wait)


# What a 407 from a proxy should make people try.
PROXY_CREDENTIALS_HINT = ("the proxy wants credentials: put them in its URL, e.g. "
                          "HTTPS_PROXY=http://user:password@proxy.example:3128 (percent-encode "
                          "'@' and ':' in them); NO_PROXY lists hosts reached directly")


def _hint_for(error: Exception, otherwise: str) -> str:
    """Return the hint for a failed fetch: by its HTTP status, or ``otherwise``."""
    if isinstance(error, _DeadlineOver):
        return _DEADLINE_HINT
    status = error.status if isinstance(error, _PermanentError) else None
    if status in (401, 403):
        return CREDENTIALS_HINT
    if status == 407:
        return PROXY_CREDENTIALS_HINT
    return otherwise


def _content_length(response: http.client.HTTPResponse, limit: int) -> int | None:
    """Return the announced body size, if any; raise ``_TooLarge`` when it is over ``limit``."""
    length = response.getheader("Content-Length")
    # isascii: "²".isdigit() is True, and int("²") raises.
    total = int(length) if length and length.isascii() and length.isdigit() else None
    if total is not None and total > limit:
        response.close()
        raise _TooLarge()
    return total


def _waiting_bytes(connection: http.client.HTTPConnection) -> int | None:
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


def _tunnel_refusal(error: BaseException) -> int | None:
    """Return the 4xx status with which a proxy refused a CONNECT (an OSError), if it did.

    A 4xx (407: the proxy wants credentials) is not worth retrying; a 5xx may be.
    """
    text = str(error)
    prefix = "Tunnel connection failed: "
    if type(error) is not OSError or not text.startswith(prefix):
        return None
    status = text[len(prefix):].split(" ", 1)[0]
    return int(status) if status.isdigit() and 400 <= int(status) < 500 else None


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, http.client.IncompleteRead):
        return f"connection closed after {len(error.partial)} bytes"
    return f"{type(error).__name__}: {error}".rstrip(": ")
