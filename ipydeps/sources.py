"""Package sources over a ``Fetcher``: our wheel index, the upstream index and our apk repository.

A source offers every file it has for a project (wheels of any tag, sdists, apks); the
planner filters and explains. ``fetched`` (``ipydeps.fetched.FetchedWheels``) keeps the
wheels read for their metadata, so that the install takes them instead of downloading them
again. A 404 for a project is "no candidates"; an unreachable repository or a bad response
raises ``RepositoryError`` naming the URL, with a hint. Results are cached per source.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import threading
import time
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from packaging.utils import NormalizedName, canonicalize_name

from .credentials import redact
from .errors import DownloadError, HashMismatchError, NotFoundError, RepositoryError
from .formats.wire import APK_INDEX_NAME, APK_PATH, SIMPLE_ACCEPT, SIMPLE_PATH
from .index import apk_candidates, parse_project_page
from .models import Candidate, Route
from .project_pages import ProjectPageReader
from .protocols import Fetcher, Page, PageFetcher

if TYPE_CHECKING:
    from .fetched import FetchedWheels
    from .formats.apkindex import ApkIndexRecord
    from .settings import Settings

__all__ = [
    "ApkIndexSource",
    "ApkRepositorySource",
    "PackageSource",
    "RepositorySource",
    "SimpleIndexSource",
    "UpstreamSource",
    "requires_dist_from_metadata",
    "sources_from_settings",
]

_log = logging.getLogger(__name__)


class PackageSource(Protocol):
    """Where candidates come from; the planner asks each allowed source in route order."""

    @property
    def route(self) -> Route:
        """The route every candidate of this source takes."""
        ...

    @property
    def location(self) -> str:
        """Where the source reads from, for messages (a URL)."""
        ...

    def candidates(self, name: NormalizedName) -> Sequence[Candidate]:
        """Every file offered for project ``name``; empty if the source does not have it."""
        ...

    def requires_dist(self, candidate: Candidate) -> tuple[str, ...]:
        """Return the PEP 508 Requires-Dist strings of ``candidate`` (one of this source's)."""
        ...


@runtime_checkable
class ApkIndexSource(Protocol):
    """An apk source that can hand over its whole APKINDEX (what apk itself resolves against)."""

    def index_records(self) -> tuple[ApkIndexRecord, ...]:
        """Every record of the index for this arch."""
        ...


def _read_page(fetcher: Fetcher, url: str, *, accept: str | None, what: str) -> Page | None:
    """GET ``url`` with the URL that answered (the base of its relative links); None on 404.

    Raises ``RepositoryError`` naming ``what`` on any other failure.
    """
    started = time.perf_counter()
    try:
        if isinstance(fetcher, PageFetcher):
            page = fetcher.get_page(url, accept=accept)
        else:
            page = Page(url, fetcher.get_bytes(url, accept=accept))
    except NotFoundError:
        _log.debug("read %s: not there (404)", redact(url))
        return None
    except (RepositoryError, DownloadError) as error:
        raise RepositoryError(
            f"Cannot read {what} at {url}: {error.message}",
            hint=error.hint
            or "check the repository URL (IPYDEPS_REPOSITORY_URL or repository_url in "
            "config.toml) and that the repository is up",
        ) from error
    _log.debug(
        "read %s: %d bytes in %.0f ms",
        redact(url),
        len(page.body),
        (time.perf_counter() - started) * 1000,
    )
    return page


def _read(fetcher: Fetcher, url: str, *, accept: str | None, what: str) -> bytes | None:
    """GET ``url``; None on 404; ``RepositoryError`` naming ``what`` on any other failure."""
    page = _read_page(fetcher, url, accept=accept, what=what)
    return None if page is None else page.body


def _check_sha256(url: str, expected: str | None, data: bytes) -> None:
    """Raise ``HashMismatchError`` unless ``data`` has the sha256 the index promised."""
    if expected is None:
        return
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise HashMismatchError(url, expected, actual)


def requires_dist_from_metadata(metadata: bytes) -> tuple[str, ...]:
    """Return the Requires-Dist values of a METADATA file (RFC 822 headers)."""
    headers = BytesHeaderParser().parsebytes(metadata)
    return tuple(str(value).strip() for value in headers.get_all("Requires-Dist") or ())


# The most a METADATA member read out of a wheel may declare (zipfile reads no more than
# declared): the wheel itself is bounded by the download limits, its members are not.
_MAX_METADATA_BYTES = 16 << 20


def _metadata_from_wheel(data: bytes, filename: str) -> bytes | None:
    """Return the ``*.dist-info/METADATA`` member of a wheel held in memory, or None.

    Raises:
        RepositoryError: the wheel is not a readable zip, or its METADATA is too big.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                entry = info.filename
                if entry.endswith(".dist-info/METADATA") and entry.count("/") == 1:
                    if info.file_size > _MAX_METADATA_BYTES:
                        raise RepositoryError(
                            f"Refused {filename}: its {entry} declares {info.file_size} "
                            f"bytes, more than the {_MAX_METADATA_BYTES} a metadata file "
                            "may hold",
                            hint="the wheel is malformed or hostile; tell its publisher",
                        )
                    return archive.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        # NotImplementedError: a compression method zipfile does not know.
        raise RepositoryError(
            f"Cannot read the metadata of {filename}: it is not a valid wheel ({error})",
            hint="the file on the repository is damaged; tell its maintainer",
        ) from None
    return None


class SimpleIndexSource:
    """A PEP 503/691 simple index at ``index_url`` (ending in ``/simple/``).

    ``fetched``, if given, keeps the wheels read for their metadata (no PEP 658 file), so
    that the install does not download them again. ``json_page_by_name`` (our repository's
    layout) reads ``<project>/index.json`` by name where the index answers a JSON
    ``Accept`` with HTML.
    """

    def __init__(
        self,
        index_url: str,
        fetcher: Fetcher,
        *,
        route: Route,
        fetched: FetchedWheels | None = None,
        json_page_by_name: bool = False,
    ) -> None:
        self.index_url = index_url.rstrip("/") + "/"
        self._fetcher = fetcher
        self._route = route
        self._fetched = fetched
        # Our tree's layout: on a static host (no negotiation) the JSON page by its name.
        self._pages = ProjectPageReader(self._read_project_page) if json_page_by_name else None
        self._candidates: dict[NormalizedName, tuple[Candidate, ...]] = {}
        self._requires: dict[str, tuple[str, ...]] = {}
        # One lock per file: the planner's read-ahead thread and the resolver may ask for
        # the same file's dependencies at once, and one download must serve both.
        self._locks_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @property
    def route(self) -> Route:
        """The route of every candidate (WHEEL for ours, UPSTREAM for the upstream index)."""
        return self._route

    @property
    def location(self) -> str:
        """The index URL."""
        return self.index_url

    def candidates(self, name: NormalizedName) -> Sequence[Candidate]:
        """Files on ``<index>/<name>/``; raises ``RepositoryError`` if the index is unreadable."""
        name = canonicalize_name(name)
        if name not in self._candidates:
            url = f"{self.index_url}{name}/"
            page = self._read_project_page(url) if self._pages is None else self._pages.read(url)
            # Links resolve against the URL that answered: after a redirect to another
            # host, its files are there (and our credentials do not go with them).
            found = (
                []
                if page is None
                else parse_project_page(page.body, page_url=page.url, route=self.route)
            )
            self._candidates[name] = tuple(c for c in found if c.name == name)
        return self._candidates[name]

    def _read_project_page(self, url: str) -> Page | None:
        return _read_page(self._fetcher, url, accept=SIMPLE_ACCEPT, what="the package index")

    def requires_dist(self, candidate: Candidate) -> tuple[str, ...]:
        """Requires-Dist from PEP 658 metadata, else from the wheel itself, both checked by sha256.

        Raises ``RepositoryError`` when neither can be read, ``HashMismatchError`` when the
        metadata or the wheel read for it does not match the sha256 the index gives.
        """
        if candidate.requires_dist is not None:
            return candidate.requires_dist
        with self._locks_lock:
            lock = self._locks.setdefault(candidate.url, threading.Lock())
        with lock:
            if candidate.url not in self._requires:
                self._requires[candidate.url] = self._fetch_requires(candidate)
        return self._requires[candidate.url]

    def _fetch_requires(self, candidate: Candidate) -> tuple[str, ...]:
        if candidate.metadata_url is not None:
            metadata = _read(self._fetcher, candidate.metadata_url, accept=None, what="metadata")
            if metadata is not None:
                _check_sha256(candidate.metadata_url, candidate.metadata_sha256, metadata)
                return requires_dist_from_metadata(metadata)
        elif candidate.is_wheel:
            # Indexes and mirrors that do not advertise PEP 658 often serve the file anyway
            # (PyPI backfilled it for all wheels); one small GET saves downloading a whole
            # wheel. Unadvertised, it has no hash: it only informs the plan, and the wheel
            # itself is checked against its sha256 before anything is installed.
            guessed = _read(
                self._fetcher, f"{candidate.url}.metadata", accept=None, what="metadata"
            )
            if guessed is not None:
                return requires_dist_from_metadata(guessed)
        # No metadata file: read the wheel itself (costly, so only when there is no other way).
        data = _read(self._fetcher, candidate.url, accept=None, what="a wheel")
        if data is None:
            raise RepositoryError(
                f"{candidate.url} is listed by {self.index_url} but missing (404)",
                hint="the index is stale; tell the repository maintainer",
            )
        _check_sha256(candidate.url, candidate.sha256, data)
        metadata = _metadata_from_wheel(data, candidate.filename)
        if metadata is None:
            raise RepositoryError(
                f"{candidate.url} is not a valid wheel: it has no .dist-info/METADATA",
                hint="tell the repository maintainer",
            )
        if self._fetched is not None and candidate.sha256 is not None:
            with contextlib.suppress(OSError):  # no room to keep it: the install fetches it
                self._fetched.keep(candidate.url, candidate.sha256, candidate.filename, data)
        return requires_dist_from_metadata(metadata)


class RepositorySource(SimpleIndexSource):
    """Our repository's wheel index, ``<base_url>/simple/`` (Route.WHEEL).

    Its tree may be served by a static host without negotiation; the JSON pages are then
    read by name (``ipydeps.project_pages``), so the stored copies are found there too.
    """

    def __init__(
        self, base_url: str, fetcher: Fetcher, *, fetched: FetchedWheels | None = None
    ) -> None:
        super().__init__(
            f"{base_url.rstrip('/')}/{SIMPLE_PATH}/",
            fetcher,
            route=Route.WHEEL,
            fetched=fetched,
            json_page_by_name=True,
        )


class UpstreamSource(SimpleIndexSource):
    """The upstream index (PyPI or a mirror) at ``index_url`` (Route.UPSTREAM)."""

    def __init__(
        self, index_url: str, fetcher: Fetcher, *, fetched: FetchedWheels | None = None
    ) -> None:
        super().__init__(index_url, fetcher, route=Route.UPSTREAM, fetched=fetched)


class ApkRepositorySource:
    """Our apk repository ``<base>/alpine/<branch>/<repo>/<arch>/`` (Route.APK).

    The APKINDEX is read once. Its signature is not checked here: planning only reads
    it, and ``apk add`` verifies index and packages against /etc/apk/keys before installing.
    """

    def __init__(
        self,
        base_url: str,
        fetcher: Fetcher,
        *,
        branch: str,
        repo: str,
        arch: str,
        apk_map: Mapping[str, str] | None = None,
    ) -> None:
        self.repository_url = f"{base_url.rstrip('/')}/{APK_PATH}/{branch}/{repo}"
        self.arch = arch
        self._fetcher = fetcher
        self._apk_map = dict(apk_map or {})
        self._by_name: dict[NormalizedName, list[Candidate]] | None = None
        self._records: tuple[ApkIndexRecord, ...] = ()

    @property
    def route(self) -> Route:
        """Always Route.APK."""
        return Route.APK

    @property
    def location(self) -> str:
        """The repository URL as apk's /etc/apk/repositories names it."""
        return self.repository_url

    def _load(self) -> dict[NormalizedName, list[Candidate]]:
        from .formats.apkindex import ApkIndexError, parse_apkindex, read_apkindex_archive

        url = f"{self.repository_url}/{self.arch}/{APK_INDEX_NAME}"
        data = _read(self._fetcher, url, accept=None, what="the apk index")
        by_name: dict[NormalizedName, list[Candidate]] = {}
        if data is not None:
            try:
                _, text = read_apkindex_archive(data)
                parsed = parse_apkindex(text)
            except ApkIndexError as error:
                # A repository that cannot be read, like one that does not answer.
                raise RepositoryError(
                    f"Cannot read the apk index at {url}: {error.message}", hint=error.hint
                ) from error
            records = [r for r in parsed if r.arch in (self.arch, "noarch")]
            self._records = tuple(records)
            for candidate in apk_candidates(
                records, repository_url=self.repository_url, apk_map=self._apk_map, arch=self.arch
            ):
                by_name.setdefault(candidate.name, []).append(candidate)
        return by_name

    def candidates(self, name: NormalizedName) -> Sequence[Candidate]:
        """Return the apks carrying project ``name``; raise ``RepositoryError`` if unreadable."""
        if self._by_name is None:
            self._by_name = self._load()
        return tuple(self._by_name.get(canonicalize_name(name), ()))

    def requires_dist(self, candidate: Candidate) -> tuple[str, ...]:
        """Return the Python projects among the apk's ``D:`` dependencies, as PEP 508 strings."""
        return candidate.requires_dist or ()

    def index_records(self) -> tuple[ApkIndexRecord, ...]:
        """Every APKINDEX record for this arch (all of ``D:``/``p:``), for apk's closure."""
        if self._by_name is None:
            self._by_name = self._load()
        return self._records


def sources_from_settings(
    settings: Settings, fetcher: Fetcher, *, arch: str, fetched: FetchedWheels | None = None
) -> list[PackageSource]:
    """Return the sources the settings allow, in route order (apk, our wheels, upstream).

    ``arch`` is the apk architecture (e.g. ``x86_64``). Whether apk can run here is
    the planner's concern (``TargetEnvironment.apk_available``), so the apk source is
    listed whenever a repository is configured and ``apk`` is not ``never``. ``fetched``
    keeps the wheels the wheel sources read for their metadata, for the install.
    """
    sources: list[PackageSource] = []
    if settings.repository_url:
        if settings.apk != "never":
            branch, _, repo = settings.apk_repository.partition("/")
            sources.append(
                ApkRepositorySource(
                    settings.repository_url,
                    fetcher,
                    branch=branch,
                    repo=repo,
                    arch=arch,
                    apk_map=settings.apk_map,
                )
            )
        sources.append(RepositorySource(settings.repository_url, fetcher, fetched=fetched))
    if settings.upstream == "allow":
        sources.append(UpstreamSource(settings.upstream_url, fetcher, fetched=fetched))
    return sources
