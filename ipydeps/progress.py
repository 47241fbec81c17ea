"""Live progress of an install: the states of its packages, and one line on a terminal.

The notebook's display, which the plan, this progress and the summary share, is in live.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal, Protocol, TextIO, get_args

PackageState = Literal[
    "queued", "downloading", "verified", "unpacked", "installing", "installed", "failed", "stopped"
]
STATES: tuple[PackageState, ...] = get_args(PackageState)


@dataclass
class PackageProgress:
    """The state of one package in an install."""

    name: str
    version: str
    route: str
    state: PackageState = "queued"
    done: int = 0
    total: int | None = None
    note: str = ""  # the last retry, until the package moves on
    # What is downloaded: "wheel", or "stored copy" (uncompressed, so bigger; see transfer.py).
    fetching: str = ""


class Progress(Protocol):
    """Receives progress; called from ONE thread (the one running ``pip()``)."""

    def start(self, packages: list[PackageProgress]) -> None:
        """Show the packages about to be installed."""
        ...

    def update(
        self,
        name: str,
        *,
        state: PackageState | None = None,
        done: int | None = None,
        total: int | None = None,
        fetching: str | None = None,
    ) -> None:
        """Record a change for ``name`` (``fetching``: what its bytes are, wheel or stored copy)."""
        ...

    def finish(self, summary: str) -> None:
        """Show the final summary line and stop updating."""
        ...

    def retrying(self, name: str, text: str) -> None:
        """Show that a download of ``name`` failed and is retried (``text`` says why, when)."""
        ...


class NullProgress:
    """Quiet mode: shows nothing."""

    def start(self, packages: list[PackageProgress]) -> None:
        """Do nothing."""

    def update(
        self,
        name: str,
        *,
        state: PackageState | None = None,
        done: int | None = None,
        total: int | None = None,
        fetching: str | None = None,
    ) -> None:
        """Do nothing."""

    def finish(self, summary: str) -> None:
        """Do nothing."""

    def retrying(self, name: str, text: str) -> None:
        """Do nothing."""


class ProgressTracker:
    """The packages of one install and their states, for a display to draw."""

    def __init__(self) -> None:
        self.packages: dict[str, PackageProgress] = {}

    def start(self, packages: list[PackageProgress]) -> None:
        """Track ``packages``."""
        self.packages = {package.name: package for package in packages}

    def apply(
        self,
        name: str,
        state: PackageState | None,
        done: int | None,
        total: int | None,
        fetching: str | None = None,
    ) -> bool:
        """Apply a change; True when it is worth redrawing (state or a 5% step of bytes)."""
        package = self.packages.get(name)
        if package is None:
            return False
        redraw = state is not None and state != package.state
        if fetching is not None and fetching != package.fetching:
            package.fetching = fetching
            package.done = 0  # a stored copy dropped for the wheel starts again
            redraw = True
        if redraw and package.note:
            package.note = ""  # the retry is over: the package moved on
        if state is not None:
            package.state = state
        if total is not None:
            package.total = total
        if done is not None:
            step = max((package.total or 0) // 20, 1 << 20)
            redraw = redraw or done // step != package.done // step
            package.done = done
        return redraw

    def note(self, name: str, text: str) -> bool:
        """Record a retry of ``name``; True when it is worth redrawing."""
        package = self.packages.get(name)
        if package is None or package.note == text:
            return False
        package.note = text
        return True

    def totals(self) -> tuple[int, int, int]:
        """Bytes downloaded, bytes to download, packages installed."""
        done = sum(package.done for package in self.packages.values())
        total = sum(package.total or package.done for package in self.packages.values())
        finished = sum(package.state == "installed" for package in self.packages.values())
        return done, total, finished


def megabytes(count: int) -> str:
    """``count`` bytes in MB with one decimal, as progress shows them."""
    return f"{count / 1e6:.1f} MB"


class TerminalProgress(ProgressTracker):
    """A single progress line on stderr, redrawn with carriage returns."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self._width = 0
        # A redrawn line only makes sense on a terminal; logs and pipes get the summary alone.
        isatty = getattr(self.stream, "isatty", None)
        self._live = bool(isatty and isatty())

    def update(
        self,
        name: str,
        *,
        state: PackageState | None = None,
        done: int | None = None,
        total: int | None = None,
        fetching: str | None = None,
    ) -> None:
        """Redraw the line when something visible changed."""
        if self.apply(name, state, done, total, fetching) and self._live:
            self._draw()

    def retrying(self, name: str, text: str) -> None:
        """Print the retry on a line of its own (also when not a terminal: logs keep it)."""
        if not self.note(name, text):
            return
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(f"ipydeps: {name}: {text}\n")
        self.stream.flush()
        if self._live:
            self._draw()

    def _draw(self) -> None:
        done, total, finished = self.totals()
        active = [p.name for p in self.packages.values() if p.state not in ("queued", "installed")]
        fraction = done / total if total else 0.0
        bar = "#" * int(fraction * 20)
        line = (
            f"[{bar:<20}] {megabytes(done)}/{megabytes(total)} "
            f"{finished}/{len(self.packages)} installed {' '.join(active[:3])}"
        )
        padding = max(self._width - len(line), 0)
        self._width = len(line)
        self.stream.write("\r" + line + " " * padding)
        self.stream.flush()

    def finish(self, summary: str) -> None:
        """Replace the bar with the summary."""
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
        self.stream.write(summary + "\n")
        self.stream.flush()


def in_notebook_kernel() -> bool:
    """Tell whether we run inside a Jupyter kernel (where rich display reaches the notebook)."""
    module = sys.modules.get("IPython")
    if module is None:
        return False
    shell = module.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
