"""One wheel of an install fetched and staged, from the best source it has.

In order: the file planning already downloaded and verified (``fetched.py``); the shared
cache, when its entry checks out against the index's outline (``cacheuse.py``); the
repository's stored copy, streamed into staging as it arrives (``transfer.py``); the wheel.
Each runs in a download thread of ``execute.py``, which owns the threads, the display and
the commit; what a thread tells the display goes through ``Event``s.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from .cacheuse import CacheUse, take_from_cache
from .errors import FileMissingError, InstallError
from .fetched import FetchedWheels
from .installers.transaction import WheelTransaction
from .models import Step
from .progress import PackageState
from .protocols import Fetcher, StreamingFetcher
from .settings_values import StoredCopies
from .sharedcache import SharedCache
from .transfer import CopyChoice, Trial, describe_choice, stored_copy_choice, stream_stored_copy

__all__ = ["Event", "Job", "StepOutcome", "fetch_and_stage"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutcome:
    """How one step went: bytes fetched and the seconds it took (download + unpack)."""

    step: Step
    bytes_downloaded: int
    seconds: float
    stored_copy: bool = False  # the repository's stored copy was fetched, not the wheel
    from_shared_cache: bool = False  # staged from the shared cache: nothing was fetched
    note: str = ""  # something the user should hear about, though the step succeeded


class Event(NamedTuple):
    """What a download thread tells the thread that shows progress."""

    kind: Literal["progress", "done", "error", "retry"]
    name: str
    state: PackageState | None = None
    done: int | None = None
    total: int | None = None
    text: str = ""  # a retry: what failed and when it is tried again
    fetching: str | None = None  # what the bytes are: "wheel" or "stored copy"


# How often a download tells its bytes to the display (seconds): one event per read made
# the main thread wake for each megabyte.
_PROGRESS_INTERVAL = 0.05


@dataclass
class Job:
    """What every download thread of one execution shares."""

    fetcher: Fetcher
    downloads: Path
    transaction: WheelTransaction
    events: queue.Queue[Event]
    stored_copies: StoredCopies
    # Stored copies are written as they arrive, CPU-bound and mostly under the GIL: more
    # of them at once than cores only hand the GIL around (measured: 2 beat 4 on 2 cores).
    stream_slots: threading.BoundedSemaphore
    trial: Trial
    fetched: FetchedWheels | None  # wheels planning downloaded already (no PEP 658 file)
    shared_cache: SharedCache | None = None
    # What the shared cache did for each wheel that has a stored copy (by project name).
    cache_uses: dict[str, CacheUse] = field(default_factory=dict)


def fetch_and_stage(step: Step, shared: Job) -> StepOutcome:
    """Download one wheel (verified), unpack it into staging, and report as it goes."""
    fetcher, transaction, events = shared.fetcher, shared.transaction, shared.events
    candidate = step.candidate
    started = time.perf_counter()

    last = [-_PROGRESS_INTERVAL]

    def report(done: int, total: int | None) -> None:
        # Called for every read: each event wakes the main thread, and a display needs a
        # few a second. The last bytes always count.
        now = time.monotonic()
        if done == total or now - last[0] >= _PROGRESS_INTERVAL:
            last[0] = now
            events.put(Event("progress", candidate.name, done=done, total=total))

    events.put(Event("progress", candidate.name, "downloading"))
    stored = candidate.stored
    size: int | None = None
    streamed = from_cache = False
    note = ""
    kept = shared.fetched.take(candidate.url, candidate.sha256) if shared.fetched else None
    try:
        if kept is not None:
            # Downloaded and checked against the same sha256 while planning.
            size = kept.stat().st_size
            events.put(Event("progress", candidate.name, fetching="wheel"))
            report(size, size)
            events.put(Event("progress", candidate.name, "verified"))
            transaction.stage(kept)
            kept.unlink()
        elif stored is not None and _taken_from_cache(step, shared):
            from_cache = True
            size = 0
        elif stored is not None and isinstance(fetcher, StreamingFetcher):
            choice = _copy_choice(candidate.name, stored.url, shared)
            if choice is not CopyChoice.WHEEL:
                with shared.stream_slots:
                    events.put(Event("progress", candidate.name, fetching="stored copy"))
                    try:
                        size = stream_stored_copy(
                            candidate,
                            fetcher,
                            transaction,
                            report,
                            lambda: events.put(Event("progress", candidate.name, "verified")),
                            trial=shared.trial if choice is CopyChoice.TRIAL else None,
                        )
                    except FileMissingError:
                        # The copy only saves CPU: without it the wheel does the job, and
                        # its own sha256 vouches for it. A copy with the wrong bytes is
                        # another matter (HashMismatchError), never a reason to fall back.
                        _log.debug(
                            "%s: the stored copy is missing (HTTP 404): the wheel instead",
                            candidate.name,
                        )
                        note = (
                            f"the repository lists a stored copy of {candidate.filename} "
                            "but does not have it (HTTP 404), so the wheel was "
                            "installed; its maintainer can make the copies again with "
                            "'ipydeps-repo index'"
                        )
                streamed = size is not None
        if size is None:
            events.put(Event("progress", candidate.name, fetching="wheel"))
            path = fetcher.download(
                candidate.url,
                shared.downloads / candidate.filename,
                sha256=candidate.sha256,
                progress=report,
                size=candidate.size,
            )
            events.put(Event("progress", candidate.name, "verified"))
            size = path.stat().st_size
            transaction.stage(path)
            path.unlink()
    except OSError as error:
        raise InstallError(
            f"Could not unpack {candidate.filename}: {error.strerror or error}",
            hint=f"check free space and that {transaction.scheme.purelib} is writable "
            "(a venv owned by you avoids both problems)",
        ) from None
    events.put(Event("progress", candidate.name, "unpacked"))
    seconds = time.perf_counter() - started
    _log.debug(
        "%s: %d bytes (%s) fetched and staged in %.2f s",
        candidate.name,
        size,
        "the stored copy"
        if streamed
        else "the shared cache"
        if from_cache
        else "kept from planning"
        if kept is not None
        else "the wheel",
        seconds,
    )
    return StepOutcome(
        step, size, seconds, stored_copy=streamed, from_shared_cache=from_cache, note=note
    )


def _copy_choice(name: str, url: str, shared: Job) -> CopyChoice:
    """Decide what to fetch for a wheel whose stored copy is at ``url`` (see transfer.py)."""
    choice = stored_copy_choice(url, shared.stored_copies)
    _log.debug(
        "%s: the repository offers a stored copy; stored_copies = %s: %s",
        name,
        shared.stored_copies,
        describe_choice(choice),
    )
    if choice is CopyChoice.TRIAL and shared.cache_uses.get(name) in (
        CacheUse.ABSENT,
        CacheUse.UNUSABLE,
    ):
        # Only a stored copy can fill the shared cache: one download of it, for every
        # later runtime of the host, is worth more than the trial's saving.
        _log.debug("%s: the stored copy after all, to fill the shared cache", name)
        return CopyChoice.STORED
    return choice


def _taken_from_cache(step: Step, shared: Job) -> bool:
    """Stage ``step``'s wheel from the shared cache, if there is one and its entry checks out."""
    if shared.shared_cache is None:
        return False
    candidate = step.candidate
    # Replaying is CPU-bound like streaming a copy: it takes one of the same slots.
    with shared.stream_slots:
        use = take_from_cache(shared.shared_cache, candidate, shared.transaction)
    shared.cache_uses[candidate.name] = use
    if use is not CacheUse.TAKEN:
        return False
    shared.events.put(Event("progress", candidate.name, fetching="shared cache"))
    shared.events.put(Event("progress", candidate.name, "verified"))
    return True
