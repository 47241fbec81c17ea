"""The build-request queue: ``<state>/build-requests.json``, one entry per distinct request.

Written like the tokens file: the whole document to a temp file beside it, fsync, then
``os.replace``, under ``<state>/locks/build-requests.lock`` (an flock, so replicas sharing
the data directory and the farm's ``--data`` runs exclude each other). A request already
queued is not added again: its count and last time go up. Requests are a wish list: the
farm decides what to build (``farm/requests.py``), nothing is built from a request alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .. import jsonsafe
from ..errors import ConfigurationError, TooManyRequestsError
from ..fileops import write_atomic
from ..validation.build_request import BuildRequest, BuildState
from .layout import DataLayout
from .locking import file_lock

__all__ = ["DEFAULT_MAX_OPEN", "BuildRequestQueue", "QueuedBuild"]

DEFAULT_MAX_OPEN = 1000
MAX_REQUESTERS = 20  # token names kept per entry, for the farm's listing
MAX_NOTE_CHARS = 300
_OPEN = frozenset({BuildState.QUEUED, BuildState.SCHEDULED, BuildState.NO_RECIPE})


@dataclass(frozen=True)
class QueuedBuild:
    """One entry of the queue."""

    project: str
    version: str  # "" for any version
    platform_tag: str
    python: str
    state: str
    note: str
    requested: str  # first request, ISO 8601 UTC
    updated: str  # last request or decision
    count: int
    requesters: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The request this entry stands for (``BuildRequest.key``)."""
        return (self.project, self.version, self.platform_tag, self.python)

    def public(self) -> dict[str, Any]:
        """Return what anyone may read: no token names, no counts."""
        data = asdict(self)
        for private in ("requesters", "count"):
            data.pop(private)
        return data


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class BuildRequestQueue:
    """Read and change the queue file of a data directory."""

    def __init__(self, layout: DataLayout, *, max_open: int = DEFAULT_MAX_OPEN) -> None:
        self.path = layout.build_requests_file
        self._lock = layout.locks / "build-requests.lock"
        self.max_open = max_open

    def entries(self) -> list[QueuedBuild]:
        """Every entry, oldest request first."""
        return self._load()

    def for_project(self, project: str) -> list[QueuedBuild]:
        """Return the entries of one normalized project name."""
        return [entry for entry in self._load() if entry.project == project]

    def add(self, request: BuildRequest, requester: str) -> tuple[QueuedBuild, bool]:
        """Queue ``request`` (or count it again); return the entry and whether it is new.

        A request for an entry the farm has built or failed is queued again (a new wish).

        Raises:
            TooManyRequestsError: the queue holds ``max_open`` open entries already.
            ConfigurationError: the queue file is damaged (nothing is overwritten).
        """
        with file_lock(self._lock):
            entries = self._load()
            now = _now()
            for index, entry in enumerate(entries):
                if entry.key == request.key:
                    again = entry.state not in _OPEN
                    requesters = tuple(dict.fromkeys((*entry.requesters, requester)))
                    entries[index] = replace(
                        entry,
                        state=BuildState.QUEUED if again else entry.state,
                        note="" if again else entry.note,
                        updated=now,
                        count=entry.count + 1,
                        requesters=requesters[-MAX_REQUESTERS:],
                    )
                    self._save(entries)
                    return entries[index], again
            if sum(entry.state in _OPEN for entry in entries) >= self.max_open:
                raise TooManyRequestsError(
                    f"the build-request queue is full ({self.max_open} open requests)",
                    retry_after=3600,
                    hint="the farm works through the queue on its next run; try again later",
                )
            entry = QueuedBuild(*request.key, BuildState.QUEUED, "", now, now, 1, (requester,))
            entries.append(entry)
            self._save(entries)
            return entry, True

    def decide(self, key: tuple[str, str, str, str], state: BuildState, note: str) -> None:
        """Set the farm's decision on the entry ``key`` (no entry: nothing to do)."""
        with file_lock(self._lock):
            entries = self._load()
            clean = "".join(c for c in note if c.isprintable())[:MAX_NOTE_CHARS]
            changed = [
                replace(entry, state=state, note=clean, updated=_now())
                if entry.key == key and (entry.state, entry.note) != (state, clean)
                else entry
                for entry in entries
            ]
            if changed != entries:
                self._save(changed)

    def _load(self) -> list[QueuedBuild]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            document = jsonsafe.loads(raw)
            return [_entry(item) for item in document["requests"]]
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigurationError(
                f"build-request queue {self.path} is damaged: {error}",
                hint="restore it from a backup, or move it away (the queue starts empty)",
            ) from None

    def _save(self, entries: list[QueuedBuild]) -> None:
        document = {"version": 1, "requests": [asdict(entry) for entry in entries]}
        write_atomic(self.path, json.dumps(document, indent=1).encode(), mode=0o600)


def _entry(item: dict[str, Any]) -> QueuedBuild:
    return QueuedBuild(
        project=str(item["project"]),
        version=str(item["version"]),
        platform_tag=str(item["platform_tag"]),
        python=str(item["python"]),
        state=str(BuildState(item["state"])),
        note=str(item.get("note", "")),
        requested=str(item["requested"]),
        updated=str(item["updated"]),
        count=int(item["count"]),
        requesters=tuple(str(name) for name in item.get("requesters", ())),
    )
