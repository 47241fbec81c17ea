"""``ipydeps.pip()``: parse, plan, show, execute, refresh the kernel, report a ``Result``."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import platform
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from .build_requests import build_request_states
from .cancel import CancelEvent
from .connections import system_proxies
from .credentials import redact, repository_access, token_for
from .environment import Environment, compiler_available, inspect_environment, install_scheme
from .environment_model import PlanPolicy, TargetEnvironment
from .errors import ConfigError
from .execute import Execution, execute_plan
from .fetch import HttpFetcher, RetryPolicy
from .fetched import FetchedWheels
from .formats.wire import SIMPLE_PATH
from .installers.apk import ApkRunner, SystemApkRunner
from .installers.journal import recover_interrupted
from .kernel import Upgraded, refresh_import_system, restart_warnings
from .live import (
    LiveDisplay,
    NotebookProgress,
    live_display,
    make_progress,
    tell_interrupt,
)
from .live import show_plan as show_in_live
from .notebook_lock import record_install
from .notices import no_repository, say_once
from .plan import raise_for_unsatisfiable, resolve
from .plan_model import Plan
from .progress import Progress
from .protocols import Fetcher, RetryReporting
from .requirements import parse_requirements
from .restore import wait_for_restore
from .result import Installed, Result
from .retries import RetryNotice
from .settings import Settings, load_config
from .settings_values import UpstreamPolicy
from .sharedcache import SharedCache
from .sources import sources_from_settings

__all__ = ["Installed", "Result", "config", "pip", "repository_base"]

_log = logging.getLogger(__name__)


def repository_base(url: str) -> str:
    """Return the repository root for a pip-style index URL (``http://host/simple/`` -> ``http://host/``)."""
    return url.rstrip("/").removesuffix(f"/{SIMPLE_PATH}") + "/"


def config(name: str | None = None, **overrides: Any) -> Settings:
    """Return the effective configuration (profile ``name``, plus ``overrides``), with provenance.

    ``print(ipydeps.config().describe())`` shows each value and where it came from.
    Raises ``ConfigError`` listing every invalid setting.
    """
    return load_config(name=name, overrides=overrides, environ=os.environ)


def pip(
    requirements: str | Iterable[str],
    *,
    dry_run: bool = False,
    upgrade: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    config: str | None = None,
    upstream: UpstreamPolicy | None = None,
    prebuilt_only: bool | None = None,
    index_url: str | None = None,
    jobs: int | None = None,
    prefix: str | os.PathLike[str] | None = None,
    fetcher: Fetcher | None = None,
    apk_runner: ApkRunner | None = None,
    stream: TextIO | None = None,
    show_plan: Callable[[Plan], None] | None = None,
    request_build: bool = False,
) -> Result:
    """Install ``requirements`` into the running interpreter's environment, prebuilt only.

    Parses every requirement first (``InvalidRequirementError``: nothing runs), loads the
    configuration (``ConfigError``), plans (``RepositoryError`` when an index cannot be
    read; ``NoCandidateError`` when a requirement cannot be met, e.g. air-gapped with
    ``upstream="deny"``), prints the plan, then downloads, verifies and installs
    everything or nothing (``DownloadError``, ``HashMismatchError``, ``ApkFailedError``,
    ``InstallError``). New packages are importable at once; upgraded modules that are
    already imported are named with a restart warning. ``dry_run`` prints the plan and
    changes nothing. ``prefix`` installs into another environment (default ``sys.prefix``).
    ``show_plan`` replaces how the plan is shown (the command line prints it in its words).
    A requirement with no prebuilt build for this platform is said in one line with where
    a build request for it stands; ``request_build`` first asks our repository's farm for
    it (``ipydeps.build_requests``).
    """
    started = time.perf_counter()
    out = stream or sys.stdout
    requests = parse_requirements(requirements)
    if prebuilt_only is False:
        raise ConfigError(
            "prebuilt_only=False is not supported: ipydeps never compiles",
            hint="install source-only packages with the real pip",
        )
    settings = load_config(
        name=config,
        overrides={
            "repository_url": repository_base(index_url) if index_url else None,
            "upstream": upstream,
            "jobs": jobs,
        },
        environ=os.environ,
    )
    # The repository URL loses its credentials here; only the fetcher holds them.
    access = repository_access(
        settings.repository_url,
        token=token_for(
            settings.repository_token,
            settings.repository_url,
            # Read only when a token meets an index_url: whose token is it?
            configured=(
                load_config(name=config, environ=os.environ).repository_url
                if index_url and settings.repository_token
                else settings.repository_url
            ),
        ),
        environ=os.environ,
    )
    settings = dataclasses.replace(settings, repository_url=access.url)
    if not quiet:
        say_once(no_repository(settings), out)
    # An install of an earlier call that was cut off mid-commit (a killed kernel) is undone
    # before anything looks at what is installed (installers/journal.py).
    wait_for_restore(out)  # the notebook's lock, restored at kernel start, goes first
    early = _recover(Path(prefix) if prefix else None, None if quiet else out)
    warnings = list(early)
    # A caller-supplied apk runner means apk can run (tests, custom privilege setups).
    apk = None if apk_runner is None else True
    environment = inspect_environment(
        Path(prefix) if prefix else None, apk=False if not settings.apk_allowed else apk
    )
    target = TargetEnvironment.current(
        apk_available=environment.apk_available, compiler_available=compiler_available()
    )
    _log.debug(
        "repository %s; upstream %s; apk %s (%s); stored copies %s; shared cache %s; %d jobs",
        settings.repository_url or "none",
        settings.upstream,
        settings.apk,
        environment.apk_reason or ("usable" if environment.apk_available else "not usable"),
        settings.stored_copies,
        settings.shared_cache or "off",
        settings.jobs,
    )
    # One cancel event for the whole call: an interrupt sets it, which stops the fetcher's
    # reads at once (a CancelEvent shuts their sockets down) and the unpacking threads. A
    # fetcher the caller passed in keeps its own: this call must not leave it cancelled.
    cancel = CancelEvent()
    fetcher = fetcher or HttpFetcher(
        retry=RetryPolicy(
            attempts=settings.retries + 1, timeout=settings.timeout, deadline=settings.deadline
        ),
        proxies=system_proxies(),
        cancel=cancel,
        max_page_bytes=settings.max_page_bytes,
        max_download_bytes=settings.max_download_bytes,
        credentials=access.headers_for,
    )
    policy = PlanPolicy(
        upgrade=upgrade,
        upstream_allowed=settings.upstream_allowed,
        apk_allowed=settings.apk_allowed,
    )
    live = live_display(stream)  # the call's one display in a notebook (shown unless quiet)
    # Wheels the planner reads for their metadata are kept for the install (fetched.py).
    with FetchedWheels() as fetched:
        sources = sources_from_settings(settings, fetcher, arch=platform.machine(), fetched=fetched)
        try:
            with _retries_told(fetcher, None if quiet else stream or sys.stderr):
                plan = resolve(
                    requests,
                    sources=sources,
                    installed=environment.installed,
                    environment=target,
                    policy=policy,
                    jobs=settings.jobs,
                    installed_apks=environment.installed_apks,
                )
        except BaseException as error:
            cancel.set()  # an interrupt: the index reads still under way in threads end at once
            tell_interrupt(error, live)
            raise
        plan = build_request_states(
            plan, settings.repository_url, fetcher, access.headers_for, send=request_build
        )
        planned = time.perf_counter()
        _log.debug("planned %d step(s) in %.2f s", len(plan.steps), planned - started)
        if show_plan is not None:
            # The caller's own words (the command line); it says the problems itself.
            if not quiet or not plan.ok:
                show_plan(plan)
        elif not quiet or (dry_run and not plan.ok):
            # A plan that cannot be carried out raises below: its problems are said there, once.
            show_in_live(plan, out if stream is not None else None, live, problems=dry_run)
        if dry_run:
            return _dry_run(plan, time.perf_counter() - started, warnings, live)
        raise_for_unsatisfiable(plan)
        progress = make_progress(quiet=quiet, stream=stream, live=live)
        execution = _execute(
            plan,
            settings,
            environment,
            fetcher,
            apk_runner,
            progress,
            cancel,
            fetched,
            here=prefix is None,
        )
        _log.debug("installed in %.2f s", time.perf_counter() - planned)
    warnings += [outcome.note for outcome in execution.outcomes if outcome.note]
    if prefix is None:
        # Only this interpreter's own environment is made importable here.
        refresh_import_system(
            environment.site_dirs, [pth for wheel in execution.wheels for pth in wheel.pth_files]
        )
        warnings += restart_warnings(
            Upgraded(wheel.name, wheel.removed_version, wheel.version, wheel.top_level)
            for wheel in execution.wheels
            if wheel.removed_version is not None and wheel.removed_version != wheel.version
        )
        # A notebook remembers what it installed (pylock.<name>.toml beside it).
        warnings += record_install(
            plan.steps, execution.wheels, settings, os.environ, plan.apk_dependencies
        )
    result = _result(plan, execution, time.perf_counter() - started, warnings, _shown_in(live))
    progress.finish(result.summary())
    if not quiet:
        # The early warnings were said already.
        _tell_result(result, live, out, new_warnings=warnings[len(early) :], verbose=verbose)
    return result


def _tell_result(
    result: Result,
    live: LiveDisplay | None,
    out: TextIO,
    *,
    new_warnings: list[str],
    verbose: bool,
) -> None:
    """Show the result: in place of the progress table in a notebook, else as lines."""
    if live is not None and live.shown:
        # With its warnings and the sizes downloaded and on disk: said once, in place.
        live.show({"text/plain": repr(result), "text/html": result._repr_html_()})
        return
    for warning in new_warnings:
        print(f"WARNING: {warning}", file=out)
    if verbose:
        print(repr(result), file=out)


def _recover(prefix: Path | None, stream: TextIO | None) -> list[str]:
    """Finish or undo an install of this environment cut off mid-commit; return warnings.

    Says so on ``stream`` (None: quiet). What cannot be undone (paths changed since)
    becomes a warning; its files stay where recovery found them.
    """
    scheme = install_scheme(prefix)
    recovery = recover_interrupted(scheme.purelib, set(scheme.roots().values()))
    if stream is not None:
        for name in recovery.undone:
            stream.write(
                f"ipydeps: an install into this environment was cut off mid-commit "
                f"({name}); it was undone, so its packages are as they were "
                "before it\n"
            )
    warnings = [
        f"an interrupted install could not be undone: {problem}; nothing was "
        "deleted, and the next ipydeps call tries again"
        for problem in recovery.problems
    ]
    if stream is not None:
        for warning in warnings:
            stream.write(f"WARNING: {warning}\n")
    return warnings


def _retries_told(
    fetcher: Fetcher, stream: TextIO | None
) -> contextlib.AbstractContextManager[None]:
    """While planning, print each retried read on ``stream`` (None: quiet), one line each."""
    if stream is None or not isinstance(fetcher, RetryReporting):
        return contextlib.nullcontext()
    lock = threading.Lock()  # the planner reads in threads

    def tell(notice: RetryNotice) -> None:
        with lock:
            stream.write(f"ipydeps: reading {redact(notice.url)}: {notice.describe()}\n")
            stream.flush()

    return fetcher.reporting_retries(tell)


def _shown_in(live: LiveDisplay | None) -> int | None:
    """Return the cell whose live display shows the result, if one does."""
    return live.cell if live is not None and live.shown else None


def _dry_run(plan: Plan, seconds: float, warnings: list[str], live: LiveDisplay | None) -> Result:
    """Return a dry run's result; the live display, if any, gets its line below the plan."""
    result = Result(
        plan, (), plan.skipped, True, seconds, tuple(warnings), shown_in=_shown_in(live)
    )
    if live is not None and live.shown:
        live.footline(result.summary())
    return result


def _execute(
    plan: Plan,
    settings: Settings,
    environment: Environment,
    fetcher: Fetcher,
    apk_runner: ApkRunner | None,
    progress: Progress,
    cancel: threading.Event,
    fetched: FetchedWheels,
    *,
    here: bool,
) -> Execution:
    """Carry out ``plan``; ``here``: into this interpreter's own environment."""
    if apk_runner is None and environment.apk_available:
        apk_runner = SystemApkRunner()
    try:
        return execute_plan(
            plan,
            scheme=environment.scheme,
            fetcher=fetcher,
            apk_runner=apk_runner,
            progress=progress,
            jobs=settings.jobs,
            # One unpack thread per core: inflating is CPU-bound, and more
            # threads only hand the GIL around (measured: 2 beat 4 on 2 cores).
            unpack_workers=max(os.cpu_count() or 2, 2),
            cancel=cancel,
            stored_copies=settings.stored_copies,
            fetched=fetched,
            shared_cache=SharedCache.from_setting(settings.shared_cache),
        )
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt) and here:
            # The commit may have been finished first (interrupts.py): what it put in place
            # must be importable without a restart.
            importlib.invalidate_caches()
        if isinstance(progress, NotebookProgress):
            progress.stop()  # rows left mid-way read "stopped", not a frozen "downloading"
            tell_interrupt(error, progress.live)
        raise


def _result(
    plan: Plan, execution: Execution, seconds: float, warnings: list[str], shown_in: int | None
) -> Result:
    removed = {wheel.name: wheel.removed_version for wheel in execution.wheels}
    written = {wheel.name: wheel.bytes_written for wheel in execution.wheels}
    items = []
    for outcome in execution.outcomes:
        candidate = outcome.step.candidate
        replaced = removed.get(candidate.name) or (
            str(outcome.step.replaces) if outcome.step.replaces else None
        )
        items.append(
            Installed(
                name=candidate.name,
                version=str(candidate.version),
                route=candidate.route.value,
                source=urllib.parse.urlsplit(candidate.url).netloc or candidate.url,
                action=outcome.step.action.value,
                replaced=replaced,
                bytes=outcome.bytes_downloaded,
                seconds=outcome.seconds,
                stored_copy=outcome.stored_copy,
                from_shared_cache=outcome.from_shared_cache,
                on_disk=written.get(candidate.name, candidate.apk_installed_size),
            )
        )
    return Result(
        plan, tuple(items), plan.skipped, False, seconds, tuple(warnings), shown_in=shown_in
    )
