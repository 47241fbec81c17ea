"""Where everything lives inside one data directory, and the store's default size limit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class DataLayout:
    """Where everything lives inside one data directory.

    ``tree`` is the public static tree (served as is, or synced to a CDN); ``state`` and
    ``keys`` are private: tokens, temporary uploads, locks, caches and the signing key.
    """

    root: Path

    @property
    def tree(self) -> Path:
        """The public tree: keys/, alpine/, simple/, files/."""
        return self.root / "tree"

    @property
    def keys(self) -> Path:
        """Private signing keys (mode 0600)."""
        return self.root / "keys"

    @property
    def trusted_keys(self) -> Path:
        """Public keys of other builders whose apks may be published here."""
        return self.root / "trusted-keys"

    @property
    def state(self) -> Path:
        """Private mutable state: tokens.json, tmp/, locks/, cache/."""
        return self.root / "state"

    @property
    def tmp(self) -> Path:
        """Temporary uploads; on the same filesystem as ``tree`` so renames are atomic."""
        return self.state / "tmp"

    @property
    def locks(self) -> Path:
        """Lock files (fcntl.flock), shared by every replica that mounts this directory."""
        return self.state / "locks"

    @property
    def cache(self) -> Path:
        """Per-project and per-arch caches of file facts, rebuilt by ``index``."""
        return self.state / "cache"

    @property
    def tokens_file(self) -> Path:
        """Hashed publish tokens."""
        return self.state / "tokens.json"

    @property
    def public_keys(self) -> Path:
        """The published public keys, ``<tree>/keys/<name>.rsa.pub``."""
        return self.tree / "keys"
