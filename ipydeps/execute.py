"""Carry out a plan: parallel verified downloads, parallel unpacking, one apk run, one commit."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from .cachefill import fill_in_background, wait_for_fills
from .cacheuse import CacheUse, fill_jobs, take_from_cache
from .environment import InstallScheme
from .errors import (
    CancelledError,
    FileMissingError,
    InstallError,
    IpydepsError,
    PartialInstallError,
)
from .fetched import FetchedWheels
from .installers.apk import ApkRunner, apk_specs, install_apks
from .installers.journal import Renamer
from .installers.transaction import InstalledWheel, WheelTransaction
from .models import Route, Step
from .plan_model import Plan
from .progress import PackageProgress, PackageState, Progress
from .protocols import Fetcher, RetryReporting, StreamingFetcher
from .retries import RetryNotice
from .scratch import MEMORY_SCRATCH, remove_orphans, scratch_directory, scratch_parent
from .settings_values import StoredCopies
from .sharedcache import SharedCache
from .transfer import CopyChoice, Trial, describe_choice, stored_copy_choice, stream_stored_copy


@dataclass(frozen=True)
class StepOutcome:
    """How one step went: bytes fetched and the seconds it took (download + unpack)."""

    step: Step
    bytes_downloaded: int
    seconds: float
    stored_copy: bool = False  # the repository's stored copy was fetched, not the wheel
    from_shared_cache: bool = False  # staged from the shared cache: nothing was fetched
    note: str = ""  # something the user should hear about, though the step succeeded


@dataclass(frozen=True)
class Execution:
    """The effects of executing a plan."""

    outcomes: tuple[StepOutcome, ...]
    wheels: tuple[InstalledWheel, ...]
    apk_output: str = ""


class _Event(NamedTuple):
    """What a download thread tells the thread that shows progress."""

    kind: Literal["progress", "done", "error", "retry"]
    name: str
    state: PackageState | None = None
    done: int | None = None
    total: int | None = None
    text: str = ""  # a retry: what failed and when it is tried again
    fetching: str | None = None  # what the bytes are: "wheel" or "stored copy"


_log = logging.getLogger(__name__)
# How often a download tells its bytes to the display (seconds): one event per read made
# the main thread wake for each megabyte.
_PROGRESS_INTERVAL = 0.05


@dataclass
class _Job:
    """What every download thread of one execution shares."""

    fetcher: Fetcher
    downloads: Path
    transaction: WheelTransaction
    events: queue.Queue[_Event]
    stored_copies: StoredCopies
    # Stored copies are written as they arrive, CPU-bound and mostly under the GIL: more
    # of them at once than cores only hand the GIL around (measured: 2 beat 4 on 2 cores).
    stream_slots: threading.BoundedSemaphore
    trial: Trial
    fetched: FetchedWheels | None  # wheels planning downloaded already (no PEP 658 file)
    shared_cache: SharedCache | None = None
    # What the shared cache did for each wheel that has a stored copy (by project name).
    cache_uses: dict[str, CacheUse] = field(default_factory=dict)


def execute_plan(
    plan: Plan,
    *,
    scheme: InstallScheme,
    fetcher: Fetcher,
    apk_runner: ApkRunner | None,
    progress: Progress,
    jobs: int = 4,
    unpack_workers: int = 4,
    cancel: threading.Event | None = None,
    stored_copies: StoredCopies = "auto",
    fetched: FetchedWheels | None = None,
    renamer: Renamer | None = None,
    shared_cache: SharedCache | None = None,
) -> Execution:
    """Install every step of ``plan`` or none of them.

    Wheels are downloaded ``jobs`` at a time, each verified against the index's
    sha256 and unpacked into staging as soon as it arrives (or, where the repository
    offers a stored copy and ``stored_copies`` says to use it, installed into staging
    from the socket as it arrives: see wheelstream.py; under ``auto``, only while the
    network outpaces the install: see transfer.py); then the apk steps run
    in one ``apk add``; then the wheels are renamed into place. Any failure up to and
    including ``apk add`` (``DownloadError``, ``HashMismatchError``, ``ApkFailedError``,
    ``InstallError``, ``KeyboardInterrupt``) leaves the environment as it was, apart from
    what apk's own transaction may leave of a failed ``apk add``. A commit that fails
    after ``apk add`` succeeded rolls the wheels back but cannot take the apks back (the
    root helper only adds): ``PartialInstallError`` names them (an interrupt keeps its
    type, with a note saying so). A wheel that planning already downloaded and verified
    (``fetched``: read for its metadata) is taken from there, not downloaded again.
    ``renamer`` does the commit's renames (tests pass one that stops at a chosen rename).
    With a ``shared_cache`` (``ipydeps.sharedcache``), a wheel whose stored copy is there
    and checks out against the index is staged from it instead of downloaded, and once the
    commit is done the wheels installed from downloaded stored copies are added to it, in
    a thread of its own (``cachefill.fill_in_background``: the call does not wait for it).
    """
    _check_executable(plan, apk_runner)
    cancel = cancel or threading.Event()
    wait_for_fills()  # an earlier install's cache fill may still be copying files
    with _collector_paused():
        return _execute(
            plan,
            scheme,
            fetcher,
            apk_runner,
            progress,
            jobs,
            unpack_workers,
            cancel,
            stored_copies,
            fetched,
            renamer,
            shared_cache,
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector off while installing.

    Unpacking creates many container objects, and every few hundred of them set off a
    collection: measured with perf, about 3.5% of an install's CPU. Nothing an install
    allocates forms reference cycles worth collecting; reference counting frees it all.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _execute(
    plan: Plan,
    scheme: InstallScheme,
    fetcher: Fetcher,
    apk_runner: ApkRunner | None,
    progress: Progress,
    jobs: int,
    unpack_workers: int,
    cancel: threading.Event,
    stored_copies: StoredCopies,
    fetched: FetchedWheels | None,
    renamer: Renamer | None,
    shared_cache: SharedCache | None,
) -> Execution:
    wheel_steps = [step for step in plan.steps if step.candidate.route is not Route.APK]
    apk_steps = [step for step in plan.steps if step.candidate.route is Route.APK]
    progress.start(
        [
            PackageProgress(
                step.candidate.name,
                str(step.candidate.version),
                step.candidate.route.value,
                total=step.candidate.size,
            )
            for step in plan.steps
        ]
    )
    events: queue.Queue[_Event] = queue.Queue()
    outcomes: dict[str, StepOutcome] = {}
    # Scratch directories of installs killed outright (kill -9) go first: see scratch.py.
    remove_orphans({str(MEMORY_SCRATCH), tempfile.gettempdir()})
    parent = scratch_parent([step.candidate.size for step in wheel_steps])
    with (
        scratch_directory(parent) as downloads,
        WheelTransaction(
            scheme, workers=unpack_workers, cancel=cancel, renamer=renamer
        ) as transaction,
    ):
        shared = _Job(
            fetcher,
            downloads,
            transaction,
            events,
            stored_copies,
            threading.BoundedSemaphore(max(os.cpu_count() or 1, 1)),
            Trial(),
            fetched,
            shared_cache,
        )

        def job(step: Step) -> None:
            try:
                outcomes[step.candidate.name] = _fetch_and_stage(step, shared)
            except BaseException as error:  # reported to the main thread, which re-raises it
                errors.append(error)  # before cancelling: the other downloads' errors follow
                cancel.set()
                events.put(_Event("error", step.candidate.name))
            finally:
                events.put(_Event("done", step.candidate.name))

        errors: list[BaseException] = []
        pool = ThreadPoolExecutor(max_workers=max(jobs, 1), thread_name_prefix="ipydeps-fetch")
        try:
            with _retries_shown(fetcher, wheel_steps, events):
                # Biggest first: the longest download should not be the one that starts last.
                for step in sorted(wheel_steps, key=lambda item: -(item.candidate.size or 0)):
                    pool.submit(job, step)
                _pump(events, progress, len(wheel_steps))
        except BaseException:
            cancel.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if errors:
            # The failure that cancelled the others, not one of the cancellations it caused.
            raise min(errors, key=lambda error: isinstance(error, CancelledError))
        apk_output = _run_apk(apk_steps, apk_runner, progress)
        order = [step.candidate.name for step in wheel_steps]
        committing = time.perf_counter()
        try:
            wheels = transaction.commit(
                order=order,
                before_each=lambda staged: progress.update(staged.name, state="installing"),
            )
        except BaseException as error:
            if transaction.committed:
                raise  # an interrupt held until the commit was whole: everything is installed
            # The commit rolled the wheels back, but apk cannot be undone from here.
            raise _after_apk(error, apk_steps) from None
        _log.debug("committed %d wheel(s) in %.2f s", len(wheels), time.perf_counter() - committing)
        for wheel in wheels:
            progress.update(wheel.name, state="installed")
        _keep_in_cache(shared_cache, transaction, wheel_steps, shared.cache_uses)
    for step in apk_steps:
        outcomes[step.candidate.name] = StepOutcome(step, step.candidate.size or 0, 0.0)
    ordered = tuple(
        outcomes[step.candidate.name] for step in plan.steps if step.candidate.name in outcomes
    )
    return Execution(outcomes=ordered, wheels=tuple(wheels), apk_output=apk_output)


def _fetch_and_stage(step: Step, shared: _Job) -> StepOutcome:
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
            events.put(_Event("progress", candidate.name, done=done, total=total))

    events.put(_Event("progress", candidate.name, "downloading"))
    stored = candidate.stored
    size: int | None = None
    streamed = from_cache = False
    note = ""
    kept = shared.fetched.take(candidate.url, candidate.sha256) if shared.fetched else None
    try:
        if kept is not None:
            # Downloaded and checked against the same sha256 while planning.
            size = kept.stat().st_size
            events.put(_Event("progress", candidate.name, fetching="wheel"))
            report(size, size)
            events.put(_Event("progress", candidate.name, "verified"))
            transaction.stage(kept)
            kept.unlink()
        elif stored is not None and _taken_from_cache(step, shared):
            from_cache = True
            size = 0
        elif stored is not None and isinstance(fetcher, StreamingFetcher):
            choice = _copy_choice(candidate.name, stored.url, shared)
            if choice is not CopyChoice.WHEEL:
                with shared.stream_slots:
                    events.put(_Event("progress", candidate.name, fetching="stored copy"))
                    try:
                        size = stream_stored_copy(
                            candidate,
                            fetcher,
                            transaction,
                            report,
                            lambda: events.put(_Event("progress", candidate.name, "verified")),
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
            events.put(_Event("progress", candidate.name, fetching="wheel"))
            path = fetcher.download(
                candidate.url,
                shared.downloads / candidate.filename,
                sha256=candidate.sha256,
                progress=report,
                size=candidate.size,
            )
            events.put(_Event("progress", candidate.name, "verified"))
            size = path.stat().st_size
            transaction.stage(path)
            path.unlink()
    except OSError as error:
        raise InstallError(
            f"Could not unpack {candidate.filename}: {error.strerror or error}",
            hint=f"check free space and that {transaction.scheme.purelib} is writable "
            "(a venv owned by you avoids both problems)",
        ) from None
    events.put(_Event("progress", candidate.name, "unpacked"))
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


def _keep_in_cache(
    cache: SharedCache | None,
    transaction: WheelTransaction,
    steps: Sequence[Step],
    uses: dict[str, CacheUse],
) -> None:
    """Once committed: add the wheels installed from downloaded stored copies to the cache."""
    if cache is not None:
        fill_in_background(cache, fill_jobs(transaction, steps, uses))


def _copy_choice(name: str, url: str, shared: _Job) -> CopyChoice:
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


def _taken_from_cache(step: Step, shared: _Job) -> bool:
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
    shared.events.put(_Event("progress", candidate.name, fetching="shared cache"))
    shared.events.put(_Event("progress", candidate.name, "verified"))
    return True


def _check_executable(plan: Plan, apk_runner: ApkRunner | None) -> None:
    """Refuse, before any effect, a plan that cannot be carried out safely."""
    if not plan.ok:
        raise InstallError("The plan has unsatisfiable requirements; nothing was installed")
    if plan.by_route(Route.APK) and apk_runner is None:
        raise InstallError(
            "The plan needs apk but apk cannot be run here",
            hint='plan again with apk disabled (apk = "never")',
        )
    missing_hash = [
        step.candidate.filename
        for step in plan.steps
        if step.candidate.route is not Route.APK and not step.candidate.sha256
    ]
    if missing_hash:
        raise InstallError(
            f"Refused {', '.join(missing_hash)}: the index gives no sha256",
            hint="use an index that publishes hashes (PEP 503/691)",
        )


def _retries_shown(
    fetcher: Fetcher, steps: Sequence[Step], events: queue.Queue[_Event]
) -> contextlib.AbstractContextManager[None]:
    """While the block runs, show each retried download in its package's progress row."""
    if not isinstance(fetcher, RetryReporting):
        return contextlib.nullcontext()
    names = {step.candidate.url: step.candidate.name for step in steps}
    names.update(
        {
            step.candidate.stored.url: step.candidate.name
            for step in steps
            if step.candidate.stored is not None
        }
    )

    def show(notice: RetryNotice) -> None:  # in a download thread: the pump shows it
        if notice.url in names:
            events.put(_Event("retry", names[notice.url], text=notice.describe()))

    return fetcher.reporting_retries(show)


def _pump(events: queue.Queue[_Event], progress: Progress, jobs: int) -> None:
    """Feed worker events to ``progress`` on this thread until every job has finished."""
    remaining = jobs
    while remaining:
        event = events.get()
        if event.kind == "done":
            remaining -= 1
        elif event.kind == "error":
            progress.update(event.name, state="failed")
        elif event.kind == "retry":
            progress.retrying(event.name, event.text)
        else:
            progress.update(
                event.name,
                state=event.state,
                done=event.done,
                total=event.total,
                fetching=event.fetching,
            )


def _after_apk(error: BaseException, apk_steps: Sequence[Step]) -> BaseException:
    """Say, on a wheel commit that failed after ``apk add`` succeeded, that the apks stay."""
    if not apk_steps:
        return error
    specs = apk_specs(apk_steps)
    if isinstance(error, IpydepsError):
        return PartialInstallError(specs, error)
    # KeyboardInterrupt and the like keep their type; the note tells what stayed.
    error.add_note(
        f"apk had already installed {' '.join(specs)}; those stay installed, "
        "the wheels were rolled back"
    )
    return error


def _run_apk(steps: Sequence[Step], runner: ApkRunner | None, progress: Progress) -> str:
    if not steps or runner is None:
        return ""
    for step in steps:
        progress.update(step.candidate.name, state="installing")
    started = time.perf_counter()
    try:
        outcome = install_apks(steps, runner)
    except BaseException:
        for step in steps:
            progress.update(step.candidate.name, state="failed")
        raise
    _log.debug("apk added %d package(s) in %.2f s", len(steps), time.perf_counter() - started)
    for step in steps:
        progress.update(step.candidate.name, state="installed")
    return outcome.output
