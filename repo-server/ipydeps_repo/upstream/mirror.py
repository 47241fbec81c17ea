"""Seed the store from an upstream index: requirements plus their dependency closure, as wheels.

``ipydeps-repo mirror numpy scipy pandas --data DIR`` runs real pip twice (see
``upstream_pip.py``): once to resolve and once to download just the wheels the store does
not have yet, pinned by the sha256 the resolution reported. Each wheel is published as
upstream made it: same bytes, same file name, same sha256 and upstream's PEP 700 upload time
(read from upstream's JSON pages, ``upstream_times.py``), so lock files and
``--require-hashes`` made against upstream install from the mirror, and ``--exclude-newer``
means the same. Beside it goes the optimized variant (``optimize.py``) under a build-tagged
name, ``<name>-<version>-1ipydeps-<tags>.whl``, which pip, uv and ipydeps prefer when no
hash pins the file. Everything goes through ``Store.publish``, so indexes are regenerated
and nothing is ever half-visible.

Optimizing is on by default (``--no-optimize`` publishes upstream's files only): on numpy,
scipy and pandas it cut the CPU time of installing plus first import by 40 to 50 % for pip,
uv and ipydeps alike, at the same download size (bench/README.md has the figures).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from ..errors import UpstreamError, ValidationError
from ..fileops import sha256_file
from ..net.client import without_credentials
from ..store.results import PublishResult, Staged
from ..store.store import Store
from ..store.variants import optimized_filename
from ..validation.names import canonical_wheel_filename
from .optimize import Compression, OptimizeOptions, optimize_wheel, optimized_source_sha256
from .pip import Target, UpstreamWheel, download, pip_environment, resolve
from .times import upload_times

__all__ = ["MirrorSummary", "Target", "UpstreamError", "UpstreamWheel", "mirror"]

DEFAULT_INDEX_URL = "https://pypi.org/simple"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class MirrorSummary:
    """What one mirror run did."""

    resolved: tuple[UpstreamWheel, ...]
    published: tuple[str, ...]
    present: tuple[str, ...]
    kept: tuple[str, ...]
    downloaded_bytes: int
    published_bytes: int
    seconds: float


def parse_requirements(texts: Sequence[str]) -> list[Requirement]:
    """Parse PEP 508 strings; direct URLs are refused (the mirror pins by index hash).

    Raises ``ValidationError`` listing every bad string; nothing has run then.
    """
    problems: list[str] = []
    parsed: list[Requirement] = []
    for text in texts:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            # packaging's message carries a caret diagram on later lines; the first says why.
            problems.append(f"{text!r}: {str(error).splitlines()[0]}")
            continue
        if requirement.url:
            problems.append(f"{text!r}: direct URLs cannot be mirrored, name a project")
        parsed.append(requirement)
    if not texts:
        problems.append("no requirement given")
    if problems:
        raise ValidationError(
            "the requirement list",
            problems,
            hint="use PEP 508 strings such as 'numpy' or 'scipy>=1.13'",
        )
    return parsed


@dataclass(frozen=True)
class _Import:
    """What one resolved wheel needs: its upstream file and/or its optimized variant."""

    wheel: UpstreamWheel
    # Upstream's file name as the store spells it (``canonical_wheel_filename``).
    name: str
    # Upstream's bytes must be (re)published under that name.
    upstream: bool
    # Replace what the store has under upstream's name (an older mirror's optimized bytes).
    replace: bool
    # The optimized variant's name when it must be published, else None.
    variant: str | None


def _plan_import(
    wheel: UpstreamWheel, files: Path, *, optimize: bool, force: bool
) -> _Import | str | None:
    """Decide what ``wheel`` needs; None when the store has it all, a note when it is kept."""
    # Stored under the wheel spec's spelling (PyYAML-6.0.2-... as pyyaml-6.0.2-...), as the
    # store wants; the bytes, and so the sha256 that lock files pin, are upstream's.
    name = canonical_wheel_filename(wheel.filename)
    path = files / wheel.project / name
    variant = optimized_filename(name)
    wants_variant = optimize and variant != name
    if force:
        return _Import(wheel, name, True, True, variant if wants_variant else None)
    missing_variant = wants_variant and not (files / wheel.project / variant).is_file()
    if not path.is_file():
        return _Import(wheel, name, True, False, variant if wants_variant else None)
    if sha256_file(path) == wheel.sha256:
        return _Import(wheel, name, False, False, variant) if missing_variant else None
    if optimized_source_sha256(path) == wheel.sha256:
        # An older mirror stored its optimized bytes under upstream's name: put upstream's
        # bytes back there; the optimized form moves to its build-tagged name.
        return _Import(wheel, name, True, True, variant if wants_variant else None)
    return f"{name}: kept the store's own file, which is not upstream's (--force replaces it)"


def _stage(store: Store, source: Path, upload_ns: int | None) -> Staged:
    """Copy ``source`` into the store's temp area with upstream's upload time as its mtime.

    The store lists a wheel's modification time as its PEP 700 ``upload-time``, and
    publishing renames the staged file into place, which keeps that time.
    """
    staged = store.stage(source)
    if upload_ns is not None:
        os.utime(staged.path, ns=(upload_ns, upload_ns))
    return staged


def _publish_staged(store: Store, staged: Staged, filename: str, *, force: bool) -> PublishResult:
    """Publish a staged copy under ``filename``; the mirror's files may extend a release."""
    return store.publish(
        staged.path, filename, sha256=staged.sha256, force=force, extend_release=True
    )


def _publish(
    store: Store,
    item: _Import,
    source: Path,
    upload_ns: int | None,
    options: OptimizeOptions,
    scratch: Path,
    *,
    force: bool,
) -> tuple[list[PublishResult], str]:
    """Publish what ``item`` needs from upstream's wheel ``source``; return results and a line.

    The variant goes first: a wheel listed beside its variant gets no stored copy, so
    upstream's file is never given one only to have it deleted a moment later.
    """
    results: list[PublishResult] = []
    line = f"{item.name} {source.stat().st_size / 1e6:.1f} MB"
    if not item.upstream and upload_ns is not None and source.stat().st_mtime_ns != upload_ns:
        # Mirrored before upload times were kept: give it upstream's time now; the
        # variant's publish below rewrites the project's pages.
        with store.lock():
            os.utime(source, ns=(upload_ns, upload_ns))
    if item.variant is not None:
        # Optimized from a copy under the store's spelling, so the variant is spelled so too.
        if source.name != item.name:
            (scratch / "renamed").mkdir(parents=True, exist_ok=True)
            renamed = scratch / "renamed" / item.name
            shutil.copyfile(source, renamed)
            source = renamed
        report = optimize_wheel(source, scratch, options)
        if report.already_optimized:
            line += ", optimized upstream already"
        else:
            # The variant joins upstream's release: the maintainer's own path may extend it.
            results.append(
                _publish_staged(
                    store, _stage(store, report.output, upload_ns), report.output.name, force=force
                )
            )
            line += (
                f" -> {report.output.name} {report.size_after / 1e6:.1f} MB "
                f"({report.compiled} pyc, {report.removed_files} test files dropped): "
                f"{results[-1].status}"
            )
    if item.upstream:
        results.append(
            _publish_staged(store, _stage(store, source, upload_ns), item.name, force=item.replace)
        )
        line += f"; {item.name}: {results[-1].status}"
    return results, line


def mirror(
    texts: Sequence[str],
    store: Store,
    *,
    target: Target | None = None,
    index_url: str = DEFAULT_INDEX_URL,
    optimize: bool = True,
    compression: Compression = "deflated",
    env: Mapping[str, str],
    force: bool = False,
    progress: Progress = lambda line: None,
) -> MirrorSummary:
    """Import the wheels of ``texts`` and their dependency closure for ``target`` into ``store``.

    Each wheel is published with upstream's bytes, file name and upload time; with
    ``optimize`` its optimized variant (``optimize.optimized_filename``) is published
    beside it. What the store already has is skipped (not even downloaded) unless
    ``force``; a store file of upstream's name that holds an older mirror's optimized
    bytes is replaced by upstream's, and any other file of that name is kept.
    ``env`` is the base environment for pip (pip settings are cleared).

    Raises:
        ValidationError: a bad requirement string (nothing ran) or an invalid upstream wheel.
        UpstreamError: pip could not resolve or download, or a page could not be read.
        ConflictError: a different file already has the optimized variant's name.
    """
    started = time.monotonic()
    target = target or Target()
    requirements = parse_requirements(texts)
    pip_env = pip_environment(env)
    files = store.layout.tree / "files"
    with tempfile.TemporaryDirectory(prefix="mirror-", dir=store.layout.tmp) as scratch:
        workdir = Path(scratch)
        progress(
            f"resolving {', '.join(map(str, requirements))} for {target.describe()} "
            f"from {without_credentials(index_url)}"
        )
        wheels = resolve(
            requirements, target=target, index_url=index_url, env=pip_env, workdir=workdir
        )
        imports: list[_Import] = []
        present: list[str] = []
        kept: list[str] = []
        for wheel in wheels:
            decided = _plan_import(wheel, files, optimize=optimize, force=force)
            if decided is None:
                present.append(wheel.filename)
            elif isinstance(decided, str):
                kept.append(wheel.filename)
                progress(decided)
            else:
                imports.append(decided)
        progress(
            f"resolved {len(wheels)} wheel(s): {len(imports)} to import, "
            f"{len(present)} already in the store"
        )
        fetch = [item.wheel for item in imports if item.upstream]
        paths: dict[str, Path] = {}
        if fetch:
            progress(
                f"downloading {len(fetch)} wheel(s): "
                + ", ".join(f"{wheel.project} {wheel.version}" for wheel in fetch)
            )
            (workdir / "upstream").mkdir()
            downloaded_paths = download(
                fetch,
                target=target,
                index_url=index_url,
                env=pip_env,
                destination=workdir / "upstream",
            )
            paths = {path.name: path for path in downloaded_paths}
        downloaded = sum(path.stat().st_size for path in paths.values())
        times = upload_times(index_url, {item.wheel.project for item in imports}, env=pip_env)
        untimed = [item.wheel.filename for item in imports if item.wheel.filename not in times]
        if untimed:
            progress(
                f"upstream lists no upload time for {len(untimed)} wheel(s) (an HTML "
                "index?): they are listed with the time they were mirrored"
            )
        published: list[str] = []
        published_bytes = 0
        options = OptimizeOptions(target_python=target.python_version, compression=compression)
        for number, item in enumerate(imports, 1):
            wheel = item.wheel
            source = paths.get(wheel.filename, files / wheel.project / item.name)
            results, line = _publish(
                store,
                item,
                source,
                times.get(wheel.filename),
                options,
                workdir / "optimized",
                force=force,
            )
            published += [result.filename for result in results]
            published_bytes += sum(result.size for result in results)
            progress(f"[{number}/{len(imports)}] {line}")
    summary = MirrorSummary(
        resolved=tuple(wheels),
        published=tuple(published),
        present=tuple(present),
        kept=tuple(kept),
        downloaded_bytes=downloaded,
        published_bytes=published_bytes,
        seconds=time.monotonic() - started,
    )
    progress(
        f"mirrored {len(wheels)} wheel(s): {len(imports)} imported "
        f"({downloaded / 1e6:.1f} MB downloaded, {published_bytes / 1e6:.1f} MB published), "
        f"{len(present)} already present; {summary.seconds:.1f} s"
    )
    return summary
