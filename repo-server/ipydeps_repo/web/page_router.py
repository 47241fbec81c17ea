"""The hot read: a simple page at its one URL, answered from memory without a RequestHandler.

Every install asks for one page per project, and most of the server's CPU for such a read
went to tornado's per-request machinery (a handler object, its headers, its finish), not to
the page. This router answers ``GET``/``HEAD`` of ``/simple/``, ``/simple/<name>/`` and
their ``index.json``/``index.html`` files, name in PEP 503 normal form, no query, no body,
no Range, when the page exists: the bytes and validators from the page cache, the headers
``SimpleHandler`` sends. Anything else, including every miss and redirect, goes to the
application as before, so the rules stay in one place and this path only takes a shortcut.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from http import HTTPStatus

import tornado.routing
import tornado.web
from tornado import httputil
from tornado.log import access_log

from ipydeps.formats.wire import SIMPLE_JSON as JSON_TYPE

from .cache_policy import REVALIDATE, etag_matches, not_modified_since
from .negotiation import Negotiated, choose_format
from .page_cache import CachedPage, PageCache

# The one URL of a page (a name in normal form, the final "/"), or one of its two files.
_PAGE_PATH = re.compile(r"/simple/(?:([a-z0-9]+(?:-[a-z0-9]+)*)/)?(index\.json|index\.html)?")
_FILES = {
    "index.json": Negotiated("json", JSON_TYPE),
    "index.html": Negotiated("html", "text/html"),
}
# Headers that need the application: a body to bound, a range to cut.
_NOT_HERE = ("Content-Length", "Transfer-Encoding", "Range")
_SERVER = f"TornadoServer/{tornado.version}"


@dataclass(frozen=True)
class PageRead:
    """Which file a request for a page reads, in which representation, and if it varies."""

    relative_path: str
    negotiated: Negotiated
    varies: bool


def plan_page_read(
    method: str, path: str, query: str, headers: httputil.HTTPHeaders
) -> PageRead | None:
    """Return the page read this request is, or None if the application must answer it."""
    if method not in ("GET", "HEAD") or query or any(name in headers for name in _NOT_HERE):
        return None
    match = _PAGE_PATH.fullmatch(path)
    if match is None:
        return None
    project, file = match.groups()
    if file is not None:
        return PageRead(os.path.join(project or "", file), _FILES[file], varies=False)
    negotiated = _negotiate(headers.get("Accept"))
    page = "index.json" if negotiated.kind == "json" else "index.html"
    return PageRead(os.path.join(project or "", page), negotiated, varies=True)


@functools.lru_cache(maxsize=256)
def _negotiate(accept: str | None) -> Negotiated:
    # Clients send a handful of Accept headers; parsing one each time was a tenth of a read.
    return choose_format(accept)


def content_type(negotiated: Negotiated) -> str:
    """Return the Content-Type header for the negotiated representation."""
    if negotiated.kind == "json":
        return JSON_TYPE
    return negotiated.content_type + "; charset=utf-8"


class PageRouter(tornado.routing.Router):
    """Pages at their one URL from the page cache; every other request to the application."""

    def __init__(
        self,
        application: tornado.web.Application,
        simple_root: str,
        pages: PageCache,
        *,
        access_log: bool,
    ) -> None:
        self.application = application
        self.simple_root = simple_root
        self.pages = pages
        self.log = access_log

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: object
    ) -> httputil.HTTPMessageDelegate:
        """Answer a page read here; hand anything else to the application."""
        read = plan_page_read(request.method or "", request.path, request.query, request.headers)
        page = None
        if read is not None:
            page = self.pages.read(os.path.join(self.simple_root, read.relative_path))
        if read is None or page is None:
            return self.application.find_handler(request)
        return _PageAnswer(request, read, page, self.log)


class _PageAnswer(httputil.HTTPMessageDelegate):
    """Writes the page (or a 304) once the request is complete."""

    def __init__(
        self, request: httputil.HTTPServerRequest, read: PageRead, page: CachedPage, log: bool
    ) -> None:
        self.request = request
        self.read = read
        self.page = page
        self.log = log

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        return None

    def finish(self) -> None:
        request, page = self.request, self.page
        headers = httputil.HTTPHeaders()
        headers["Server"] = _SERVER
        headers["Date"] = _http_now()
        headers["Cache-Control"] = REVALIDATE
        if self.read.varies:
            headers["Vary"] = "Accept"
        headers["Etag"] = page.etag
        headers["Last-Modified"] = page.last_modified
        if_none_match = request.headers.get("If-None-Match")
        if (
            etag_matches(if_none_match, page.etag)
            if if_none_match
            else not_modified_since(request.headers.get("If-Modified-Since"), page.mtime)
        ):
            status, body = 304, None
        else:
            headers["Content-Type"] = content_type(self.read.negotiated)
            headers["Content-Length"] = str(len(page.body))
            status, body = 200, page.body if request.method == "GET" else None
        connection = request.connection
        if connection is None:  # only a request built by hand has none
            return
        connection.write_headers(
            httputil.ResponseStartLine("", status, HTTPStatus(status).phrase), headers, body
        )
        connection.finish()
        if self.log:
            access_log.info(
                "%d %s %s %.1fms",
                status,
                request.method,
                request.uri,
                1000 * request.request_time(),
            )


@functools.lru_cache(maxsize=2)
def _http_date_at(second: int) -> str:
    return httputil.format_timestamp(second)


def _http_now() -> str:
    return _http_date_at(int(time.time()))
