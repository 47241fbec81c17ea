"""Hand a pip command ipydeps does not carry out to the real pip, sealed when upstream is off.

``%pip``, ``!pip`` and the pip shim run the real pip for what ipydeps does not take
(``pip list``, ``pip install --no-deps ...``). With ``upstream = "deny"`` (air-gapped),
that pip must not reach any index but ours, whatever this machine's pip settings say:
it runs with our repository's ``/simple/`` as its only index (``PIP_INDEX_URL``; no
repository configured: ``PIP_NO_INDEX``), no configuration file (``PIP_CONFIG_FILE`` is
the null device), and none of the machine's ``PIP_*`` variables (an extra index or
find-links there would leak) but those that cannot name a package source (``PIP_CERT``
for a private CA, timeouts, the proxy, the cache: ``KEPT_PIP_VARIABLES``). A command
line that names another source is refused before pip runs: ``--extra-index-url``,
``--index-url``/``-i`` other than ours, remote ``--find-links``/``-f``, direct URL
requirements, ``--isolated`` (pip would then ignore the variables above), and the same
inside requirement and constraint files it names.
Local paths (a wheel file, a project directory, a find-links directory) stay allowed:
they reach no network. Either way ``notice`` says what happened.

With upstream allowed, nothing changes: pip runs as the machine configures it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from .credentials import redact, repository_access
from .errors import InvalidRequirementError, IpydepsError
from .formats.wire import SIMPLE_PATH
from .own_names import shadowing_problem
from .settings import Settings

# Options whose value is another place to find packages, each as written on a command
# line or in a requirements file; "-i" and "-f" also come glued to their value.
_INDEX_OPTIONS = ("--index-url", "-i")
_EXTRA_OPTIONS = ("--extra-index-url",)
_FIND_OPTIONS = ("--find-links", "-f")
_FILE_OPTIONS = ("--requirement", "-r", "--constraint", "-c")
# Options whose value is a URL that is not a package source.
_OTHER_URL_OPTIONS = ("--proxy", "--cert", "--client-cert", "--log", "--cache-dir")
_MAX_FILE_DEPTH = 10  # requirement files that name others, as pip allows
__all__ = ["KEPT_PIP_VARIABLES", "AirGapError", "Handoff", "plan_handoff"]

# The machine's pip variables a sealed pip keeps: none can add a place to find packages.
KEPT_PIP_VARIABLES = frozenset(
    {
        "PIP_CERT",
        "PIP_CLIENT_CERT",
        "PIP_TIMEOUT",
        "PIP_DEFAULT_TIMEOUT",
        "PIP_RETRIES",
        "PIP_PROXY",
        "PIP_TRUSTED_HOST",
        "PIP_CACHE_DIR",
        "PIP_NO_CACHE_DIR",
        "PIP_BREAK_SYSTEM_PACKAGES",
        "PIP_ROOT_USER_ACTION",
        "PIP_PROGRESS_BAR",
        "PIP_NO_COLOR",
        "PIP_NO_INPUT",
        "PIP_EXISTS_ACTION",
        "PIP_KEYRING_PROVIDER",
    }
)


class AirGapError(IpydepsError):
    """A pip command would reach another package source while upstream is off."""


@dataclass(frozen=True)
class Handoff:
    """How to run the real pip: its arguments, its environment, and what to tell the user."""

    args: tuple[str, ...]
    environ: Mapping[str, str]
    notice: str | None = None  # None: say nothing (upstream allowed, as before)


def plan_handoff(args: Sequence[str], *, settings: Settings, environ: Mapping[str, str]) -> Handoff:
    """Return how to run ``pip <args>`` under ``settings``, from the environment ``environ``.

    Raises ``AirGapError`` when upstream is off and the command names another package
    source (every such source is listed at once), and ``InvalidRequirementError`` for an
    install of a project that would replace ipydeps itself, whatever the policy.
    """
    shadowing = _shadowing_requirements(list(args))
    if shadowing:
        raise InvalidRequirementError(shadowing)
    if settings.upstream_allowed:
        return Handoff(tuple(args), dict(environ))
    # pip takes credentials in the index URL (and from ~/.netrc): ours keep theirs.
    ours = _simple_url(settings.repository_url) if settings.repository_url else None
    clean_ours = _without_credentials(ours) if ours else None
    problems = _foreign_sources(list(args), clean_ours, Path.cwd(), depth=0)
    command = redact(shlex.join(["pip", *args]))
    if problems:
        raise AirGapError(
            f"Refused `{command}`: upstream is off (air-gapped), and it would reach "
            f"another package source: {'; '.join(dict.fromkeys(problems))}",
            hint=f"install from our repository only ({redact(clean_ours or 'none configured')}"
            "): drop those options; or allow upstream (IPYDEPS_UPSTREAM=allow) where "
            "this setup may reach it",
        )
    sealed = {
        key: value
        for key, value in environ.items()
        if not key.startswith("PIP_") or key in KEPT_PIP_VARIABLES
    }
    sealed["PIP_CONFIG_FILE"] = os.devnull
    sealed["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if ours is not None:
        sealed["PIP_INDEX_URL"] = ours
        where = f"with our repository ({redact(ours)}) as its only index"
    else:
        sealed["PIP_NO_INDEX"] = "1"
        where = "with no index at all (no repository is configured)"
    return Handoff(
        tuple(args),
        sealed,
        notice=(
            f"ipydeps: upstream is off (air-gapped): running `{command}` with the real pip "
            f"{where}; this machine's pip configuration, other indexes and find-links are "
            "not used"
        ),
    )


def _shadowing_requirements(words: list[str]) -> dict[str, str]:
    """Return the requirements of a ``pip install`` that would replace ipydeps, and why."""
    if "install" not in words:
        return {}
    problems: dict[str, str] = {}
    for _option, value, word in _words_with_values(words):
        if value is not None or word.startswith("-"):
            continue
        try:
            name = Requirement(word).name
        except InvalidRequirement:
            continue  # not a requirement: pip reports it itself
        problem = shadowing_problem(name)
        if problem is not None:
            problems[word] = problem
    return problems


def _simple_url(base: str) -> str:
    """Return the PEP 503 index of a repository URL (``<base>/simple/``)."""
    trimmed = base.rstrip("/")
    return (trimmed if trimmed.endswith(f"/{SIMPLE_PATH}") else f"{trimmed}/{SIMPLE_PATH}") + "/"


def _without_credentials(url: str) -> str:
    return repository_access(url, token=None, environ={}).url or url


def _same_index(url: str, ours: str | None) -> bool:
    """Tell whether ``url`` (a base or ``/simple/`` URL, credentials or not) is our index."""
    return ours is not None and _without_credentials(_simple_url(url)) == ours


def _words_with_values(words: list[str]) -> Iterable[tuple[str, str | None, str]]:
    """Yield (option, value, word) for valued options we look at, and (word, None, word)."""
    valued = (*_INDEX_OPTIONS, *_EXTRA_OPTIONS, *_FIND_OPTIONS, *_FILE_OPTIONS, *_OTHER_URL_OPTIONS)
    index = 0
    while index < len(words):
        word = words[index]
        option, equals, inline = word.partition("=")
        if word in valued:
            value = words[index + 1] if index + 1 < len(words) else ""
            index += 2
            yield word, value, word
            continue
        index += 1
        if equals and option.startswith("--") and option in valued:
            yield option, inline, word
        elif word[:2] in ("-i", "-f", "-r", "-c") and len(word) > 2 and not word.startswith("--"):
            yield word[:2], word[2:], word
        else:
            yield word, None, word


def _foreign_sources(words: list[str], ours: str | None, base: Path, *, depth: int) -> list[str]:
    """Say what in ``words`` (a command line or a requirements file's words) leaves our index."""
    problems: list[str] = []
    for option, value, word in _words_with_values(words):
        if value is None:
            if word in ("--isolated",):
                problems.append("--isolated makes pip ignore the settings that seal it")
            elif _is_remote(word):
                problems.append(f"{redact(word)} is a URL")
            continue
        if option in _INDEX_OPTIONS and not _same_index(value, ours):
            problems.append(f"{option} {redact(value)} is not our repository")
        elif option in _EXTRA_OPTIONS:
            problems.append(f"{option} {redact(value)} adds another index")
        elif option in _FIND_OPTIONS and _is_remote(value):
            problems.append(f"{option} {redact(value)} is a remote place to find packages")
        elif option in _FILE_OPTIONS:
            problems += _file_sources(base / value, ours, depth=depth)
    return problems


def _file_sources(path: Path, ours: str | None, *, depth: int) -> list[str]:
    """Say what a requirements or constraints file (and those it names) points elsewhere."""
    if depth >= _MAX_FILE_DEPTH:
        return [f"{path} nests requirement files deeper than {_MAX_FILE_DEPTH}"]
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []  # pip reports the missing file itself; it reaches no network
    words: list[str] = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            # One requirement per line (spaces allowed in it), or options and their values.
            words += line.split() if line.startswith("-") else [line]
    found = _foreign_sources(words, ours, path.parent, depth=depth + 1)
    return [f"{problem} (in {path})" for problem in found]


def _is_remote(text: str) -> bool:
    """Tell whether a word names a network location (a URL other than ``file:``)."""
    scheme, separator, _ = text.partition("://")
    if not separator:
        return False
    scheme = scheme.rsplit("@", 1)[-1].strip().rsplit(" ", 1)[-1].lower()
    return scheme != "file"
