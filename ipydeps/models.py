"""Data types at the seams between index parsing, planning and installing."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import NormalizedName
from packaging.version import Version

from .advice import Hint, Wording, python_keywords


class Route(enum.Enum):
    """Where a package comes from, fastest first: the planner takes the first route that has it."""

    APK = "apk"  # an apk from our repository, installed with apk add
    WHEEL = "wheel"  # a prebuilt wheel from our repository
    UPSTREAM = "upstream"  # a wheel from the upstream index (PyPI or a mirror), if policy allows

    @property
    def rank(self) -> int:
        """Smaller is preferred."""
        return {Route.APK: 0, Route.WHEEL: 1, Route.UPSTREAM: 2}[self]


@dataclass(frozen=True)
class StoredCopy:
    """A repository's uncompressed copy of a wheel (same members, every one stored).

    Offered beside a wheel by our repository server (the ``_ipydeps-stored`` key of its
    PEP 691 page): bigger to download, but its files go to disk as they arrive, with no
    inflating. ``sha256`` comes from the same index page as the wheel's own, and so does
    ``outline_sha256`` (``ipydeps.formats.outline``) when the server gives it: then the
    copy is checked by its outline, each byte hashed once, instead of by ``sha256``.
    """

    url: str
    sha256: str
    size: int
    outline_sha256: str | None = None


@dataclass(frozen=True)
class Candidate:
    """One installable file (an apk or a wheel) offered by an index for one project version.

    Every index format (APKINDEX, PEP 691 JSON, PEP 503 HTML) parses straight into
    this type. ``name`` is the canonical Python project name, also for apks (an apk
    stands for the Python distribution it carries, e.g. py3-numpy for numpy).
    """

    name: NormalizedName
    version: Version
    route: Route
    url: str
    filename: str
    sha256: str | None = None  # wheels: from the index, checked before install
    size: int | None = None
    requires_python: str | None = None
    # PEP 658/714: URL of the wheel's METADATA, served beside it, when the index says so.
    metadata_url: str | None = None
    # PEP 658/714: sha256 of that METADATA file, when the index gives one; checked on read.
    metadata_sha256: str | None = None
    # PEP 508 Requires-Dist strings once known (from METADATA, or mapped from apk depends).
    requires_dist: tuple[str, ...] | None = None
    # apk only: the package name and full apk version (e.g. "py3-numpy", "2.3.5-r0").
    apk_name: str | None = None
    apk_version: str | None = None
    # apk only: the Python (X.Y) the apk is built for, from its ``python3~X.Y`` dependency;
    # its modules sit in /usr/lib/pythonX.Y, which no other Python imports from.
    apk_python: str | None = None
    # apk only: the APKINDEX ``C:`` checksum of that package (what a notebook's lock records).
    apk_checksum: str | None = None
    # Wheels only: the wheel's tags are checked against the interpreter when listing.
    yanked: bool = False
    # Wheels only: the repository's stored copy of this wheel, when it offers one.
    stored: StoredCopy | None = None

    @property
    def is_wheel(self) -> bool:
        """True for a ``.whl`` file (installable by the wheel installer)."""
        return self.filename.endswith(".whl")

    @property
    def is_sdist(self) -> bool:
        """True for a source distribution: recorded to explain plans, never installed."""
        return self.filename.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz"))

    @property
    def is_apk(self) -> bool:
        """True for an Alpine package."""
        return self.route is Route.APK


@dataclass(frozen=True)
class Request:
    """A requirement as the user wrote it, and as parsed by ``packaging``."""

    text: str
    requirement: Requirement

    @property
    def name(self) -> str:
        """The project name as written."""
        return self.requirement.name


class StepAction(enum.Enum):
    """What a plan step does."""

    INSTALL = "install"
    UPGRADE = "upgrade"  # replaces an installed distribution of an older version
    DOWNGRADE = "downgrade"  # replaces an installed distribution of a newer version


@dataclass(frozen=True)
class Step:
    """Install one candidate; ``reason`` says why it is in the plan (requested, or whose dep)."""

    candidate: Candidate
    action: StepAction
    reason: str
    replaces: Version | None = None


@dataclass(frozen=True)
class Skipped:
    """A requirement that needs no work, and why (satisfied, standard library, marker false).

    ``hint`` names a setting that would make it work after all (``upgrade``); an edge shows
    it in its own words (``describe``).
    """

    text: str
    reason: str
    hint: Hint | None = None

    def describe(self, wording: Wording = python_keywords) -> str:
        """Return the reason, and the hint in parentheses worded by ``wording``."""
        return self.reason + (f" ({self.hint.worded(wording)})" if self.hint else "")


@dataclass(frozen=True)
class UnbuiltBuild:
    """A build nobody has made: ``project`` (normalized) for a platform and Python.

    What a build request names (``ipydeps.request_build``); ``version`` is None when any
    version would do.
    """

    project: str
    version: str | None
    platform_tag: str  # e.g. "musllinux_1_2_x86_64"
    python: str  # "3.12"


@dataclass(frozen=True)
class Unsatisfiable:
    """A requirement no allowed source can satisfy, with the reason and what to try.

    ``unbuilt`` is set when a prebuilt build is what is missing (a build request names it).
    """

    text: str
    reason: str
    hint: Hint | None = None
    unbuilt: UnbuiltBuild | None = None
