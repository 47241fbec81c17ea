"""``serve --processes N``: N forked workers sharing the listening sockets, one supervisor.

The sockets are bound before the fork, so every worker accepts on the same ones and the
kernel spreads connections between them. Workers share nothing in memory: the tree's files
are the truth, and the Store serializes publishes across processes with file locks. The
supervisor forwards SIGTERM and SIGINT to the workers and waits for them; a worker that
ends on its own ends the server (exit 1), so a supervisor above (compose, systemd) sees
the failure instead of a server running on fewer cores than it was given.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from types import FrameType

from .console import warn

_FORWARDED = (signal.SIGTERM, signal.SIGINT)


def cores() -> int:
    """Return the number of cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_workers(count: int, serve: Callable[[], None], ready: Callable[[], None]) -> int:
    """Fork ``count`` workers that each call ``serve()``; supervise them until they end.

    ``ready`` runs in the supervisor once every worker is forked (it prints the URL).
    Returns 0 after a requested stop in which every worker ended cleanly, 1 otherwise.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    # Blocked until the supervisor's handlers are set, so a signal in between is not lost,
    # and a worker never runs the supervisor's handler before it has its own.
    signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
    supervisor = _Supervisor()
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            _become_worker(serve)
        supervisor.workers.append(pid)
    for signum in _FORWARDED:
        signal.signal(signum, supervisor.forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
    ready()
    return supervisor.wait()


class _Supervisor:
    """The workers' ids, and whether a stop was asked for (by a signal or a worker's end)."""

    def __init__(self) -> None:
        self.workers: list[int] = []
        self.stopping = False

    def forward(self, signum: int, frame: FrameType | None = None) -> None:
        self.stopping = True
        for worker in self.workers:
            _signal(worker, signum)

    def wait(self) -> int:
        clean = True
        while self.workers:
            pid, status = os.wait()
            if pid not in self.workers:
                continue
            self.workers.remove(pid)
            code = os.waitstatus_to_exitcode(status)
            if not self.stopping:
                warn(f"ipydeps-repo: worker {pid} ended (exit {code}); stopping the server")
                self.forward(signal.SIGTERM)
                clean = False
            elif code != 0:
                clean = False
        return 0 if clean else 1


def _become_worker(serve: Callable[[], None]) -> None:
    for signum in _FORWARDED:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
    code = 1
    try:
        serve()
        code = 0
    except BaseException:  # noqa: BLE001 - a worker reports its failure and exits, always
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return  # already ended; os.wait collects it
