"""The one display of an install in a notebook: its plan, then its progress, then its summary.

Each ``pip()`` call in a kernel shows ONE display (``display_id``) and replaces its content
in place: the plan, the progress table while packages download and install, and at the end
the summary (``Result``), which the call's return value then does not show again in the
same cell. An interrupt or an error leaves the last table, with its unfinished rows marked
``stopped`` and a line saying what happened.

Every bundle carries ``text/plain`` beside ``text/html``, so text clients read words, never
``<IPython.core.display.HTML object>``. A notebook (and nbconvert, which keeps a display's
last update) shows the last form; ``jupyter console``, which ignores updates, shows the
first one: the plan.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from .progress import (
    NullProgress,
    PackageProgress,
    PackageState,
    Progress,
    ProgressTracker,
    TerminalProgress,
    in_notebook_kernel,
)
from .render import ShownPlan, format_size, render_html, render_text

Bundle = Mapping[str, str]


def current_cell() -> int | None:
    """Return the number of the cell running now (its ``In[n]``), or None outside IPython."""
    module = sys.modules.get("IPython")
    shell = module.get_ipython() if module is not None else None
    count = getattr(shell, "execution_count", None)
    return count if isinstance(count, int) else None


class LiveDisplay:
    """One display in the running cell, shown on the first ``show`` and replaced after."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._last: dict[str, str] = {}
        self.cell = current_cell()

    @property
    def shown(self) -> bool:
        """True once something was displayed."""
        return self._handle is not None

    def show(self, bundle: Bundle) -> None:
        """Display ``bundle`` (text/plain and text/html), in place of what was shown."""
        self._last = dict(bundle)
        if self._handle is None:
            from IPython.display import display

            self._handle = display(
                self._last,
                raw=True,  # type: ignore[no-untyped-call]
                display_id=True,
            )
        else:
            self._handle.update(self._last, raw=True)

    def headline(self, line: str) -> None:
        """Show ``line`` above what is shown (alone, if nothing was)."""
        text = self._last.get("text/plain", "")
        markup = self._last.get("text/html", "")
        self.show(
            {
                "text/plain": f"{line}\n{text}" if text else line,
                "text/html": f"<p><strong>{html.escape(line)}</strong></p>{markup}",
            }
        )

    def footline(self, line: str) -> None:
        """Show ``line`` below what is shown."""
        text = self._last.get("text/plain", "")
        markup = self._last.get("text/html", "")
        self.show(
            {
                "text/plain": f"{text}\n{line}" if text else line,
                "text/html": f"{markup}<p>{html.escape(line)}</p>",
            }
        )


class NotebookProgress(ProgressTracker):
    """The progress table, drawn in the install's live display."""

    def __init__(self, live: LiveDisplay) -> None:
        super().__init__()
        self.live = live

    def start(self, packages: list[PackageProgress]) -> None:
        """Replace the plan with the table."""
        super().start(packages)
        self.live.show(self._bundle())

    def update(
        self,
        name: str,
        *,
        state: PackageState | None = None,
        done: int | None = None,
        total: int | None = None,
        fetching: str | None = None,
    ) -> None:
        """Redraw the table when something visible changed."""
        if self.apply(name, state, done, total, fetching):
            self.live.show(self._bundle())

    def retrying(self, name: str, text: str) -> None:
        """Show the retry in the package's row until it moves on."""
        if self.note(name, text):
            self.live.show(self._bundle())

    def finish(self, summary: str) -> None:
        """Do nothing: the caller replaces the table with the whole summary (``Result``)."""

    def stop(self) -> None:
        """Mark the packages left mid-way ``stopped`` (an interrupt, or another's error)."""
        if not self.packages:
            return  # stopped before the table was shown: the plan stays
        for package in self.packages.values():
            if package.state not in ("installed", "failed"):
                package.state = "stopped"
                package.note = ""
        self.live.show(self._bundle())

    def _bundle(self) -> dict[str, str]:
        return {"text/plain": self._text(), "text/html": self._html()}

    def _cells(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for package in self.packages.values():
            size = format_size(package.done)
            if package.total:
                size += f" / {format_size(package.total)}"
            if package.fetching:
                size += f" {package.fetching}"
            state = f"{package.state}: {package.note}" if package.note else package.state
            rows.append((package.name, package.version, package.route, state, size))
        return rows

    def _text(self) -> str:
        rows: list[tuple[str, ...]] = [
            ("package", "version", "route", "state", "downloaded"),
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
            f"<td style='text-align:right'>{html.escape(size)}</td></tr>"
            for name, version, route, state, size in self._cells()
        )
        return (
            "<table><tr><th>package</th><th>version</th><th>route</th><th>state</th>"
            f"<th>downloaded</th></tr>{rows}</table>"
        )


def live_display(stream: TextIO | None) -> LiveDisplay | None:
    """Return the install's display in a kernel (None elsewhere, or with output to ``stream``)."""
    return LiveDisplay() if stream is None and in_notebook_kernel() else None


def make_progress(
    *, quiet: bool, stream: TextIO | None = None, live: LiveDisplay | None = None
) -> Progress:
    """Choose the progress display: nothing, the notebook's table, or a terminal line."""
    if quiet:
        return NullProgress()
    if live is not None:
        return NotebookProgress(live)
    return TerminalProgress(stream)


def show_unless_shown(shown_in: int | None, bundle: Bundle) -> None:
    """Display ``bundle``, unless the live display of cell ``shown_in`` (this one) shows it."""
    if shown_in is not None and shown_in == current_cell():
        return
    from IPython.display import display

    display(dict(bundle), raw=True)  # type: ignore[no-untyped-call]


def interruption(interrupt: BaseException) -> str:
    """Say what an interrupt of an install left: its notes, or that nothing changed."""
    notes = [note.removeprefix("ipydeps: ") for note in getattr(interrupt, "__notes__", ())]
    return "interrupted: " + ("; ".join(notes) if notes else "nothing changed")


def show_plan(
    plan: ShownPlan, stream: TextIO | None, live: LiveDisplay | None, *, problems: bool
) -> None:
    """Show ``plan`` (its problems too when ``problems``: a raised error says them otherwise)."""
    text = render_text(plan, problems=problems)
    if live is not None:
        if text:
            live.show({"text/plain": text, "text/html": render_html(plan, problems=problems)})
    elif text:
        print(text, file=stream or sys.stdout)


def tell_interrupt(error: BaseException, live: LiveDisplay | None) -> None:
    """Say in the live display what an interrupt left, and keep its traceback to one line.

    The ``KeyboardInterrupt`` keeps its type (callers and ``stop_on_error`` see it); its
    ``_render_traceback_`` (what IPython shows instead of the frames) points at the display.
    """
    if not isinstance(error, KeyboardInterrupt) or live is None:
        return
    live.headline(interruption(error))
    error._render_traceback_ = lambda: [  # type: ignore[attr-defined]
        "KeyboardInterrupt: the install was interrupted; the display above says what changed"
    ]
