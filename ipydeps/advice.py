"""Hints that name a setting of the call, worded by the edge that shows them.

"Allow upstream" is read in a notebook, where the user writes
``ipydeps.pip(..., upstream="allow")``, and at a terminal, where it is
``python -m ipydeps install --upstream allow``. The planner does not know where it is read:
a ``Hint`` keeps the setting that would help as a ``SettingChange``, and each edge words it
with its own ``Wording`` (``python_keywords`` or ``command_flags``) when it shows the hint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "UPGRADE",
    "UPSTREAM_ALLOW",
    "Hint",
    "SettingChange",
    "Wording",
    "command_flags",
    "pip_flags",
    "python_keywords",
]

# The settings a hint may ask for: each is a keyword of ipydeps.pip() and a flag of
# ``python -m ipydeps install|plan``. A build request's value is the project to build.
HintedSetting = Literal["upgrade", "upstream", "request_build"]


@dataclass(frozen=True)
class SettingChange:
    """One setting of the call, and the value that would help."""

    setting: HintedSetting
    value: bool | str


# The settings' environment variables: IPYDEPS_UPSTREAM (settings.py reads them).
ENVIRONMENT_PREFIX = "IPYDEPS_"

UPGRADE = SettingChange("upgrade", True)
UPSTREAM_ALLOW = SettingChange("upstream", "allow")

# How an edge names a setting change: the notebook's Python keyword, the command's flag.
Wording = Callable[[SettingChange], str]


def python_keywords(change: SettingChange) -> str:
    """Word ``change`` as the keyword argument of ``ipydeps.pip()``: ``upstream="allow"``.

    A build request is its own call in a cell: ``ipydeps.request_build('scikit-learn')``.
    """
    if change.setting == "request_build":
        return f"ipydeps.request_build({change.value!r})"
    value = repr(change.value) if isinstance(change.value, bool) else f'"{change.value}"'
    return f"{change.setting}={value}"


def command_flags(change: SettingChange) -> str:
    """Word ``change`` as the flag of ``python -m ipydeps install|plan``: ``--upstream allow``."""
    if change.setting == "upgrade":
        return "-U"  # the only upgrade a hint asks for is upgrade=True
    if change.setting == "request_build":
        return "--request-build"
    return f"--{change.setting} {change.value}"


def pip_flags(change: SettingChange) -> str:
    """Word ``change`` for the pip shim (``pip install``): a flag it takes, else the environment.

    The shim takes pip's ``-U`` and ipydeps' own ``--request-build``; pip has no upstream flag.
    """
    if change.setting == "upgrade":
        return "-U"
    if change.setting == "request_build":
        return "--request-build"
    return f"{ENVIRONMENT_PREFIX}{change.setting.upper()}={change.value}"


@dataclass(frozen=True)
class Hint:
    """What to try: text with, where it helps, the setting to change in its place.

    ``str(hint)`` words it for Python (the notebook API's and ``IpydepsError.hint``'s words);
    an edge that reads otherwise calls ``worded`` with its own wording.
    """

    parts: tuple[str | SettingChange, ...]

    @classmethod
    def of(cls, *parts: str | SettingChange) -> Hint:
        """Return the hint made of ``parts``, in order: text, and settings worded in place."""
        return cls(tuple(parts))

    @classmethod
    def joined(cls, hints: Iterable[Hint], separator: str = "; ") -> Hint | None:
        """Return one hint saying each of ``hints`` once, in order; None for none."""
        parts: list[str | SettingChange] = []
        for hint in dict.fromkeys(hints):
            parts += [separator, *hint.parts] if parts else hint.parts
        return cls(tuple(parts)) if parts else None

    def worded(self, wording: Wording) -> str:
        """Return the hint's text with each setting change worded by ``wording``."""
        return "".join(part if isinstance(part, str) else wording(part) for part in self.parts)

    def __str__(self) -> str:
        return self.worded(python_keywords)
