"""Freshness: compare each recipe's pkgver with PyPI's newest release, and bump recipes."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from ..errors import UpstreamError, ValidationError
from .manifest import load_manifest
from .recipe import load_recipe, parse_assignments, source_filename
from .upstream import (
    DEFAULT_JSON_API,
    Release,
    download_sdist,
    fetch_releases,
    file_sha512,
    newest_release,
)

Fetch = Callable[[str], list[Release]]


@dataclass(frozen=True)
class UpdateCheck:
    """One recipe compared with upstream: ``outdated`` when a newer final release exists."""

    recipe: str
    project: str
    current: str
    newest: str
    outdated: bool
    bumped: bool = False


def compare(recipe: str, project: str, current: str, releases: list[Release]) -> UpdateCheck:
    """Compare ``current`` with the newest final release (pre-releases and dev releases skipped).

    Pure. A recipe ahead of upstream (or with no release at all) is not outdated.

    Raises:
        ValidationError: ``current`` is not a PEP 440 version.
    """
    try:
        current_version = Version(current)
    except InvalidVersion as error:
        raise ValidationError(recipe, [f"pkgver {current!r} is not a PEP 440 version"]) from error
    newest = newest_release(releases)
    if newest is None:
        return UpdateCheck(recipe, project, current, "", outdated=False)
    return UpdateCheck(
        recipe, project, current, newest.version, outdated=Version(newest.version) > current_version
    )


def rewrite_recipe(text: str, version: str, sha512: str, sdist_filename: str) -> str:
    """Return the APKBUILD text with pkgver=version, pkgrel=0 and the sdist's checksum replaced.

    Pure. The first ``source`` entry is the upstream sdist: its line in ``sha512sums`` is
    replaced; other lines (patches, local files) are kept as they are.

    Raises:
        ValidationError: the recipe has no single-line pkgver/pkgrel, or the first source's
            new file name is not ``sdist_filename`` (the recipe's URL pattern is off).
    """
    problems = []
    for name in ("pkgver", "pkgrel"):
        if len(re.findall(rf"^{name}=", text, flags=re.MULTILINE)) != 1:
            problems.append(f"expected exactly one {name}= line")
    if problems:
        raise ValidationError("APKBUILD", problems)
    old_values = parse_assignments(text)
    old_filename = source_filename(old_values["source"].split()[0])
    text = re.sub(r"^pkgver=.*$", f"pkgver={version}", text, count=1, flags=re.MULTILINE)
    text = re.sub(r"^pkgrel=.*$", "pkgrel=0", text, count=1, flags=re.MULTILINE)
    new_filename = source_filename(parse_assignments(text)["source"].split()[0])
    if new_filename != sdist_filename:
        raise ValidationError(
            "APKBUILD",
            [f"source would download {new_filename}, but PyPI's sdist is {sdist_filename}"],
            hint="fix the source= URL pattern in the recipe",
        )
    line = re.compile(rf"^[0-9a-f]{{128}}  {re.escape(old_filename)}$", flags=re.MULTILINE)
    if not line.search(text):
        raise ValidationError("APKBUILD", [f"sha512sums has no line for {old_filename}"])
    return line.sub(f"{sha512}  {new_filename}", text, count=1)


def check_updates(
    apkbuilds: Path,
    *,
    api: str = DEFAULT_JSON_API,
    bump: bool = False,
    progress: Callable[[str], None],
    fetch: Fetch | None = None,
    download_dir: Path | None = None,
) -> list[UpdateCheck]:
    """Compare every recipe in the manifest with upstream; with ``bump``, update outdated ones.

    A bump downloads the new sdist (sha256 checked against PyPI), hashes it with sha512,
    and rewrites the APKBUILD atomically.

    Raises:
        UpstreamError: PyPI cannot be asked.
        ValidationError: a recipe cannot be parsed or rewritten.
        BuildError: the new sdist cannot be downloaded or fails its sha256 check.
    """
    manifest = load_manifest(apkbuilds)
    fetcher: Fetch = fetch or (lambda project: fetch_releases(project, api=api))
    checks: list[UpdateCheck] = []
    for name, recipe in sorted(manifest.recipes.items()):
        project = manifest.settings[name].pypi
        releases = fetcher(project)
        check = compare(name, project, recipe.pkgver, releases)
        if bump and check.outdated:
            release = next(r for r in releases if r.version == check.newest)
            _bump(recipe.directory, release, download_dir, progress)
            check = UpdateCheck(name, project, check.current, check.newest, True, bumped=True)
        checks.append(check)
    return checks


def _bump(
    directory: Path, release: Release, download_dir: Path | None, progress: Callable[[str], None]
) -> None:
    with tempfile.TemporaryDirectory(prefix="farm-bump-") as scratch:
        sdist = download_sdist(release, download_dir or Path(scratch))
        sha512 = file_sha512(sdist)
    path = directory / "APKBUILD"
    text = rewrite_recipe(
        path.read_text(encoding="utf-8"), release.version, sha512, release.sdist_filename
    )
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".APKBUILD.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(temp, path.stat().st_mode & 0o777)
    os.replace(temp, path)
    # Re-read to prove the rewritten recipe still parses (and its checksum matches its source).
    load_recipe(directory)
    progress(
        f"{directory.name}: bumped to {release.version}"
        f" (pkgrel=0, sha512 of {release.sdist_filename})"
    )


def render_updates(checks: list[UpdateCheck]) -> str:
    """Return a table: recipe, PyPI project, recipe version, newest upstream, state."""
    rows = [("recipe", "pypi", "recipe", "upstream", "state")]
    for check in checks:
        state = "bumped" if check.bumped else ("UPDATE" if check.outdated else "current")
        rows.append((check.recipe, check.project, check.current, check.newest or "-", state))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


__all__ = [
    "UpdateCheck",
    "UpstreamError",
    "check_updates",
    "compare",
    "render_updates",
    "rewrite_recipe",
]
