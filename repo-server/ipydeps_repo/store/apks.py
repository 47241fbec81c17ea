"""Apks in the tree: publish one (verified, named from its content) and re-sign APKINDEX files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..fileops import PublishResult, write_atomic
from ..validation.names import check_target
from .signing import load_signing_key, trusted_public_keys

if TYPE_CHECKING:
    from ipydeps.apkindex import ApkIndexRecord

    from ..apk.keys import SigningKey
    from .store import Store

INDEX_NAME = "APKINDEX.tar.gz"


def apk_directories(store: Store) -> list[Path]:
    """Return every ``alpine/<branch>/<repo>/<arch>/`` directory of the tree."""
    alpine = store.layout.tree / "alpine"
    return sorted(
        path
        for path in alpine.glob("*/*/*")
        if path.is_dir() and not any(part.startswith(".") for part in path.parts[-3:])
    )


def apk_listing(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Return the apks of every ``<branch>/<repo>/<arch>`` target, with name and version."""
    listing: dict[str, list[dict[str, Any]]] = {}
    for directory in apk_directories(store):
        target = str(directory.relative_to(store.layout.tree / "alpine"))
        cache = _load_cache(_cache_path(store, directory))
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
    """Verify one staged apk and publish it to ``alpine/<branch>/<repo>/<arch>/``.

    The apk must be signed by a trusted key (the repository's own, or one in
    ``<data>/trusted-keys``), pass every format check, and be named
    ``<pkgname>-<pkgver>.apk`` after its .PKGINFO. Its architecture comes from .PKGINFO;
    ``arch`` is only needed (and only allowed to differ) for noarch packages.

    Raises:
        SignatureError, ApkFormatError: the package fails verification.
        ValidationError: the name does not match the content, or a bad target.
        ConflictError: a different file of that name exists and ``force`` is false.
        ConfigurationError: the repository has no signing key for the index.
    """
    from ..apk.index import index_record
    from ..apk.verify import verify_apk

    subject = f"apk {filename!r}"
    package = verify_apk(temp.read_bytes(), trusted_public_keys(store.layout), subject=subject)
    problems = []
    if package.filename != filename:
        problems.append(f"the package inside is {package.filename} (name-version from .PKGINFO)")
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
    key = load_signing_key(store.layout)  # before anything moves: no key, nothing visible
    directory = store.layout.tree / "alpine" / branch / repo / target_arch
    target = directory / filename
    with store.lock():
        status = store.claim(target, digest, force=force)
        if status != "unchanged":
            store.place(temp, target)
        regenerate_apk_index(store, directory, key=key, known={filename: index_record(package)})
    return PublishResult(
        kind="apk",
        filename=filename,
        path=f"alpine/{branch}/{repo}/{target_arch}/{filename}",
        sha256=digest,
        size=size,
        status=status,
        name=package.info.pkgname,
        version=package.info.pkgver,
    )


def _cache_path(store: Store, directory: Path) -> Path:
    relative = directory.relative_to(store.layout.tree / "alpine")
    return store.layout.cache / "apk" / relative.parent / f"{relative.name}.json"


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _cached_record(entry: dict[str, Any]) -> ApkIndexRecord:
    from ipydeps.apkindex import ApkIndexRecord

    fields = dict(entry["record"])
    for name in ("depends", "provides", "install_if"):
        fields[name] = tuple(fields.get(name, ()))
    return ApkIndexRecord(**fields)


def scan_apks(
    store: Store,
    directory: Path,
    *,
    rehash: bool = False,
    skipped: list[str] | None = None,
    known: dict[str, ApkIndexRecord] | None = None,
) -> list[ApkIndexRecord]:
    """Return the index records of every apk in ``directory``, reusing cached records.

    A file not in the cache (or changed since) is verified again like an upload, against
    the trusted keys, so a file dropped into the tree by hand cannot slip into the index;
    one that fails is left out and described in ``skipped``. A cached record counts only
    while the file's size and mtime are unchanged, so the cache
    (``<state>/cache/apk/...``) can always be rebuilt from the tree. ``known`` holds
    records of files verified just now (the upload being published).
    """
    from ..apk.index import index_record
    from ..apk.verify import verify_apk

    cache_path = _cache_path(store, directory)
    cache = {} if rehash else _load_cache(cache_path)
    trusted = trusted_public_keys(store.layout)
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
                    skipped.append(f"{path.relative_to(store.layout.tree)}: {error.message}")
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


def regenerate_apk_index(
    store: Store,
    directory: Path,
    *,
    key: SigningKey | None = None,
    rehash: bool = False,
    skipped: list[str] | None = None,
    known: dict[str, ApkIndexRecord] | None = None,
) -> None:
    """Rebuild and sign ``directory/APKINDEX.tar.gz`` (the caller holds the publish lock).

    Raises:
        ConfigurationError: no signing key.
        ApkFormatError: a stored package is unreadable or of another architecture.
    """
    from ..apk.index import build_index

    signing_key = key or load_signing_key(store.layout)
    records = scan_apks(store, directory, rehash=rehash, skipped=skipped, known=known)
    branch, repo, arch = directory.parts[-3:]
    index = build_index(records, signing_key, arch=arch, description=f"ipydeps {branch}/{repo}")
    write_atomic(directory / INDEX_NAME, index)
