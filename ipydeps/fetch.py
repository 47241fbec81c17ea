"""HTTP fetching for ipydeps: index pages and streamed, sha256-verified downloads with retries."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path

from .cancel import CancelEvent, shut_down
from .connections import ConnectionPool, limit_wait, waiting_bytes
from .credentials import redact
from .errors import DownloadError, HashMismatchError
from .fetch_failures import (
    FAILURES,
    Cancelled,
    DeadlineOver,
    Missing,
    OutOfTime,
    PermanentError,
    TooLarge,
    TransientError,
    describe_error,
    download_error,
    page_error,
    tunnel_refusal,
)
from .protocols import Page
from .proxies import Proxy
from .retries import Deadline, RetryListener, RetryListeners, RetryNotice, RetryPolicy

__all__ = [
    "MAX_DOWNLOAD_BYTES",
    "MAX_PAGE_BYTES",
    "USER_AGENT",
    "HttpFetcher",
    "RetryNotice",
    "RetryPolicy",
]

USER_AGENT = "ipydeps/0.1"
_CHUNK = 1 << 20
_MAX_REDIRECTS = 5
_log = logging.getLogger(__name__)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Default bounds on what a repository can make us hold or write (config: max_page_bytes,
# max_download_bytes): an index page is parsed whole in memory, at about 10 bytes of
# Python objects per byte of JSON.
MAX_PAGE_BYTES = 64 << 20
MAX_DOWNLOAD_BYTES = 4 << 30


class HttpFetcher:
    """Implements ``ipydeps.protocols.Fetcher`` over ``http.client``, with keep-alive per thread.

    Transient errors (connection refused or reset, timeouts, HTTP 5xx, a body cut
    short) are retried with exponential backoff; a 404 or a hash mismatch is not. Each
    retry is told to the listener of ``reporting_retries``; the policy's ``deadline``
    bounds the wait for a silent server (see retries.py).
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        cancel: threading.Event | None = None,
        proxies: Mapping[str, str] | None = None,
        max_page_bytes: int = MAX_PAGE_BYTES,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
        credentials: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
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
        except FAILURES as failure:
            raise page_error(url, failure, limit) from None
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

                self.stream(
                    url, sha256=sha256, open_sink=open_partial, progress=progress, size=size
                )
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise DownloadError(
                url,
                f"could not write {partial}: {error.strerror or error}",
                hint="check free space in the temporary directory",
            ) from None
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
        backlog: Callable[[float, float], None] | None = None,
        size: int | None = None,
    ) -> int:
        """Feed the body of ``url`` to a sink as it arrives; verify ``sha256`` at the end.

        ``open_sink`` is called before every attempt, a retried one included, and returns
        the function that takes the bytes: a consumer starts over when it is called again.
        Returns the number of bytes. Raises ``DownloadError`` (unreachable after retries;
        ``FileMissingError``, a subclass, for a 404) and ``HashMismatchError`` once every
        byte has been fed; an exception from the sink ends the download at once and
        propagates unchanged. ``backlog``, if given, is told after each read how many
        reads' worth of bytes were already waiting in the socket (where the system says)
        and the read's pace: the seconds it took over the seconds the sink took with it;
        an exception from it ends the download like one from the sink. A body bigger
        than ``size`` (or ``max_download_bytes`` when None) is refused before the sink
        gets more than that. With ``sha256`` None nothing is hashed: the sink verifies.
        """
        limit = self.max_download_bytes if size is None else size
        digest_box: list[hashlib._Hash] = []
        done_box = [0]

        def attempt(clock: Deadline) -> None:
            # No sha256 to check, no hashing: a stored copy checked by its outline is
            # hashed by its consumer, and every byte is hashed once.
            update = None
            if sha256 is not None:
                digest = hashlib.sha256()
                digest_box[:] = [digest]
                update = digest.update
            done_box[0] = 0
            sink = open_sink()
            total_box: list[int | None] = []

            def feed(chunk: bytes) -> None:
                if update is not None:
                    update(chunk)
                sink(chunk)
                done_box[0] += len(chunk)
                if progress is not None:
                    progress(done_box[0], total_box[0] if total_box else None)

            self._stream(url, None, feed, total_box, backlog, limit=limit, clock=clock)

        try:
            self._with_retries(url, attempt, Deadline(self.retry.deadline, whole=False))
        except FAILURES as failure:
            raise download_error(url, failure, size, limit) from None
        if sha256 is not None:
            actual = digest_box[0].hexdigest()
            if actual != sha256.lower():
                raise HashMismatchError(url, sha256.lower(), actual)
        return done_box[0]

    def _with_retries(self, url: str, attempt: Callable[[Deadline], None], clock: Deadline) -> None:
        """Run ``attempt`` until it succeeds, retrying transient errors while time is left.

        Raises ``DeadlineOver`` when the deadline ends the wait, else the last error.
        """
        delays = self.retry.delays()
        reasons: list[str] = []
        for index in range(len(delays) + 1):
            try:
                if self.cancel.is_set():
                    raise Cancelled()
                with self._cancellable():
                    attempt(clock)
                return
            except TransientError as error:
                self._drop_connection()
                delay = delays[index] if index < len(delays) else None
                self._before_retry(
                    error,
                    RetryNotice(url, index + 1, len(delays) + 1, str(error), delay or 0.0),
                    clock,
                    reasons,
                    last=delay is None,
                )
            except Cancelled:
                self._drop_connection()
                raise
            except PermanentError:
                self._drop_connection()
                raise
            except Missing:
                raise  # its body was read: the connection is still good
            except BaseException:
                # A consumer's error or an interrupt, maybe mid-body: this connection is done.
                self._drop_connection()
                raise

    def _before_retry(
        self,
        error: TransientError,
        notice: RetryNotice,
        clock: Deadline,
        reasons: list[str],
        *,
        last: bool,
    ) -> None:
        """Tell of the retry and wait for it; raise when there is none to make.

        Raises ``DeadlineOver`` when the deadline leaves no time for another attempt,
        ``error`` after the last attempt, ``Cancelled`` once the cancel event is set
        (during the wait too).
        """
        if not isinstance(error, OutOfTime):
            reasons.append(str(error))
        if self.cancel.is_set():
            raise Cancelled()  # the failure was most likely our own socket shutdown
        if clock.over(after=notice.delay):
            _log.debug(
                "%s: giving up, the deadline is near (%s)", redact(notice.url), "; ".join(reasons)
            )
            raise DeadlineOver(clock, reasons) from None
        if last:
            _log.debug(
                "%s: giving up after %d attempt(s) (%s)",
                redact(notice.url),
                notice.attempts,
                "; ".join(reasons),
            )
            raise error
        _log.debug("%s: %s", redact(notice.url), notice.describe())
        self._listeners.tell(notice)
        # Event.wait doubles as an interruptible backoff: cancelling ends it at once.
        if self.cancel.wait(notice.delay):
            raise Cancelled()

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
            raise PermanentError(f"{error} (HTTP_PROXY/HTTPS_PROXY)") from None

    def _request(
        self, parts: urllib.parse.SplitResult, path: str, headers: dict[str, str], clock: Deadline
    ) -> http.client.HTTPResponse:
        """Send one GET; sort failures into transient, permanent and missing."""
        if parts.scheme not in ("http", "https"):
            raise PermanentError(f"unsupported URL scheme {parts.scheme!r}")
        connection = self._pool.connection(parts)
        limit_wait(connection, clock, self.retry.timeout)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
            refused = tunnel_refusal(error)
            if refused is not None:
                raise PermanentError(
                    f"the proxy refused the tunnel: HTTP {refused}", refused
                ) from None
            raise TransientError(describe_error(error)) from None
        status = response.status
        if status >= 400:
            response.read()
            if status == 404:
                raise Missing()
            if status >= 500 or status == 429:
                raise TransientError(f"HTTP {status} {response.reason}")
            raise PermanentError(f"HTTP {status} {response.reason}", status)
        return response

    def _open(
        self, url: str, accept: str | None, clock: Deadline
    ) -> tuple[http.client.HTTPResponse, str]:
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
                raise PermanentError(f"HTTP {response.status} without a Location header")
            target = urllib.parse.urljoin(url, location)
            scheme = urllib.parse.urlsplit(target).scheme
            if scheme not in ("http", "https") or (parts.scheme == "https" and scheme != "https"):
                raise PermanentError(f"refused redirect from {url} to {target}")
            url = target
        raise PermanentError(f"more than {_MAX_REDIRECTS} redirects")

    def _stream(
        self,
        url: str,
        accept: str | None,
        sink: Callable[[bytes], None],
        total_box: list[int | None] | None = None,
        backlog: Callable[[float, float], None] | None = None,
        *,
        limit: int,
        clock: Deadline,
    ) -> str:
        """Read the body of ``url`` into ``sink``; return the URL that answered (redirects).

        Raises ``TooLarge`` past ``limit`` bytes. Under a whole-read deadline (pages) each
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
        read_started = time.perf_counter()
        while chunk := self._read(response, min(_CHUNK, limit + 1 - received), connection, clock):
            sink_started = time.perf_counter()
            clock.moved()
            received += len(chunk)
            if received > limit:  # one byte past the limit is enough to tell
                raise TooLarge()
            sink(chunk)  # its errors are the consumer's, not the network's: not retried
            # After the last read nothing more can be waiting: no news about the network.
            if backlog is not None and connection is not None and received != total:
                waiting = waiting_bytes(connection)
                if waiting is not None:
                    sunk = max(time.perf_counter() - sink_started, 1e-9)
                    backlog(waiting / _CHUNK, (sink_started - read_started) / sunk)
            read_started = time.perf_counter()
        if total is not None and received != total:
            raise TransientError(f"connection closed after {received} of {total} bytes")
        if not response.isclosed():
            # read1 does not release the connection once the body is all read; read does.
            response.read()
        if response.will_close:
            self._drop_connection()
        return final

    def _read(
        self,
        response: http.client.HTTPResponse,
        size: int,
        connection: http.client.HTTPConnection | None,
        clock: Deadline,
    ) -> bytes:
        """Return up to ``size`` bytes of the body; raise ``Cancelled`` once cancelled."""
        if self.cancel.is_set():
            raise Cancelled()
        if connection is not None:
            limit_wait(connection, clock, self.retry.timeout)
        try:
            return response.read1(size) if clock.whole else response.read(size)
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
            raise TransientError(describe_error(error)) from None


def _content_length(response: http.client.HTTPResponse, limit: int) -> int | None:
    """Return the announced body size, if any; raise ``TooLarge`` when it is over ``limit``."""
    length = response.getheader("Content-Length")
    # isascii: "²".isdigit() is True, and int("²") raises.
    total = int(length) if length and length.isascii() and length.isdigit() else None
    if total is not None and total > limit:
        response.close()
        raise TooLarge()
    return total
