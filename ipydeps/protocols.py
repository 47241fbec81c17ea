"""Narrow protocols behind which ipydeps' side effects sit; the core takes them as arguments."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .retries import RetryNotice


class Fetcher(Protocol):
    """Reads URLs. The real one (``ipydeps.fetch.HttpFetcher``) retries transient errors."""

    def get_bytes(self, url: str, *, accept: str | None = None) -> bytes:
        """Return the body of ``url``; raise ``RepositoryError``/``DownloadError`` on failure.

        A 404 raises ``ipydeps.errors.NotFoundError`` (a ``RepositoryError``), so callers
        can treat "no such project" as empty.
        """
        ...

    def download(
        self,
        url: str,
        destination: Path,
        *,
        sha256: str | None,
        progress: Callable[[int, int | None], None] | None = None,
        size: int | None = None,
    ) -> Path:
        """Stream ``url`` to ``destination``, verify ``sha256``; raise ``HashMismatchError``.

        A 404 raises ``ipydeps.errors.FileMissingError`` (a ``DownloadError``); a body
        bigger than ``size`` (the size the index announced), a ``DownloadError``.
        """
        ...


@runtime_checkable
class StreamingFetcher(Fetcher, Protocol):
    """A fetcher that can also hand a download's bytes over as they arrive."""

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
        """Feed ``url`` to the sink ``open_sink()`` returns, then verify ``sha256``.

        ``open_sink`` is called again before a retried attempt. ``backlog`` hears after
        each read how many reads' worth of bytes already wait, and how long the read took
        over how long the sink took with it (``transfer.BacklogProbe``).
        Returns the byte count; raises like ``download``.
        """
        ...


@dataclass(frozen=True)
class Page:
    """A body read from a URL, and the URL that answered (after redirects)."""

    url: str
    body: bytes


@runtime_checkable
class PageFetcher(Fetcher, Protocol):
    """A fetcher that also says which URL answered, after redirects.

    A page's relative links are relative to the URL that served it (RFC 3986, 5.1.3), not
    to the one asked for: an index that redirects to another host links to files there.
    """

    def get_page(self, url: str, *, accept: str | None = None) -> Page:
        """Return the body of ``url`` and the final URL; raises like ``get_bytes``."""
        ...


@runtime_checkable
class RetryReporting(Protocol):
    """A fetcher that tells a listener about each retry (``ipydeps.retries.RetryNotice``)."""

    def reporting_retries(
        self, listener: Callable[[RetryNotice], None]
    ) -> AbstractContextManager[None]:
        """Send each retry to ``listener`` (called in the retrying thread) while the block runs."""
        ...
