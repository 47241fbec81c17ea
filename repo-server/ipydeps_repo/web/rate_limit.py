"""Sliding-window rate limits for the build-request endpoint (pure: the clock is injected).

Each limit counts the requests of the last ``window`` seconds per key (a token's name, or
one key for everybody); a request over the limit is refused with how long until the oldest
counted one leaves the window. The counts live in this process: replicas count their own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import TooManyRequestsError

__all__ = ["BuildRequestLimits", "SlidingWindow"]

HOUR = 3600.0


class SlidingWindow:
    """At most ``limit`` events per key in any ``window`` seconds."""

    def __init__(
        self, limit: int, window: float = HOUR, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, key: str) -> int:
        """Count an event for ``key``; return 0, or the seconds to wait if over the limit.

        A refused event is not counted (a client that keeps trying is not locked out longer).
        """
        now = self._clock()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return max(1, math.ceil(events[0] + self.window - now))
            events.append(now)
            # Keys whose window emptied are dropped, so the table stays as small as the traffic.
            for stale in [k for k, v in self._events.items() if v and v[-1] <= now - self.window]:
                del self._events[stale]
            return 0


@dataclass(frozen=True)
class BuildRequestLimits:
    """Per token and overall limits, both per hour."""

    per_token: SlidingWindow
    overall: SlidingWindow

    @classmethod
    def per_hour(cls, per_token: int, overall: int) -> BuildRequestLimits:
        """Return limits of ``per_token`` and ``overall`` requests an hour."""
        return cls(SlidingWindow(per_token), SlidingWindow(overall))

    def admit(self, token_name: str) -> None:
        """Count one request of ``token_name``.

        Raises:
            TooManyRequestsError: over the token's limit or the overall one (429).
        """
        wait = self.per_token.wait_for(token_name)
        if wait:
            raise TooManyRequestsError(
                f"token {token_name!r} sent more than {self.per_token.limit} build requests "
                "in the last hour",
                retry_after=wait,
                hint=f"try again in {wait} s",
            )
        wait = self.overall.wait_for("")
        if wait:
            raise TooManyRequestsError(
                f"this repository took more than {self.overall.limit} build requests in the "
                "last hour",
                retry_after=wait,
                hint=f"try again in {wait} s",
            )
