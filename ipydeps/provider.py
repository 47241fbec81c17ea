"""The resolvelib provider behind ``ipydeps.plan.resolve``: candidates, preference, dependencies."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider

from .catalog import Catalog, File, Tier
from .environment_model import PlanPolicy, TargetEnvironment
from .formats.wheel import build_tag
from .models import Candidate, Route
from .own_names import shadowing_problem, upstream_forbidden
from .requirements import is_standard_library, marker_applies
from .sources import PackageSource


@dataclass(frozen=True)
class Wanted:
    """A requirement in the resolution: requested (``parent`` None) or a dependency."""

    requirement: Requirement
    parent: str | None
    text: str
    # Dependencies of an apk are installed by apk itself, so they must be apks too.
    only_route: Route | None = None

    @property
    def name(self) -> NormalizedName:
        """The canonical project name."""
        return canonicalize_name(self.requirement.name)

    def describe(self) -> str:
        """Return the requirement and who needs it, for messages."""
        return self.text if self.parent is None else f"{self.text} (needed by {self.parent})"


@dataclass(frozen=True)
class Pick:
    """A resolution candidate: a file from a source, or what is installed (``candidate`` None)."""

    name: NormalizedName
    version: Version
    candidate: Candidate | None
    extras: frozenset[str] = frozenset()
    source: Any = None  # the PackageSource of ``candidate``; Any keeps the dataclass hashable


def identifier_of(item: Wanted | Pick) -> str:
    """Return the resolvelib identifier: canonical name plus sorted extras, as pip (``a[x,y]``)."""
    extras: Iterable[str] = item.requirement.extras if isinstance(item, Wanted) else item.extras
    name = item.name
    if not extras:
        return str(name)
    return f"{name}[{','.join(sorted(canonicalize_name(e) for e in extras))}]"


def allows_prereleases(items: Iterable[Wanted], policy: PlanPolicy) -> bool:
    """PEP 440: pre-releases only when asked for, globally or by a specifier naming one."""
    return policy.prereleases or any(item.requirement.specifier.prereleases for item in items)


def pinned_exactly(items: Iterable[Wanted], version: Version) -> bool:
    """Tell whether a requirement pins ``==version`` (PEP 592: such a pin may take a yank)."""
    return any(
        spec.operator in ("==", "===")
        and spec.contains(version, prereleases=True)
        and "*" not in spec.version
        for item in items
        for spec in item.requirement.specifier
    )


def python_ok(candidate: Candidate, environment: TargetEnvironment) -> bool:
    """Requires-Python allows this Python (an unparseable value is ignored, as pip does)."""
    if not candidate.requires_python:
        return True
    try:
        specifier = SpecifierSet(candidate.requires_python)
    except InvalidSpecifier:
        return True
    return specifier.contains(environment.python_version, prereleases=True)


class Provider(AbstractProvider):  # type: ignore[type-arg]
    """Offers candidates of a project from every allowed source, best first."""

    def __init__(
        self,
        *,
        sources: Sequence[PackageSource],
        installed: Mapping[NormalizedName, Version],
        environment: TargetEnvironment,
        policy: PlanPolicy,
        upgrade_names: frozenset[NormalizedName],
        executor: Executor | None = None,
    ) -> None:
        self.environment = environment
        self.policy = policy
        self.installed = {canonicalize_name(k): v for k, v in installed.items()}
        self.upgrade_names = upgrade_names if policy.upgrade else frozenset()
        self.apk_usable = environment.apk_available and policy.apk_allowed
        self.sources = sorted(sources, key=lambda source: source.route.rank)
        self.notes: list[str] = []
        self._executor = executor
        self._installable_cache: dict[tuple[Tier, NormalizedName], list[File]] = {}
        self.catalog = Catalog(
            [source for source in self.sources if self.source_allowed(source)],
            executor=executor,
            usable=self.usable,
            warm=self._warm,
        )
        if not self.apk_usable and any(s.route is Route.APK for s in self.sources):
            self.note("apk cannot be used here, so apks were not considered")
        if not policy.upstream_allowed and any(s.route is Route.UPSTREAM for s in self.sources):
            self.note("upstream is off (air-gapped policy): only our repository was used")

    def note(self, text: str) -> None:
        """Record a note for the plan, once."""
        if text not in self.notes:
            self.notes.append(text)

    def source_allowed(self, source: PackageSource) -> bool:
        """Whether policy and environment let the planner read ``source`` at all."""
        if source.route is Route.APK:
            return self.apk_usable
        return source.route is not Route.UPSTREAM or self.policy.upstream_allowed

    @property
    def locations(self) -> list[str]:
        """Where the allowed sources read from, for messages."""
        return [s.location for s in self.sources if self.source_allowed(s)]

    def _warm(self, name: NormalizedName, files: Sequence[File]) -> None:
        """Start reading the metadata of the likeliest pick among ``files`` (worker thread)."""
        likely = [
            (source, c)
            for source, c in files
            if self.usable(c)
            and not c.yanked
            and not c.version.is_prerelease
            and python_ok(c, self.environment)
        ]
        kept = name in self.installed and name not in self.upgrade_names
        if likely and not kept and self._executor is not None:
            source, best = max(likely, key=lambda pair: (-pair[1].route.rank, pair[1].version))
            # Speculative: an error here is dropped; the real call raises it again.
            self._executor.submit(source.requires_dist, best)

    def prefetch(self, names: Iterable[NormalizedName]) -> None:
        """Start reading the project pages of ``names`` in parallel (with an executor)."""
        self.catalog.prefetch(names)

    def files(self, name: NormalizedName) -> list[File]:
        """Every file the allowed sources offer for ``name`` (reads every route)."""
        return self.catalog.files(name)

    def usable(self, candidate: Candidate) -> bool:
        """Tell whether ``candidate`` installs here, whatever the specifier (never sdists).

        An apk built for another Python (its ``python3~X.Y``) is not: apk would refuse it
        beside this python3, and this interpreter would not import its modules.
        """
        if candidate.is_apk:
            return not self.apk_for_other_python(candidate)
        return candidate.is_wheel and self.environment.wheel_rank(candidate.filename) is not None

    def apk_for_other_python(self, candidate: Candidate) -> bool:
        """Tell whether ``candidate`` is an apk built for another Python than the target's."""
        return (
            candidate.is_apk
            and candidate.apk_python is not None
            and candidate.apk_python != self.environment.markers["python_version"]
        )

    def _installable(self, name: NormalizedName, tier: Tier) -> list[File]:
        """Files of one route that install here, newest first, best wheel tag first (cached)."""
        key = (tier, name)
        if key not in self._installable_cache:
            offered = self.catalog.tier_files(name, tier)
            files = [
                (source, candidate)
                for source, candidate in offered
                if self.usable(candidate)
                and python_ok(candidate, self.environment)
                and self._trusted_for(name, candidate)
            ]
            self._note_apks_for_other_python(name, [candidate for _, candidate in offered])
            # Stable sorts, least significant key first: highest build tag (as pip and uv:
            # a mirror's optimized variant beside upstream's file), tag preference, newest.
            files.sort(key=lambda file: build_tag(file[1].filename), reverse=True)
            files.sort(key=lambda file: self.environment.wheel_rank(file[1].filename) or 0)
            files.sort(key=lambda file: file[1].version, reverse=True)
            self._installable_cache[key] = files
        return self._installable_cache[key]

    def _trusted_for(self, name: NormalizedName, candidate: Candidate) -> bool:
        """Whether ``candidate`` may provide ``name`` (own_names.py says why).

        Never a project that would replace ipydeps; our own distributions from our repository only.
        """
        problem = shadowing_problem(name)
        if problem is not None:
            self.note(f"{name} was not considered: {problem}")
            return False
        if candidate.route is Route.UPSTREAM and upstream_forbidden(name):
            self.note(f"{name} is one of ours: it is taken from our repository only, not upstream")
            return False
        return True

    def _note_apks_for_other_python(
        self, name: NormalizedName, candidates: Sequence[Candidate]
    ) -> None:
        """Say in the plan that the apks of ``name`` were passed over: built for another Python."""
        others = sorted({c.apk_python or "" for c in candidates if self.apk_for_other_python(c)})
        if others:
            self.note(
                f"the apks of {name} are built for Python {', '.join(others)} and this is "
                f"Python {self.environment.markers['python_version']}, so they were not "
                "used (a wheel was looked for instead)"
            )

    def _source_picks(
        self,
        name: NormalizedName,
        extras: frozenset[str],
        items: Sequence[Wanted],
        files: Iterable[File],
    ) -> list[Pick]:
        """One pick per version among ``files`` (one route, best first) satisfying ``items``."""
        prereleases = allows_prereleases(items, self.policy)
        only = {item.only_route for item in items if item.only_route is not None}
        picks: dict[Version, Pick] = {}
        for source, candidate in files:
            if candidate.version in picks or (only and candidate.route not in only):
                continue
            if candidate.yanked and not pinned_exactly(items, candidate.version):
                continue
            if all(
                item.requirement.specifier.contains(candidate.version, prereleases=prereleases)
                for item in items
            ):
                picks[candidate.version] = Pick(name, candidate.version, candidate, extras, source)
        return list(picks.values())

    def iter_picks(self, items: Sequence[Wanted]) -> Iterator[Pick]:
        """Yield candidates satisfying every item, most preferred first, reading lazily.

        A slower route's index is only read once the faster routes' picks are used up.
        """
        name = items[0].name
        extras = frozenset(canonicalize_name(e) for item in items for e in item.requirement.extras)
        current = self.installed.get(name)
        installed_ok = current is not None and all(
            item.requirement.specifier.contains(current, prereleases=True) for item in items
        )
        tiers = (
            self._source_picks(name, extras, items, self._installable(name, tier))
            for tier in self.catalog.tiers
        )
        if current is None or not installed_ok:
            for picks in tiers:
                yield from picks
            return
        kept = Pick(name, current, None, extras)
        if name in self.upgrade_names:
            # Upgrade never means downgrade: newer-or-equal files first, then what is installed.
            found = [pick for picks in tiers for pick in picks]
            yield from (pick for pick in found if pick.version >= current)
            yield kept
            yield from (pick for pick in found if pick.version < current)
            return
        yield kept
        for picks in tiers:
            yield from picks

    def matches(self, items: Sequence[Wanted]) -> bool:
        """Whether anything satisfies ``items`` on their own."""
        return next(self.iter_picks(items), None) is not None

    # resolvelib's AbstractProvider interface.

    def identify(self, requirement_or_candidate: Wanted | Pick) -> str:
        """Return the identifier resolvelib groups requirements and candidates by."""
        return identifier_of(requirement_or_candidate)

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Pick],
        candidates: Mapping[str, Iterator[Pick]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> tuple[int, int, str]:
        """Resolve pinned and conflicting projects first, then by name for a stable plan."""
        pinned = any(
            spec.operator in ("==", "===")
            for info in information[identifier]
            for spec in info.requirement.requirement.specifier
        )
        causes = {identifier_of(cause.requirement) for cause in backtrack_causes}
        return (0 if pinned else 1, 0 if identifier in causes else 1, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Wanted]],
        incompatibilities: Mapping[str, Iterator[Pick]],
    ) -> Callable[[], Iterator[Pick]]:
        """Candidates satisfying every requirement on ``identifier``, best first, lazily."""
        items = list(requirements[identifier])
        bad = set(incompatibilities[identifier])
        return lambda: (pick for pick in self.iter_picks(items) if pick not in bad)

    def is_satisfied_by(self, requirement: Wanted, candidate: Pick) -> bool:
        """Whether ``candidate`` satisfies ``requirement`` (version, and route for apk deps)."""
        if requirement.name != candidate.name:
            return False
        if (
            requirement.only_route is not None
            and candidate.candidate is not None
            and candidate.candidate.route is not requirement.only_route
        ):
            return False
        return requirement.requirement.specifier.contains(candidate.version, prereleases=True)

    def _requires(self, pick: Pick) -> tuple[str, ...] | None:
        """Requires-Dist of ``pick``; None when its extras' dependencies cannot be known."""
        candidate = pick.candidate
        if candidate is not None and not (pick.extras and candidate.is_apk):
            return tuple(pick.source.requires_dist(candidate))
        if not pick.extras:
            # What an installed distribution needs is already installed with it.
            return ()
        # Installed, or an apk (whose depends know no extras): a wheel of the same version
        # tells which dependencies the extras add.
        for source, file in self.files(pick.name):
            if file.version == pick.version and file.is_wheel:
                return tuple(source.requires_dist(file))
        return None

    def get_dependencies(self, candidate: Pick) -> list[Wanted]:
        """Requires-Dist of ``candidate`` that apply here (markers, extras), as requirements.

        A ``name[extras]`` candidate depends on ``name`` itself (same version and route)
        plus what only its extras add; an apk's own dependencies must be apks too.
        """
        label = f"{candidate.name} {candidate.version}"
        route = candidate.candidate.route if candidate.candidate is not None else None
        only = Route.APK if route is Route.APK and not candidate.extras else None
        dependencies = []
        if candidate.extras:
            # The extras of a project come with the project itself, at the same version and route.
            base = Requirement(f"{candidate.name}=={candidate.version}")
            dependencies.append(Wanted(base, label, str(base), route))
        requires = self._requires(candidate)
        if requires is None:
            extras = ", ".join(sorted(candidate.extras))
            self.note(
                f"the dependencies of {label}'s extras ({extras}) are unknown and not planned"
            )
        mentioned: set[str] = set()
        for text in requires or ():
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                self.note(f"{label} declares an invalid dependency {text!r}; it was ignored")
                continue
            mentioned |= {e for e in candidate.extras if f'"{e}"' in str(requirement.marker)}
            if not self._applies(requirement, candidate.extras):
                continue
            requirement.marker = None
            requirement.url = None
            dependencies.append(Wanted(requirement, label, str(requirement), only))
        if requires is not None:
            for extra in sorted(candidate.extras - mentioned):
                self.note(f"{label} has no extra {extra!r}; it was ignored")
        self.prefetch(item.name for item in dependencies)
        return dependencies

    def _applies(self, requirement: Requirement, extras: frozenset[str]) -> bool:
        """Whether a dependency is needed here: for extras, only what the extras add."""
        if is_standard_library(requirement.name):
            return False
        markers = self.environment.markers
        if not extras:
            return marker_applies(requirement.marker, markers, ())
        return marker_applies(requirement.marker, markers, extras) and not marker_applies(
            requirement.marker, markers, ()
        )
