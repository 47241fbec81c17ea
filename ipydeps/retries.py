"""How the fetcher retries: the policy, the deadline on a silent server, and retry notices.

A server that does not answer used to cost ``timeout`` x ``attempts`` (two minutes) in
silence. Now every retry is told to whoever listens (the progress display, the CLI), and
a ``deadline`` bounds the whole wait: for an index page or metadata file, the time to
read it whole, across its attempts (so a page trickled a byte at a time ends too); for
a download, the time without a byte arriving, across its attempts (a slow download that
keeps moving is not cut). Each socket wait is the smaller of ``timeout`` and what is left.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient errors are retried (exponential backoff).

    ``deadline`` (seconds, None for none) bounds the wait for a silent server; see the
    module docstring.
    """

    attempts: int = 4
    initial_delay: float = 0.2
    factor: float = 3.0
    timeout: float = 30.0
    deadline: float | None = None

    def delays(self) -> list[float]:
        """Return the waits between attempts: ``initial_delay * factor**i``."""
        return [self.initial_delay * self.factor**i for i in range(max(self.attempts - 1, 0))]


@dataclass(frozen=True)
class RetryNotice:
    """One failed attempt that will be retried: which URL, which attempt, why, how soon."""

    url: str
    failed: int  # the attempt that failed, from 1
    attempts: int  # how many attempts there are at most
    reason: str  # e.g. "timed out", "connection refused", "HTTP 503 Service Unavailable"
    delay: float  # seconds before the next attempt

    def describe(self) -> str:
        """Say it in a few words, for a progress row or a line of output."""
        return (
            f"attempt {self.failed} of {self.attempts} failed ({self.reason}); "
            f"retrying in {self.delay:.1f} s"
        )


RetryListener = Callable[[RetryNotice], None]


class RetryListeners:
    """Who hears about retries: the listener pushed last (thread-safe; called in any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stack: list[RetryListener] = []

    @contextlib.contextmanager
    def listening(self, listener: RetryListener) -> Iterator[None]:
        """Send retry notices to ``listener`` while the block runs (instead of earlier ones)."""
        with self._lock:
            self._stack.append(listener)
        try:
            yield
        finally:
            with self._lock:
                self._stack.remove(listener)

    def tell(self, notice: RetryNotice) -> None:
        """Hand ``notice`` to the current listener, if any."""
        with self._lock:
            listener = self._stack[-1] if self._stack else None
        if listener is not None:
            listener(notice)


class Deadline:
    """The clock of one fetch: for a page, its whole read; for a download, its silence.

    ``seconds`` None means no deadline (only ``timeout`` per wait, as before).
    """

    def __init__(self, seconds: float | None, *, whole: bool) -> None:
        self.seconds = seconds
        self.whole = whole
        self._mark = time.monotonic()

    def moved(self) -> None:
        """Note that bytes arrived: a download's silence starts again from now."""
        if not self.whole:
            self._mark = time.monotonic()

    def left(self) -> float | None:
        """Return the seconds left (<= 0 once over), or None without a deadline."""
        if self.seconds is None:
            return None
        return self.seconds - (time.monotonic() - self._mark)

    def wait_limit(self, timeout: float) -> float | None:
        """Return how long the next socket wait may take, or None once the deadline is over."""
        left = self.left()
        if left is None:
            return timeout
        return min(timeout, left) if left > 0 else None

    def over(self, after: float = 0.0) -> bool:
        """Tell whether the deadline is over, or will be ``after`` more seconds."""
        left = self.left()
        return left is not None and left <= after

    def explain(self) -> str:
        """Say what the deadline bounds, for error messages."""
        what = "to read it whole" if self.whole else "without a byte arriving"
        return f"the {self.seconds:g} s deadline {what} is over"
