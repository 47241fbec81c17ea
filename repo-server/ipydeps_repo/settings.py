"""The server's one frozen Settings object, built and checked in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError
from .store.layout import DEFAULT_MAX_UPLOAD_BYTES, DataLayout
from .validation.wheel_archive import InflateLimits

DATA_ENV = "IPYDEPS_REPO_DATA"
STORED_COPIES_ENV = "IPYDEPS_REPO_STORED_COPIES"
DEFAULT_DATA_DIR = "ipydeps-repo-data"
# A client that stops sending a body for this long is cut off (its temp file removed).
DEFAULT_BODY_TIMEOUT_SECONDS = 60.0
_SIZE_RE = re.compile(r"(?P<number>\d+)\s*(?P<unit>[kmg]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SWITCH = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to run, validated.

    ``stored_copies``: write a ``.stored`` copy beside each wheel and advertise it in the
    PEP 691 pages (about 3x the disk of a compiled wheel; turn it off for a repository
    whose clients are far away and would rather inflate than download more).
    ``inflate_limits``: how far an uploaded wheel may inflate (zip bomb guard).
    ``body_timeout``: seconds an upload may go without sending a byte of its body.
    """

    data: DataLayout
    host: str = "127.0.0.1"
    port: int = 8080
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    public_url: str | None = None
    default_branch: str = "v3.22"
    default_repo: str = "sci"
    default_arch: str = "x86_64"
    access_log: bool = False
    stored_copies: bool = True
    inflate_limits: InflateLimits = InflateLimits()
    body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$IPYDEPS_REPO_DATA`` if set, else ``./ipydeps-repo-data``."""
    env = os.environ if environ is None else environ
    value = env.get(DATA_ENV, "").strip()
    return Path(value) if value else Path(DEFAULT_DATA_DIR)


def stored_copies_enabled(flag: bool | None, environ: Mapping[str, str] | None = None) -> bool:
    """Return ``--[no-]stored-copies`` if given, else ``$IPYDEPS_REPO_STORED_COPIES``, else True.

    Raises:
        ConfigurationError: the variable holds something other than on/off, 1/0,
            true/false or yes/no.
    """
    if flag is not None:
        return flag
    env = os.environ if environ is None else environ
    value = env.get(STORED_COPIES_ENV, "").strip().lower()
    if not value:
        return True
    if value not in _SWITCH:
        raise ConfigurationError(
            f"${STORED_COPIES_ENV} is {env[STORED_COPIES_ENV]!r}, not on or off",
            hint=f"set {STORED_COPIES_ENV}=off (or 0) to stop making stored copies, on (or 1) "
            "to make them",
        )
    return _SWITCH[value]


def parse_size(text: str) -> int:
    """Parse ``512M``, ``2G``, ``100k`` or a plain byte count.

    Raises:
        ConfigurationError: for anything else, or a size of zero.
    """
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None or int(match["number"]) == 0:
        raise ConfigurationError(
            f"invalid size {text!r}", hint="use a positive number with an optional k, M or G"
        )
    return int(match["number"]) * _UNITS[match["unit"].lower()]


def build_inflate_limits(
    max_inflated: str | None = None,
    max_member: str | None = None,
    max_ratio: int | None = None,
) -> InflateLimits:
    """Return the inflate limits from ``--max-inflated``, ``--max-member``, ``--max-inflate-ratio``.

    Raises:
        ConfigurationError: a bad size, or a ratio below 1.
    """
    defaults = InflateLimits()
    if max_ratio is not None and max_ratio < 1:
        raise ConfigurationError(
            f"inflate ratio {max_ratio} is below 1", hint="use a whole number such as 100"
        )
    return InflateLimits(
        total_bytes=defaults.total_bytes if max_inflated is None else parse_size(max_inflated),
        member_bytes=defaults.member_bytes if max_member is None else parse_size(max_member),
        ratio=defaults.ratio if max_ratio is None else max_ratio,
    )


def build_settings(
    *,
    data: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_upload: str | None = None,
    public_url: str | None = None,
    default_branch: str = "v3.22",
    default_repo: str = "sci",
    access_log: bool = False,
    stored_copies: bool | None = None,
    environ: Mapping[str, str] | None = None,
    inflate_limits: InflateLimits | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS,
) -> Settings:
    """Validate the command-line values and return Settings.

    ``stored_copies`` None means ``$IPYDEPS_REPO_STORED_COPIES`` (read from ``environ``,
    default ``os.environ``), else on.

    Raises:
        ConfigurationError: for a port out of range, a bad size, a public URL that is not
            http(s), a body timeout that is not positive, or a bad
            ``$IPYDEPS_REPO_STORED_COPIES``.
    """
    if not body_timeout > 0:
        raise ConfigurationError(
            f"body timeout {body_timeout} is not positive", hint="use seconds, e.g. 60"
        )
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"port {port} is out of range", hint="use 0..65535 (0 = any free)")
    if public_url is not None:
        if not public_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"public URL {public_url!r} is not an http(s) URL",
                hint="for example https://repo.example.org/",
            )
        public_url = public_url.rstrip("/") + "/"
    return Settings(
        data=DataLayout(data.absolute()),
        host=host,
        port=port,
        max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES if max_upload is None else parse_size(max_upload),
        public_url=public_url,
        default_branch=default_branch,
        default_repo=default_repo,
        access_log=access_log,
        stored_copies=stored_copies_enabled(stored_copies, environ),
        inflate_limits=inflate_limits or InflateLimits(),
        body_timeout=body_timeout,
    )
