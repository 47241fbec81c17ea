"""Parse and vet requirement strings with ``packaging``: nothing the user typed is ever run.

One string is one requirement (``pip('scipy')``); the ``%pip`` magic splits its own
command line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .errors import InvalidRequirementError
from .models import Request, Skipped
from .own_names import shadowing_problem

# Longer strings are not requirements anyone types; refusing them keeps messages readable.
__all__ = [
    "MAX_LENGTH",
    "is_standard_library",
    "marker_applies",
    "parse_requirements",
    "partition_requests",
]

MAX_LENGTH = 500

# Names that are standard library modules but also real, installable PyPI projects that
# backport newer versions ("pip install typing_extensions" is not stdlib; these are).
_INSTALLABLE_BACKPORTS = frozenset({"dataclasses", "enum34", "importlib-metadata", "typing"})

_FILE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".egg", ".apk", ".txt")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_standard_library(name: str) -> bool:
    """Tell whether ``name`` is a standard library module of this interpreter (not installable).

    Compares canonical names, so ``Tkinter``-style case or ``_``/``-`` differences match.
    """
    canonical = canonicalize_name(name)
    if canonical in _INSTALLABLE_BACKPORTS:
        return False
    return canonical in _STANDARD_LIBRARY


# Canonicalized once: the planner asks about every dependency it meets.
_STANDARD_LIBRARY = frozenset(
    canonicalize_name(module) for module in sys.stdlib_module_names if not module.startswith("_")
)


def _policy_problem(text: str) -> str | None:
    """Why ``text`` is refused before parsing, or None; these are policy, not syntax."""
    stripped = text.strip()
    if not stripped:
        return "empty requirement"
    if len(stripped) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters"
    if any(ord(char) < 32 or ord(char) == 127 for char in stripped):
        return "contains control characters (a newline or similar)"
    if stripped.startswith("-"):
        return (
            "pip options such as -r, -e or --index-url are not requirements; "
            "run pip directly for those (e.g. !python -m pip install -r requirements.txt)"
        )
    if _URL.match(stripped):
        return "URLs are refused by policy: install from the configured repository by name"
    if stripped.startswith((".", "/", "~")) or "\\" in stripped:
        return "local paths are refused by policy: install from the configured repository by name"
    return None


def _parsed_problem(text: str, requirement: Requirement) -> str | None:
    """Why a syntactically valid requirement is still refused, or None."""
    if requirement.url is not None:
        return (
            f"direct references ({requirement.name} @ URL) are refused by policy: "
            "ipydeps installs only from the configured repositories"
        )
    if re.search(r"\(\s*\)", text):
        # PEP 508 allows "name (>=1)"; empty parentheses are legal but only ever a typo or code.
        return "looks like code, not a requirement (empty parentheses)"
    if requirement.name.lower().endswith(_FILE_SUFFIXES):
        return "looks like a file name; local files are refused by policy"
    return shadowing_problem(requirement.name)


def _syntax_problem(text: str, error: InvalidRequirement) -> str:
    """Explain a ``packaging`` parse error readably, naming the common mistakes."""
    parts = text.split()
    if len(parts) > 1 and all(_policy_problem(part) is None for part in parts):
        try:
            for part in parts:
                Requirement(part)
        except InvalidRequirement:
            pass
        else:
            listed = ", ".join(repr(part) for part in parts)
            return f"one string holds several requirements; pass a list instead: [{listed}]"
    first_line = str(error).splitlines()[0] if str(error) else "not a PEP 508 requirement"
    return f"not a valid PEP 508 requirement ({first_line})"


def parse_requirements(items: str | Iterable[str]) -> list[Request]:
    """Parse every requirement string, or refuse them all.

    ``items`` is one requirement string or an iterable of them; each string is one
    requirement. Returns one ``Request`` per string, in order.

    Raises ``InvalidRequirementError`` naming each bad string and why (syntax errors,
    URLs and direct references, local paths and files, pip options, empty strings):
    all problems are reported at once, and nothing is returned, so nothing runs.
    """
    texts = [items] if isinstance(items, str) else list(items)
    problems: dict[str, str] = {}
    requests: list[Request] = []
    if not texts:
        raise InvalidRequirementError({"": "no requirements given"})
    for text in texts:
        if not isinstance(text, str):
            problems[repr(text)] = f"requirements must be strings, not {type(text).__name__}"
            continue
        problem = _policy_problem(text)
        if problem is not None:
            problems[text] = problem
            continue
        try:
            requirement = Requirement(text.strip())
        except InvalidRequirement as error:
            problems[text] = _syntax_problem(text, error)
            continue
        problem = _parsed_problem(text, requirement)
        if problem is not None:
            problems[text] = problem
            continue
        requests.append(Request(text=text.strip(), requirement=requirement))
    if problems:
        raise InvalidRequirementError(problems)
    return requests


def marker_applies(
    marker: Marker | None, markers: Mapping[str, str], extras: Iterable[str]
) -> bool:
    """Tell whether ``marker`` holds in ``markers`` for no extra or for any of ``extras``."""
    if marker is None:
        return True
    for extra in ("", *sorted(extras)):
        environment = dict(markers)
        environment["extra"] = extra
        if marker.evaluate(environment):
            return True
    return False


def partition_requests(
    requests: Iterable[Request], markers: Mapping[str, str]
) -> tuple[list[Request], list[Skipped]]:
    """Split requests into those to plan and those skipped (standard library, marker false)."""
    kept: list[Request] = []
    skipped: list[Skipped] = []
    for request in requests:
        requirement = request.requirement
        if is_standard_library(requirement.name):
            skipped.append(
                Skipped(request.text, f"{requirement.name} is part of Python's standard library")
            )
        elif not marker_applies(requirement.marker, markers, ()):
            skipped.append(
                Skipped(request.text, f"its marker ({requirement.marker}) is false here")
            )
        else:
            kept.append(request)
    return kept, skipped
