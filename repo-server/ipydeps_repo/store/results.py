"""What the store hands back: a staged upload (hashed once) and the result of one publish."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

DistributionKind = Literal["wheel", "sdist", "apk"]


class PublishStatus(StrEnum):
    """What publishing a file did to the name it was published under."""

    CREATED = "created"
    UNCHANGED = "unchanged"  # the same bytes were there already
    REPLACED = "replaced"  # different bytes were there, and force replaced them


@dataclass(frozen=True)
class Staged:
    """An upload in the store's temp area, hashed once (while it arrived, or while copied).

    ``filename`` is the name it is published under; ``sha256`` and ``size`` describe ``path``.
    """

    path: Path
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class PublishResult:
    """What publishing one file did.

    ``warnings`` describes what went wrong without stopping the publish, e.g. a wheel's
    stored copy that could not be written.
    """

    kind: DistributionKind
    filename: str
    path: str
    sha256: str
    size: int
    status: PublishStatus
    name: str
    version: str
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict (the upload API's response body)."""
        return {**asdict(self), "status": str(self.status), "warnings": list(self.warnings)}
