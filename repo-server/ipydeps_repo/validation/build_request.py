"""What a build request may say: a project, an optional version, a platform and a Python (pure).

A request comes from a notebook over the network, so every field is bounded and checked
against a narrow grammar before anything is stored: the project is a PEP 508 name of
ASCII letters, digits and ``._-`` (no ``/``, ``..``, NUL or control character can pass),
stored in its PEP 503 form; the version is PEP 440, stored in normal form; the platform
is a Linux wheel platform the farm can target; the Python is ``3.X``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import ValidationError

__all__ = ["BuildRequest", "BuildState", "parse_build_request", "parse_project_name"]

MAX_PROJECT_CHARS = 100
MAX_VERSION_CHARS = 64
_PROJECT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", re.ASCII)
_PLATFORM = re.compile(r"(?:musllinux|manylinux)_[0-9]{1,2}_[0-9]{1,3}_(?:x86_64|aarch64)")
_PYTHON = re.compile(r"3\.[0-9]{1,2}")
_KEYS = frozenset({"project", "version", "platform_tag", "python"})


class BuildState(enum.StrEnum):
    """Where a request stands: the server queues it, the farm decides the rest."""

    QUEUED = "queued"  # received; the farm has not looked yet
    SCHEDULED = "scheduled"  # the farm has a recipe: its next build run takes it
    NO_RECIPE = "no recipe"  # the farm has no recipe for it: stays listed, nothing is built
    DECLINED = "declined"  # a recipe exists, but no target serves this platform/Python/version
    BUILT = "built"  # built and published
    FAILED = "failed"  # the farm tried and the build failed


@dataclass(frozen=True)
class BuildRequest:
    """One build asked for; ``version`` is "" when any version will do."""

    project: str
    version: str
    platform_tag: str
    python: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two requests the same (the queue keeps one entry per key)."""
        return (self.project, self.version, self.platform_tag, self.python)


def parse_project_name(text: object) -> str:
    """Return a project name in normalized form.

    Raises:
        ValidationError: not a string, empty, too long, or not a PEP 508 name.
    """
    if not isinstance(text, str):
        raise ValidationError("project", ["it must be a string"])
    if len(text) > MAX_PROJECT_CHARS or _PROJECT.fullmatch(text) is None:
        raise ValidationError(
            f"project {text[:MAX_PROJECT_CHARS]!r}",
            [
                f"a project name is 1-{MAX_PROJECT_CHARS} ASCII letters, digits, '.', '_' "
                "or '-', starting and ending with a letter or digit"
            ],
        )
    return canonicalize_name(text)


def parse_build_request(document: Any) -> BuildRequest:
    """Return the request a JSON body describes.

    Raises:
        ValidationError: listing every problem (unknown keys, a bad field).
    """
    if not isinstance(document, dict):
        raise ValidationError("build request", ["it must be a JSON object"])
    problems = [f"unknown key {key!r}" for key in sorted(map(str, set(document) - _KEYS))]
    project = ""
    try:
        project = parse_project_name(document.get("project"))
    except ValidationError as error:
        problems.append(error.message)
    version = _version(document.get("version"), problems)
    platform = document.get("platform_tag")
    if not isinstance(platform, str) or _PLATFORM.fullmatch(platform) is None:
        problems.append(
            "platform_tag must be a Linux wheel platform such as musllinux_1_2_x86_64 "
            "(musllinux or manylinux, x86_64 or aarch64)"
        )
    python = document.get("python")
    if not isinstance(python, str) or _PYTHON.fullmatch(python) is None:
        problems.append("python must be a Python version such as '3.12'")
    if problems:
        raise ValidationError("build request", problems)
    return BuildRequest(project, version, str(platform), str(python))


def _version(value: object, problems: list[str]) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > MAX_VERSION_CHARS:
        problems.append(f"version must be a string of at most {MAX_VERSION_CHARS} characters")
        return ""
    try:
        return str(Version(value))
    except InvalidVersion:
        problems.append(f"version {value!r} is not a PEP 440 version")
        return ""
