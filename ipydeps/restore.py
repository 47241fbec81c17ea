"""Restore a notebook's lock when its kernel starts, and hold imports of its packages meanwhile.

The ipydeps extension, loaded at kernel start, calls ``start_restore``. When the notebook
has a lock (``pylock.<name>.toml``, see notebook_lock.py) that neither the runtime
(``restore_lock = false``, ``IPYDEPS_RESTORE_LOCK=0``) nor the notebook (``[tool.ipydeps]
restore = false`` in the lock) turns off, a background thread installs exactly the locked
files: it plans the locked versions through sources that offer only the files whose
sha256 the lock lists (locked.py), adds the lock's apks once our APKINDEX confirms their
versions and checksums (locked_apks.py), then carries the plan out as ``pip()`` does, all
or nothing. Meanwhile an ``import`` of a top-level name the lock provides waits for it
(``ImportWait``), and the first cell shows one line that ends as the outcome.
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import importlib.machinery
import importlib.util
import os
import platform
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .cancel import CancelEvent
from .connections import system_proxies
from .credentials import repository_access
from .environment import inspect_environment
from .environment_model import PlanPolicy, TargetEnvironment
from .errors import IpydepsError
from .execute import execute_plan
from .fetch import HttpFetcher, RetryPolicy
from .installers.apk import ApkRunner
from .installers.journal import recover_interrupted
from .kernel import refresh_import_system
from .locked import LockedSources
from .locked_apks import locked_apk_runner, read_locked_apks
from .lockfile import LockFileError, NotebookLock, lock_path_for
from .notebook_lock import notebook_path, read_lock
from .plan import resolve
from .progress import NullProgress
from .requirements import parse_requirements
from .settings import Settings, load_config
from .sharedcache import SharedCache
from .sources import sources_from_settings

__all__ = ["IMPORT_WAIT_SECONDS", "ImportWait", "Restore", "start_restore", "wait_for_restore"]

# The longest an import waits for the restore before it goes ahead without it.
IMPORT_WAIT_SECONDS = 300.0

_started: Restore | None = None  # the restore of this process, if one was started
_attempted = False  # a process looks for its notebook's lock once, at the first load
_start_lock = threading.Lock()


class Restore:
    """One restore of one lock: its thread, its state and the one line that says it."""

    def __init__(self, path: Path, lock: NotebookLock, settings: Settings) -> None:
        self.path = path
        self.lock = lock
        self.settings = settings
        self.done = threading.Event()
        self.ok = False
        count = f"{len(lock.packages)} package(s)" + (
            f", {len(lock.apks)} apk(s)" if lock.apks else ""
        )
        self.line = f"ipydeps: restoring {path.name} ({count}) ..."
        self.thread = threading.Thread(target=self._run, name="ipydeps-restore", daemon=True)
        self._listeners: list[Any] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Say that the restore starts (on the kernel's log) and start its thread."""
        _log_line(self.line)
        self.thread.start()

    def on_change(self, listener: Any) -> None:
        """Call ``listener(line)`` when the restore ends (at once if it has ended)."""
        with self._lock:
            if not self.done.is_set():
                self._listeners.append(listener)
                return
        listener(self.line)

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            installed = install_lock(self.lock, self.settings)
        except IpydepsError as error:
            hint = f"\n  hint: {error.hint}" if error.hint else ""
            line = f"ipydeps: cannot restore {self.path.name}: {error.message}; {_NOTHING}{hint}"
            self._finish(False, line)
        except Exception as error:  # noqa: BLE001 - a bug must not kill the kernel's start
            self._finish(False, f"ipydeps: cannot restore {self.path.name}: {error!r}; {_NOTHING}")
        else:
            seconds = time.perf_counter() - started
            what = (
                f"installed {', '.join(installed)}"
                if installed
                else "every package was installed already"
            )
            self._finish(True, f"ipydeps: restored {self.path.name}: {what} in {seconds:.2f} s")

    def _finish(self, ok: bool, line: str) -> None:
        with self._lock:
            self.ok, self.line = ok, line
            self.done.set()
            listeners, self._listeners = self._listeners, []
        _log_line(line)
        for listener in listeners:
            listener(line)


_NOTHING = "nothing was installed"


def _log_line(line: str) -> None:
    """Write ``line`` to the kernel process's own stderr: the Jupyter server's log."""
    stream = sys.__stderr__
    if stream is not None:
        stream.write(line + "\n")
        stream.flush()


def install_lock(
    lock: NotebookLock,
    settings: Settings,
    *,
    apk_runner: ApkRunner | None = None,
    prefix: Path | None = None,
) -> list[str]:
    """Install exactly the files ``lock`` lists, all or nothing; return ``name version`` each.

    The lock's apks go through one ``apk add`` of their locked versions (``apk_runner``,
    else the system's apk), before the wheels are moved into place, as in any mixed plan.
    ``prefix`` installs into another environment (tests). Raises an ``IpydepsError``
    (nothing installed) when the repository does not offer a locked file with its locked
    sha256 or a locked apk with its locked checksum, or the install fails.
    """
    access = repository_access(
        settings.repository_url, token=settings.repository_token, environ=os.environ
    )
    environment = inspect_environment(
        prefix, apk=(True if apk_runner is not None else None) if lock.apks else False
    )
    apk_runner = locked_apk_runner(lock.apks, settings, environment, apk_runner)
    apk_repository = dataclasses.replace(settings, repository_url=access.url)
    # The wheels are planned without apk (the lock's apks are planned from the lock), and
    # from our repository only: a notebook and its lock may come from anyone, and opening
    # it must not fetch from the open index.
    settings = dataclasses.replace(
        settings, repository_url=access.url, apk="never", upstream="deny"
    )
    recover_interrupted(environment.scheme.purelib, set(environment.scheme.roots().values()))
    cancel = CancelEvent()
    fetcher = HttpFetcher(
        retry=RetryPolicy(
            attempts=settings.retries + 1, timeout=settings.timeout, deadline=settings.deadline
        ),
        proxies=system_proxies(),
        cancel=cancel,
        max_page_bytes=settings.max_page_bytes,
        max_download_bytes=settings.max_download_bytes,
        credentials=access.headers_for,
    )
    apks = read_locked_apks(lock.apks, apk_repository, fetcher, environment, platform.machine())
    locked = LockedSources(lock, sources_from_settings(settings, fetcher, arch=platform.machine()))
    plan = resolve(
        parse_requirements([f"{package.name}=={package.version}" for package in lock.packages]),
        sources=locked.sources,
        installed={**environment.installed, **apks.provided},
        environment=TargetEnvironment.current(apk_available=False),
        policy=PlanPolicy(
            upgrade=False, upstream_allowed=settings.upstream_allowed, apk_allowed=False
        ),
        jobs=settings.jobs,
    )
    locked.raise_for(plan)
    plan = dataclasses.replace(plan, steps=apks.steps + plan.steps)
    execution = execute_plan(
        plan,
        scheme=environment.scheme,
        fetcher=fetcher,
        apk_runner=apk_runner if apks.steps else None,
        progress=NullProgress(),
        jobs=settings.jobs,
        unpack_workers=max(os.cpu_count() or 2, 2),
        cancel=cancel,
        stored_copies=settings.stored_copies,
        shared_cache=SharedCache.from_setting(settings.shared_cache),
    )
    if prefix is None:
        refresh_import_system(
            environment.site_dirs, [pth for wheel in execution.wheels for pth in wheel.pth_files]
        )
    return [
        *(f"{step.candidate.apk_name} {step.candidate.apk_version}" for step in apks.steps),
        *(f"{wheel.name} {wheel.version}" for wheel in execution.wheels),
    ]


class ImportWait(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: an import of a name the lock provides waits for the restore.

    Only top-level names, only in threads other than the restore's. Python holds its
    global import lock while it asks the finders, so the finder itself never waits:
    it answers with a spec whose loader waits (``_WaitingLoader``), which Python runs
    holding only that module's lock. Removed once the restore has ended.
    """

    def __init__(self, restore: Restore, timeout: float = IMPORT_WAIT_SECONDS) -> None:
        self.restore = restore
        # A lock cannot make the standard library wait (it may come with any notebook).
        self.names = restore.lock.top_level - sys.stdlib_module_names
        self.timeout = timeout

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Answer for the lock's names while the restore runs; else let the others find it."""
        if path is not None or fullname not in self.names or self.restore.done.is_set():
            return None
        if threading.current_thread() is self.restore.thread:
            return None
        return importlib.machinery.ModuleSpec(fullname, _WaitingLoader(self))

    def wait(self, fullname: str) -> None:
        """Wait for the restore to end, or for the timeout (then say so on the log)."""
        if not self.restore.done.wait(self.timeout):
            _log_line(
                f"ipydeps: import {fullname}: the restore of {self.restore.path.name} is not "
                f"done after {self.timeout:.0f} s; importing without it"
            )

    def remove(self, _line: str = "") -> None:
        """Take this finder off ``sys.meta_path``."""
        if self in sys.meta_path:
            sys.meta_path.remove(self)


class _WaitingLoader(importlib.abc.Loader):
    """Waits for the restore, then loads the module as the other finders find it."""

    def __init__(self, finder: ImportWait) -> None:
        self.finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        self.finder.wait(spec.name)
        real = _find_elsewhere(spec.name)
        if real is None or real.loader is None:
            raise ModuleNotFoundError(_missing(spec.name, self.finder.restore), name=spec.name)
        module = importlib.util.module_from_spec(real)
        module.__ipydeps_spec__ = real  # type: ignore[attr-defined]
        return module

    def exec_module(self, module: ModuleType) -> None:
        real: importlib.machinery.ModuleSpec = module.__dict__.pop("__ipydeps_spec__")
        module.__spec__ = real  # the import system set ours; the module's own is the truth
        assert real.loader is not None
        real.loader.exec_module(module)


def _find_elsewhere(fullname: str) -> importlib.machinery.ModuleSpec | None:
    for finder in list(sys.meta_path):
        if isinstance(finder, ImportWait) or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, None)
        if spec is not None:
            return spec
    return None


def _missing(fullname: str, restore: Restore) -> str:
    if restore.done.is_set() and not restore.ok:
        return f"No module named {fullname!r} ({restore.line.removeprefix('ipydeps: ')})"
    return f"No module named {fullname!r}"


def restore_wanted(
    settings: Settings, environ: Mapping[str, str]
) -> tuple[Path, NotebookLock | LockFileError] | None:
    """Return the notebook's lock path and lock (or why it cannot be read), if it is restored."""
    if not settings.restore_lock:
        return None
    notebook = notebook_path(environ)
    if notebook is None:
        return None
    path = lock_path_for(notebook)
    try:
        lock = read_lock(path)
    except LockFileError as error:
        return path, error
    if lock is None or not lock.restore or not (lock.packages or lock.apks):
        return None
    return path, lock


def start_restore(ipython: Any, environ: Mapping[str, str] | None = None) -> Restore | None:
    """Start restoring this kernel's notebook lock, once per process; return the restore.

    Returns None when there is nothing to restore or it is turned off. A lock that
    cannot be read, or a configuration that is not valid, is said in the first cell.
    """
    global _started, _attempted
    environ = os.environ if environ is None else environ
    with _start_lock:
        if _attempted:
            return None  # %reload_ext later in the session restores nothing
        _attempted = True
        try:
            settings = load_config(environ=environ)
            wanted = restore_wanted(settings, environ)
        except IpydepsError as error:
            _show_in_first_cell(ipython, f"ipydeps: the notebook's lock was not restored: {error}")
            return None
        if wanted is None:
            return None
        path, lock = wanted
        if isinstance(lock, LockFileError):
            _show_in_first_cell(ipython, f"ipydeps: cannot restore {path.name}: {lock}; {_NOTHING}")
            return None
        restore = _started = Restore(path, lock, settings)
    finder = ImportWait(restore)
    sys.meta_path.insert(0, finder)
    restore.on_change(finder.remove)
    _FirstCellLine(ipython, restore).register()
    restore.start()
    return restore


def wait_for_restore(stream: Any) -> None:
    """Let an install wait for a restore under way (both would change the environment)."""
    restore = _started
    if restore is None or restore.done.is_set() or threading.current_thread() is restore.thread:
        return
    stream.write(f"ipydeps: waiting for the restore of {restore.path.name} to finish\n")
    restore.done.wait()


class _FirstCellLine:
    """The restore's line in the output of the first cell run, updated in place when it ends."""

    def __init__(self, ipython: Any, restore: Restore) -> None:
        self.ipython = ipython
        self.restore = restore
        self.handle: Any = None

    def register(self) -> None:
        self.ipython.events.register("pre_run_cell", self.pre_run_cell)

    def pre_run_cell(self, *_info: Any) -> None:
        from IPython.display import display

        self.ipython.events.unregister("pre_run_cell", self.pre_run_cell)
        self.handle = display(_Line(self.restore.line), display_id=True)  # type: ignore[no-untyped-call]
        self.restore.on_change(self.update)
        self.ipython.events.register("post_run_cell", self.post_run_cell)

    def update(self, line: str) -> None:
        if self.handle is not None:
            self.handle.update(_Line(line))

    def post_run_cell(self, *_info: Any) -> None:
        if self.restore.done.is_set():
            self.ipython.events.unregister("post_run_cell", self.post_run_cell)
            self.update(self.restore.line)  # from the main thread too: every client gets it


def _show_in_first_cell(ipython: Any, line: str) -> None:
    _log_line(line)

    def show(*_info: Any) -> None:
        from IPython.display import display

        ipython.events.unregister("pre_run_cell", show)
        display(_Line(line))  # type: ignore[no-untyped-call]

    ipython.events.register("pre_run_cell", show)


class _Line:
    """One line of text, shown as such by every client."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text
