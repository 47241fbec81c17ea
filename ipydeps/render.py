"""Show a plan to people: a plain-text table for terminals and escaped HTML for notebooks.

The renderers read a plan through ``ShownPlan`` (``plan_model.Plan`` is one), so this
module depends on the data types alone and ``Plan`` can print itself with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from .advice import Wording, python_keywords
from .models import Route, Skipped, Step, Unsatisfiable

if TYPE_CHECKING:
    from .apkclosure import ApkAddition

__all__ = ["ShownPlan", "format_size", "render_html", "render_text"]


class ShownPlan(Protocol):
    """What the renderers read of a plan."""

    @property
    def steps(self) -> Sequence[Step]:
        """The steps in install order."""
        ...

    @property
    def skipped(self) -> Sequence[Skipped]:
        """Requirements that need no work, and why."""
        ...

    @property
    def unsatisfiable(self) -> Sequence[Unsatisfiable]:
        """Requirements no allowed source can satisfy."""
        ...

    @property
    def notes(self) -> Sequence[str]:
        """Notes about the sources and the policy."""
        ...

    @property
    def apk_dependencies(self) -> Sequence[ApkAddition]:
        """What ``apk add`` adds besides the apk steps."""
        ...

    @property
    def ok(self) -> bool:
        """True when every requirement can be satisfied."""
        ...


# "download": the wheel's size; where the repository offers a stored copy (its members
# uncompressed, bigger but written to disk as they arrive), its size too, since a near
# repository's copy is what is fetched (transfer.py).
_HEADERS = ("package", "version", "route", "source", "download", "reason")


def format_size(size: int | None) -> str:
    """Bytes as a short human size (``1.2 MB``); ``?`` when unknown."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _version(step: Step) -> str:
    candidate = step.candidate
    text = candidate.apk_version if candidate.apk_version else str(candidate.version)
    if step.replaces is not None:
        text += f" (replaces {step.replaces})"
    return text


def _download(step: Step) -> str:
    """Return the wheel's size, and the stored copy's when the repository offers one."""
    size = format_size(step.candidate.size)
    stored = step.candidate.stored
    return f"{size} (stored copy {format_size(stored.size)})" if stored else size


def _source(step: Step) -> str:
    """Where the file comes from: the host, which is what a reader checks."""
    return urlsplit(step.candidate.url).netloc or step.candidate.url


def _apk_dependency_rows(plan: ShownPlan) -> list[tuple[str, ...]]:
    """Rows for what apk adds by itself; unknown to our index means a system repository's."""
    rows: list[tuple[str, ...]] = []
    for added in plan.apk_dependencies:
        record = added.record
        wanted = "" if added.dependency == added.name else added.dependency
        rows.append(
            (
                added.name,
                record.version if record is not None else "?",
                "install apk",
                (urlsplit(added.location).netloc or added.location)
                if record is not None
                else "system repositories",
                format_size(record.size or None) if record is not None else "?",
                f"apk dependency of {added.needed_by}" + (f" ({wanted})" if wanted else ""),
            )
        )
    return rows


def _rows(plan: ShownPlan) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (
            step.candidate.apk_name or str(step.candidate.name),
            _version(step),
            f"{step.action.value} {step.candidate.route.value}",
            _source(step),
            _download(step),
            step.reason,
        )
        for step in plan.steps
    ]
    # apk installs its own dependencies in the same transaction, before the apks that need
    # them: list them just above the first apk step.
    first_apk = next(
        (i for i, step in enumerate(plan.steps) if step.candidate.route is Route.APK), len(rows)
    )
    rows[first_apk:first_apk] = _apk_dependency_rows(plan)
    return rows


def render_text(
    plan: ShownPlan, *, wording: Wording = python_keywords, problems: bool = True
) -> str:
    """Render the plan as a text table, then what is skipped, problems with hints, notes.

    ``wording`` words the settings hints name (the command line: its flags); ``problems``
    False leaves out what cannot be installed, for an edge that reports it as its error.
    """
    lines: list[str] = []
    rows = _rows(plan)
    if rows:
        widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
        lines.append("  ".join(h.ljust(w) for h, w in zip(_HEADERS, widths, strict=True)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    elif plan.ok:
        lines.append("Nothing to install.")
    for item in plan.skipped:
        lines.append(f"skipped {item.text}: {item.describe(wording)}")
    if plan.unsatisfiable and problems:
        lines.append("Cannot install (nothing will be installed):")
        for problem in plan.unsatisfiable:
            lines.append(f"  {problem.text}: {problem.reason}")
            if problem.hint:
                lines.append(f"    hint: {problem.hint.worded(wording)}")
    for note in plan.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def render_html(plan: ShownPlan, *, problems: bool = True) -> str:
    """Render the plan as an HTML fragment for notebooks; every value from an index is escaped.

    ``problems=False`` leaves the problems out, as in ``render_text``.
    """
    parts = ['<div class="ipydeps-plan">']
    rows = _rows(plan)
    if rows:
        parts.append("<table><thead><tr>")
        parts += [f"<th>{escape(header)}</th>" for header in _HEADERS]
        parts.append("</tr></thead><tbody>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>")
        parts.append("</tbody></table>")
    elif plan.ok:
        parts.append("<p>Nothing to install.</p>")
    if plan.skipped:
        parts.append('<ul class="ipydeps-skipped">')
        parts += [
            f"<li>skipped <code>{escape(item.text)}</code>: {escape(item.describe())}</li>"
            for item in plan.skipped
        ]
        parts.append("</ul>")
    if plan.unsatisfiable and problems:
        parts.append(
            "<p><strong>Cannot install</strong> (nothing will be installed):</p>"
            '<ul class="ipydeps-unsatisfiable">'
        )
        for problem in plan.unsatisfiable:
            hint = f"<br><em>hint: {escape(str(problem.hint))}</em>" if problem.hint else ""
            parts.append(
                f"<li><code>{escape(problem.text)}</code>: {escape(problem.reason)}{hint}</li>"
            )
        parts.append("</ul>")
    if plan.notes:
        parts.append('<ul class="ipydeps-notes">')
        parts += [f"<li>note: {escape(note)}</li>" for note in plan.notes]
        parts.append("</ul>")
    parts.append("</div>")
    return "".join(parts)
