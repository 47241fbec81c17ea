"""Live progress of an install: one display updated in place (notebook) or one line (terminal)."""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TextIO, get_args

PackageState = Literal[
    "queued", "downloading", "verified", "unpacked", "installing", "installed", "failed"
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
    ) -> None:
        """Record a change for ``name``."""
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
    ) -> None:
        """Do nothing."""

    def finish(self, summary: str) -> None:
        """Do nothing."""

    def retrying(self, name: str, text: str) -> None:
        """Do nothing."""


class _Tracker:
    def __init__(self) -> None:
        self.packages: dict[str, PackageProgress] = {}

    def start(self, packages: list[PackageProgress]) -> None:
        self.packages = {package.name: package for package in packages}

    def apply(
        self, name: str, state: PackageState | None, done: int | None, total: int | None
    ) -> bool:
        """Apply a change; True when it is worth redrawing (state or a 5% step of bytes)."""
        package = self.packages.get(name)
        if package is None:
            return False
        redraw = state is not None and state != package.state
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
        done = sum(package.done for package in self.packages.values())
        total = sum(package.total or package.done for package in self.packages.values())
        finished = sum(package.state == "installed" for package in self.packages.values())
        return done, total, finished


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


class TerminalProgress(_Tracker):
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
    ) -> None:
        """Redraw the line when something visible changed."""
        if self.apply(name, state, done, total) and self._live:
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
            f"[{bar:<20}] {_megabytes(done)}/{_megabytes(total)} "
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


class NotebookProgress(_Tracker):
    """One table shown with ``display(display_id=True)`` and updated in place.

    Every display carries text/plain beside text/html, so text clients show words, not
    ``<IPython.core.display.HTML object>``. They differ in what they do with updates: a
    notebook (and nbconvert, which keeps the last update) redraws the table in place, while
    ``jupyter console`` shows only the first display and ignores updates. So the first
    display's text is a one-line "Installing ..." that never goes stale, the updates' text
    is the full table, and the summary is printed as ordinary output, which every client
    shows exactly once.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._handle: Any = None
        self._stream = stream

    def start(self, packages: list[PackageProgress]) -> None:
        """Show the table."""
        from IPython.display import display

        super().start(packages)
        names = ", ".join(f"{p.name} {p.version}" for p in packages)
        first = {
            "text/plain": f"Installing {len(packages)} package(s): {names}",
            "text/html": self._html(),
        }
        self._handle = display(
            first,
            raw=True,  # type: ignore[no-untyped-call]
            display_id=True,
        )

    def update(
        self,
        name: str,
        *,
        state: PackageState | None = None,
        done: int | None = None,
        total: int | None = None,
    ) -> None:
        """Update the table when something visible changed."""
        if self.apply(name, state, done, total) and self._handle is not None:
            self._handle.update(self._bundle(), raw=True)

    def retrying(self, name: str, text: str) -> None:
        """Show the retry in the package's row until it moves on."""
        if self.note(name, text) and self._handle is not None:
            self._handle.update(self._bundle(), raw=True)

    def finish(self, summary: str) -> None:
        """Show the final table, then print the summary below it."""
        if self._handle is not None:
            self._handle.update(self._bundle(), raw=True)
        stream = self._stream or sys.stdout
        stream.write(summary + "\n")
        stream.flush()

    def _bundle(self) -> dict[str, str]:
        return {"text/plain": self._text(), "text/html": self._html()}

    def _cells(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for package in self.packages.values():
            size = _megabytes(package.done)
            if package.total:
                size += f" / {_megabytes(package.total)}"
            state = f"{package.state}: {package.note}" if package.note else package.state
            rows.append((package.name, package.version, package.route, state, size))
        return rows

    def _text(self) -> str:
        rows: list[tuple[str, ...]] = [
            ("package", "version", "route", "state", "bytes"),
            *self._cells(),
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    def _html(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(version)}</td>"
            f"<td>{html.escape(route)}</td><td>{html.escape(state)}</td>"
            f"<td style='text-align:right'>{size}</td></tr>"
            for name, version, route, state, size in self._cells()
        )
        return (
            "<table><tr><th>package</th><th>version</th><th>route</th><th>state</th>"
            f"<th>bytes</th></tr>{rows}</table>"
        )


def in_notebook_kernel() -> bool:
    """Tell whether we run inside a Jupyter kernel (where rich display reaches the notebook)."""
    module = sys.modules.get("IPython")
    if module is None:
        return False
    shell = module.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def make_progress(*, quiet: bool, stream: TextIO | None = None) -> Progress:
    """Choose the progress display: nothing, a notebook table, or a terminal line."""
    if quiet:
        return NullProgress()
    if stream is None and in_notebook_kernel():
        return NotebookProgress()
    return TerminalProgress(stream)
