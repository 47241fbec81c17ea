"""The legacy ``dependencies_link`` overrides file, read strictly as data: never executed.

The original ipydeps fetched a JSON file mapping package names to shell commands and ran
them. We accept the same file only where each command is a plain ``apk add <names>``,
and keep just the apk names.
"""

from __future__ import annotations

import json
import re
from typing import Any

from packaging.utils import canonicalize_name

from .errors import ConfigError

# An apk package name as aports allows it; anything else (";", "&&", "$(", options) is refused.
# Matched whole with fullmatch: ``$`` would also match before a final newline.
__all__ = ["load_dependency_links"]

_APK_NAME = re.compile(r"[a-z0-9][a-z0-9._+-]*")


def _names_from_command(command: Any, where: str, problems: list[str]) -> list[str]:
    """Return the package names of one ``apk add a b`` command, or record a problem."""
    if not isinstance(command, str):
        problems.append(f"{where}: expected a string like 'apk add py3-numpy', got {command!r}")
        return []
    words = command.split()
    if words[:2] != ["apk", "add"] or len(words) < 3:
        problems.append(f"{where}: {command!r} is not a plain 'apk add <names>'; refused, not run")
        return []
    bad = [word for word in words[2:] if not _APK_NAME.fullmatch(word)]
    if bad:
        problems.append(
            f"{where}: {command!r} is refused, not run: {', '.join(map(repr, bad))} "
            "are not apk package names (options, shell syntax and versions are refused)"
        )
        return []
    return words[2:]


def _checked_names(names: list[Any], where: str, problems: list[str]) -> list[str]:
    """``names`` if every one is a plain apk name, else [] with a problem recorded."""
    bad = [name for name in names if not (isinstance(name, str) and _APK_NAME.fullmatch(name))]
    if bad:
        problems.append(
            f"{where}: {', '.join(map(repr, bad))} are not apk package names "
            "(options, shell syntax and versions are refused)"
        )
        return []
    return [str(name) for name in names]


def _parse(json_text: str) -> Any:
    """Return the JSON document; raise ``ConfigError`` for bad or too deeply nested JSON."""
    try:
        return json.loads(json_text)
    except RecursionError:  # nested deeper than the parser's stack: hostile, not a bug
        raise ConfigError(
            "The dependency links file is nested too deeply to be read",
            hint='write it as {"numpy": {"apk": ["py3-numpy"]}}',
        ) from None
    except ValueError as error:
        raise ConfigError(
            f"The dependency links file is not valid JSON: {error}",
            hint='write it as {"numpy": {"apk": ["py3-numpy"]}}',
        ) from None


def load_dependency_links(json_text: str) -> dict[str, tuple[str, ...]]:
    """Map canonical project names to the apk names a legacy overrides file gives them.

    Accepted entries: ``{"numpy": ["apk add py3-numpy"]}``, ``{"numpy": "apk add
    py3-numpy"}`` and ``{"numpy": {"apk": ["py3-numpy"]}}``. Nothing is executed.

    Raises ``ConfigError`` listing every entry that is not valid JSON of those shapes or
    whose command is anything but ``apk add <names>`` (pipes, ``&&``, other programs, options).
    """
    document = _parse(json_text)
    if not isinstance(document, dict):
        raise ConfigError(
            "The dependency links file must be a JSON object mapping project names to apks",
            hint='write it as {"numpy": {"apk": ["py3-numpy"]}}',
        )
    problems: list[str] = []
    links: dict[str, tuple[str, ...]] = {}
    for project, entry in document.items():
        where = f"entry {project!r}"
        names: list[str] = []
        if isinstance(entry, str):
            names = _names_from_command(entry, where, problems)
        elif isinstance(entry, list):
            for command in entry:
                names += _names_from_command(command, where, problems)
        elif isinstance(entry, dict) and set(entry) == {"apk"} and isinstance(entry["apk"], list):
            names = _checked_names(entry["apk"], where, problems)
        else:
            problems.append(
                f"{where}: expected a list of 'apk add ...' strings or {{\"apk\": [...]}}"
            )
        if names:
            links[canonicalize_name(project)] = tuple(names)
    if problems:
        raise ConfigError(
            "Refused the dependency links file (it is read as data, never run):\n"
            + "\n".join(f"  - {problem}" for problem in problems),
            hint='only plain apk names are accepted, e.g. {"numpy": {"apk": ["py3-numpy"]}}',
        )
    return links
