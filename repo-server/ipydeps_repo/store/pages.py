"""Render the PEP 503 HTML and PEP 691 JSON simple index pages the store writes into the tree."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from ipydeps.formats.wire import OUTLINE_KEY
from ipydeps.formats.wire import STORED_COPY_KEY as STORED_KEY

from .stored_copy import STORED_SUFFIX

API_VERSION = "1.1"  # PEP 700: adds "versions", "size" and "upload-time".


@dataclass(frozen=True)
class WheelFile:
    """One wheel or sdist as the simple index lists it; ``url`` is relative to the project page.

    ``metadata_sha256`` is the hash of its PEP 658 ``.metadata`` file (None for sdists,
    which have none). ``stored_sha256`` and ``stored_size`` describe its stored copy
    (``url`` + ``.stored``), or are None when it has none; ``stored_outline_sha256`` is
    that copy's outline sha256 (None for a copy without one). ``yanked`` is None, or the
    PEP 592 reason ("" when none was given).
    """

    filename: str
    url: str
    version: str
    sha256: str
    size: int
    metadata_sha256: str | None
    requires_python: str | None = None
    upload_time: str | None = None
    stored_sha256: str | None = None
    stored_size: int | None = None
    yanked: str | None = None
    stored_outline_sha256: str | None = None


@dataclass(frozen=True)
class Project:
    """One project's page: its normalized name (PEP 503) and files."""

    name: str
    files: tuple[WheelFile, ...]


def version_sort_key(text: str) -> tuple[int, Version | str]:
    """Sort key of a version string: as a PEP 440 version (1.10 after 1.9), invalid ones first."""
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def _sorted_versions(files: Iterable[WheelFile]) -> list[str]:
    return sorted({item.version for item in files}, key=version_sort_key)


def render_project_html(project: Project) -> str:
    """Return the PEP 503 page of one project, with PEP 658/714 metadata and PEP 345 attributes."""
    escaped = html.escape(project.name)
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        f"<title>Links for {escaped}</title>",
        "</head>",
        "<body>",
        f"<h1>Links for {escaped}</h1>",
    ]
    for item in sorted(project.files, key=lambda f: (version_sort_key(f.version), f.filename)):
        attributes = [f'href="{html.escape(item.url)}#sha256={item.sha256}"']
        if item.requires_python:
            attributes.append(f'data-requires-python="{html.escape(item.requires_python)}"')
        if item.metadata_sha256 is not None:
            # PEP 714 renamed the attribute; both are written so older pips also use it.
            metadata = f"sha256={item.metadata_sha256}"
            attributes.append(f'data-dist-info-metadata="{metadata}"')
            attributes.append(f'data-core-metadata="{metadata}"')
        if item.yanked is not None:
            attributes.append(f'data-yanked="{html.escape(item.yanked)}"')
        lines.append(f"<a {' '.join(attributes)}>{html.escape(item.filename)}</a><br>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines)


def render_project_json(project: Project) -> str:
    """Return the PEP 691 (API 1.1) JSON page of one project.

    A wheel with a stored copy also gets ``"_ipydeps-stored": {"url", "hashes", "size",
    "outline_sha256"}`` (the outline when the copy has one); the copy is never listed as a
    file of its own.
    """
    files = []
    for item in sorted(project.files, key=lambda f: (version_sort_key(f.version), f.filename)):
        entry: dict[str, object] = {
            "filename": item.filename,
            "url": item.url,
            "hashes": {"sha256": item.sha256},
            "size": item.size,
            # PEP 592/691: the reason, or true for a yank without one.
            "yanked": (item.yanked or True) if item.yanked is not None else False,
        }
        if item.metadata_sha256 is not None:
            entry["core-metadata"] = {"sha256": item.metadata_sha256}
            entry["dist-info-metadata"] = {"sha256": item.metadata_sha256}
        if item.requires_python:
            entry["requires-python"] = item.requires_python
        if item.upload_time:
            entry["upload-time"] = item.upload_time
        if item.stored_sha256 is not None and item.stored_size is not None:
            stored: dict[str, object] = {
                "url": item.url + STORED_SUFFIX,
                "hashes": {"sha256": item.stored_sha256},
                "size": item.stored_size,
            }
            if item.stored_outline_sha256 is not None:
                stored[OUTLINE_KEY] = item.stored_outline_sha256
            entry[STORED_KEY] = stored
        files.append(entry)
    document = {
        "meta": {"api-version": API_VERSION},
        "name": project.name,
        "versions": _sorted_versions(project.files),
        "files": files,
    }
    return json.dumps(document, indent=1) + "\n"


def render_root_html(projects: Iterable[str]) -> str:
    """Return the PEP 503 root page listing every project (normalized names, sorted)."""
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        "<title>Simple index</title>",
        "</head>",
        "<body>",
    ]
    for name in sorted(projects):
        escaped = html.escape(name)
        lines.append(f'<a href="{escaped}/">{escaped}</a><br>')
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines)


def render_root_json(projects: Iterable[str]) -> str:
    """Return the PEP 691 root JSON listing every project.

    The text is what ``json.dumps(document, indent=1)`` writes, put together here: with an
    indent, ``json`` encodes in Python, which took 15 ms for 3000 projects, and this page
    is written whenever a project comes or goes.
    """
    quote = json.encoder.encode_basestring_ascii  # what json.dumps does to a str
    entries = ",\n".join(f'  {{\n   "name": {quote(name)}\n  }}' for name in sorted(projects))
    listed = f"[\n{entries}\n ]" if entries else "[]"
    return (
        f'{{\n "meta": {{\n  "api-version": {json.dumps(API_VERSION)}\n }},\n'
        f' "projects": {listed}\n}}\n'
    )
