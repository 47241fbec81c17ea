"""Resolve apk dependencies from an APKINDEX the way ``apk add`` does, with our own reader.

A test's stand-in for the solver of a stock apk client, built on ``ipydeps.apkindex``
(the reader) and ``ipydeps.apkversion`` (its version rules): each dependency atom is
satisfied by a package of that name or by one that provides it (a versioned provide
satisfies version constraints, an unversioned one only a bare name), the newest candidate
wins, and the chosen set is checked for what makes apk refuse it:

- two packages owning one name: their own names, or the names of versioned provides
  (apk treats ``p:name=ver`` as the package's other name: only one owner may be installed);
- a ``!name`` dependency on a name that a chosen package owns or provides.

Atoms no package of the index satisfies are returned apart (``external``): the base system
(Alpine's main repository) would satisfy them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ipydeps.apkindex import ApkIndexRecord
from ipydeps.apkversion import apk_version_matches, compare_apk_versions

ATOM = re.compile(r"^(?P<neg>!?)(?P<name>[^<>=~]+)(?:(?P<op>[<>]?[=~]?|[<>])(?P<ver>.+))?$")


@dataclass(frozen=True)
class Resolution:
    """What apk would install, the atoms left to the base system, and why it would refuse."""

    chosen: dict[str, ApkIndexRecord]
    external: frozenset[str]
    conflicts: tuple[str, ...]


def _split(atom: str) -> tuple[bool, str, str, str]:
    match = ATOM.match(atom)
    if match is None:
        raise ValueError(f"not an apk dependency atom: {atom!r}")
    return bool(match["neg"]), match["name"], match["op"] or "", match["ver"] or ""


def _owned(record: ApkIndexRecord) -> set[str]:
    """The names a package owns: its own and those of its versioned provides."""
    return {record.name} | {p.split("=", 1)[0] for p in record.provides if "=" in p}


def _satisfies(record: ApkIndexRecord, name: str, op: str, version: str) -> bool:
    if record.name == name:
        return not op or apk_version_matches(record.version, op, version)
    for provide in record.provides:
        provided, _, provided_version = provide.partition("=")
        if provided != name:
            continue
        if not op:
            return True
        if provided_version and apk_version_matches(provided_version, op, version):
            return True
    return False


def resolve(records: Sequence[ApkIndexRecord], wanted: Iterable[str]) -> Resolution:
    """Choose packages for ``wanted`` atoms and their dependencies; report apk's refusals."""
    chosen: dict[str, ApkIndexRecord] = {}
    external: set[str] = set()
    forbidden: list[tuple[str, str]] = []  # (package that forbids, name)
    pending = [(atom, "world") for atom in wanted]
    while pending:
        atom, wanted_by = pending.pop(0)
        negated, name, op, version = _split(atom)
        if negated:
            forbidden.append((wanted_by, name))
            continue
        if any(_satisfies(record, name, op, version) for record in chosen.values()):
            continue
        candidates = [r for r in records if _satisfies(r, name, op, version)]
        if not candidates:
            external.add(atom)
            continue
        best = max(candidates, key=functools.cmp_to_key(functools.partial(_prefer, name=name)))
        chosen[best.name] = best
        pending.extend((dependency, best.name) for dependency in best.depends)
    return Resolution(chosen, frozenset(external), _conflicts(chosen, forbidden))


def _prefer(a: ApkIndexRecord, b: ApkIndexRecord, name: str) -> int:
    """apk's preference: the real name over a provider, then priority, then the newest."""
    key_a, key_b = (a.name == name, a.provider_priority), (b.name == name, b.provider_priority)
    if key_a != key_b:
        return 1 if key_a > key_b else -1
    return compare_apk_versions(a.version, b.version)


def _conflicts(chosen: dict[str, ApkIndexRecord],
               forbidden: list[tuple[str, str]]) -> tuple[str, ...]:
    conflicts = []
    owners: dict[str, str] = {}
    for record in chosen.values():
        for owned in sorted(_owned(record)):
            if owned in owners:
                conflicts.append(f"{record.name} and {owners[owned]} both own {owned}")
            owners[owned] = record.name
    for by, name in forbidden:
        for record in chosen.values():
            if name in _owned(record) or any(p.split("=")[0] == name for p in record.provides):
                conflicts.append(f"{by} conflicts with {record.name} (!{name})")
    return tuple(conflicts)
