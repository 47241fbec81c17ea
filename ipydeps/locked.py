"""Package sources seen through a lock: only the files the lock lists, with their sha256.

Restoring a lock plans with the ordinary planner, but every source it reads is wrapped:
a project the lock does not name has no files, and of a locked project only the files
whose sha256 the lock lists are offered (another version, another build of the version,
or a file the repository now serves with other bytes is not there). A stored copy is kept
only when the lock lists its sha256 too; otherwise the wheel itself is fetched. The
planner and the installer then verify every byte against these sha256s as always.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from packaging.utils import NormalizedName

from .errors import IpydepsError
from .lockfile import NotebookLock
from .models import Candidate, Route
from .plan_model import Plan
from .sources import PackageSource

__all__ = ["LockMismatchError", "LockedSource", "LockedSources"]


class LockMismatchError(IpydepsError):
    """The repository cannot give what the lock lists: nothing was installed."""


class LockedSource:
    """One ``PackageSource`` that offers only what ``lock`` lists.

    ``withheld`` gathers, per project it offered nothing of, why (shared by the sources
    of one restore, to explain a plan that cannot be met).
    """

    def __init__(self, lock: NotebookLock, inner: PackageSource, withheld: dict[str, str]) -> None:
        self.lock = lock
        self.inner = inner
        self.withheld = withheld

    @property
    def route(self) -> Route:
        """The wrapped source's route."""
        return self.inner.route

    @property
    def location(self) -> str:
        """The wrapped source's location."""
        return self.inner.location

    def candidates(self, name: NormalizedName) -> Sequence[Candidate]:
        """Return the wrapped source's files of ``name`` that the lock lists, by sha256."""
        package = self.lock.package(name)
        if package is None:
            self.withheld[name] = (
                "the lock does not name it (it was installed before this notebook asked for it?)"
            )
            return []
        wheels = {item.sha256 for item in package.wheels}
        copies = {item.sha256 for item in package.stored}
        offered = []
        same_version = [
            candidate
            for candidate in self.inner.candidates(name)
            if str(candidate.version) == package.version
        ]
        for candidate in same_version:
            if candidate.sha256 is None or candidate.sha256.lower() not in wheels:
                continue
            stored = candidate.stored
            if stored is not None and stored.sha256.lower() not in copies:
                candidate = dataclasses.replace(candidate, stored=None)
            offered.append(candidate)
        if not offered:
            locked = ", ".join(item.filename for item in package.wheels)
            self.withheld[name] = (
                f"{self.inner.location} has no file of {name} {package.version} with the sha256 "
                f"the lock names for {locked}"
                if same_version
                else f"{self.inner.location} has no {name} {package.version}"
            )
        return offered

    def requires_dist(self, candidate: Candidate) -> tuple[str, ...]:
        """Return the wrapped source's answer."""
        return self.inner.requires_dist(candidate)


class LockedSources:
    """Every source of a restore, each wrapped in a ``LockedSource``."""

    def __init__(self, lock: NotebookLock, sources: Sequence[PackageSource]) -> None:
        self.withheld: dict[str, str] = {}
        self.sources: list[PackageSource] = [
            LockedSource(lock, inner, self.withheld) for inner in sources
        ]

    def raise_for(self, plan: Plan) -> None:
        """Raise ``LockMismatchError`` saying why the lock cannot be met, if it cannot."""
        if plan.ok:
            return
        reasons = [f"{name}: {reason}" for name, reason in self.withheld.items()] or [
            f"{item.text}: {item.reason}" for item in plan.unsatisfiable
        ]
        raise LockMismatchError(
            "; ".join(reasons),
            hint="run the notebook's install cells again: they install what it needs and "
            "update its lock",
        )
