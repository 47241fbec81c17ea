"""``ipydeps.pip()``: parse, plan, show, execute, refresh the kernel, report a ``Result``."""

from __future__ import annotations

import contextlib
import dataclasses
import html
import importlib
import logging
import os
import platform
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .cancel import CancelEvent
from .connections import system_proxies
from .credentials import redact, repository_access
from .environment import Environment, inspect_environment, install_scheme
from .environment_model import PlanPolicy, TargetEnvironment
from .errors import ConfigError
from .execute import Execution, execute_plan
from .fetch import HttpFetcher, RetryPolicy
from .fetched import FetchedWheels
from .formats.wire import SIMPLE_PATH
from .installers.apk import ApkRunner, SystemApkRunner
from .installers.journal import recover_interrupted
from .kernel import Upgraded, refresh_import_system, restart_warnings
from .models import Skipped
from .notices import no_repository, say_once
from .plan import raise_for_unsatisfiable, resolve
from .plan_model import Plan
from .progress import Progress, in_notebook_kernel, make_progress
from .protocols import Fetcher, RetryReporting
from .render import format_size, render_html, render_text
from .requirements import parse_requirements
from .retries import RetryNotice
from .settings import Settings, load_config
from .settings_values import UpstreamPolicy
from .sources import sources_from_settings

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installed:
    """One package installed by ``pip()``: what, from where, how big, how long."""

    name: str
    version: str
    route: str  # "apk", "wheel" (our repository) or "upstream"
    source: str  # the host the file came from
    action: str  # "install" or "upgrade"
    replaced: str | None
    bytes: int
    seconds: float
    # True when the repository's stored (uncompressed) copy of the wheel was fetched.
    stored_copy: bool = False

    @property
    def fetched_from(self) -> str:
        """The host, and "stored copy" when that is what came from it."""
        return self.source + (" (stored copy)" if self.stored_copy else "")


@dataclass(frozen=True)
class Result:
    """The outcome of ``ipydeps.pip()``; shown as a table in the notebook."""

    plan: Plan
    installed: tuple[Installed, ...]
    skipped: tuple[Skipped, ...]
    dry_run: bool
    seconds: float
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every requirement was (or, in a dry run, can be) satisfied."""
        return self.plan.ok

    def summary(self) -> str:
        """One line: what was installed (or would be), and how long it took."""
        if self.dry_run:
            # apk installs the apks' own dependencies too: count what will really be added.
            count = len(self.plan.steps) + len(self.plan.apk_dependencies)
            return f"Dry run: {count} package(s) would be installed; nothing was changed"
        if not self.installed:
            return "Nothing to install: all requirements are already satisfied"
        names = ", ".join(
            f"{item.name} {item.version} ({item.route} from {item.source})"
            for item in self.installed
        )
        total = sum(item.bytes for item in self.installed)
        also = ", ".join(
            f"{added.name} {added.record.version}" if added.record else added.name
            for added in self.plan.apk_dependencies
        )
        return f"Installed {names} ({format_size(total)}) in {self.seconds:.2f} s" + (
            f"; apk also added {also}" if also else ""
        )

    def __repr__(self) -> str:
        lines = [self.summary()]
        for item in self.installed:
            replaced = f" (was {item.replaced})" if item.replaced else ""
            lines.append(
                f"  {item.name:<24} {item.version:<12}{replaced} {item.route:<8} "
                f"from {item.fetched_from:<22} {format_size(item.bytes):>9} "
                f"{item.seconds:6.2f} s"
            )
        lines += [f"  skipped {skip.text}: {skip.reason}" for skip in self.skipped]
        lines += [f"  WARNING: {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(item.name)}</td><td>{html.escape(item.version)}</td>"
            f"<td>{html.escape(item.replaced or '')}</td><td>{html.escape(item.route)}</td>"
            f"<td>{html.escape(item.fetched_from)}</td>"
            f"<td style='text-align:right'>{format_size(item.bytes)}</td>"
            f"<td style='text-align:right'>{item.seconds:.2f} s</td></tr>"
            for item in self.installed
        )
        notes = "".join(
            f"<li>skipped {html.escape(skip.text)}: {html.escape(skip.reason)}</li>"
            for skip in self.skipped
        )
        notes += "".join(f"<li><b>{html.escape(warning)}</b></li>" for warning in self.warnings)
        table = (
            (
                "<table><tr><th>package</th><th>version</th><th>replaced</th><th>route</th>"
                f"<th>source</th><th>size</th><th>time</th></tr>{rows}</table>"
            )
            if rows
            else ""
        )
        return f"<p>{html.escape(self.summary())}</p>{table}" + (
            f"<ul>{notes}</ul>" if notes else ""
        )


class _PlanView:
    """Shows a plan as HTML in the notebook and as text elsewhere."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __repr__(self) -> str:
        return render_text(self.plan)

    def _repr_html_(self) -> str:
        return render_html(self.plan)


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
        settings.repository_url, token=settings.repository_token, environ=os.environ
    )
    settings = dataclasses.replace(settings, repository_url=access.url)
    if not quiet:
        say_once(no_repository(settings), out)
    # An install of an earlier call that was cut off mid-commit (a killed kernel) is undone
    # before anything looks at what is installed (installers/journal.py).
    early = _recover(Path(prefix) if prefix else None, None if quiet else out)
    warnings = list(early)
    # A caller-supplied apk runner means apk can run (tests, custom privilege setups).
    apk = None if apk_runner is None else True
    environment = inspect_environment(
        Path(prefix) if prefix else None, apk=False if not settings.apk_allowed else apk
    )
    target = TargetEnvironment.current(apk_available=environment.apk_available)
    _log.debug(
        "repository %s; upstream %s; apk %s (%s); stored copies %s; %d jobs",
        settings.repository_url or "none",
        settings.upstream,
        settings.apk,
        environment.apk_reason or ("usable" if environment.apk_available else "not usable"),
        settings.stored_copies,
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
        except BaseException:
            cancel.set()  # an interrupt: the index reads still under way in threads end at once
            raise
        planned = time.perf_counter()
        _log.debug("planned %d step(s) in %.2f s", len(plan.steps), planned - started)
        if not quiet or not plan.ok:
            _show_plan(plan, out if stream is not None else None)
        if dry_run:
            return Result(
                plan, (), plan.skipped, True, time.perf_counter() - started, tuple(warnings)
            )
        raise_for_unsatisfiable(plan)
        progress = make_progress(quiet=quiet, stream=stream)
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
    result = _result(plan, execution, time.perf_counter() - started, warnings)
    progress.finish(result.summary())
    if not quiet:
        for warning in warnings[len(early) :]:  # the early ones were said already
            print(f"WARNING: {warning}", file=out)
    if verbose and not quiet:
        print(repr(result), file=out)
    return result


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


def _show_plan(plan: Plan, stream: TextIO | None) -> None:
    if stream is None and in_notebook_kernel():
        from IPython.display import display

        display(_PlanView(plan))  # type: ignore[no-untyped-call]
    else:
        print(render_text(plan), file=stream or sys.stdout)


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
        )
    except KeyboardInterrupt:
        if here:
            # The commit may have been finished first (interrupts.py): what it put in place
            # must be importable without a restart.
            importlib.invalidate_caches()
        raise


def _result(plan: Plan, execution: Execution, seconds: float, warnings: list[str]) -> Result:
    removed = {wheel.name: wheel.removed_version for wheel in execution.wheels}
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
            )
        )
    return Result(plan, tuple(items), plan.skipped, False, seconds, tuple(warnings))
