"""Upstream releases from PyPI's JSON API: newest version, its sdist, download and verify."""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .. import jsonsafe
from ..errors import BuildError, UpstreamError, ValidationError
from ..fileops import sha256_file
from ..net.client import HttpClient, HttpError
from ..net.download import download_verified

DEFAULT_JSON_API = "https://pypi.org/pypi"


@dataclass(frozen=True)
class Release:
    """One upstream release that has an sdist: the farm builds only from source."""

    project: str
    version: str
    sdist_filename: str
    sdist_url: str
    sdist_sha256: str
    requires_python: str

    def supports_python(self, python_version: str) -> bool:
        """Return whether ``python_version`` (e.g. ``3.11``) satisfies Requires-Python."""
        if not self.requires_python:
            return True
        try:
            return SpecifierSet(self.requires_python).contains(python_version)
        except InvalidSpecifier:
            return True


def parse_releases(project: str, data: Mapping[str, Any], base_url: str) -> list[Release]:
    """Return the releases in a PyPI JSON API document that have a non-yanked sdist.

    Pure: ``data`` is the decoded ``/pypi/<project>/json`` body; ``base_url`` is where it came
    from, used to resolve relative file URLs (some mirrors answer with them). Versions that
    are not valid PEP 440 are left out. Sorted oldest first.
    """
    releases: list[Release] = []
    for version, files in data.get("releases", {}).items():
        try:
            Version(version)
        except InvalidVersion:
            continue
        for entry in files:
            if entry.get("packagetype") != "sdist" or entry.get("yanked"):
                continue
            releases.append(
                Release(
                    project=project,
                    version=version,
                    sdist_filename=str(entry["filename"]),
                    sdist_url=urllib.parse.urljoin(base_url, str(entry["url"])),
                    sdist_sha256=str(entry["digests"]["sha256"]),
                    requires_python=str(entry.get("requires_python") or ""),
                )
            )
            break
    return sorted(releases, key=lambda release: Version(release.version))


def newest_release(
    releases: list[Release], *, python_version: str | None = None, prereleases: bool = False
) -> Release | None:
    """Return the newest release (final releases only unless ``prereleases``).

    With ``python_version``, only releases whose Requires-Python admits it are considered.
    """
    for release in reversed(releases):
        version = Version(release.version)
        if (version.is_prerelease or version.is_devrelease) and not prereleases:
            continue
        if python_version and not release.supports_python(python_version):
            continue
        return release
    return None


def choose_host_release(releases: list[Release], pkgver: str, python_version: str) -> Release:
    """Return the release the host builds: the recipe's pkgver if it supports this Python.

    Otherwise the newest final release that does (e.g. NumPy 2.5 needs Python 3.12; a
    Python 3.11 host builds the newest 2.4.x).

    Raises:
        BuildError: no release with an sdist supports this Python.
    """
    for release in releases:
        if release.version == pkgver and release.supports_python(python_version):
            return release
    fallback = newest_release(releases, python_version=python_version)
    if fallback is None:
        project = releases[0].project if releases else "this project"
        raise BuildError(f"no release of {project} with an sdist supports Python {python_version}")
    return fallback


def project_url(project: str, api: str = DEFAULT_JSON_API) -> str:
    """Return the JSON API URL of ``project``."""
    return f"{api.rstrip('/')}/{urllib.parse.quote(project)}/json"


def fetch_releases(
    project: str, *, api: str = DEFAULT_JSON_API, client: HttpClient | None = None
) -> list[Release]:
    """Ask the JSON API for every release of ``project`` that has an sdist.

    Raises:
        UpstreamError: the API cannot be reached or answers with something else than JSON.
    """
    url = project_url(project, api)
    try:
        body = (client or HttpClient()).get(url, headers={"Accept": "application/json"}).body
        data = jsonsafe.loads(body)
    except (HttpError, jsonsafe.JsonInputError) as error:
        raise UpstreamError(
            f"could not read {url}: {error}", hint="check the network, or pass --pypi-api"
        ) from None
    if not isinstance(data, dict):
        raise UpstreamError(
            f"could not read {url}: the answer is not a JSON object", hint="check --pypi-api"
        )
    return parse_releases(project, data, url)


def download_sdist(release: Release, directory: Path, *, client: HttpClient | None = None) -> Path:
    """Download ``release``'s sdist into ``directory`` (kept as a cache) and verify its sha256.

    A file already there with the right sha256 is reused without downloading.

    Raises:
        BuildError: the download fails or its sha256 differs from the one PyPI published.
    """
    target = directory / release.sdist_filename
    try:
        return download_verified(
            client or HttpClient(), release.sdist_url, target, release.sdist_sha256
        )
    except HttpError as error:
        raise BuildError(f"could not download {release.sdist_url}: {error.message}") from None
    except ValidationError as error:
        raise BuildError(
            f"{release.sdist_filename}: sha256 differs from PyPI's ({'; '.join(error.problems)})",
            hint="the download was corrupted or tampered with; retry",
        ) from None


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    return sha256_file(path)


def file_sha512(path: Path) -> str:
    """Return the hex sha512 of a file (the checksum APKBUILDs record)."""
    return _file_digest(path, "sha512")


def _file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
