"""Show a ``Plan`` to people: a plain-text table for terminals and escaped HTML for notebooks.

Public API (stable): ``render_text(plan) -> str``, ``render_html(plan) -> str``,
``format_size(size: int | None) -> str``.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from .models import Plan, Step

_HEADERS = ("package", "version", "route", "source", "size", "reason")


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


def _source(step: Step) -> str:
    """Where the file comes from: the host, which is what a reader checks."""
    return urlsplit(step.candidate.url).netloc or step.candidate.url


def _rows(plan: Plan) -> list[tuple[str, ...]]:
    return [
        (
            step.candidate.apk_name or str(step.candidate.name),
            _version(step),
            f"{step.action.value} {step.candidate.route.value}",
            _source(step),
            format_size(step.candidate.size),
            step.reason,
        )
        for step in plan.steps
    ]


def render_text(plan: Plan) -> str:
    """Render the plan as a text table, then what is skipped, problems with hints, notes."""
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
        lines.append(f"skipped {item.text}: {item.reason}")
    if plan.unsatisfiable:
        lines.append("Cannot install (nothing will be installed):")
        for problem in plan.unsatisfiable:
            lines.append(f"  {problem.text}: {problem.reason}")
            if problem.hint:
                lines.append(f"    hint: {problem.hint}")
    for note in plan.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def render_html(plan: Plan) -> str:
    """Render the plan as an HTML fragment for notebooks; every value from an index is escaped."""
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
            f"<li>skipped <code>{escape(item.text)}</code>: {escape(item.reason)}</li>"
            for item in plan.skipped
        ]
        parts.append("</ul>")
    if plan.unsatisfiable:
        parts.append(
            "<p><strong>Cannot install</strong> (nothing will be installed):</p>"
            '<ul class="ipydeps-unsatisfiable">'
        )
        for problem in plan.unsatisfiable:
            hint = f"<br><em>hint: {escape(problem.hint)}</em>" if problem.hint else ""
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
