"""The base handler: bodies bounded from the headers, one ``write_error`` answering in JSON."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import tornado.web

from .. import jsonsafe
from ..errors import RepoError, TooManyRequestsError, ValidationError
from .cache_policy import NO_STORE
from .request_body import BoundedBody


class JsonErrorMixin(BoundedBody):
    """Maps RepoError to its status and any HTTPError to its code, always with a JSON body.

    Every handler streams its body within a limit (``request_body.py``): a handler that
    checks a token does so in ``prepare``, before the body, and calls this ``prepare`` after.
    """

    def prepare(self) -> None:
        """Refuse a path with a NUL character (400), then bound the body.

        Without the NUL check, the static handler hands the path to the OS, which raises a
        ValueError: a 500 with a traceback in the log for every such request.

        Raises:
            ValidationError, TooLargeError: from ``bound_body``.
        """
        if "\x00" in urllib.parse.unquote(self.request.path, errors="replace"):
            raise tornado.web.HTTPError(400, "the URL path contains a NUL character")
        self.bound_body()

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
            body["error"] = _formatted(error) or self._reason
            if status_code == 404:
                body["error"] = f"not found: {self.request.path}"
        else:
            body["error"] = self._reason
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="ipydeps-repo"')
        if isinstance(error, TooManyRequestsError):
            self.set_header("Retry-After", str(error.retry_after))
        self.clear_header("Content-Disposition")
        # A file may appear at this URL later; a cache must not keep the error meanwhile.
        self.set_header("Cache-Control", NO_STORE)
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


def _formatted(error: tornado.web.HTTPError) -> str | None:
    """Return the HTTPError's message with its arguments filled in, as tornado logs it."""
    if error.log_message and error.args:
        try:
            return str(error.log_message % error.args)
        except (TypeError, ValueError):
            return str(error.log_message)
    return error.log_message


class BaseHandler(JsonErrorMixin):
    """Base of every dynamic handler."""

    def json_body(self) -> Any:
        """Return the request body parsed as JSON.

        Raises:
            ValidationError: the body is not JSON or nests too deeply (400).
        """
        try:
            return jsonsafe.loads(self.body_bytes())
        except jsonsafe.JsonInputError as error:
            raise ValidationError("request body", [str(error)]) from None


class RedirectHandler(JsonErrorMixin, tornado.web.RedirectHandler):
    """Tornado's permanent redirect, with the body bounded as everywhere else."""


class NotFoundHandler(BaseHandler):
    """Fallback for unknown paths: a JSON 404, never a 500."""

    def prepare(self) -> None:
        """Refuse every method with 404."""
        raise tornado.web.HTTPError(404)
