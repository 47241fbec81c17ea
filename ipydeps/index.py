"""Parse index formats (PEP 691 JSON, PEP 503 HTML, APKINDEX records) straight into ``Candidate``s.

Pure functions, no I/O. Project pages give wheels and sdists: sdists are recorded so the
planner can explain "only a source distribution exists". APKINDEX records (from
``ipydeps.formats.apkindex``) of py3-* (or ``apk_map``) packages become candidates named by
their Python project, with requires_dist mapped from ``D:``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urldefrag, urljoin

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .errors import RepositoryError
from .formats import apknames
from .formats.apkversion import ApkVersionError, apk_to_pep440
from .formats.wire import OUTLINE_KEY, STORED_COPY_KEY
from .models import Candidate, Route, StoredCopy

__all__ = [
    "ApkRecord",
    "apk_candidates",
    "apk_depends_to_requires_dist",
    "apk_name_for",
    "apk_python_version",
    "compatible_wheels",
    "parse_project_html",
    "parse_project_json",
    "parse_project_page",
    "project_for_apk",
]

# A wheel's distribution name as the wheel spec escapes it (runs of -_. become _).
_WHEEL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?")  # fullmatch


@functools.lru_cache(maxsize=8192)
def _parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _wheel_name_version(filename: str) -> tuple[NormalizedName, Version] | None:
    """Name and version of a wheel file name, or None if it is not one.

    Tags are left unparsed here: ``TargetEnvironment.wheel_rank`` parses each distinct
    tag triple once, which keeps pages with thousands of wheels fast to read.
    """
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) not in (5, 6) or not _WHEEL_NAME.fullmatch(parts[0]):
        return None
    if len(parts) == 6 and not parts[2][:1].isdigit():
        return None  # the optional build tag must start with a digit
    version = _parse_version(parts[1])
    return None if version is None else (canonicalize_name(parts[0]), version)


def _absolute(page_url: str, url: str) -> str:
    """Resolve ``url`` against the page; absolute URLs (PyPI's) skip the costly urljoin."""
    if url.startswith(("https://", "http://")):
        return url
    return urljoin(page_url, url)


def _file_candidate(
    filename: str,
    url: str,
    *,
    route: Route,
    sha256: str | None,
    requires_python: str | None,
    yanked: bool,
    has_metadata: bool,
    size: int | None,
    metadata_sha256: str | None = None,
    stored: StoredCopy | None = None,
) -> Candidate | None:
    """One index entry as a Candidate, or None for files we never use (eggs, installers)."""
    if filename.endswith(".whl"):
        parsed = _wheel_name_version(filename)
    else:
        try:
            parsed = parse_sdist_filename(filename)
        except (InvalidSdistFilename, InvalidVersion):
            parsed = None
    if parsed is None:
        return None
    name, version = parsed
    return Candidate(
        name=name,
        version=version,
        route=route,
        url=url,
        filename=filename,
        sha256=sha256.lower() if sha256 else None,
        size=size,
        requires_python=requires_python or None,
        # PEP 658/714: metadata is served at the file URL plus ".metadata" (wheels only).
        metadata_url=f"{url}.metadata" if has_metadata and filename.endswith(".whl") else None,
        metadata_sha256=metadata_sha256.lower() if has_metadata and metadata_sha256 else None,
        yanked=yanked,
        stored=stored if filename.endswith(".whl") else None,
    )


_SHA256 = re.compile(r"[0-9a-fA-F]{64}")  # fullmatch: "$" also matches before a newline


def _stored_copy(entry: Mapping[str, Any], page_url: str) -> StoredCopy | None:
    """Return the entry's stored copy; None when absent or malformed (the wheel is used).

    A malformed outline sha256 is left out: the copy is then checked as a whole file.
    """
    value = entry.get(STORED_COPY_KEY)
    if not isinstance(value, dict):
        return None
    url, hashes, size = value.get("url"), value.get("hashes"), value.get("size")
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    if (
        not isinstance(url, str)
        or not url
        or not isinstance(sha256, str)
        or not _SHA256.fullmatch(sha256)
        or not isinstance(size, int)
        or size <= 0
    ):
        return None
    outline = value.get(OUTLINE_KEY)
    return StoredCopy(
        url=_absolute(page_url, url),
        sha256=sha256.lower(),
        size=size,
        outline_sha256=outline.lower()
        if isinstance(outline, str) and _SHA256.fullmatch(outline)
        else None,
    )


def parse_project_json(body: bytes | str, *, page_url: str, route: Route) -> list[Candidate]:
    """Parse a PEP 691 JSON project page; raise ``RepositoryError`` if it is not one."""
    try:
        page = json.loads(body)
        files = page["files"]
    except RecursionError:  # nested deeper than the parser's stack: hostile, not a bug
        raise RepositoryError(
            f"{page_url} returned JSON nested too deeply to be read",
            hint="the repository is misconfigured or hostile",
        ) from None
    except (ValueError, KeyError, TypeError) as error:
        raise RepositoryError(
            f"{page_url} did not return a PEP 691 project page ({error})",
            hint="check that the repository URL points at a simple index (ending in /simple/)",
        ) from None
    candidates = []
    for entry in files:
        if not isinstance(entry, dict) or "filename" not in entry or "url" not in entry:
            continue
        hashes = entry.get("hashes") or {}
        # PEP 714 renamed dist-info-metadata to core-metadata; accept both.
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        size = entry.get("size")
        candidate = _file_candidate(
            str(entry["filename"]),
            _absolute(page_url, str(entry["url"])),
            route=route,
            sha256=hashes.get("sha256") if isinstance(hashes, dict) else None,
            requires_python=entry.get("requires-python"),
            yanked=bool(entry.get("yanked", False)),
            has_metadata=bool(metadata),
            size=size if isinstance(size, int) else None,
            metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
            stored=_stored_copy(entry, page_url),
        )
        if candidate is not None:
            candidates.append(candidate)
    return candidates


def _anchors(text: str) -> list[tuple[dict[str, str | None], str]]:
    """Return the ``<a>`` elements (attributes, text) of a PEP 503 page."""
    # Imported here, not at the top: JSON pages (ours, PyPI's) are the common case, and
    # html.parser adds to the start-up of every kernel that loads the extension.
    from html.parser import HTMLParser

    anchors: list[tuple[dict[str, str | None], str]] = []

    class Collector(HTMLParser):
        current: dict[str, str | None] | None = None
        pieces: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                self.current = dict(attrs)
                self.pieces = []

        def handle_data(self, data: str) -> None:
            if self.current is not None:
                self.pieces.append(data)

        def handle_endtag(self, tag: str) -> None:
            if tag == "a" and self.current is not None:
                anchors.append((self.current, "".join(self.pieces).strip()))
                self.current = None

    collector = Collector(convert_charrefs=True)
    collector.feed(text)
    collector.close()
    return anchors


def parse_project_html(body: bytes | str, *, page_url: str, route: Route) -> list[Candidate]:
    """Parse a PEP 503 HTML project page (with PEP 592 yanks, PEP 658/714 metadata)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    candidates = []
    for attributes, label in _anchors(text):
        href = attributes.get("href")
        if not href:
            continue
        url, fragment = urldefrag(_absolute(page_url, href))
        filename = label or url.rsplit("/", 1)[-1]
        sha256 = fragment[len("sha256=") :] if fragment.startswith("sha256=") else None
        metadata = attributes.get("data-core-metadata", attributes.get("data-dist-info-metadata"))
        candidate = _file_candidate(
            filename,
            url,
            route=route,
            sha256=sha256,
            requires_python=attributes.get("data-requires-python"),
            yanked="data-yanked" in attributes,
            # PEP 658: present means available, unless the value is literally "false".
            has_metadata=metadata is not None and metadata.lower() != "false",
            size=None,
            metadata_sha256=(
                metadata[len("sha256=") :] if metadata and metadata.startswith("sha256=") else None
            ),
        )
        if candidate is not None:
            candidates.append(candidate)
    return candidates


def parse_project_page(body: bytes | str, *, page_url: str, route: Route) -> list[Candidate]:
    """Parse a project page in either format; JSON is recognised by its leading ``{``."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if text.lstrip().startswith("{"):
        return parse_project_json(text, page_url=page_url, route=route)
    return parse_project_html(text, page_url=page_url, route=route)


def compatible_wheels(
    candidates: Iterable[Candidate], supported_tags: Iterable[Tag]
) -> list[Candidate]:
    """Return the wheels among ``candidates`` that any of ``supported_tags`` can install."""
    supported = frozenset(supported_tags)
    kept = []
    for candidate in candidates:
        if not candidate.is_wheel:
            continue
        try:
            _, _, _, tags = parse_wheel_filename(candidate.filename)
        except InvalidWheelFilename:
            continue
        if tags & supported:
            kept.append(candidate)
    return kept


class ApkRecord(Protocol):
    """The fields of an APKINDEX record this module reads (``formats.apkindex.ApkIndexRecord``)."""

    @property
    def checksum(self) -> str:
        """C: ``Q1`` + base64 of the SHA-1 of the package's control member."""
        ...

    @property
    def name(self) -> str:
        """P: the apk name."""
        ...

    @property
    def version(self) -> str:
        """V: the apk version with ``-rN``."""
        ...

    @property
    def arch(self) -> str:
        """A: the architecture (or ``noarch``)."""
        ...

    @property
    def size(self) -> int:
        """S: the size of the .apk file (0 when unknown)."""
        ...

    @property
    def depends(self) -> tuple[str, ...]:
        """D: the dependencies."""
        ...


def apk_name_for(project: str, apk_map: Mapping[str, str] | None = None) -> str:
    """Return the apk carrying ``project`` (``formats.apknames``: apk_map, Alpine's name, py3-*)."""
    return apknames.apk_name_for(project, apk_map)


def project_for_apk(
    apk_name: str, apk_map: Mapping[str, str] | None = None
) -> NormalizedName | None:
    """Return the Python project an apk carries, or None when it carries none (e.g. openblas)."""
    return apknames.project_for_apk(apk_name, apk_map)


_APK_DEPEND = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._+-]*?)(?:(?P<op>[<>=~]+)(?P<ver>\S+))?$"
)
_APK_TO_PEP440_OPERATOR = {">=": ">=", "<=": "<=", ">": ">", "<": "<", "=": "==", "~": "=="}


def _pep440_of_apk(apk_version: str) -> Version | None:
    """Return the PEP 440 version of an apk version, or None if it has none."""
    try:
        return apk_to_pep440(apk_version)
    except ApkVersionError:
        return None


def apk_depends_to_requires_dist(
    depends: Iterable[str], apk_map: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Map an apk's ``D:`` entries to PEP 508 strings for the Python projects they carry.

    ``py3-numpy>=2.0-r0`` becomes ``numpy>=2.0``; system libraries (``openblas``,
    ``so:libc.musl...``), conflicts (``!name``) and ``python3`` itself are left to apk.
    """
    requirements = []
    for depend in depends:
        match = _APK_DEPEND.match(depend.strip())
        if not match or depend.startswith(("!", "so:", "cmd:", "pc:")):
            continue
        project = project_for_apk(match["name"], apk_map)
        if project is None:
            continue
        operator, version = match["op"], match["ver"]
        python_version = _pep440_of_apk(version) if version else None
        if operator in _APK_TO_PEP440_OPERATOR and python_version is not None:
            suffix = ".*" if operator == "~" else ""
            requirements.append(
                f"{project}{_APK_TO_PEP440_OPERATOR[operator]}{python_version}{suffix}"
            )
        else:
            requirements.append(str(project))
    return tuple(requirements)


def apk_python_version(depends: Iterable[str]) -> str | None:
    """Return the X.Y of an apk's ``python3~X.Y`` (or ``python3=X.Y...``) dependency, if any.

    abuild adds ``python3~X.Y`` to every package that installs into ``pythonX.Y``; apk then
    refuses it beside any other python3, and no other Python imports its modules.
    """
    for depend in depends:
        match = _APK_DEPEND.match(depend.strip())
        if match and match["name"] == "python3" and match["op"] in ("~", "=") and match["ver"]:
            major, _, rest = match["ver"].partition(".")
            minor = rest.split(".", 1)[0]
            if major.isdigit() and minor.isdigit():
                return f"{int(major)}.{int(minor)}"
    return None


def apk_candidates(
    records: Iterable[ApkRecord],
    *,
    repository_url: str,
    apk_map: Mapping[str, str] | None = None,
    arch: str | None = None,
) -> list[Candidate]:
    """Candidates for the apks in an APKINDEX that carry a Python project.

    ``repository_url`` is the repository root above the arch folder, e.g.
    ``https://repo/alpine/v3.22/sci``; the file is ``<repo>/<A>/<name>-<version>.apk``,
    or ``<repo>/<arch>/...`` when ``arch`` (the index's folder) is given, since a
    ``noarch`` package sits in every arch folder. Records whose version has no PEP 440
    equivalent are left out.
    """
    base = repository_url.rstrip("/")
    candidates = []
    for record in records:
        project = project_for_apk(record.name, apk_map)
        version = _pep440_of_apk(record.version)
        if project is None or version is None:
            continue
        filename = f"{record.name}-{record.version}.apk"
        candidates.append(
            Candidate(
                name=project,
                version=version,
                route=Route.APK,
                url=f"{base}/{arch or record.arch}/{filename}",
                filename=filename,
                size=record.size or None,
                requires_dist=apk_depends_to_requires_dist(record.depends, apk_map),
                apk_name=record.name,
                apk_version=record.version,
                apk_python=apk_python_version(record.depends),
                apk_checksum=record.checksum or None,
            )
        )
    return candidates
