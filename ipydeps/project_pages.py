"""Reading a project's page of our repository, by negotiation or by the JSON page's file name.

Our repository's tree holds each project page twice, ``simple/<project>/index.json`` and
``index.html``; our server and the shipped nginx configuration choose one by ``Accept``. A
plain static host of the same tree (S3-compatible website hosting, a CDN) negotiates
nothing: it answers the folder URL with ``index.html`` whatever is asked, and our stored
copies are named in the JSON page only. So when a JSON ``Accept`` gets HTML, the reader asks
for ``index.json`` by its name once. If that is a JSON page, every later page of this index
is read by that name (one request a project, as with negotiation); if not (a tree written
before the JSON pages existed, a host that answers every URL with one page, a refusal), it
keeps reading the HTML pages, as before. Both pages come from the same repository and carry
the same sha256 of every file, so nothing is trusted that negotiation would not have given.
An index that negotiates answers JSON at once and never sees the extra request.

A page that a redirect brought from another host is that host's HTML, not our tree: no
``index.json`` is asked for it. The reader remembers what it found for as long as its
source lives (one install or plan).
Two threads reading the first pages at once may both ask once; that costs a request, no more.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from .credentials import origin, redact
from .errors import RepositoryError
from .formats.wire import SIMPLE_JSON_PAGE
from .protocols import Page

__all__ = ["ProjectPageReader", "is_json_page"]

_log = logging.getLogger(__name__)


def is_json_page(body: bytes) -> bool:
    """Tell a PEP 691 JSON body from an HTML one, as ``index.parse_project_page`` does."""
    return body.lstrip()[:1] == b"{"


class _Way(enum.Enum):
    NEGOTIATE = "negotiate"  # ask the folder URL; look at what came back
    JSON_FILE = "json-file"  # no negotiation here, and the JSON pages are there by name
    HTML = "html"  # no negotiation and no JSON pages: take the HTML pages


class ProjectPageReader:
    """Reads ``<index>/<project>/`` pages, falling back to ``index.json`` by name on static hosts.

    ``read`` GETs one URL with the index's ``Accept`` and returns the page, None on 404, or
    raises ``RepositoryError``.
    """

    def __init__(self, read: Callable[[str], Page | None]) -> None:
        self._read = read
        self._way = _Way.NEGOTIATE

    @property
    def way(self) -> str:
        """How pages are read now: ``negotiate``, ``json-file`` or ``html`` (for the trail)."""
        return self._way.value

    def read(self, folder_url: str) -> Page | None:
        """Return the page of the project whose folder is ``folder_url`` (ending in ``/``)."""
        if self._way is _Way.JSON_FILE:
            # Both pages are written together, so no index.json means no such project.
            return self._read(folder_url + SIMPLE_JSON_PAGE)
        page = self._read(folder_url)
        if page is None or self._way is _Way.HTML or is_json_page(page.body):
            return page
        if origin(page.url) != origin(folder_url):
            # Redirected to another host: its HTML is that host's, not our tree on a static
            # host; our repository has no index.json of it to offer.
            return page
        return self._try_json_file(folder_url, page)

    def _try_json_file(self, folder_url: str, html_page: Page) -> Page:
        url = folder_url + SIMPLE_JSON_PAGE
        try:
            json_page = self._read(url)
        except RepositoryError as error:
            # S3 answers 403 for a missing key unless listing is allowed: as good as a 404.
            _log.debug("%s: %s; reading the HTML pages", redact(url), error.message)
            json_page = None
        if json_page is not None and is_json_page(json_page.body):
            _log.debug(
                "%s answered HTML to a JSON Accept (no negotiation, a static host); "
                "reading each project's %s by name",
                redact(folder_url),
                SIMPLE_JSON_PAGE,
            )
            self._way = _Way.JSON_FILE
            return json_page
        _log.debug(
            "%s answered HTML and has no JSON page by name; reading the HTML pages "
            "(no stored copies from this repository)",
            redact(folder_url),
        )
        self._way = _Way.HTML
        return html_page
