"""Source distributions in the tree: publish one beside the project's wheels.

An sdist is listed on the same simple pages as the wheels, with its sha256 and its
Requires-Python, but with no PEP 658 metadata (an sdist's PKG-INFO need not match what
a build produces) and no stored copy (those are for wheels only).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from .fileops import PublishResult
from .sdist_validation import inspect_sdist
from .wheel_repository import check_release_closed, regenerate_project

if TYPE_CHECKING:
    from .storage import Store

logger = logging.getLogger(__name__)


def publish_sdist(
    store: Store,
    temp: Path,
    filename: str,
    digest: str,
    size: int,
    *,
    force: bool,
    extend_release: bool = False,
) -> PublishResult:
    """Validate a staged sdist and publish it to ``files/<project>/``.

    A release that has files is immutable as for wheels: a new sdist for it needs
    ``extend_release`` (``pip download --no-binary`` would otherwise take a file that a
    token without the force scope slipped into a published release).

    Raises:
        ValidationError: the sdist is invalid (nothing is published).
        ConflictError: a different file of that name exists and ``force`` is false, or
            the release has other files and ``extend_release`` is false.
    """
    facts = inspect_sdist(temp, filename)
    folder = store.layout.tree / "files" / facts.project
    target = folder / filename
    warnings: list[str] = []
    with store.lock():
        status = store.claim(target, digest, force=force)
        if status == "created" and not extend_release:
            check_release_closed(folder, facts.project, facts.version)
        if status != "unchanged":
            store.place(temp, target)
        regenerate_project(store, facts.project, warnings=warnings)
    for warning in warnings:
        logger.warning("%s", warning)
    return PublishResult(
        kind="sdist",
        filename=filename,
        path=f"files/{facts.project}/{filename}",
        sha256=digest,
        size=size,
        status=status,
        name=facts.project,
        version=facts.version,
        warnings=tuple(warnings),
    )
