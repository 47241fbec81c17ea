"""``/api/v1/build-requests``: ask the farm for a build; see where a project's requests stand.

- ``POST /api/v1/build-requests`` with ``{"project", "version"?, "platform_tag",
  "python"}`` and a token with the ``request`` right (``token create --request-only``).
  The token and the rate limits are checked from the headers, before the body (at most
  ``MAX_BODY_BYTES``) is read; then the body is validated (``validation/build_request.py``)
  and the project checked against the token's projects. 201 for a new entry, 200 for one
  already queued (``"created": false``); 429 with ``Retry-After`` over a limit or when the
  queue is full.
- ``GET /api/v1/build-requests/<project>``: public; the project's entries without token
  names or counts (``{"project", "requests": [...]}``).
"""

from __future__ import annotations

import tornado.ioloop
import tornado.web

from ..store.build_requests import BuildRequestQueue
from ..validation.build_request import parse_build_request, parse_project_name
from .auth import SCOPE_REQUEST, TokenInfo, TokenStore
from .base import BaseHandler
from .legacy_form import token_header
from .rate_limit import BuildRequestLimits

__all__ = ["MAX_BODY_BYTES", "BuildRequestHandler", "BuildRequestStateHandler"]

MAX_BODY_BYTES = 4096


class BuildRequestHandler(BaseHandler):
    """``POST`` queues a build request."""

    def initialize(
        self, queue: BuildRequestQueue, tokens: TokenStore, limits: BuildRequestLimits
    ) -> None:
        """Receive the queue, the token store and the limits (no globals)."""
        self.queue = queue
        self.tokens = tokens
        self.limits = limits
        self.token: TokenInfo | None = None

    def body_limit(self) -> int:
        """Return the limit: a request is a few short strings."""
        return MAX_BODY_BYTES

    def prepare(self) -> None:
        """Check the token, its right and the rate limits before the body is read.

        Raises:
            AuthenticationError, PermissionDeniedError: no token, or not one with ``request``.
            TooManyRequestsError: over the token's or the overall limit (429).
            ValidationError, TooLargeError: from the base (a body over ``MAX_BODY_BYTES``).
        """
        if self.request.method != "POST":
            raise tornado.web.HTTPError(405)
        self.token = self.tokens.authenticate(
            token_header(self.request.headers.get("Authorization")), scope=SCOPE_REQUEST
        )
        self.limits.admit(self.token.name)
        super().prepare()

    async def post(self) -> None:
        """Queue the request, or count it again.

        Raises:
            ValidationError: the body is not a valid request (every problem listed).
            PermissionDeniedError: the project is outside the token's projects.
        """
        token = self.token
        if token is None:  # prepare always sets it
            raise tornado.web.HTTPError(500)
        request = parse_build_request(self.json_body())
        token.check_project(request.project)
        entry, created = await tornado.ioloop.IOLoop.current().run_in_executor(
            None, self.queue.add, request, token.name
        )
        self.set_status(201 if created else 200)
        self.write({"request": entry.public(), "created": created})


class BuildRequestStateHandler(BaseHandler):
    """``GET`` a project's requests (public)."""

    def initialize(self, queue: BuildRequestQueue) -> None:
        """Receive the queue."""
        self.queue = queue

    async def get(self, project: str) -> None:
        """Answer the project's entries.

        Raises:
            ValidationError: not a project name (400).
        """
        name = parse_project_name(project)
        entries = await tornado.ioloop.IOLoop.current().run_in_executor(
            None, self.queue.for_project, name
        )
        self.write({"project": name, "requests": [entry.public() for entry in entries]})
