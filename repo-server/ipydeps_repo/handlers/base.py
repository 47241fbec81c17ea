"""The base handler: one ``write_error`` that turns every failure into a JSON body."""

from __future__ import annotations

import json
from typing import Any

import tornado.web

from ..errors import RepoError


class JsonErrorMixin(tornado.web.RequestHandler):
    """Maps RepoError to its status and any HTTPError to its code, always with a JSON body."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Write ``{"error": ..., "hint": ..., "status": ...}`` for the failure being handled."""
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        body: dict[str, Any] = {"status": status_code}
        if isinstance(error, RepoError):
            body["error"] = error.message
            if error.hint:
                body["hint"] = error.hint
            problems = getattr(error, "problems", None)
            if problems:
                body["problems"] = problems
        elif isinstance(error, tornado.web.HTTPError):
            body["error"] = error.log_message or self._reason
            if status_code == 404:
                body["error"] = f"not found: {self.request.path}"
        else:
            body["error"] = self._reason
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="ipydeps-repo"')
        self.clear_header("Content-Disposition")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body) + "\n")

    def _handle_request_exception(self, e: BaseException) -> None:
        # A RepoError is an expected outcome: answer with its status, log one line.
        if isinstance(e, RepoError):
            if self._finished:
                return
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)


class BaseHandler(JsonErrorMixin):
    """Base of every dynamic handler."""


class NotFoundHandler(BaseHandler):
    """Fallback for unknown paths: a JSON 404, never a 500."""

    def prepare(self) -> None:
        """Refuse every method with 404."""
        raise tornado.web.HTTPError(404)
