"""Build the tornado Application from Settings and a Store (no globals)."""

from __future__ import annotations

import tornado.web
from tornado.log import access_log

from ..settings import Settings
from ..store.build_requests import BuildRequestQueue
from ..store.store import Store
from .api import HealthHandler, PackagesHandler
from .auth import TokenStore
from .base import NotFoundHandler, RedirectHandler
from .build_requests import BuildRequestHandler, BuildRequestStateHandler
from .landing import LandingHandler
from .legacy_upload import LegacyUploadHandler
from .page_cache import PageCache
from .page_router import PageRouter
from .rate_limit import BuildRequestLimits
from .releases import ReleaseHandler, YankHandler
from .static import SimpleHandler, TreeHandler
from .upload import UploadHandler


def make_router(settings: Settings, store: Store) -> PageRouter:
    """Return what the HTTP server runs: simple pages from memory, the rest by ``make_app``."""
    pages = PageCache()
    return PageRouter(
        make_app(settings, store, pages),
        str(settings.data.tree / "simple"),
        pages,
        access_log=settings.access_log,
    )


def make_app(
    settings: Settings, store: Store, pages: PageCache | None = None
) -> tornado.web.Application:
    """Return the application: static tree, negotiated /simple/, upload and JSON API.

    The tree is plain files, so nginx or a CDN can serve the same paths; only
    ``/api/v1/...`` needs this process.
    """
    tree = str(settings.data.tree)
    tokens = TokenStore(settings.data.tokens_file)
    per_token, per_hour, max_open = settings.build_request_limits
    queue = BuildRequestQueue(settings.data, max_open=max_open)
    limits = BuildRequestLimits.per_hour(per_token, per_hour)
    return tornado.web.Application(
        [
            (r"/", LandingHandler, {"settings": settings, "store": store}),
            (r"/api/v1/health", HealthHandler, {"store": store}),
            (r"/api/v1/packages", PackagesHandler, {"store": store}),
            (r"/api/v1/upload/(.*)", UploadHandler, {"store": store, "tokens": tokens}),
            (
                r"/api/v1/projects/([^/]+)/([^/]+)/yank",
                YankHandler,
                {"store": store, "tokens": tokens},
            ),
            (
                r"/api/v1/projects/([^/]+)/([^/]+)",
                ReleaseHandler,
                {"store": store, "tokens": tokens},
            ),
            (
                r"/api/v1/build-requests",
                BuildRequestHandler,
                {"queue": queue, "tokens": tokens, "limits": limits},
            ),
            (r"/api/v1/build-requests/([^/]+)", BuildRequestStateHandler, {"queue": queue}),
            # PyPI's upload URL is /legacy/; twine and flit post to the URL as configured.
            (r"/legacy/?", LegacyUploadHandler, {"store": store, "tokens": tokens}),
            (r"/simple", RedirectHandler, {"url": "/simple/", "permanent": True}),
            (
                r"/simple/(.*)",
                SimpleHandler,
                {"path": str(settings.data.tree / "simple"), "pages": pages or PageCache()},
            ),
            (r"/((?:keys|alpine|files)/.+)", TreeHandler, {"path": tree}),
        ],
        default_handler_class=NotFoundHandler,
        # ETags come from mtime and size (TreeHandler), so tornado's hash cache is not used.
        static_hash_cache=False,
        log_function=_log_request if settings.access_log else _no_log,
        # Every handler's idle body timeout (handlers/idle_body.py).
        body_timeout=settings.body_timeout,
    )


def _log_request(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    request = handler.request
    access_log.info(
        "%d %s %s %.1fms", status, request.method, request.uri, 1000 * request.request_time()
    )


def _no_log(handler: tornado.web.RequestHandler) -> None:
    # Off by default: a supervisor that never reads our stderr must not stall us on a
    # full pipe, and request lines of a busy repository are better taken from a proxy.
    return None
