"""Serve the static tree (ETag, Last-Modified, Range, HEAD), and /simple/ by content negotiation.

The caching headers are the shipped nginx config's (``cache_policy.py``). Simple pages, the
most frequent reads by far (every install asks for one per project), come from memory
(``page_cache.py``): one stat per request instead of tornado's static file machinery.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import tornado.web
from packaging.utils import canonicalize_name

from ipydeps.formats.wire import SIMPLE_JSON as JSON_TYPE

from .base import JsonErrorMixin
from .cache_policy import REVALIDATE, cache_control, etag_of, not_modified_since
from .negotiation import Negotiated, choose_format
from .page_cache import PageCache

_TYPES = {
    ".apk": "application/octet-stream",
    ".whl": "application/octet-stream",
    ".stored": "application/octet-stream",
    ".metadata": "text/plain; charset=utf-8",
    ".pub": "application/x-pem-file",
    ".tar.gz": "application/gzip",
}


_CHUNK = 1 << 20
_PAGE_FILES = {
    "index.json": Negotiated("json", JSON_TYPE),
    "index.html": Negotiated("html", "text/html"),
}


class TreeHandler(JsonErrorMixin, tornado.web.StaticFileHandler):
    """Files of the public tree, with tornado's conditional-request and range semantics."""

    def get_content_type(self) -> str:
        """Name the types clients care about; fall back to tornado's guess."""
        path = self.absolute_path or ""
        for suffix, content_type in _TYPES.items():
            if path.endswith(suffix):
                return content_type
        return super().get_content_type()

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        """Hide dot files (temp files of atomic writes): they are 404 like anything missing."""
        if os.path.basename(absolute_path).startswith("."):
            raise tornado.web.HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)

    @classmethod
    def get_content(
        cls, abspath: str, start: int | None = None, end: int | None = None
    ) -> Generator[bytes, None, None]:
        """Yield the file (or its range) in 1 MiB chunks.

        Tornado reads 64 KiB at a time, and each chunk is a write and a flush through the
        event loop: serving a 112 MB stored copy took 0.1 s of the server's CPU, on the
        same cores as the client that is installing it.
        """
        with open(abspath, "rb") as handle:
            if start is not None:
                handle.seek(start)
            remaining = None if end is None else end - (start or 0)
            while remaining is None or remaining > 0:
                chunk = handle.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def compute_etag(self) -> str | None:
        """Return an ETag from mtime and size, like nginx.

        Tornado's default hashes the whole file and caches it per path for the life of
        the process, which is wrong for index pages that are rewritten in place.
        """
        if self.absolute_path is None:
            return None
        return etag_of(os.stat(self.absolute_path))

    @classmethod
    def get_cache_time(cls, path: str, modified: Any, mime_type: str) -> int:
        """Send no Expires or max-age of tornado's own (its ``?v=`` gives ten years)."""
        return 0

    def set_extra_headers(self, path: str) -> None:
        """Say what caches may keep: the files are immutable, the indexes are asked again."""
        self.set_header("Cache-Control", cache_control(path))


class SimpleHandler(TreeHandler):
    """``/simple/`` and ``/simple/<project>/``: index.json or index.html by ``Accept``."""

    _negotiated = Negotiated("html", "text/html")

    def initialize(self, path: str, pages: PageCache) -> None:  # type: ignore[override]
        """Take the simple tree's root and the process's page cache."""
        super().initialize(path)
        self.pages = pages

    async def get(self, path: str, include_body: bool = True) -> None:
        """Map the page to its JSON or HTML file, chosen from Accept or ``?format=``.

        ``<page>/index.json`` and ``<page>/index.html`` are the files themselves (the
        tree's layout, as a static mirror serves it). A project name that is not in its
        normalized form (PEP 503) and a page without its final "/" are 301 redirects to
        the one URL of the page, keeping the query (``?format=json``); the client sends
        its Accept again there, so the redirect is the same for both representations.
        """
        self._negotiated = choose_format(
            self.request.headers.get("Accept"), self.get_query_argument("format", None)
        )
        project, _, rest = path.partition("/")
        if project in _PAGE_FILES and not rest:
            project, rest = "", project
        canonical = canonicalize_name(project) if project else ""
        if canonical != project or (project and not path.endswith("/") and not rest):
            # PEP 503 pages end in "/"; the relative file URLs in them depend on it.
            target = f"/simple/{canonical}/{rest}" if canonical else "/simple/"
            query = f"?{self.request.query}" if self.request.query else ""
            self.redirect(target + query, permanent=True)
            return
        negotiated = not rest
        if rest in _PAGE_FILES:
            self._negotiated = _PAGE_FILES[rest]
        elif rest:
            raise tornado.web.HTTPError(404)
        page = rest or ("index.json" if self._negotiated.kind == "json" else "index.html")
        if "Range" in self.request.headers:
            # Rare for a page: tornado's handler knows every form of Range.
            await super().get(f"{canonical}/{page}" if canonical else page, include_body)
            return
        self._send_page(os.path.join(self.root, canonical, page), negotiated, include_body)

    def _send_page(self, file: str, negotiated: bool, include_body: bool) -> None:
        cached = self.pages.read(file)
        if cached is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", self.get_content_type())
        self.set_header("Cache-Control", REVALIDATE)
        if negotiated:
            self.set_header("Vary", "Accept")
        self.set_header("Etag", cached.etag)
        self.set_header("Last-Modified", cached.last_modified)
        if_none_match = self.request.headers.get("If-None-Match")
        if (
            self.check_etag_header()
            if if_none_match
            else not_modified_since(self.request.headers.get("If-Modified-Since"), cached.mtime)
        ):
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Length", len(cached.body))
        self.finish(cached.body if include_body else None)

    def set_extra_headers(self, path: str) -> None:
        """One URL, two representations: caches must key on Accept (PEP 691)."""
        self.set_header("Cache-Control", REVALIDATE)
        self.set_header("Vary", "Accept")

    def get_content_type(self) -> str:
        """Send the negotiated media type."""
        if self._negotiated.kind == "json":
            return JSON_TYPE
        return self._negotiated.content_type + "; charset=utf-8"
