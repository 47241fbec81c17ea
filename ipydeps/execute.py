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
from dataclasses import dataclass

from .cachefill import fill_in_background, wait_for_fills
from .cacheuse import CacheUse, fill_jobs
from .environment import InstallScheme
from .errors import (
    CancelledError,
    InstallError,
    IpydepsError,
    PartialInstallError,
)
from .fetch_job import Event, Job, StepOutcome, fetch_and_stage
from .fetched import FetchedWheels
from .installers.apk import ApkRunner, apk_specs, install_apks
from .installers.journal import Renamer
from .installers.transaction import InstalledWheel, WheelTransaction
from .models import Route, Step
from .plan_model import Plan
from .progress import PackageProgress, Progress
from .protocols import Fetcher, RetryReporting
from .retries import RetryNotice
from .scratch import MEMORY_SCRATCH, remove_orphans, scratch_directory, scratch_parent
from .settings_values import StoredCopies
from .sharedcache import SharedCache
from .transfer import Trial


@dataclass(frozen=True)
class Execution:
    """The effects of executing a plan."""

    outcomes: tuple[StepOutcome, ...]
    wheels: tuple[InstalledWheel, ...]
    apk_output: str = ""


_log = logging.getLogger(__name__)


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
    events: queue.Queue[Event] = queue.Queue()
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
        shared = Job(
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
                outcomes[step.candidate.name] = fetch_and_stage(step, shared)
            except BaseException as error:  # reported to the main thread, which re-raises it
                errors.append(error)  # before cancelling: the other downloads' errors follow
                cancel.set()
                events.put(Event("error", step.candidate.name))
            finally:
                events.put(Event("done", step.candidate.name))

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


def _keep_in_cache(
    cache: SharedCache | None,
    transaction: WheelTransaction,
    steps: Sequence[Step],
    uses: dict[str, CacheUse],
) -> None:
    """Once committed: add the wheels installed from downloaded stored copies to the cache."""
    if cache is not None:
        fill_in_background(cache, fill_jobs(transaction, steps, uses))


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
    fetcher: Fetcher, steps: Sequence[Step], events: queue.Queue[Event]
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
            events.put(Event("retry", names[notice.url], text=notice.describe()))

    return fetcher.reporting_retries(show)


def _pump(events: queue.Queue[Event], progress: Progress, jobs: int) -> None:
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
