"""Apks in the tree: publish one (verified, named from its content) and re-sign APKINDEX files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .storage import PublishResult, Store


def apk_directories(store: Store) -> list[Path]:
    """Return every ``alpine/<branch>/<repo>/<arch>/`` directory of the tree."""
    alpine = store.layout.tree / "alpine"
    return sorted(
        path for path in alpine.glob("*/*/*") if path.is_dir() and not path.name.startswith(".")
    )


def regenerate_apk_index(store: Store, directory: Path) -> None:
    """Rebuild and sign ``directory/APKINDEX.tar.gz`` (caller holds the lock)."""
    raise ConfigurationError("apk indexing is not available yet")


def publish_apk(
    store: Store,
    temp: Path,
    filename: str,
    digest: str,
    size: int,
    *,
    branch: str,
    repo: str,
    arch: str | None,
    force: bool,
) -> PublishResult:
    """Verify and publish one apk."""
    raise ConfigurationError("apk publishing is not available yet")
