"""The idle body timeout shared by every handler (``request_body.py``), uploads first of all.

A client that stops sending in the middle of a body would hold a temp file and a
connection for ever; ``body_timeout`` seconds after the last byte the handler answers 408
and tornado closes the connection (issue 11; every endpoint since issue 15).
"""

from __future__ import annotations

import logging

import tornado.ioloop
import tornado.web

from ..errors import BodyTimeoutError
from ..settings import DEFAULT_BODY_TIMEOUT_SECONDS

logger = logging.getLogger(__name__)


class IdleBodyWatch(tornado.web.RequestHandler):
    """Answer 408 when a request's body stops moving for ``body_timeout`` seconds.

    A handler calls ``_watch_idle()`` once the headers are accepted, ``_body_moved()``
    whenever a chunk arrives or has been written (a slow disk is not an idle client),
    and ``_stop_watching()`` when the body is complete. It tells what it is receiving
    through ``_upload_label()`` and ``_received_bytes()``, and whether it still is
    through ``_receiving()``. The timeout is the application's ``body_timeout`` setting
    (``serve --body-timeout``).
    """

    _idle_timer: object | None = None
    _last_data: float = 0.0

    @property
    def body_timeout(self) -> float:
        """Seconds a body may go without a byte before the request is answered 408."""
        return float(self.settings.get("body_timeout", DEFAULT_BODY_TIMEOUT_SECONDS))

    def _upload_label(self) -> str:
        raise NotImplementedError

    def _received_bytes(self) -> int:
        raise NotImplementedError

    def _receiving(self) -> bool:
        raise NotImplementedError

    def _watch_idle(self) -> None:
        """Start watching: check ``body_timeout`` after now that the body still moves."""
        loop = tornado.ioloop.IOLoop.current()
        self._last_data = loop.time()
        self._idle_timer = loop.call_later(self.body_timeout, self._check_idle)

    def _body_moved(self) -> None:
        self._last_data = tornado.ioloop.IOLoop.current().time()

    def _stop_watching(self) -> None:
        if self._idle_timer is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._idle_timer)
            self._idle_timer = None

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self._finished or not self._receiving():
            return
        loop = tornado.ioloop.IOLoop.current()
        idle = loop.time() - self._last_data
        if idle < self.body_timeout:
            self._idle_timer = loop.call_later(self.body_timeout - idle, self._check_idle)
            return
        # Answering before the body is read makes tornado close the connection after it.
        error = BodyTimeoutError(
            f"no part of the body came for {self.body_timeout:g} s; the request was dropped "
            f"after {self._received_bytes()} bytes",
            hint="retry; the server's --body-timeout sets how long it waits",
        )
        logger.warning("%s: %s", self._upload_label(), error.message)
        self.send_error(error.status, exc_info=(type(error), error, None))
