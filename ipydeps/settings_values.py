"""The configuration keys' defaults and the checks of their values (``ipydeps.settings`` uses them).

Each check returns the converted value and a problem for the person reading it, or None;
``load_config`` gathers every problem before it says any.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

from .credentials import redact

# The values of the keys that name a policy: Settings' types, and what _check_choice takes.
UpstreamPolicy = Literal["allow", "deny"]
ApkPolicy = Literal["auto", "never"]
BuildPolicy = Literal["prebuilt-only"]  # ipydeps never compiles; a config may say so
StoredCopies = Literal["auto", "always", "never"]

DEFAULTS: dict[str, Any] = {
    "repository_url": None,
    "upstream": "allow",
    "upstream_url": "https://pypi.org/simple/",
    "apk": "auto",
    "apk_repository": "v3.22/sci",
    "policy": "prebuilt-only",
    "jobs": 4,
    "retries": 3,
    "timeout": 30.0,
    # The most ipydeps waits for a silent server, retries included (retries.py).
    "deadline": 45.0,
    "apk_map": {},
    "dependency_links": None,
    "stored_copies": "auto",
    "max_page_bytes": 64 << 20,
    "max_download_bytes": 4 << 30,
    "repository_token": None,
    # A kernel started for a notebook with a lock restores it (ipydeps/restore.py).
    "restore_lock": True,
    # A directory of verified installed trees shared by the runtimes of one host (None: off).
    "shared_cache": None,
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "upstream": get_args(UpstreamPolicy),
    "apk": get_args(ApkPolicy),
    "policy": get_args(BuildPolicy),
    "stored_copies": get_args(StoredCopies),
}
_RANGES = {
    "jobs": (1, 64),
    "retries": (0, 20),
    "timeout": (1.0, 3600.0),
    "deadline": (1.0, 3600.0),
    "max_page_bytes": (1 << 16, 1 << 40),
    "max_download_bytes": (1 << 16, 1 << 50),
}
_INTEGRAL = ("jobs", "retries", "max_page_bytes", "max_download_bytes")


_INTEGER = re.compile(r"^\s*[0-9]+\s*$")
_NUMBER = re.compile(r"^\s*[0-9]+(\.[0-9]*)?\s*$")


def _check_url(key: str, value: Any) -> tuple[Any, str | None]:
    if key == "repository_url" and value in (None, ""):
        return None, None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return value, redact(f"{key} must be an http(s) URL, got {value!r}")
    return value, None


def _check_secret(key: str, value: Any) -> tuple[Any, str | None]:
    if value in (None, ""):
        return None, None
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return None, f"{key} must be a token (a string without spaces)"  # never the value
    return value, None


def _check_choice(key: str, value: Any) -> tuple[Any, str | None]:
    if value in _CHOICES[key]:
        return value, None
    choices = " or ".join(repr(choice) for choice in _CHOICES[key])
    return value, f"{key} must be {choices}, got {value!r}"


def _check_apk_repository(key: str, value: Any) -> tuple[Any, str | None]:
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 2 or not all(parts) or ".." in parts:
        return value, f"{key} must be <branch>/<repo> such as 'v3.22/sci', got {value!r}"
    return value, None


def _check_apk_map(key: str, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        return dict(value), None
    return {}, f'{key} must map project names to apk names, e.g. {{numpy = "py3-numpy"}}'


def _check_directory(key: str, value: Any) -> tuple[Any, str | None]:
    """Accept an absolute directory path, or nothing (None or "": the feature is off)."""
    if value in (None, ""):
        return None, None
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        return None, f"{key} must be an absolute directory path (or empty: off), got {value!r}"
    return value, None


def _check_path(key: str, value: Any) -> tuple[Any, str | None]:
    if value in (None, ""):
        return None, None
    if not isinstance(value, str):
        return None, f"{key} must be the path of a JSON file, got {value!r}"
    return value, None


_FLAGS = {"1": True, "true": True, "yes": True, "on": True}
_FLAGS |= {"0": False, "false": False, "no": False, "off": False}


def _check_flag(key: str, value: Any) -> tuple[Any, str | None]:
    """Read a flag: a TOML boolean or, from the environment, 0/1, true/false, yes/no, on/off."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str) and value.strip().lower() in _FLAGS:
        return _FLAGS[value.strip().lower()], None
    return DEFAULTS[key], f"{key} must be true or false (or 1/0), got {value!r}"


def _check_number(key: str, value: Any) -> tuple[Any, str | None]:
    """Numbers come as TOML numbers or, from the environment, as strings of digits."""
    integral = key in _INTEGRAL
    pattern = _INTEGER if integral else _NUMBER
    if isinstance(value, bool) or not (
        isinstance(value, int)
        or (isinstance(value, float) and not integral)
        or (isinstance(value, str) and pattern.match(value))
    ):
        return DEFAULTS[key], f"{key} must be a number, got {value!r}"
    number = int(value) if integral else float(value)
    low, high = _RANGES[key]
    if not low <= number <= high:
        return number, f"{key} must be between {low} and {high}, got {number}"
    return number, None


_CHECKS = {
    "repository_url": _check_url,
    "upstream_url": _check_url,
    "upstream": _check_choice,
    "apk": _check_choice,
    "policy": _check_choice,
    "apk_repository": _check_apk_repository,
    "apk_map": _check_apk_map,
    "jobs": _check_number,
    "retries": _check_number,
    "timeout": _check_number,
    "deadline": _check_number,
    "dependency_links": _check_path,
    "stored_copies": _check_choice,
    "max_page_bytes": _check_number,
    "max_download_bytes": _check_number,
    "repository_token": _check_secret,
    "restore_lock": _check_flag,
    "shared_cache": _check_directory,
}


def check_value(key: str, value: Any) -> tuple[Any, str | None]:
    """Return ``key``'s value, converted, and the problem with it (None if there is none).

    Strings from the environment become numbers here; a number that cannot be read comes
    back as the key's default, with its problem.
    """
    return _CHECKS[key](key, value)
