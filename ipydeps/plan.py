"""Plan an install: pick the fastest trustworthy source per project, with resolvelib.

Planning does no I/O of its own: it reads only through the ``PackageSource``s it is
given, the fastest route first (an upstream index is asked about a project only when
our repository cannot satisfy it), and nothing is installed. An unsatisfiable requirement
is not an exception: the plan lists it with a reason and hint, and edges that want one call
``raise_for_unsatisfiable``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep

from .advice import UPGRADE, Hint
from .credentials import redact
from .environment_model import PlanPolicy, TargetEnvironment
from .errors import NoCandidateError, ResolutionError
from .explain import explain_conflict, explain_no_match
from .models import Candidate, Request, Route, Skipped, Step, StepAction, Unsatisfiable
from .plan_model import Plan
from .provider import Pick, Provider, Wanted, identifier_of
from .requirements import partition_requests
from .sources import ApkIndexSource, PackageSource

if TYPE_CHECKING:
    from .apkclosure import InstalledApks
    from .formats.apkindex import ApkIndexRecord

__all__ = ["MAX_ROUNDS", "raise_for_unsatisfiable", "resolve"]

# Bounds the backtracking work of one plan; far above what real scientific stacks need.
MAX_ROUNDS = 2000

_log = logging.getLogger(__name__)


def _order_steps(
    mapping: Mapping[str, Pick],
    edges: Mapping[str | None, Iterable[str]],
    requested: Sequence[NormalizedName],
) -> list[NormalizedName]:
    """Return base project names, dependencies first, requests in the order asked.

    resolvelib keeps its graph in sets, so siblings are visited by name: the same
    requests give the same order on every run, whatever the hash seed.
    """
    children: dict[str, set[str]] = {}
    for parent, kids in edges.items():
        if parent is not None:
            children.setdefault(mapping[parent].name, set()).update(
                mapping[child].name for child in kids
            )
    ordered: list[NormalizedName] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        # A cycle (rare but legal between wheels) is broken where it is first met.
        if name in visiting or name in ordered:
            return
        visiting.add(name)
        for child in sorted(children.get(name, ())):
            if child != name:
                visit(child)
        visiting.discard(name)
        ordered.append(canonicalize_name(name))

    for name in requested:
        visit(name)
    for name in sorted({pick.name for pick in mapping.values()}):
        visit(name)
    return ordered


def _parents(
    mapping: Mapping[str, Pick], edges: Mapping[str | None, Iterable[str]]
) -> dict[str, list[str]]:
    """Map each base name to the base names of the projects that depend on it, sorted."""
    parents: dict[str, set[str]] = {}
    for parent, kids in edges.items():
        if parent is None:
            continue
        for child in kids:
            child_name, parent_name = mapping[child].name, mapping[parent].name
            if child_name != parent_name:
                parents.setdefault(child_name, set()).add(parent_name)
    return {name: sorted(names) for name, names in parents.items()}


def resolve(
    requests: Iterable[Request],
    *,
    sources: Sequence[PackageSource],
    installed: Mapping[NormalizedName, Version],
    environment: TargetEnvironment,
    policy: PlanPolicy,
    jobs: int = 1,
    installed_apks: InstalledApks | None = None,
) -> Plan:
    """Plan the install of ``requests`` and their dependencies into ``environment``.

    Each project comes from the best allowed route (apk, then our wheels, then upstream),
    newest satisfying version within a route; installed versions that satisfy are kept
    unless ``policy.upgrade`` (which applies to the requested names only). Requests for
    the standard library, or whose marker is false here, are skipped with a note.
    Unsatisfiable requirements are listed in ``Plan.unsatisfiable`` with a reason.
    ``jobs`` > 1 reads project pages (and the likeliest metadata) ahead in that many
    threads; the plan is the same as with ``jobs=1``. ``Plan.apk_dependencies`` lists the
    packages apk adds for the apk steps (resolved against the apk sources' indexes and
    ``installed_apks``, empty when not given), since apk, not ipydeps, installs them. Apks
    apk would refuse together (two providing one versioned name) make the plan
    unsatisfiable here, before anything is downloaded.

    Raises ``RepositoryError`` when a source cannot be read.
    """
    executor = ThreadPoolExecutor(jobs, thread_name_prefix="ipydeps-plan") if jobs > 1 else None
    try:
        plan = _resolve(requests, sources, installed, environment, policy, executor)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return _with_apk_resolution(plan, sources, installed_apks)


def _with_apk_resolution(
    plan: Plan, sources: Sequence[PackageSource], installed: InstalledApks | None
) -> Plan:
    """Add what ``apk add`` of the apk steps pulls in, or refuse what apk would refuse."""
    # Imported here: most plans have no apk step, and `import ipydeps` stays quick.
    from .apkclosure import InstalledApks, resolve_apks

    requested = [
        (step.candidate.apk_name, step.candidate.apk_version or "")
        for step in plan.steps
        if step.candidate.route is Route.APK and step.candidate.apk_name
    ]
    indexes = [s for s in sources if s.route is Route.APK and isinstance(s, ApkIndexSource)]
    if not requested or not indexes:
        return plan
    location: dict[ApkIndexRecord, str] = {}
    for source in indexes:
        for record in source.index_records():
            location.setdefault(record, source.location)
    resolution = resolve_apks(requested, list(location), installed or InstalledApks())
    if resolution.conflicts:
        # apk would refuse the whole transaction after every download: refuse it now.
        return dataclasses.replace(
            plan,
            steps=(),
            unsatisfiable=plan.unsatisfiable
            + tuple(
                Unsatisfiable(
                    f"{c.first} + {c.second}",
                    f"apk cannot install both: each provides {c.provided}",
                    Hint.of(
                        "the repository's maintainer can rebuild them with a current "
                        "'ipydeps-repo wrap'; meanwhile apk = \"never\" (IPYDEPS_APK=never) "
                        "installs the wheels instead"
                    ),
                )
                for c in resolution.conflicts
            ),
        )
    added = tuple(
        dataclasses.replace(item, location=location.get(item.record, ""))
        if item.record is not None
        else item
        for item in resolution.additions
    )
    return dataclasses.replace(plan, apk_dependencies=added) if added else plan


def _resolve(
    requests: Iterable[Request],
    sources: Sequence[PackageSource],
    installed: Mapping[NormalizedName, Version],
    environment: TargetEnvironment,
    policy: PlanPolicy,
    executor: Executor | None,
) -> Plan:
    wanted, skipped = partition_requests(requests, environment.markers)
    provider = Provider(
        sources=sources,
        installed=installed,
        environment=environment,
        policy=policy,
        upgrade_names=frozenset(canonicalize_name(r.requirement.name) for r in wanted),
        executor=executor,
    )
    provider.prefetch(canonicalize_name(r.requirement.name) for r in wanted)
    unsatisfiable: list[Unsatisfiable] = []
    roots: list[Wanted] = []
    by_identifier: dict[str, list[Wanted]] = {}
    for request in wanted:
        item = Wanted(request.requirement, parent=None, text=request.text)
        by_identifier.setdefault(identifier_of(item), []).append(item)
    # Check each request alone first, so that one missing package is reported as such
    # (with its own reason) and does not hide the rest of the plan.
    for items in by_identifier.values():
        if provider.matches(items):
            roots += items
            continue
        reason, hint, unbuilt = explain_no_match(provider, items)
        unsatisfiable.append(
            Unsatisfiable(", ".join(item.text for item in items), reason, hint, unbuilt)
        )

    steps: list[Step] = []
    if roots:
        try:
            result = Resolver(provider, BaseReporter()).resolve(roots, max_rounds=MAX_ROUNDS)
        except ResolutionImpossible as error:
            unsatisfiable += explain_conflict(provider, error.causes)
        except ResolutionTooDeep:
            unsatisfiable.append(
                Unsatisfiable(
                    ", ".join(item.text for item in roots),
                    "the requirements conflict in too many ways to resolve",
                    Hint.of("pin versions of the main packages (e.g. numpy==2.3.5) and try again"),
                )
            )
        else:
            steps, kept = _steps(result.mapping, result.graph, provider, roots, installed)
            skipped += kept
    return Plan(
        steps=tuple(steps) if not unsatisfiable else (),
        skipped=tuple(skipped),
        unsatisfiable=tuple(unsatisfiable),
        notes=tuple(provider.notes),
    )


def _steps(
    mapping: Mapping[str, Pick],
    graph: object,
    provider: Provider,
    roots: Sequence[Wanted],
    installed: Mapping[NormalizedName, Version],
) -> tuple[list[Step], list[Skipped]]:
    """Return the steps in dependency order, and the requested names that need no work."""
    edges: dict[str | None, list[str]] = {}
    for vertex in graph:  # type: ignore[attr-defined]
        edges[vertex] = list(graph.iter_children(vertex))  # type: ignore[attr-defined]
    base_picks = {pick.name: pick for pick in mapping.values() if not pick.extras}
    for pick in mapping.values():
        base_picks.setdefault(pick.name, pick)
    parents = _parents(mapping, edges)
    requested = {canonicalize_name(item.requirement.name): item.text for item in roots}
    steps: list[Step] = []
    skipped: list[Skipped] = []
    for name in _order_steps(mapping, edges, list(requested)):
        pick = base_picks[name]
        current = installed.get(name)
        if pick.candidate is None or current == pick.version:
            if name in requested:
                hint = None if provider.policy.upgrade else Hint.of(UPGRADE, " looks for newer")
                skipped.append(
                    Skipped(requested[name], f"{name} {current} is already installed", hint)
                )
            continue
        if name in requested:
            reason = "requested"
        else:
            reason = "dependency of " + ", ".join(parents.get(name, ["?"]))
        action = (
            StepAction.INSTALL
            if current is None
            else StepAction.DOWNGRADE
            if pick.candidate.version < current
            else StepAction.UPGRADE
        )
        steps.append(Step(pick.candidate, action, reason, replaces=current))
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "%s %s: %s from %s; %s",
                name,
                pick.version,
                pick.candidate.route.value,
                redact(pick.candidate.url),
                _faster_routes(provider, pick.candidate),
            )
    return steps, skipped


def _faster_routes(provider: Provider, chosen: Candidate) -> str:
    """Say why no faster route gave ``chosen``'s project (for the debug log, nothing else).

    Every faster tier was read before the resolver took a slower pick, so this reads
    nothing new.
    """
    route = chosen.route
    said = [
        f"{source.route.value}: cannot be used here"
        for source in provider.sources
        if source.route.rank < route.rank and not provider.source_allowed(source)
    ]
    for tier in provider.catalog.tiers:
        if tier[0].route.rank >= route.rank:
            break
        files = provider.catalog.tier_files(chosen.name, tier)
        usable = sorted({str(c.version) for _, c in files if provider.usable(c)})
        if not files:
            said.append(f"{tier[0].route.value}: no file of {chosen.name}")
        elif not usable:
            said.append(f"{tier[0].route.value}: {len(files)} file(s), none installs here")
        else:
            said.append(f"{tier[0].route.value}: {', '.join(usable)}, none fits the plan")
    return "; ".join(said) if said else "the fastest route that is allowed"


def raise_for_unsatisfiable(plan: Plan) -> None:
    """Raise if ``plan`` cannot be carried out; do nothing for a plan that is ``ok``.

    Raises ``NoCandidateError`` when exactly one requirement is unsatisfiable, else
    ``ResolutionError`` listing each with its reason.
    """
    if plan.ok:
        return
    if len(plan.unsatisfiable) == 1:
        item = plan.unsatisfiable[0]
        raise NoCandidateError(item.text, item.reason, hint=item.hint)
    lines = [f"  {item.text}: {item.reason}" for item in plan.unsatisfiable]
    hints = sorted({item.hint for item in plan.unsatisfiable if item.hint}, key=str)
    raise ResolutionError(
        "Cannot install these requirements; nothing was installed:\n" + "\n".join(lines),
        hint=Hint.joined(hints),
    )
