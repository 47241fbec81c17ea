"""Build the tornado Application from Settings and a Store (no globals)."""

from __future__ import annotations

import tornado.web

from .auth import TokenStore
from .handlers.api import HealthHandler, PackagesHandler
from .handlers.base import NotFoundHandler
from .handlers.static import SimpleHandler, TreeHandler
from .handlers.upload import UploadHandler
from .landing import LandingHandler
from .settings import Settings
from .storage import Store


def make_app(settings: Settings, store: Store) -> tornado.web.Application:
    """Return the application: static tree, negotiated /simple/, upload and JSON API.

    The tree is plain files, so nginx or a CDN can serve the same paths; only
    ``/api/v1/...`` needs this process.
    """
    tree = str(settings.data.tree)
    tokens = TokenStore(settings.data.tokens_file)
    return tornado.web.Application(
        [
            (r"/", LandingHandler, {"settings": settings, "store": store}),
            (r"/api/v1/health", HealthHandler, {"store": store}),
            (r"/api/v1/packages", PackagesHandler, {"store": store}),
            (r"/api/v1/upload/(.*)", UploadHandler, {"store": store, "tokens": tokens}),
            (r"/simple", tornado.web.RedirectHandler, {"url": "/simple/", "permanent": True}),
            (r"/simple/(.*)", SimpleHandler, {"path": str(settings.data.tree / "simple")}),
            (r"/((?:keys|alpine|files)/.+)", TreeHandler, {"path": tree}),
        ],
        default_handler_class=NotFoundHandler,
        # ETags come from mtime and size (TreeHandler), so tornado's hash cache is not used.
        static_hash_cache=False,
    )
