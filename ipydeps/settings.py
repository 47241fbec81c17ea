"""The one frozen ``Settings`` of the notebook library, built and validated in ``load_config``.

Precedence, lowest first: defaults < system TOML < user TOML < ``IPYDEPS_*`` environment
variables < keyword arguments. The edge passes ``os.environ``; this module reads no
environment. The ``dependency_links`` key (or ``IPYDEPS_DEPENDENCY_LINKS``) names a legacy
overrides file, read as data only (``ipydeps.dependency_links``); its apk names fill the
gaps of ``apk_map``.

Keys (TOML, ``[profiles.<name>]`` tables, ``IPYDEPS_<KEY>`` variables, keyword arguments):
repository_url, upstream ("allow"/"deny"), upstream_url, apk ("auto"/"never"),
apk_repository ("<branch>/<repo>"), policy ("prebuilt-only"), jobs, retries, timeout,
deadline (seconds a silent server may cost in all, retries included),
apk_map (project -> apk name; ``IPYDEPS_APK_MAP="numpy=py3-numpy,..."``), dependency_links,
stored_copies ("auto"/"always"/"never": download a repository's uncompressed copy of a
wheel, see ``ipydeps.transfer``), max_page_bytes (the most an index page, metadata file or
APKINDEX may hold), max_download_bytes (the most a wheel whose index gives no size may hold),
repository_token (sent as ``Authorization: Bearer`` to the repository only, see
``ipydeps.credentials``; never shown), restore_lock (a kernel started for a notebook
restores the notebook's lock file; ``IPYDEPS_RESTORE_LOCK=0`` turns it off), shared_cache
(a directory of verified installed trees shared by a host's runtimes, see
``ipydeps.sharedcache``; unset: off).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from packaging.utils import canonicalize_name

from .credentials import redact
from .dependency_links import load_dependency_links
from .errors import ConfigError
from .settings_values import (
    DEFAULTS,
    ApkPolicy,
    BuildPolicy,
    StoredCopies,
    UpstreamPolicy,
    check_value,
)

__all__ = ["Settings", "load_config", "load_dependency_links", "user_config_path"]

SYSTEM_CONFIG_PATH = Path("/etc/ipydeps/config.toml")

ENVIRONMENT_VARIABLES = {
    "repository_url": "IPYDEPS_REPOSITORY_URL",
    "upstream": "IPYDEPS_UPSTREAM",
    "upstream_url": "IPYDEPS_UPSTREAM_URL",
    "apk": "IPYDEPS_APK",
    "apk_repository": "IPYDEPS_APK_REPOSITORY",
    "policy": "IPYDEPS_POLICY",
    "jobs": "IPYDEPS_JOBS",
    "retries": "IPYDEPS_RETRIES",
    "timeout": "IPYDEPS_TIMEOUT",
    "deadline": "IPYDEPS_DEADLINE",
    "apk_map": "IPYDEPS_APK_MAP",
    "dependency_links": "IPYDEPS_DEPENDENCY_LINKS",
    "stored_copies": "IPYDEPS_STORED_COPIES",
    "max_page_bytes": "IPYDEPS_MAX_PAGE_BYTES",
    "max_download_bytes": "IPYDEPS_MAX_DOWNLOAD_BYTES",
    "repository_token": "IPYDEPS_REPOSITORY_TOKEN",
    "restore_lock": "IPYDEPS_RESTORE_LOCK",
    "shared_cache": "IPYDEPS_SHARED_CACHE",
}
CONFIG_VARIABLE = "IPYDEPS_CONFIG"


@dataclass(frozen=True)
class Settings:
    """Effective configuration; ``provenance[key]`` names the source of each value."""

    repository_url: str | None
    upstream: UpstreamPolicy
    upstream_url: str
    apk: ApkPolicy
    apk_repository: str
    policy: BuildPolicy
    jobs: int
    retries: int
    timeout: float
    apk_map: Mapping[str, str]
    # Seconds: the most ipydeps waits for a silent server, across retries: to read an
    # index page or metadata file whole, or for the next byte of a download (retries.py).
    deadline: float = DEFAULTS["deadline"]
    # A legacy overrides file (JSON, read as data); its apk names fill gaps in apk_map.
    dependency_links: str | None = None
    # Whether to download a repository's stored (uncompressed) copy of a wheel when it
    # offers one: "auto" tries it from repositories on this machine or a private network
    # and keeps it while the network outpaces the install (ipydeps.transfer).
    stored_copies: StoredCopies = "auto"
    # Bounds on what a repository can make this process hold or write (see docs/client.md):
    # an index page, a metadata file or an APKINDEX is read into memory up to this size...
    max_page_bytes: int = DEFAULTS["max_page_bytes"]
    # ...and a wheel whose index announces no size is downloaded up to this size (one that
    # does announce it is refused past that size).
    max_download_bytes: int = DEFAULTS["max_download_bytes"]
    # Sent as "Authorization: Bearer" to the repository's origin only (ipydeps.credentials).
    repository_token: str | None = None
    restore_lock: bool = True
    # A directory shared by the runtimes of one host: wheels installed from stored copies
    # are kept there by content, and taken from there once checked against the index's
    # outline sha256 (ipydeps.sharedcache). None: off.
    shared_cache: str | None = None
    profile: str | None = None
    provenance: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "apk_map", MappingProxyType(dict(self.apk_map)))
        object.__setattr__(self, "provenance", MappingProxyType(dict(self.provenance)))

    @property
    def upstream_allowed(self) -> bool:
        """False in air-gapped setups (``upstream = "deny"``)."""
        return self.upstream == "allow"

    @property
    def apk_allowed(self) -> bool:
        """False when ``apk = "never"``; "auto" means: where apk can run."""
        return self.apk != "never"

    def describe(self) -> str:
        """One line per setting: ``key = value    (source)``; secrets are shown as ``***``."""
        lines = [f"ipydeps configuration (profile: {self.profile or 'none'})"]
        for key in DEFAULTS:
            value = getattr(self, key)
            shown = dict(value) if key == "apk_map" else value
            if key == "repository_token" and value:
                shown = "***"
            text = f"{redact(repr(shown)):<40}"
            lines.append(f"  {key:<18} = {text} ({self.provenance.get(key, 'default')})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        """Show the fields as a dataclass does, with the token and URL credentials hidden."""
        values = ", ".join(
            f"{name}={'***' if name == 'repository_token' and value else value!r}"
            for name, value in vars(self).items()
        )
        return redact(f"Settings({values})")


def user_config_path(environ: Mapping[str, str]) -> Path | None:
    """``$XDG_CONFIG_HOME/ipydeps/config.toml``, else ``$HOME/.config/ipydeps/config.toml``."""
    if environ.get("XDG_CONFIG_HOME"):
        return Path(environ["XDG_CONFIG_HOME"]) / "ipydeps" / "config.toml"
    if environ.get("HOME"):
        return Path(environ["HOME"]) / ".config" / "ipydeps" / "config.toml"
    return None


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    """Return the TOML table in ``path`` ({} if the file does not exist), collecting problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        problems.append(f"{path}: cannot be read ({error.strerror})")
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        problems.append(f"{path}: not valid TOML ({error}); fix the syntax or remove the file")
        return {}
    except RecursionError:  # arrays or tables nested deeper than the parser's stack
        problems.append(f"{path}: nested too deeply to be read; flatten it or remove the file")
        return {}


def _unknown_key(key: str, where: str) -> str:
    import difflib  # only on this error path

    close = difflib.get_close_matches(key, list(DEFAULTS), n=1)
    suggestion = (
        f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(DEFAULTS)}"
    )
    return f"{where}: unknown key {key!r}{suggestion}"


def _layer_from_table(
    table: Mapping[str, Any], where: str, problems: list[str]
) -> dict[str, tuple[Any, str]]:
    """Keys of one TOML table as (value, source) pairs; unknown keys are problems."""
    layer = {}
    for key, value in table.items():
        if key == "profiles":
            continue
        if key not in DEFAULTS:
            problems.append(_unknown_key(key, where))
            continue
        layer[key] = (value, where)
    return layer


def _parse_apk_map_variable(text: str) -> dict[str, str] | str:
    """``numpy=py3-numpy,scipy=py3-scipy`` as a dict, or the reason it is malformed."""
    mapping = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        project, sep, apk_name = item.partition("=")
        if not sep or not project.strip() or not apk_name.strip():
            return f"{item!r} is not project=apk-name"
        mapping[project.strip()] = apk_name.strip()
    return mapping


def _environment_layer(
    environ: Mapping[str, str], problems: list[str]
) -> dict[str, tuple[Any, str]]:
    layer: dict[str, tuple[Any, str]] = {}
    for key, variable in ENVIRONMENT_VARIABLES.items():
        if variable not in environ:
            continue
        raw: Any = environ[variable]
        if key == "apk_map":
            raw = _parse_apk_map_variable(raw)
            if isinstance(raw, str):
                problems.append(
                    f"env {variable}: {raw}; write e.g. numpy=py3-numpy,scipy=py3-scipy"
                )
                continue
        layer[key] = (raw, f"env {variable}")
    return layer


def _coerce(key: str, value: Any, source: str, problems: list[str]) -> Any:
    """Check and convert one value; strings from the environment become numbers here."""
    converted, problem = check_value(key, value)
    if problem is not None:
        problems.append(f"{source}: {problem}")
    return converted


def _file_layers(
    paths: list[Path | None], name: str | None, problems: list[str]
) -> tuple[list[dict[str, tuple[Any, str]]], list[str]]:
    """Return the layers of the config files (each file, then its profile) and all profile names."""
    layers = []
    profiles_seen: list[str] = []
    for path in paths:
        if path is None:
            continue
        table = _read_toml(path, problems)
        layers.append(_layer_from_table(table, str(path), problems))
        profiles = table.get("profiles", {})
        if not isinstance(profiles, dict):
            problems.append(f"{path}: [profiles] must be a table of tables")
            continue
        profiles_seen += profiles
        if name is not None and name in profiles:
            where = f"{path} [profiles.{name}]"
            layers.append(_layer_from_table(profiles[name], where, problems))
    return layers, profiles_seen


def _merge_dependency_links(
    apk_map: dict[str, str],
    path: str,
    effective: dict[str, tuple[Any, str]],
    problems: list[str],
) -> dict[str, str]:
    """Add each project's first apk from the links file where ``apk_map`` says nothing.

    The first name is the apk that carries the project; further names in an entry (e.g.
    ``openblas``) are that apk's own dependencies, which apk installs by itself.
    """
    source = effective["dependency_links"][1]
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        problems.append(f"{source}: dependency_links file {path} cannot be read ({error.strerror})")
        return apk_map
    try:
        links = load_dependency_links(text)
    except ConfigError as error:
        problems.append(f"{source}: {path}: {error.message}")
        return apk_map
    known = {canonicalize_name(name) for name in apk_map}
    added = {name: apks[0] for name, apks in links.items() if name not in known}
    if added:
        previous = effective["apk_map"][1]
        effective["apk_map"] = (apk_map, f"{previous} + dependency_links {path}")
    return {**apk_map, **added}


def load_config(
    *,
    name: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str],
    system_path: Path | None = SYSTEM_CONFIG_PATH,
    user_path: Path | None = None,
) -> Settings:
    """Build the effective ``Settings`` from every source, validating all values at once.

    ``name`` selects a ``[profiles.<name>]`` table (default: ``IPYDEPS_CONFIG`` if it is
    not a path). ``IPYDEPS_CONFIG`` holding a path (with ``/`` or ending ``.toml``) reads
    that file in place of the user file. ``user_path`` None means the XDG location from
    ``environ``. ``overrides`` are keyword arguments; None values are ignored.

    Raises ``ConfigError`` naming every bad file, key and value, with how to fix it.
    """
    problems: list[str] = []
    config_variable = environ.get(CONFIG_VARIABLE, "").strip()
    if config_variable and ("/" in config_variable or config_variable.endswith(".toml")):
        user_path = Path(config_variable)
        if not user_path.is_file():
            problems.append(f"env {CONFIG_VARIABLE}: {user_path} does not exist")
    else:
        name = name or config_variable or None
        user_path = user_path or user_config_path(environ)
    layers: list[dict[str, tuple[Any, str]]] = [
        {key: (value, "default") for key, value in DEFAULTS.items()}
    ]
    file_layers, profiles_seen = _file_layers([system_path, user_path], name, problems)
    layers += file_layers
    if name is not None and name not in profiles_seen:
        known = ", ".join(sorted(set(profiles_seen))) or "none defined"
        problems.append(f"profile {name!r} is not defined in any config file (profiles: {known})")
    layers.append(_environment_layer(environ, problems))
    argument_layer = {}
    for key, value in (overrides or {}).items():
        if key not in DEFAULTS:
            problems.append(_unknown_key(key, "argument"))
        elif value is not None:
            argument_layer[key] = (value, "argument")
    layers.append(argument_layer)

    effective: dict[str, tuple[Any, str]] = {}
    for layer in layers:
        effective.update(layer)
    values = {
        key: _coerce(key, value, source, problems) for key, (value, source) in effective.items()
    }
    if values.get("dependency_links"):
        values["apk_map"] = _merge_dependency_links(
            values["apk_map"], values["dependency_links"], effective, problems
        )
    if problems:
        raise ConfigError(
            "Invalid ipydeps configuration:\n"
            + "\n".join(f"  - {problem}" for problem in problems),
            hint="fix the values above; Settings.describe() shows where each setting comes from",
        )
    return Settings(
        **values,
        profile=name,
        provenance={key: source for key, (_, source) in effective.items()},
    )
