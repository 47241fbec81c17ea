"""Say why a requirement cannot be satisfied, and what to try, for ``Plan.unsatisfiable``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .models import Candidate, Route, Unsatisfiable
from .provider import Provider, Wanted, allows_prereleases, pinned_exactly, python_ok

ASK_MAINTAINER = "ask the repository maintainer to publish a wheel or apk of it"


def _versions(candidates: Iterable[Candidate], limit: int = 6) -> str:
    """Newest distinct versions, for "available: ..." messages."""
    versions = sorted({c.version for c in candidates}, reverse=True)
    shown = ", ".join(str(v) for v in versions[:limit])
    return shown + (", ..." if len(versions) > limit else "")


def _requirement_text(items: Sequence[Wanted]) -> str:
    return " and ".join(item.describe() for item in items)


def _explain_missing(provider: Provider, name: str) -> tuple[str, str | None]:
    """Explain a project that no allowed source has at all."""
    where = ", ".join(provider.locations) or "no configured source"
    if not provider.policy.upstream_allowed:
        return (
            f"{name} is not in our repository ({where}), and the upstream index is off "
            "(air-gapped policy: upstream is off)",
            f'{ASK_MAINTAINER}, or allow upstream (upstream = "allow") if this setup may reach it',
        )
    if not provider.locations:
        return ("no package source is configured", "set repository_url or allow upstream")
    return (f"{name} was not found in {where}", "check the spelling of the project name")


def _explain_nothing_fits(
    provider: Provider, name: str, prebuilt: Sequence[Candidate]
) -> tuple[str, str | None]:
    """Explain a project whose prebuilt files are all for other targets."""
    this_python = provider.environment.markers["python_version"]
    built_for = sorted({c.apk_python or "" for c in prebuilt if provider.apk_for_other_python(c)})
    if built_for and not any(c.is_wheel for c in prebuilt):
        return (
            f"the only prebuilt packages of {name} are apks built for Python "
            f"{', '.join(built_for)}, and this is Python {this_python}",
            ASK_MAINTAINER + " for this Python",
        )
    platform_tag = provider.environment.supported_tags[0]
    also = (
        f" (its apks are built for Python {', '.join(built_for)}, this is {this_python})"
        if built_for
        else ""
    )
    return (
        f"no wheel of {name} fits this platform ({platform_tag}); wheels exist only for "
        f"other platforms or Python versions{also}",
        ASK_MAINTAINER + " for this target",
    )


def explain_no_match(provider: Provider, items: Sequence[Wanted]) -> tuple[str, str | None]:
    """Return the reason and hint for requirements on one project that nothing satisfies.

    Filters the project's files stage by stage (found, prebuilt, platform, Python,
    yanked, route, version) and reports the first stage that leaves nothing.
    """
    name = items[0].name
    files = [candidate for _, candidate in provider.files(name)]
    if not files:
        return _explain_missing(provider, name)
    prebuilt = [c for c in files if c.is_apk or c.is_wheel]
    if not prebuilt:
        return (
            f"only a source distribution of {name} exists ({_versions(files)}): it would need "
            "compiling, and ipydeps installs prebuilt packages only",
            ASK_MAINTAINER,
        )
    here = [c for c in prebuilt if provider.usable(c)]
    if not here:
        return _explain_nothing_fits(provider, name, prebuilt)
    python = [c for c in here if python_ok(c, provider.environment)]
    if not python:
        needs = sorted({c.requires_python or "" for c in here})
        return (
            f"every version of {name} needs another Python (Requires-Python {', '.join(needs)}; "
            f"this is {provider.environment.python_version})",
            "use an older version that supports this Python",
        )
    only = {item.only_route for item in items if item.only_route is not None}
    routed = [c for c in python if not only or c.route in only]
    if not routed:
        return (
            f"{name} is needed by an apk, so it must come as an apk too, and our apk "
            "repository has none that fits",
            ASK_MAINTAINER + " (as an apk)",
        )
    prereleases = allows_prereleases(items, provider.policy)
    matching = [
        c
        for c in routed
        if all(item.requirement.specifier.contains(c.version, prereleases=True) for item in items)
    ]
    if not matching:
        return (
            f"no version of {name} matches {_requirement_text(items)} "
            f"(available: {_versions(routed)})",
            "relax the version specifier",
        )
    if all(c.yanked and not pinned_exactly(items, c.version) for c in matching):
        return (
            f"every matching file of {name} is yanked",
            "pin an exact version to use a yanked one",
        )
    if not prereleases and all(c.version.is_prerelease for c in matching):
        newest = max(c.version for c in matching)
        return (
            f"only pre-releases of {name} match ({_versions(matching)})",
            f"ask for a pre-release explicitly, e.g. '{name}>={newest}'",
        )
    return (f"no file of {name} satisfies {_requirement_text(items)}", None)


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
        if alone:
            reason, hint = explain_no_match(provider, alone)
        else:
            name = items[0].name
            available = _versions(c for _, c in provider.files(name) if provider.usable(c))
            reason = (
                f"version conflict: these requirements on {name} cannot all be satisfied "
                f"at once (available: {available})"
            )
            hint = (
                "pin compatible versions of the packages that need it, or install them separately"
            )
            if any(item.only_route is Route.APK for item in items):
                hint += "; an apk pulls its dependencies as apks"
        found.append(Unsatisfiable(text, reason, hint))
    return found
