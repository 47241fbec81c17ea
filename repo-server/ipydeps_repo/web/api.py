"""``GET /api/v1/health`` and ``GET /api/v1/packages``."""

from __future__ import annotations

import tornado.ioloop

from .. import __version__
from ..store.store import Store
from .base import BaseHandler


class HealthHandler(BaseHandler):
    """Liveness: answers once the tree is reachable."""

    def initialize(self, store: Store) -> None:
        """Receive the store."""
        self.store = store

    def get(self) -> None:
        """Return ``{"status": "ok", ...}``, or 503 if the tree directory is gone."""
        healthy = self.store.layout.tree.is_dir()
        self.set_status(200 if healthy else 503)
        self.write({"status": "ok" if healthy else "unavailable", "version": __version__})


class PackagesHandler(BaseHandler):
    """JSON listing of every wheel (by project) and apk (by branch/repo/arch)."""

    def initialize(self, store: Store) -> None:
        """Receive the store."""
        self.store = store

    async def get(self) -> None:
        """Return the listing; built off the event loop (it reads the tree)."""
        listing = await tornado.ioloop.IOLoop.current().run_in_executor(None, self.store.listing)
        self.write(listing)
