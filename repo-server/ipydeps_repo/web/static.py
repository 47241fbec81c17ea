"""Serve the static tree (ETag, Last-Modified, Range, HEAD), and /simple/ by content negotiation."""

from __future__ import annotations

import os
from collections.abc import Generator

import tornado.web
from packaging.utils import canonicalize_name

from ipydeps.formats.wire import SIMPLE_JSON as JSON_TYPE

from .base import JsonErrorMixin
from .negotiation import Negotiated, choose_format

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
        stat = os.stat(self.absolute_path)
        return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'


class SimpleHandler(TreeHandler):
    """``/simple/`` and ``/simple/<project>/``: index.json or index.html by ``Accept``."""

    _negotiated = Negotiated("html", "text/html")

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
        if rest in _PAGE_FILES:
            self._negotiated = _PAGE_FILES[rest]
            await super().get(path, include_body)
            return
        page = "index.json" if self._negotiated.kind == "json" else "index.html"
        await super().get(path + page, include_body)

    def set_extra_headers(self, path: str) -> None:
        """One URL, two representations: caches must key on Accept (PEP 691)."""
        self.set_header("Vary", "Accept")

    def get_content_type(self) -> str:
        """Send the negotiated media type."""
        if self._negotiated.kind == "json":
            return JSON_TYPE
        return self._negotiated.content_type + "; charset=utf-8"
