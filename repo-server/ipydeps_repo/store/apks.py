"""Apks in ``alpine/<branch>/<repo>/<arch>/``: publish one, and re-sign its APKINDEX.

An apk is verified against the trusted keys and named from its content before it is placed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..fileops import write_atomic
from ..validation.names import check_target
from .claims import claim, place
from .layout import DataLayout
from .results import PublishResult, PublishStatus, Staged
from .signing import load_signing_key, trusted_public_keys

if TYPE_CHECKING:
    from ipydeps.formats.apkindex import ApkIndexRecord

    from ..apk.keys import SigningKey

INDEX_NAME = "APKINDEX.tar.gz"
Lock = Callable[[], AbstractContextManager[Any]]


class ApkRepository:
    """The apk directories of one data directory; ``lock`` is the store's publish lock."""

    def __init__(self, layout: DataLayout, *, lock: Lock) -> None:
        self.layout = layout
        self.alpine = layout.tree / "alpine"
        self.lock = lock

    def directories(self) -> list[Path]:
        """Return every ``alpine/<branch>/<repo>/<arch>/`` directory of the tree."""
        return sorted(
            path
            for path in self.alpine.glob("*/*/*")
            if path.is_dir() and not any(part.startswith(".") for part in path.parts[-3:])
        )

    def listing_json(self) -> dict[str, list[dict[str, Any]]]:
        """Return the apks of every ``<branch>/<repo>/<arch>`` target, with name and version."""
        listing: dict[str, list[dict[str, Any]]] = {}
        for directory in self.directories():
            target = str(directory.relative_to(self.alpine))
            cache = _load_cache(self._cache_path(directory))
            items = []
            for path in sorted(directory.glob("*.apk")):
                if path.name.startswith("."):
                    continue
                record = cache.get(path.name, {}).get("record", {})
                items.append(
                    {
                        "filename": path.name,
                        "name": record.get("name"),
                        "version": record.get("version"),
                        "size": path.stat().st_size,
                        "url": f"alpine/{target}/{path.name}",
                    }
                )
            listing[target] = items
        return listing

    def publish(
        self, staged: Staged, *, branch: str, repo: str, arch: str | None, force: bool
    ) -> PublishResult:
        """Verify one staged apk and publish it to ``alpine/<branch>/<repo>/<arch>/``.

        The apk must be signed by a trusted key (the repository's own, or one in
        ``<data>/trusted-keys``), pass every format check, and be named
        ``<pkgname>-<pkgver>.apk`` after its .PKGINFO. Its architecture comes from
        .PKGINFO; ``arch`` is only needed (and only allowed to differ) for noarch packages.

        Raises:
            SignatureError, ApkFormatError: the package fails verification.
            ValidationError: the name does not match the content, or a bad target.
            ConflictError: a different file of that name exists and ``force`` is false.
            ConfigurationError: the repository has no signing key for the index.
        """
        from ..apk.index import index_record
        from ..apk.verify import verify_apk

        filename = staged.filename
        subject = f"apk {filename!r}"
        package = verify_apk(
            staged.path.read_bytes(), trusted_public_keys(self.layout), subject=subject
        )
        problems = []
        if package.filename != filename:
            problems.append(
                f"the package inside is {package.filename} (name-version from .PKGINFO)"
            )
        package_arch = package.info.arch
        if package_arch == "noarch":
            target_arch = arch or "x86_64"
        else:
            target_arch = package_arch
            if arch and arch != package_arch:
                problems.append(f"the package is built for {package_arch}, not {arch}")
        if problems:
            raise ValidationError(subject, problems)
        check_target(branch, repo, target_arch)
        key = load_signing_key(self.layout)  # before anything moves: no key, nothing visible
        directory = self.alpine / branch / repo / target_arch
        target = directory / filename
        with self.lock():
            status = claim(target, staged.sha256, force=force)
            if status is not PublishStatus.UNCHANGED:
                place(staged.path, target)
            self.regenerate_index(directory, key=key, known={filename: index_record(package)})
        return PublishResult(
            kind="apk",
            filename=filename,
            path=f"alpine/{branch}/{repo}/{target_arch}/{filename}",
            sha256=staged.sha256,
            size=staged.size,
            status=status,
            name=package.info.pkgname,
            version=package.info.pkgver,
        )

    def _cache_path(self, directory: Path) -> Path:
        relative = directory.relative_to(self.alpine)
        return self.layout.cache / "apk" / relative.parent / f"{relative.name}.json"

    def scan(
        self,
        directory: Path,
        *,
        rehash: bool = False,
        skipped: list[str] | None = None,
        known: dict[str, ApkIndexRecord] | None = None,
    ) -> list[ApkIndexRecord]:
        """Return the index records of every apk in ``directory``, reusing cached records.

        A file not in the cache (or changed since) is verified again like an upload,
        against the trusted keys, so a file dropped into the tree by hand cannot slip into
        the index; one that fails is left out and described in ``skipped``. A cached
        record counts only while the file's size and mtime are unchanged, so the cache
        (``<state>/cache/apk/...``) can always be rebuilt from the tree. ``known`` holds
        records of files verified just now (the upload being published).
        """
        from ..apk.index import index_record
        from ..apk.verify import verify_apk

        cache_path = self._cache_path(directory)
        cache = {} if rehash else _load_cache(cache_path)
        trusted = trusted_public_keys(self.layout)
        fresh: dict[str, Any] = {}
        records = []
        for path in sorted(directory.glob("*.apk")):
            if path.name.startswith("."):
                continue
            stat = path.stat()
            entry = cache.get(path.name)
            if known and path.name in known:
                record = known[path.name]
            elif entry and (entry.get("size"), entry.get("mtime_ns")) == (
                stat.st_size,
                stat.st_mtime_ns,
            ):
                record = _cached_record(entry)
            else:
                try:
                    package = verify_apk(path.read_bytes(), trusted, subject=path.name)
                except ValidationError as error:
                    if skipped is not None:
                        skipped.append(f"{path.relative_to(self.layout.tree)}: {error.message}")
                    continue
                record = index_record(package)
            fresh[path.name] = {
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "record": dataclasses.asdict(record),
            }
            records.append(record)
        write_atomic(cache_path, json.dumps(fresh, indent=1).encode(), 0o600)
        return records

    def regenerate_index(
        self,
        directory: Path,
        *,
        key: SigningKey | None = None,
        rehash: bool = False,
        skipped: list[str] | None = None,
        known: dict[str, ApkIndexRecord] | None = None,
    ) -> None:
        """Rebuild and sign ``directory/APKINDEX.tar.gz`` (the caller holds the lock).

        Raises:
            ConfigurationError: no signing key.
            ApkFormatError: a stored package is unreadable or of another architecture.
        """
        from ..apk.index import build_index

        signing_key = key or load_signing_key(self.layout)
        records = self.scan(directory, rehash=rehash, skipped=skipped, known=known)
        branch, repo, arch = directory.parts[-3:]
        index = build_index(records, signing_key, arch=arch, description=f"ipydeps {branch}/{repo}")
        write_atomic(directory / INDEX_NAME, index)


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _cached_record(entry: dict[str, Any]) -> ApkIndexRecord:
    from ipydeps.formats.apkindex import ApkIndexRecord

    fields = dict(entry["record"])
    for name in ("depends", "provides", "install_if"):
        fields[name] = tuple(fields.get(name, ()))
    return ApkIndexRecord(**fields)
