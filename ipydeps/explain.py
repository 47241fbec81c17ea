"""Say why a requirement cannot be satisfied, and what to try, for ``Plan.unsatisfiable``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .advice import UPSTREAM_ALLOW, Hint
from .models import Candidate, Route, UnbuiltBuild, Unsatisfiable
from .provider import Provider, Wanted, allows_prereleases, pinned_exactly, python_ok
from .unbuilt import unbuilt_reason

ASK_MAINTAINER = "ask the repository maintainer to publish a wheel or apk of it"
# The reason, the hint, and the missing build when a prebuilt build is what is missing.
Explanation = tuple[str, Hint | None, UnbuiltBuild | None]


def _versions(candidates: Iterable[Candidate], limit: int = 6) -> str:
    """Newest distinct versions, for "available: ..." messages."""
    versions = sorted({c.version for c in candidates}, reverse=True)
    shown = ", ".join(str(v) for v in versions[:limit])
    return shown + (", ..." if len(versions) > limit else "")


def _requirement_text(items: Sequence[Wanted]) -> str:
    return " and ".join(item.describe() for item in items)


def _explain_missing(provider: Provider, name: str) -> tuple[str, Hint | None]:
    """Explain a project that no allowed source has at all."""
    where = ", ".join(provider.locations) or "no configured source"
    if not provider.policy.upstream_allowed:
        return (
            f"{name} is not in our repository ({where}), and the upstream index is off "
            "(air-gapped policy: upstream is off)",
            Hint.of(
                f"{ASK_MAINTAINER}, or allow upstream (",
                UPSTREAM_ALLOW,
                ") if this setup may reach it",
            ),
        )
    if not provider.locations:
        return ("no package source is configured", Hint.of("set repository_url or allow upstream"))
    return (f"{name} was not found in {where}", Hint.of("check the spelling of the project name"))


def _unbuilt(
    provider: Provider, items: Sequence[Wanted], files: Sequence[Candidate], why: str, ask: str
) -> Explanation:
    reason, request_hint, build = unbuilt_reason(provider, items, files, why)
    return reason, Hint.of(f"{ask}; or ", *request_hint.parts), build


def _explain_nothing_fits(
    provider: Provider, items: Sequence[Wanted], files: Sequence[Candidate]
) -> Explanation:
    """Explain a project whose prebuilt files are all for other targets."""
    name = items[0].name
    prebuilt = [c for c in files if c.is_apk or c.is_wheel]
    this_python = provider.environment.markers["python_version"]
    built_for = sorted({c.apk_python or "" for c in prebuilt if provider.apk_for_other_python(c)})
    if built_for and not any(c.is_wheel for c in prebuilt):
        return (
            f"the only prebuilt packages of {name} are apks built for Python "
            f"{', '.join(built_for)}, and this is Python {this_python}",
            Hint.of(ASK_MAINTAINER + " for this Python"),
            None,
        )
    platform_tag = provider.environment.supported_tags[0]
    also = (
        f" (its apks are built for Python {', '.join(built_for)}, this is {this_python})"
        if built_for
        else ""
    )
    source = "" if any(c.is_sdist for c in files) else "; upstream has no source to build from"
    return _unbuilt(
        provider,
        items,
        files,
        f"no wheel of {name} fits this platform ({platform_tag}); wheels exist only for "
        f"other platforms or Python versions{also}{source}",
        ASK_MAINTAINER + " for this target",
    )


def explain_no_match(provider: Provider, items: Sequence[Wanted]) -> Explanation:
    """Return the reason, hint and missing build for requirements nothing satisfies.

    Filters the project's files stage by stage (found, prebuilt, platform, Python,
    yanked, route, version) and reports the first stage that leaves nothing.
    """
    name = items[0].name
    files = [candidate for _, candidate in provider.files(name)]
    if not files:
        return (*_explain_missing(provider, name), None)
    prebuilt = [c for c in files if c.is_apk or c.is_wheel]
    if not prebuilt:
        return _unbuilt(
            provider,
            items,
            files,
            f"only a source distribution of {name} exists ({_versions(files)}): it would "
            "need compiling",
            ASK_MAINTAINER,
        )
    here = [c for c in prebuilt if provider.usable(c)]
    if not here:
        return _explain_nothing_fits(provider, items, files)
    python = [c for c in here if python_ok(c, provider.environment)]
    if not python:
        needs = sorted({c.requires_python or "" for c in here})
        return (
            f"every version of {name} needs another Python (Requires-Python {', '.join(needs)}; "
            f"this is {provider.environment.python_version})",
            Hint.of("use an older version that supports this Python"),
            None,
        )
    only = {item.only_route for item in items if item.only_route is not None}
    routed = [c for c in python if not only or c.route in only]
    if not routed:
        return (
            f"{name} is needed by an apk, so it must come as an apk too, and our apk "
            "repository has none that fits",
            Hint.of(ASK_MAINTAINER + " (as an apk)"),
            None,
        )
    prereleases = allows_prereleases(items, provider.policy)
    matching = [
        c
        for c in routed
        if all(item.requirement.specifier.contains(c.version, prereleases=True) for item in items)
    ]
    if not matching:
        return _no_version_matches(provider, items, files, routed)
    if all(c.yanked and not pinned_exactly(items, c.version) for c in matching):
        return (
            f"every matching file of {name} is yanked",
            Hint.of("pin an exact version to use a yanked one"),
            None,
        )
    if not prereleases and all(c.version.is_prerelease for c in matching):
        newest = max(c.version for c in matching)
        return (
            f"only pre-releases of {name} match ({_versions(matching)})",
            Hint.of(f"ask for a pre-release explicitly, e.g. '{name}>={newest}'"),
            None,
        )
    return (f"no file of {name} satisfies {_requirement_text(items)}", None, None)


def _no_version_matches(
    provider: Provider,
    items: Sequence[Wanted],
    files: Sequence[Candidate],
    routed: Sequence[Candidate],
) -> Explanation:
    """No installable version matches; say so, or that the wanted one exists only unbuilt."""
    name = items[0].name
    unbuilt = [
        c
        for c in files
        if not provider.usable(c)
        and all(item.requirement.specifier.contains(c.version, prereleases=True) for item in items)
    ]
    if unbuilt:
        return _unbuilt(
            provider,
            items,
            files,
            f"{name} {_versions(unbuilt)} exists only as a source distribution or as "
            "wheels for other platforms",
            "relax the version specifier",
        )
    return (
        f"no version of {name} matches {_requirement_text(items)} (available: {_versions(routed)})",
        Hint.of("relax the version specifier"),
        None,
    )


def explain_conflict(provider: Provider, causes: Iterable[Any]) -> list[Unsatisfiable]:
    """Unsatisfiable entries for resolvelib's ``ResolutionImpossible.causes``, one per project."""
    by_project: dict[str, list[Wanted]] = {}
    for cause in causes:
        wanted: Wanted = cause.requirement
        group = by_project.setdefault(str(wanted.name), [])
        if wanted not in group:
            group.append(wanted)
    found = []
    for items in by_project.values():
        text = "; ".join(item.describe() for item in items)
        alone = [item for item in items if not provider.matches([item])]
        unbuilt = None
        if alone:
            reason, hint, unbuilt = explain_no_match(provider, alone)
        else:
            name = items[0].name
            available = _versions(c for _, c in provider.files(name) if provider.usable(c))
            reason = (
                f"version conflict: these requirements on {name} cannot all be satisfied "
                f"at once (available: {available})"
            )
            pin = "pin compatible versions of the packages that need it, or install them separately"
            if any(item.only_route is Route.APK for item in items):
                pin += "; an apk pulls its dependencies as apks"
            hint = Hint.of(pin)
        found.append(Unsatisfiable(text, reason, hint, unbuilt))
    return found
