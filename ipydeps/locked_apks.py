"""The apks of a notebook's lock: checked against our APKINDEX, then plan steps for ``apk add``.

A lock names each apk with the version and the APKINDEX checksum (``C:``) it had when the
notebook installed it (lockfile.py ``LockedApk``). A restore reads our apk repository's
index (``ApkRepositorySource``; apk itself verifies the index's signature and every
package against it when it installs), and goes ahead only when every locked apk is there
at its locked version with its locked checksum. Otherwise nothing is installed: the
caller raises before any download. ``plan_locked_apks`` is pure; ``read_locked_apks``
reads the index for it, and ``locked_apk_runner`` decides whether apk can run here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .index import apk_candidates
from .installers.apk import ApkRunner, SystemApkRunner
from .locked import LockMismatchError
from .lockfile import LockedApk
from .models import Candidate, Route, Step, StepAction

if TYPE_CHECKING:
    from .apkclosure import InstalledApks
    from .environment import Environment
    from .formats.apkindex import ApkIndexRecord
    from .protocols import Fetcher
    from .settings import Settings

__all__ = ["LockedApkPlan", "locked_apk_runner", "plan_locked_apks", "read_locked_apks"]

_HINT = "run the notebook's install cells again: they install what it needs and update its lock"


@dataclass(frozen=True)
class LockedApkPlan:
    """The ``apk add`` steps of a restore, and the Python projects the locked apks carry.

    ``provided`` counts as installed when the lock's wheels are planned: a wheel that
    needs NumPy is satisfied by the locked ``py3-numpy`` the same run installs.
    """

    steps: tuple[Step, ...]
    provided: Mapping[NormalizedName, Version]


def plan_locked_apks(
    apks: Sequence[LockedApk],
    records: Iterable[ApkIndexRecord],
    *,
    repository_url: str,
    arch: str,
    installed: InstalledApks,
    apk_map: Mapping[str, str],
) -> LockedApkPlan:
    """Return the steps that install exactly ``apks`` (those not installed at that version).

    ``records`` is our APKINDEX for ``arch``, read from ``repository_url``. Raises
    ``LockMismatchError`` naming every locked apk the index lacks at its version, or has
    with another checksum.
    """
    by_key = {(record.name, record.version): record for record in records}
    problems: list[str] = []
    steps: list[Step] = []
    provided: dict[NormalizedName, Version] = {}
    for apk in apks:
        record = by_key.get((apk.name, apk.version))
        if record is None:
            problems.append(f"{apk.name} {apk.version}: {repository_url} has no such apk")
            continue
        if record.checksum != apk.checksum:
            problems.append(
                f"{apk.name} {apk.version}: {repository_url} has it with checksum "
                f"{record.checksum}, not the locked {apk.checksum}"
            )
            continue
        found = apk_candidates([record], repository_url=repository_url, apk_map=apk_map, arch=arch)
        if found:  # the apk carries a Python project
            candidate = found[0]
            provided[candidate.name] = candidate.version
        else:
            candidate = _library_candidate(record, repository_url=repository_url, arch=arch)
        if installed.packages.get(apk.name) != apk.version:
            steps.append(Step(candidate, StepAction.INSTALL, "locked"))
    if problems:
        raise LockMismatchError("; ".join(problems), hint=_HINT)
    return LockedApkPlan(tuple(steps), provided)


def _library_candidate(record: ApkIndexRecord, *, repository_url: str, arch: str) -> Candidate:
    """Name an apk of no Python project (a library apk pulled in for one) as itself."""
    try:
        version = Version(record.version.rsplit("-r", 1)[0])
    except InvalidVersion:
        version = Version("0")
    return Candidate(
        name=canonicalize_name(record.name),
        version=version,
        route=Route.APK,
        url=f"{repository_url.rstrip('/')}/{arch}/{record.filename}",
        filename=record.filename,
        size=record.size or None,
        apk_name=record.name,
        apk_version=record.version,
        apk_checksum=record.checksum,
        apk_installed_size=record.installed_size or None,
    )


def locked_apk_runner(
    apks: Sequence[LockedApk],
    settings: Settings,
    environment: Environment,
    runner: ApkRunner | None,
) -> ApkRunner | None:
    """Return the runner for a lock's apks (None: it names none); refuse where apk cannot run."""
    if not apks:
        return None
    named = ", ".join(f"{apk.name} {apk.version}" for apk in apks)
    if not settings.apk_allowed:
        raise LockMismatchError(
            f'the lock names apks ({named}) but apk is turned off here (apk = "never")',
            hint='allow apk (apk = "auto") to restore this lock, or install the notebook\'s '
            "requirements again",
        )
    if runner is not None:
        return runner
    if not environment.apk_available:
        raise LockMismatchError(
            f"the lock names apks ({named}) but apk cannot run here "
            f"({environment.apk_reason or 'not usable'})",
            hint="restore it on the Alpine runtime, or install the notebook's requirements "
            "again here",
        )
    return SystemApkRunner()


def read_locked_apks(
    apks: Sequence[LockedApk],
    settings: Settings,
    fetcher: Fetcher,
    environment: Environment,
    arch: str,
) -> LockedApkPlan:
    """Read our APKINDEX for ``arch`` and return the steps of ``apks`` (``plan_locked_apks``)."""
    from .apkclosure import InstalledApks
    from .sources import ApkRepositorySource

    if not apks:
        return LockedApkPlan((), {})
    if not settings.repository_url:
        raise LockMismatchError(
            "the lock names apks but no repository is configured here to restore them from",
            hint="set repository_url (IPYDEPS_REPOSITORY_URL) to the repository the notebook used",
        )
    branch, _, repo = settings.apk_repository.partition("/")
    source = ApkRepositorySource(
        settings.repository_url, fetcher, branch=branch, repo=repo, arch=arch
    )
    return plan_locked_apks(
        apks,
        source.index_records(),
        repository_url=source.location,
        arch=arch,
        installed=environment.installed_apks or InstalledApks(),
        apk_map=settings.apk_map,
    )
