"""PEP 691 content negotiation: JSON or HTML for ``/simple/``, from ``Accept`` or ``?format=``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ipydeps.formats.wire import SIMPLE_HTML as HTML_TYPE
from ipydeps.formats.wire import SIMPLE_JSON as JSON_TYPE
from ipydeps.formats.wire import SIMPLE_LATEST_HTML, SIMPLE_LATEST_JSON, TEXT_HTML

# PEP 691: "latest" aliases resolve to v1 here.
_ALIASES: dict[str, tuple[Literal["json", "html"], str]] = {
    JSON_TYPE: ("json", JSON_TYPE),
    SIMPLE_LATEST_JSON: ("json", JSON_TYPE),
    HTML_TYPE: ("html", HTML_TYPE),
    SIMPLE_LATEST_HTML: ("html", HTML_TYPE),
    TEXT_HTML: ("html", TEXT_HTML),
}


@dataclass(frozen=True)
class Negotiated:
    """The chosen representation: ``json`` or ``html``, and the Content-Type to send."""

    kind: Literal["json", "html"]
    content_type: str


def choose_format(accept: str | None, override: str | None = None) -> Negotiated:
    """Pick JSON or HTML from an ``Accept`` header (PEP 691), or a ``?format=`` override.

    Highest q wins; on a tie the order in the header wins. Nothing acceptable, no header
    or ``*/*`` all give HTML (PEP 691 allows a default instead of 406), which keeps
    browsers and old pip happy.
    """
    if override in ("json", JSON_TYPE):
        return Negotiated("json", JSON_TYPE)
    if override in ("html", HTML_TYPE, TEXT_HTML):
        return Negotiated("html", TEXT_HTML if override != HTML_TYPE else HTML_TYPE)
    best: tuple[float, int, Negotiated] | None = None
    for position, part in enumerate((accept or "").split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        choice = _ALIASES.get(media.lower())
        if choice is None or quality <= 0:
            continue
        candidate = (quality, -position, Negotiated(*choice))
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else Negotiated("html", TEXT_HTML)
