"""Content-addressed build state: build keys and the farm-state.json record of finished builds."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

STATE_FILE = "farm-state.json"


def build_key(*, recipe_text: str, source_sha256: str, target: str, builder_version: str) -> str:
    """Return the build key: sha256 over everything that decides what a build produces.

    Same recipe text, same source bytes, same target and same builder: same artifacts, so
    the build is skipped. Any change to one of them means a new key and a rebuild.
    """
    digest = hashlib.sha256()
    for part in (recipe_text, source_sha256, target, builder_version):
        encoded = part.encode("utf-8")
        # Length-prefixed, so ("ab", "c") and ("a", "bc") never collide.
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """One file a build produced, kept in the cache under its build key."""

    filename: str
    sha256: str
    size: int
    kind: Literal["wheel", "apk"]
    needed_libraries: tuple[str, ...] = ()
    platform_tag: str = ""


@dataclass(frozen=True)
class BuildRecord:
    """A finished build: what was built, from which version, and what it produced."""

    key: str
    recipe: str
    target: str
    version: str
    duration_seconds: float
    artifacts: tuple[Artifact, ...]


class FarmState:
    """The set of finished builds, persisted as ``<cache>/farm-state.json`` (atomic writes)."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.path = cache_dir / STATE_FILE
        self._builds: dict[str, BuildRecord] = {}
        self._published: dict[str, list[str]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        for key, entry in data.get("builds", {}).items():
            artifacts = tuple(
                Artifact(**{**a, "needed_libraries": tuple(a.get("needed_libraries", ()))})
                for a in entry.pop("artifacts", [])
            )
            self._builds.setdefault(key, BuildRecord(**entry, artifacts=artifacts))
        for destination, markers in data.get("published", {}).items():
            entries = self._published.setdefault(destination, [])
            entries.extend(m for m in markers if m not in entries)

    def artifact_dir(self, key: str) -> Path:
        """Return the cache folder that holds a build's artifacts."""
        return self.cache_dir / "artifacts" / key

    def finished(self, key: str) -> BuildRecord | None:
        """Return the record of a finished build whose artifacts are all still in the cache."""
        record = self._builds.get(key)
        if record is None:
            return None
        folder = self.artifact_dir(key)
        for artifact in record.artifacts:
            path = folder / artifact.filename
            if not path.is_file() or path.stat().st_size != artifact.size:
                return None
        return record

    def record(self, build: BuildRecord) -> None:
        """Remember a finished build and save the state."""
        self._builds[build.key] = build
        self._save()

    def is_published(self, destination: str, artifact: Artifact) -> bool:
        """Return whether this exact file (by sha256) was already published to ``destination``."""
        return f"{artifact.filename}@{artifact.sha256}" in self._published.get(destination, [])

    def mark_published(self, destination: str, artifact: Artifact) -> None:
        """Remember that ``artifact`` is published at ``destination`` and save the state."""
        entries = self._published.setdefault(destination, [])
        marker = f"{artifact.filename}@{artifact.sha256}"
        if marker not in entries:
            entries.append(marker)
            self._save()

    def _save(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Two farm runs may share a cache (two targets, two maintainers): under the lock,
        # merge what the other run recorded since we loaded, so neither loses builds.
        with (self.cache_dir / ".farm-state.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._load()
            data: dict[str, Any] = {
                "builds": {key: asdict(build) for key, build in sorted(self._builds.items())},
                "published": self._published,
            }
            handle, temp = tempfile.mkstemp(dir=self.cache_dir, prefix=".farm-state.")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2, sort_keys=True)
                out.write("\n")
            os.replace(temp, self.path)
