"""Source distributions in the tree: publish one beside the project's wheels.

An sdist is listed on the same simple pages as the wheels, with its sha256 and its
Requires-Python, but with no PEP 658 metadata (an sdist's PKG-INFO need not match what
a build produces) and no stored copy (those are for wheels only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..fileops import PublishResult
from ..validation.sdist import inspect_sdist
from .distributions import place_in_release

if TYPE_CHECKING:
    from .store import Store


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
    facts = inspect_sdist(temp, filename, store.inflate_limits)
    return place_in_release(
        store, temp, filename, digest, size, kind="sdist", project=facts.project,
        version=facts.version, force=force, extend_release=extend_release,
    )
