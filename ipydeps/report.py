"""What an install did, for people: the table of a ``Result``, as text and as escaped HTML.

Two sizes per package, each named: ``downloaded`` is what came over the network (the wheel,
or the repository's stored copy: its members uncompressed, so bigger, but written to disk
as they arrive), ``on disk`` what the installed files take.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Protocol

from .models import Skipped
from .render import format_size

__all__ = ["ShownInstall", "report_html", "report_text"]

_HEADERS = ("package", "version", "action", "route", "from", "downloaded", "on disk", "time")


class ShownInstall(Protocol):
    """What the report reads of one installed package (``result.Installed`` is one)."""

    @property
    def name(self) -> str:
        """The project name."""
        ...

    @property
    def version(self) -> str:
        """The version installed."""
        ...

    @property
    def action(self) -> str:
        """install, upgrade or downgrade."""
        ...

    @property
    def replaced(self) -> str | None:
        """The version it replaced, if any."""
        ...

    @property
    def route(self) -> str:
        """apk, wheel or upstream."""
        ...

    @property
    def fetched_from(self) -> str:
        """The host, and "stored copy" when that is what came from it."""
        ...

    @property
    def bytes(self) -> int:
        """Bytes downloaded."""
        ...

    @property
    def on_disk(self) -> int | None:
        """Bytes of the installed files; None when not known (apks)."""
        ...

    @property
    def seconds(self) -> float:
        """Time of its download and unpacking."""
        ...


def _action(item: ShownInstall) -> str:
    return f"{item.action} from {item.replaced}" if item.replaced else item.action


def _rows(installed: Sequence[ShownInstall]) -> list[tuple[str, ...]]:
    return [
        (
            item.name,
            item.version,
            _action(item),
            item.route,
            item.fetched_from,
            format_size(item.bytes),
            format_size(item.on_disk),
            f"{item.seconds:.2f} s",
        )
        for item in installed
    ]


def _notes(skipped: Sequence[Skipped], warnings: Sequence[str]) -> list[str]:
    return [f"skipped {skip.text}: {skip.describe()}" for skip in skipped] + [
        f"WARNING: {warning}" for warning in warnings
    ]


def report_text(
    summary: str,
    installed: Sequence[ShownInstall],
    skipped: Sequence[Skipped],
    warnings: Sequence[str],
) -> str:
    """Render the summary line, a table of what was installed, what was skipped, warnings."""
    lines = [summary]
    rows = _rows(installed)
    if rows:
        widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
        for row in [_HEADERS, *rows]:
            cells = [
                cell.rjust(width) if column >= 5 else cell.ljust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append(("  " + "  ".join(cells)).rstrip())
    lines += [f"  {note}" for note in _notes(skipped, warnings)]
    return "\n".join(lines)


def report_html(
    summary: str,
    installed: Sequence[ShownInstall],
    skipped: Sequence[Skipped],
    warnings: Sequence[str],
) -> str:
    """Render the same as ``report_text`` as an HTML fragment; every value is escaped."""
    parts = [f'<div class="ipydeps-result"><p>{escape(summary)}</p>']
    rows = _rows(installed)
    if rows:
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in _HEADERS) + "</tr>")
        for row in rows:
            cells = [
                f"<td style='text-align:right'>{escape(cell)}</td>"
                if column >= 5
                else f"<td>{escape(cell)}</td>"
                for column, cell in enumerate(row)
            ]
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    skips = [f"<li>skipped {escape(s.text)}: {escape(s.describe())}</li>" for s in skipped]
    warns = [f"<li><b>WARNING: {escape(warning)}</b></li>" for warning in warnings]
    if skips or warns:
        parts.append("<ul>" + "".join(skips + warns) + "</ul>")
    parts.append("</div>")
    return "".join(parts)
