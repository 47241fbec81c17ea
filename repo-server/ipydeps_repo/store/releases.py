"""Yank, unyank and delete published wheels and sdists (PEP 592), by version or by file.

A yank keeps the file and marks it on both simple pages (``data-yanked`` in PEP 503,
``"yanked"`` in PEP 691), so pip and uv skip it unless a requirement pins that version
exactly; a delete removes the file, its ``.metadata``, its ``.stored`` copy and its
optimized variant. Both run under the publish lock, and a deleted file leaves the pages
before its bytes leave the disk: the project's pages are rewritten without it (temp file
and rename, like every page), then the files go, then the pages are regenerated from
what is left, so no page ever names a file that is not there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import NotFoundError, ValidationError
from .distributions import DistributionRepository
from .pages import WheelFile
from .stored_copy import STORED_SUFFIX
from .variants import optimized_filename

ReleaseAction = Literal["yank", "unyank", "delete"]


@dataclass(frozen=True)
class ReleaseChange:
    """What one yank, unyank or delete did: the project, version and the files it touched."""

    action: ReleaseAction
    project: str
    version: str
    files: tuple[str, ...]
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        """Return the change as the JSON body of the API's reply."""
        body: dict[str, object] = {
            "action": self.action,
            "project": self.project,
            "version": self.version,
            "files": list(self.files),
        }
        if self.reason is not None:
            body["reason"] = self.reason
        return body


def _parse_version(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        raise ValidationError(f"version {version!r}", ["it is not a valid version"]) from None


def _optimized_variant(filename: str) -> str | None:
    """Return the name of the mirror's optimized variant of a wheel (None for an sdist)."""
    if not filename.endswith(".whl"):
        return None
    try:
        variant = optimized_filename(filename)
    except ValidationError:
        return None
    return None if variant == filename else variant


def _select(
    files: Iterable[WheelFile], project: str, version: str, filename: str | None
) -> list[str]:
    """Return the names of the version's files (or the one named, with its variant).

    Raises:
        ValidationError: a version that does not parse.
        NotFoundError: nothing matches.
    """
    wanted = _parse_version(version)
    names = [item.filename for item in files if _parse_version(item.version) == wanted]
    if filename is not None:
        if filename not in names:
            raise NotFoundError(
                f"{project} {version} has no file {filename!r}",
                hint=f"its files: {', '.join(names) or 'none'}",
            )
        variant = _optimized_variant(filename)
        names = [filename] + ([variant] if variant in names else [])
    if not names:
        raise NotFoundError(
            f"{project} has no published version {version}",
            hint="see the project's page under /simple/",
        )
    return names


def set_yanked(
    repository: DistributionRepository,
    project: str,
    version: str,
    *,
    yanked: bool,
    reason: str = "",
    filename: str | None = None,
) -> ReleaseChange:
    """Yank (or unyank) every file of ``project`` ``version``, or only ``filename``.

    Raises:
        ValidationError: a bad version. NotFoundError: no such project, version or file.
    """
    project = canonicalize_name(project)
    with repository.lock():
        names = _select(repository.listing.scan(project).files, project, version, filename)
        marks = repository.marks.load(project)
        for name in names:
            if yanked:
                marks[name] = reason
            else:
                marks.pop(name, None)
        repository.marks.save(project, marks)
        repository.relist(project)
    return ReleaseChange(
        action="yank" if yanked else "unyank",
        project=project,
        version=version,
        files=tuple(names),
        reason=reason if yanked else None,
    )


def delete_files(
    repository: DistributionRepository, project: str, version: str, *, filename: str | None = None
) -> ReleaseChange:
    """Delete every file of ``project`` ``version`` (or only ``filename``) and what goes with it.

    Raises:
        ValidationError: a bad version. NotFoundError: no such project, version or file.
    """
    project = canonicalize_name(project)
    folder = repository.files / project
    with repository.lock():
        files = repository.listing.scan(project).files
        names = _select(files, project, version, filename)
        repository.listing.write_pages(
            project, tuple(item for item in files if item.filename not in names)
        )
        for name in names:
            for suffix in ("", ".metadata", STORED_SUFFIX):
                (folder / f"{name}{suffix}").unlink(missing_ok=True)
        marks = repository.marks.load(project)
        repository.marks.save(
            project, {key: value for key, value in marks.items() if key not in names}
        )
        repository.relist(project)
    return ReleaseChange(action="delete", project=project, version=version, files=tuple(names))
