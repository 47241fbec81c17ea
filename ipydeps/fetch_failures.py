"""How a fetch fails: the fetcher's internal failure kinds, their reasons and their hints.

``HttpFetcher`` (fetch.py) sorts every failure into one of these, retries the transient
ones, and turns the rest into the typed errors of ``ipydeps.errors`` with a hint from here.
"""

from __future__ import annotations

import http.client

from .credentials import CREDENTIALS_HINT
from .errors import (
    CancelledError,
    DownloadError,
    FileMissingError,
    IpydepsError,
    NotFoundError,
    RepositoryError,
)
from .retries import Deadline


class TransientError(Exception):
    """A failure worth retrying (connection refused/reset, timeout, HTTP 5xx); internal only."""


class OutOfTime(TransientError):
    """The deadline left no time for the next wait; internal only (the retry loop ends)."""


class PermanentError(Exception):
    """A failure not worth retrying (4xx other than 404, bad URL); internal only."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)


class DeadlineOver(PermanentError):
    """The retry policy's deadline ended the wait; internal only."""

    def __init__(self, deadline: Deadline, reasons: list[str]) -> None:
        self.deadline = deadline
        self.reasons = reasons
        super().__init__(f"{deadline.explain()} ({attempts_told(reasons)})")


class Cancelled(Exception):
    """The fetcher's cancel event was set; internal only, never retried."""


class TooLarge(Exception):
    """The body is bigger than the limit of the read; internal only, never retried."""


class Missing(Exception):
    """HTTP 404; internal only, turned into ``NotFoundError``/``FileMissingError``."""


def attempts_told(reasons: list[str]) -> str:
    """Say how the attempts failed: ``2 attempts: timed out; timed out``."""
    count = len(reasons)
    if not count:
        return "no attempt finished"
    return f"{count} attempt{'s' if count != 1 else ''}: {'; '.join(reasons)}"


# What to try when a server stays silent past the deadline.
DEADLINE_HINT = (
    "the server is not answering, or too slowly: check that it is up and "
    "reachable; the wait is bounded by deadline (IPYDEPS_DEADLINE)"
)


# What a 407 from a proxy should make people try.
PROXY_CREDENTIALS_HINT = (
    "the proxy wants credentials: put them in its URL, e.g. "
    "HTTPS_PROXY=http://user:password@proxy.example:3128 (percent-encode "
    "'@' and ':' in them); NO_PROXY lists hosts reached directly"
)


def hint_for(error: Exception, otherwise: str) -> str:
    """Return the hint for a failed fetch: by its HTTP status, or ``otherwise``."""
    if isinstance(error, DeadlineOver):
        return DEADLINE_HINT
    status = error.status if isinstance(error, PermanentError) else None
    if status in (401, 403):
        return CREDENTIALS_HINT
    if status == 407:
        return PROXY_CREDENTIALS_HINT
    return otherwise


def tunnel_refusal(error: BaseException) -> int | None:
    """Return the 4xx status with which a proxy refused a CONNECT (an OSError), if it did.

    A 4xx (407: the proxy wants credentials) is not worth retrying; a 5xx may be.
    """
    text = str(error)
    prefix = "Tunnel connection failed: "
    if type(error) is not OSError or not text.startswith(prefix):
        return None
    status = text[len(prefix) :].split(" ", 1)[0]
    return int(status) if status.isdigit() and 400 <= int(status) < 500 else None


def describe_error(error: BaseException) -> str:
    """Say in a few words why a socket or HTTP operation failed (no secret is in these)."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, http.client.IncompleteRead):
        return f"connection closed after {len(error.partial)} bytes"
    return f"{type(error).__name__}: {error}".rstrip(": ")


# Every internal failure a fetch can end with; ``page_error``/``download_error`` type them.
FAILURES = (Missing, Cancelled, TooLarge, TransientError, PermanentError)


def page_error(url: str, failure: Exception, limit: int) -> IpydepsError:
    """Return the error to raise for a page (index, metadata) that could not be read."""
    if isinstance(failure, Missing):
        return NotFoundError(url)
    if isinstance(failure, Cancelled):
        return CancelledError(f"Reading {url}")
    if isinstance(failure, TooLarge):
        return RepositoryError(
            f"Refused {url}: it is bigger than {limit} bytes, the limit for index pages "
            "and metadata (max_page_bytes)",
            hint="if the repository is trusted and its pages are that big, raise "
            "max_page_bytes (IPYDEPS_MAX_PAGE_BYTES)",
        )
    return RepositoryError(
        f"Could not read {url}: {failure}",
        hint=hint_for(failure, "check that the repository URL is right and the server is running"),
    )


def download_error(url: str, failure: Exception, size: int | None, limit: int) -> IpydepsError:
    """Return the error to raise for a download that failed (``size``: the index's)."""
    if isinstance(failure, Missing):
        return FileMissingError(url)
    if isinstance(failure, Cancelled):
        return CancelledError(f"Download of {url}")
    if isinstance(failure, TooLarge) and size is not None:
        return DownloadError(
            url,
            f"the server sends more than the {size} bytes its index announced; refused",
            hint="the repository is misconfigured or hostile; tell its maintainer",
        )
    if isinstance(failure, TooLarge):
        return DownloadError(
            url,
            f"bigger than {limit} bytes, the limit for a file whose "
            "size the index does not give (max_download_bytes)",
            hint="if the repository is trusted, raise max_download_bytes "
            "(IPYDEPS_MAX_DOWNLOAD_BYTES)",
        )
    return DownloadError(
        url,
        str(failure),
        hint=hint_for(failure, "check the network and that the repository is up, then retry"),
    )
