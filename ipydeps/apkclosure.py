"""What ``apk add`` will really add: the dependency closure of the planned apks (pure).

The planner picks apks by Python project, but apk installs every ``D:`` dependency of
those apks that its database does not already satisfy: ``py3-pandas`` pulls
``py3-numpy`` even when a wheel of NumPy sits in the kernel's venv, and a binary apk can
pull ``openblas`` or ``libgfortran``. This module resolves that closure the way apk does,
from our APKINDEX records and apk's installed database, so the plan shows it.

- ``InstalledApks``: what ``/lib/apk/db/installed`` says is installed (names, provides).
- ``parse_installed_db(text) -> InstalledApks``: read that file's text (no I/O here).
- ``resolve_apks(requested, records, installed) -> ApkResolution``: the packages apk adds
  besides the requested ones (``ApkAddition``) and the versioned provides two of them
  share (``ApkConflict``: apk would refuse the transaction).
- ``apk_closure(requested, records, installed) -> tuple[ApkAddition, ...]``: the additions.

Resolution follows apk 2.x closely enough for a plan: a name is satisfied by an installed
package or provide, else by the highest matching version in the index, else by the best
versioned provide (``so:libfoo.so.1=1``, ``py3.12:numpy=...``; unversioned provides only
with a provider priority, as in apk). Conflicts (``!name``) are not planned around: apk
reports them. ``install_if`` packages whose conditions all hold are added, as apk adds them.
A dependency our index cannot satisfy (``python3``, ``so:libc.musl-x86_64.so.1`` on a
fresh root, Alpine's ``openblas``) comes from the system's other repositories: it is
listed with ``record`` None, since only apk knows which package and version it will be.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from .formats.apkversion import (
    ApkDependency,
    ApkVersionError,
    compare_apk_versions,
)

if TYPE_CHECKING:
    from .formats.apkindex import ApkIndexRecord


def _provide(token: str) -> tuple[str, str]:
    """``so:libfoo.so.1=1`` -> (``so:libfoo.so.1``, ``1``); an unversioned provide has ``""``."""
    name, _, version = token.partition("=")
    return name, version


@dataclass(frozen=True)
class InstalledApks:
    """apk's installed database: package name -> version, provided name -> versions."""

    packages: Mapping[str, str] = field(default_factory=dict)
    provides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Freeze the mappings."""
        object.__setattr__(self, "packages", MappingProxyType(dict(self.packages)))
        object.__setattr__(self, "provides", MappingProxyType(dict(self.provides)))

    def satisfies(self, dependency: ApkDependency) -> bool:
        """Whether something installed already satisfies ``dependency``."""
        version = self.packages.get(dependency.name)
        if version is not None and dependency.matches(version):
            return True
        return any(dependency.matches(v) for v in self.provides.get(dependency.name, ()))


def parse_installed_db(text: str) -> InstalledApks:
    """Read ``lib/apk/db/installed`` text: records of ``P:``, ``V:``, ``p:`` (others ignored)."""
    packages: dict[str, str] = {}
    provides: dict[str, list[str]] = {}
    name = version = ""
    provided: list[str] = []
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if name:
                packages[name] = version
                for token in provided:
                    provided_name, provided_version = _provide(token)
                    provides.setdefault(provided_name, []).append(provided_version)
            name, version, provided = "", "", []
        elif line.startswith("P:"):
            name = line[2:].strip()
        elif line.startswith("V:"):
            version = line[2:].strip()
        elif line.startswith("p:"):
            provided = line[2:].split()
    return InstalledApks(packages, {key: tuple(value) for key, value in provides.items()})


@dataclass(frozen=True)
class ApkAddition:
    """A package apk will add: from our index (``record``), or unknown to us (``record`` None).

    ``needed_by`` names the package whose dependency (``dependency``) brings it in;
    ``location`` is the repository the record was read from (set by the planner).
    """

    dependency: str
    needed_by: str
    record: ApkIndexRecord | None = None
    location: str = ""

    @property
    def name(self) -> str:
        """The package name, or the dependency itself when only apk knows its provider."""
        return self.record.name if self.record is not None else self.dependency


def _newest_first(versions: Sequence[str]) -> list[int]:
    """Indexes of ``versions`` newest first in apk order (invalid versions keep their place)."""

    def compare(a: int, b: int) -> int:
        try:
            return compare_apk_versions(versions[b], versions[a])
        except ApkVersionError:
            return 0

    return sorted(range(len(versions)), key=functools.cmp_to_key(compare))


class _Closure:
    """One resolution: our index by name and by provided name, and what is chosen so far."""

    def __init__(self, records: Iterable[ApkIndexRecord], installed: InstalledApks) -> None:
        self.installed = installed
        self.by_name: dict[str, list[ApkIndexRecord]] = {}
        self.providers: dict[str, list[tuple[ApkIndexRecord, str]]] = {}
        for record in records:
            self.by_name.setdefault(record.name, []).append(record)
            for token in record.provides:
                name, version = _provide(token)
                self.providers.setdefault(name, []).append((record, version))
        for name, found in self.by_name.items():
            self.by_name[name] = [found[i] for i in _newest_first([r.version for r in found])]
        self.chosen: dict[str, ApkIndexRecord] = {}
        self.unknown: set[str] = set()
        self.added: dict[str, ApkAddition] = {}

    def choose(self, dependency: ApkDependency) -> ApkIndexRecord | None:
        """Return the record apk would pick: one of that name first, else the best provider."""
        for record in self.by_name.get(dependency.name, ()):
            if dependency.matches(record.version):
                return record
        offers = [
            (record, version)
            for record, version in self.providers.get(dependency.name, ())
            if (version and dependency.matches(version))
            or (not version and not dependency.op and record.provider_priority > 0)
        ]
        # Stable sorts, least significant first: package version, provided version, priority.
        ranked = [offers[i] for i in _newest_first([record.version for record, _ in offers])]
        ranked = [ranked[i] for i in _newest_first([version or "0" for _, version in ranked])]
        ranked.sort(key=lambda offer: -offer[0].provider_priority)
        return ranked[0][0] if ranked else None

    def chosen_satisfies(self, dependency: ApkDependency) -> bool:
        """Whether a package already chosen in this resolution satisfies ``dependency``."""
        for record in self.chosen.values():
            if record.name == dependency.name and dependency.matches(record.version):
                return True
            for token in record.provides:
                name, version = _provide(token)
                if name == dependency.name and (not dependency.op or dependency.matches(version)):
                    return True
        return False

    def visit(self, dependency: ApkDependency, parent: str, requested: frozenset[str]) -> None:
        """Choose a package for ``dependency`` and, depth first, for its dependencies."""
        if (
            dependency.conflict
            or dependency.name in self.unknown
            or self.installed.satisfies(dependency)
            or self.chosen_satisfies(dependency)
        ):
            return
        record = self.choose(dependency)
        if record is None:
            self.unknown.add(dependency.name)
            if dependency.name not in requested:
                self.added[dependency.name] = ApkAddition(str(dependency), parent)
            return
        self.chosen[record.name] = record
        for token in record.depends:
            child = ApkDependency.parse(token)
            if child is not None:
                self.visit(child, record.name, requested)
        if record.name not in requested:
            self.added[record.name] = ApkAddition(str(dependency), parent, record)

    def holds(self, condition: ApkDependency | None) -> bool:
        """Whether an ``install_if`` condition holds once the chosen packages are in."""
        return condition is not None and (
            self.installed.satisfies(condition) or self.chosen_satisfies(condition)
        )

    def add_install_if(self, requested: frozenset[str]) -> None:
        """Add packages whose ``install_if`` conditions all hold, as apk does, until none."""
        while True:
            before = len(self.chosen)
            for candidates in self.by_name.values():
                record = candidates[0]
                if (
                    not record.install_if
                    or record.name in self.chosen
                    or record.name in self.installed.packages
                ):
                    continue
                conditions = [ApkDependency.parse(token) for token in record.install_if]
                if all(self.holds(condition) for condition in conditions):
                    trigger = next(
                        (c.name for c in conditions if c is not None and c.name in self.chosen),
                        record.install_if[0],
                    )
                    self.visit(ApkDependency(record.name), trigger, requested)
            if len(self.chosen) == before:
                return


@dataclass(frozen=True)
class ApkConflict:
    """Two packages of one ``apk add`` (by name order) that provide a name with a version.

    apk installs one provider of a name only, so it refuses the whole transaction
    ("conflicts: py3-pandas[so:libgcc_s-0cd532bd.so.1=1]"): apks wrapped before
    ``ipydeps-repo wrap`` stopped providing the libraries auditwheel bundles did this.
    """

    provided: str
    first: str
    second: str


@dataclass(frozen=True)
class ApkResolution:
    """What ``apk add`` of the planned apks does: ``additions`` besides them, ``conflicts``."""

    additions: tuple[ApkAddition, ...]
    conflicts: tuple[ApkConflict, ...]


def _conflicts(chosen: Iterable[ApkIndexRecord]) -> tuple[ApkConflict, ...]:
    providers: dict[str, str] = {}
    found: list[ApkConflict] = []
    for record in chosen:
        for token in record.provides:
            name, version = _provide(token)
            if not version:
                continue  # an unversioned provide is virtual: any number may offer it
            first = providers.setdefault(name, record.name)
            if first != record.name:
                found.append(ApkConflict(name, *sorted((first, record.name))))
    return tuple(found)


def resolve_apks(
    requested: Sequence[tuple[str, str]],
    records: Iterable[ApkIndexRecord],
    installed: InstalledApks,
) -> ApkResolution:
    """Resolve ``apk add name=version...`` as apk would: what it adds, what it would refuse.

    ``requested`` is the planned ``(apk name, version)`` pairs; ``records`` our index;
    ``installed`` apk's database. Additions leave out packages already installed or among
    ``requested``, and anything reached only through a conflict (``!name``); they come
    dependencies first.
    """
    closure = _Closure(records, installed)
    names = frozenset(name for name, _ in requested)
    for name, version in requested:
        closure.visit(ApkDependency(name, "=" if version else "", version), "", names)
    closure.add_install_if(names)
    return ApkResolution(tuple(closure.added.values()), _conflicts(closure.chosen.values()))


def apk_closure(
    requested: Sequence[tuple[str, str]],
    records: Iterable[ApkIndexRecord],
    installed: InstalledApks,
) -> tuple[ApkAddition, ...]:
    """Return every package ``apk add name=version...`` adds besides ``requested`` (see above)."""
    return resolve_apks(requested, records, installed).additions
