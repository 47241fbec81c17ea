"""Say in one line that no prebuilt build of a project exists for this target, and why (pure).

The runtime is Alpine (musl) without a compiler: a project whose only files for it are
sdists, or wheels for other platforms, cannot be installed there, and handing it to pip
would only fail after minutes of build dependencies. The plan says so before anything
runs: the project and version, the platform and Python, whether this runtime has a
compiler, what our repository offers instead, and whether a build was requested (the
edge fills that in from the repository's build-request queue, ``build_requests.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from packaging.utils import canonicalize_name
from packaging.version import Version

from .advice import Hint, SettingChange
from .models import Candidate, Route, UnbuiltBuild
from .provider import Provider, Wanted

__all__ = ["request_hint", "unbuilt_build", "unbuilt_reason"]


def request_hint(project: str) -> Hint:
    """How to ask for the build, worded by the edge that shows it (``--request-build`` ...)."""
    return Hint.of(
        SettingChange("request_build", project),
        " asks our repository's farm to build it (needs a repository_token with the "
        "'request' right)",
    )


def _newest(versions: Iterable[Version]) -> Version | None:
    found = sorted(set(versions), reverse=True)
    return found[0] if found else None


def unbuilt_build(
    provider: Provider, items: Sequence[Wanted], files: Sequence[Candidate]
) -> UnbuiltBuild:
    """Name the build that is missing: the newest version the requirements admit, if any."""
    wanted = _newest(
        c.version
        for c in files
        if all(item.requirement.specifier.contains(c.version, prereleases=True) for item in items)
    )
    environment = provider.environment
    return UnbuiltBuild(
        project=canonicalize_name(items[0].name),
        version=None if wanted is None else str(wanted),
        platform_tag=environment.platform_tag,
        python=environment.markers["python_version"],
    )


def _compiler_text(compiler: bool | None) -> str:
    if compiler is False:
        return "this runtime has no compiler"
    if compiler is True:
        return "this machine has a compiler, but ipydeps installs prebuilt packages only"
    return "ipydeps installs prebuilt packages only"


def _ours_text(provider: Provider, name: str, files: Sequence[Candidate]) -> str:
    """Say what our repository offers instead: other versions here, or other targets."""
    ours = [c for c in files if c.route is not Route.UPSTREAM]
    here = sorted({c.version for c in ours if provider.usable(c)}, reverse=True)
    if here:
        shown = ", ".join(str(v) for v in here[:4])
        return f"our repository offers {name} {shown} for this platform"
    elsewhere = sorted({_target_of(c) for c in ours if c.is_wheel or c.is_apk})
    if elsewhere:
        return f"our repository has {name} only for {', '.join(elsewhere[:4])}"
    return f"our repository has no build of {name}"


def _target_of(candidate: Candidate) -> str:
    if candidate.is_apk:
        return f"Python {candidate.apk_python or '?'} (apk {candidate.version})"
    triple = "-".join(candidate.filename.removesuffix(".whl").split("-")[-3:])
    return f"{triple} ({candidate.version})"


def unbuilt_reason(
    provider: Provider, items: Sequence[Wanted], files: Sequence[Candidate], why: str
) -> tuple[str, Hint, UnbuiltBuild]:
    """Return the one-line reason, the hint and the missing build.

    ``why`` is what upstream has (e.g. "only a source distribution of X exists (1.1)").
    """
    build = unbuilt_build(provider, items, files)
    version = f" {build.version}" if build.version else ""
    reason = (
        f"no prebuilt build of {items[0].name}{version} for {build.platform_tag} / "
        f"cp{build.python}; {_compiler_text(provider.environment.compiler_available)} "
        f"({why}); {_ours_text(provider, items[0].name, files)}; build request: none"
    )
    return reason, request_hint(build.project), build
