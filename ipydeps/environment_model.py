"""The pure description of the target environment the planner plans for (markers, tags, apk).

``TargetEnvironment.current`` describes this interpreter, ``TargetEnvironment.simulated``
another target (tests and dry runs, e.g. an Alpine kernel planned from Debian). Installed
distributions are passed to ``resolve`` separately (``Mapping[NormalizedName, Version]``);
reading them (importlib.metadata) is an effect and lives in the edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from packaging.markers import default_environment
from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag, sys_tags
from packaging.version import Version

__all__ = ["PlanPolicy", "TargetEnvironment"]


@dataclass(frozen=True)
class TargetEnvironment:
    """Where packages will be installed: PEP 508 marker values, wheel tags, whether apk runs.

    ``supported_tags`` is in preference order (best first), as ``packaging.tags.sys_tags``.
    """

    markers: Mapping[str, str]
    supported_tags: tuple[Tag, ...]
    apk_available: bool = False
    _tag_rank: Mapping[Tag, int] = field(init=False, repr=False, compare=False)
    # Rank per wheel tag triple ("cp312-cp312-musllinux_1_2_x86_64"): an index page of a
    # big project lists thousands of wheels that share a few dozen triples.
    _rank_cache: dict[str, int | None] = field(init=False, repr=False, compare=False)
    _python_version: Version = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "markers", MappingProxyType(dict(self.markers)))
        ranks: dict[Tag, int] = {}
        for position, tag in enumerate(self.supported_tags):
            ranks.setdefault(tag, position)
        object.__setattr__(self, "_tag_rank", MappingProxyType(ranks))
        object.__setattr__(self, "_rank_cache", {})
        object.__setattr__(self, "_python_version", Version(self.markers["python_full_version"]))

    @property
    def python_version(self) -> Version:
        """The full Python version, as ``Requires-Python`` is checked against."""
        return self._python_version

    def wheel_rank(self, filename: str) -> int | None:
        """Rank a wheel file here (smaller is better); None if it cannot install here."""
        parts = filename.removesuffix(".whl").split("-")
        if not filename.endswith(".whl") or len(parts) not in (5, 6):
            return None
        triple = "-".join(parts[-3:])
        if triple not in self._rank_cache:
            ranks = [self._tag_rank[tag] for tag in parse_tag(triple) if tag in self._tag_rank]
            self._rank_cache[triple] = min(ranks) if ranks else None
        return self._rank_cache[triple]

    @classmethod
    def current(cls, *, apk_available: bool) -> TargetEnvironment:
        """Describe this interpreter (markers, tags); the caller decides whether apk can run."""
        return cls(
            markers={key: str(value) for key, value in default_environment().items()},
            supported_tags=tuple(sys_tags()),
            apk_available=apk_available,
        )

    @classmethod
    def simulated(
        cls,
        *,
        python: str = "3.12.0",
        platforms: Iterable[str] = ("musllinux_1_2_x86_64",),
        apk_available: bool = False,
        sys_platform: str = "linux",
    ) -> TargetEnvironment:
        """Describe another CPython target: its markers and tags, computed, not probed."""
        version = Version(python)
        major_minor = (version.major, version.minor)
        platform_list = list(platforms)
        tags = [
            *cpython_tags(major_minor, platforms=platform_list),
            *compatible_tags(
                major_minor,
                interpreter=f"cp{version.major}{version.minor}",
                platforms=platform_list,
            ),
        ]
        machine = platform_list[0].split("_", 3)[-1] if platform_list else "x86_64"
        markers = {
            "implementation_name": "cpython",
            "implementation_version": str(version),
            "os_name": "posix",
            "platform_machine": machine,
            "platform_release": "",
            "platform_system": "Linux" if sys_platform == "linux" else sys_platform,
            "platform_version": "",
            "python_full_version": str(version),
            "platform_python_implementation": "CPython",
            "python_version": f"{version.major}.{version.minor}",
            "sys_platform": sys_platform,
        }
        return cls(markers=markers, supported_tags=tuple(tags), apk_available=apk_available)


@dataclass(frozen=True)
class PlanPolicy:
    """What the planner may choose: ``upgrade`` the requested names, use upstream, use apk.

    ipydeps never compiles: source distributions are never planned, whatever the policy.
    ``prereleases`` admits pre-releases everywhere; otherwise only where a specifier
    names one (PEP 440).
    """

    upgrade: bool = False
    upstream_allowed: bool = True
    apk_allowed: bool = True
    prereleases: bool = False
