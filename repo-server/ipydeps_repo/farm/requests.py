"""The farm decides what to do with each build request (pure), and records what it built.

A request is a wish: the farm builds only what it has a recipe for, on a target of the
request's platform and Python. Decisions (``decide``):

- ``scheduled``: a recipe whose ``pypi`` is the project and a musl or Alpine target of that
  architecture and Python that does not exclude it; ``farm build --requests`` builds it.
- ``no recipe``: nothing is built; the entry stays listed for the farm's maintainers.
- ``declined``: a recipe exists but no target can serve the request (another Python, an
  excluded recipe, a pinned version other than the recipe's).

After a ``farm build --requests`` run, the entries it built are marked ``built`` or
``failed`` (``outcomes``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from ..store.build_requests import QueuedBuild
from ..validation.build_request import BuildState
from .manifest import Manifest
from .options import SUCCEEDED, RecipeResult

__all__ = ["Decision", "decide", "outcomes", "render_queue", "scheduled"]

_BUILDABLE = frozenset({BuildState.QUEUED, BuildState.SCHEDULED, BuildState.NO_RECIPE})


@dataclass(frozen=True)
class Decision:
    """What the farm does with one request: its new state, a note, and what builds it."""

    state: BuildState
    note: str
    recipe: str = ""
    target: str = ""


def decide(entry: QueuedBuild, manifest: Manifest) -> Decision:
    """Decide ``entry`` against the manifest's recipes and targets."""
    recipes = [
        name
        for name, settings in sorted(manifest.settings.items())
        if canonicalize_name(settings.pypi) == entry.project and name in manifest.recipes
    ]
    if not recipes:
        return Decision(
            BuildState.NO_RECIPE,
            f"the farm has no recipe for {entry.project}; nothing is built until one is added",
        )
    recipe = recipes[0]
    pkgver = manifest.recipes[recipe].pkgver
    if entry.version and entry.version != pkgver:
        return Decision(
            BuildState.DECLINED,
            f"the farm builds {entry.project} {pkgver} (recipe {recipe}), not {entry.version}",
            recipe,
        )
    tag = entry.platform_tag
    machine = "x86_64" if tag.endswith("_x86_64") else tag.rsplit("_", 1)[-1]
    reasons = []
    for target in sorted(manifest.targets.values(), key=lambda t: t.name):
        if target.kind not in ("musl", "alpine") or not entry.platform_tag.startswith("musl"):
            continue
        if target.arch != machine or target.python != entry.python:
            continue
        excluded = target.excluded(recipe)
        if excluded:
            reasons.append(f"{target.name} excludes it: {excluded}")
            continue
        return Decision(
            BuildState.SCHEDULED,
            f"recipe {recipe} {pkgver} on target {target.name}",
            recipe,
            target.name,
        )
    return Decision(
        BuildState.DECLINED,
        "; ".join(reasons)
        or f"no farm target builds for {entry.platform_tag} / cp{entry.python} "
        f"(recipe {recipe} exists)",
        recipe,
    )


def scheduled(
    entries: Iterable[QueuedBuild], manifest: Manifest
) -> list[tuple[QueuedBuild, Decision]]:
    """Return the open entries the farm will build, with their decisions."""
    found = []
    for entry in entries:
        if entry.state in _BUILDABLE:
            decision = decide(entry, manifest)
            if decision.state is BuildState.SCHEDULED:
                found.append((entry, decision))
    return found


def outcomes(
    built: Sequence[tuple[QueuedBuild, Decision]], results: Sequence[RecipeResult]
) -> list[tuple[QueuedBuild, BuildState, str]]:
    """Return each scheduled entry's state after a build run (entries not run: none)."""
    found = []
    for entry, decision in built:
        for result in results:
            if (result.recipe, result.target) == (decision.recipe, decision.target):
                ok = result.status in SUCCEEDED
                note = f"{decision.recipe} {result.version} on {result.target}"
                found.append(
                    (
                        entry,
                        BuildState.BUILT if ok else BuildState.FAILED,
                        f"{'built' if ok else 'failed'}: {note}"
                        + ("" if ok else f" ({result.message})"),
                    )
                )
    return found


def render_queue(rows: Sequence[tuple[QueuedBuild, Decision | None]]) -> str:
    """Return the queue as a table: what was asked, how often, where it stands."""
    if not rows:
        return "the build-request queue is empty"
    lines = [
        f"{'project':<22} {'version':<10} {'platform':<24} {'python':<6} {'asked':>5} "
        f"{'state':<10} note"
    ]
    for entry, decision in rows:
        state, note = (
            (entry.state, entry.note)
            if decision is None
            else (
                decision.state,
                decision.note,
            )
        )
        lines.append(
            f"{entry.project:<22} {entry.version or 'any':<10} {entry.platform_tag:<24} "
            f"{entry.python:<6} {entry.count:>5} {state:<10} {note}"
        )
    return "\n".join(lines)
