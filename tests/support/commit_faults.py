"""Run an upgrade whose commit stops after a chosen rename, for tests of interrupted commits.

``python -m tests.support.commit_faults REPOSITORY PREFIX STOP_AT WHERE REQUIREMENT...``
plans REQUIREMENTs (upgrading) from REPOSITORY into the environment at PREFIX with the
library's own parts, and carries the plan out with a ``Renamer`` (the fault-injection
seam of the commit) that, after its STOP_AT-th rename, prints ``renamed STOP_AT`` and
waits for a line on stdin: the test interrupts or kills the process there. STOP_AT 0
runs through and prints ``renames: N``. WHERE is ``main`` (the install runs in the main
thread, as in a kernel) or ``thread`` (in another thread; the main thread waits for it).
A ``KeyboardInterrupt`` ends the process with code 130, its notes on stderr.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from pathlib import Path

from ipydeps.environment import inspect_environment
from ipydeps.environment_model import PlanPolicy, TargetEnvironment
from ipydeps.execute import execute_plan
from ipydeps.fetch import HttpFetcher
from ipydeps.plan import resolve
from ipydeps.progress import NullProgress
from ipydeps.requirements import parse_requirements
from ipydeps.settings import load_config
from ipydeps.sources import sources_from_settings


class StoppingRenamer:
    """Renames as ``os.rename`` does; after rename ``stop_at`` it says so and waits for stdin."""

    def __init__(self, stop_at: int) -> None:
        self.stop_at = stop_at
        self.count = 0

    def rename(self, source: Path, destination: Path) -> None:
        os.rename(source, destination)
        self.count += 1
        if self.count == self.stop_at:
            print(f"renamed {self.count}", flush=True)
            sys.stdin.readline()


class FileStoppingRenamer(StoppingRenamer):
    """Like ``StoppingRenamer``, for a kernel (no stdin): after rename ``stop_at`` it
    creates ``marker`` and waits until ``go`` exists.
    """

    def __init__(self, stop_at: int, marker: Path, go: Path) -> None:
        super().__init__(stop_at)
        self.marker = marker
        self.go = go

    def rename(self, source: Path, destination: Path) -> None:
        os.rename(source, destination)
        self.count += 1
        if self.count == self.stop_at:
            self.marker.touch()
            pause = threading.Event()
            while not self.go.exists():
                pause.wait(0.05)


def upgrade(
    repository: str, prefix: Path, renamer: StoppingRenamer, requirements: list[str]
) -> None:
    """Plan and carry out ``requirements`` (upgrading) with the library's own parts."""
    settings = load_config(
        overrides={"repository_url": repository, "upstream": "deny", "apk": "never"},
        environ=os.environ,
    )
    fetcher = HttpFetcher()
    environment = inspect_environment(prefix, apk=False)
    plan = resolve(
        parse_requirements(requirements),
        sources=sources_from_settings(settings, fetcher, arch=platform.machine()),
        installed=environment.installed,
        environment=TargetEnvironment.current(apk_available=False),
        policy=PlanPolicy(upgrade=True, upstream_allowed=False, apk_allowed=False),
    )
    execute_plan(
        plan,
        scheme=environment.scheme,
        fetcher=fetcher,
        apk_runner=None,
        progress=NullProgress(),
        renamer=renamer,
    )


def main(argv: list[str]) -> int:
    repository, prefix, stop_at, where, *requirements = argv
    renamer = StoppingRenamer(int(stop_at))
    try:
        if where == "thread":
            finished = threading.Event()

            def work() -> None:
                try:
                    upgrade(repository, Path(prefix), renamer, requirements)
                finally:
                    finished.set()

            threading.Thread(target=work).start()
            # A SIGINT interrupts this wait; the worker goes on, and the interpreter waits
            # for it on the way out. (Not Thread.join: CPython 3.11 marks a thread whose
            # join was interrupted as stopped, and then does not wait for it.)
            finished.wait()
        else:
            upgrade(repository, Path(prefix), renamer, requirements)
    except KeyboardInterrupt as interrupt:
        print(
            "KeyboardInterrupt",
            *getattr(interrupt, "__notes__", ()),
            sep="\n",
            file=sys.stderr,
            flush=True,
        )
        return 130
    print(f"renames: {renamer.count}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
