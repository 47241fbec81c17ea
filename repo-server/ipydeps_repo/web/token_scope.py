"""What a publish token may reach: project patterns and an expiry, parsed and matched (pure).

A token made with ``--project acme --project 'acme-*'`` acts on those projects only; one
made without ``--project`` (and every token of an older tokens file) acts on all of them.
Patterns are compared in the normalized form of PEP 503 (``Acme_Tools`` is ``acme-tools``),
with ``*`` standing for any run of characters. An expiry is a point in time in UTC.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import UTC, date, datetime, timedelta

from ..errors import ValidationError

_SEPARATORS = re.compile(r"[-_.]+")
_PATTERN = re.compile(r"[a-z0-9*]+(?:-[a-z0-9*]+)*")
_DURATION = re.compile(r"(?P<count>[0-9]{1,5})\s*(?P<unit>[hdw])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def normalize_pattern(text: str) -> str:
    """Return a project pattern in normalized form (``Acme_*`` is ``acme-*``).

    Raises:
        ValidationError: a pattern with characters a project name cannot hold.
    """
    pattern = _SEPARATORS.sub("-", text.strip()).lower()
    if _PATTERN.fullmatch(pattern) is None:
        raise ValidationError(
            f"project pattern {text!r}",
            ["use a project name, or one with '*' for any characters (e.g. 'acme-*')"],
        )
    return pattern


def project_in_scope(patterns: tuple[str, ...] | None, project: str) -> bool:
    """Whether the normalized ``project`` matches one of ``patterns`` (None: every project)."""
    if patterns is None:
        return True
    name = _SEPARATORS.sub("-", project).lower()
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def parse_expiry(text: str, now: datetime) -> datetime:
    """Return when a token given ``--expires text`` at ``now`` stops working.

    ``text`` is a duration (``12h``, ``30d``, ``8w``), a date (``2027-01-31``: the token
    stops at the start of that day, UTC) or a date and time (``2027-01-31T12:00``, UTC
    unless it names its offset).

    Raises:
        ValidationError: anything else, or a time that is not after ``now``.
    """
    value = text.strip()
    duration = _DURATION.fullmatch(value.lower())
    if duration is not None:
        expires = now + int(duration["count"]) * _UNITS[duration["unit"]]
    else:
        expires = _parse_time(value, text)
    if expires <= now:
        raise ValidationError(f"expiry {text!r}", [f"{format_time(expires)} is not in the future"])
    return expires.replace(microsecond=0)


def _parse_time(value: str, text: str) -> datetime:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"expiry {text!r}",
            [
                "use a duration such as 30d, 12h or 8w, a date such as 2027-01-31, "
                "or a date and time such as 2027-01-31T12:00"
            ],
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """Return ``moment`` as the tokens file and ``token list`` write it (ISO 8601, UTC)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_time(text: str) -> datetime | None:
    """Return a time written by ``format_time``, or None for one that does not parse."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
