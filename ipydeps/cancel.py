"""One cancel event for a whole install, which can also end reads blocked on the network.

``pip()`` makes one ``CancelEvent`` and gives it to the fetcher and to the unpack threads.
An interrupt (Ctrl-C, the notebook's stop button) sets it from the main thread; threads
blocked in a socket read cannot be interrupted, so the fetcher registers, for each
download, a callback that shuts its socket down.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Callable, Iterator


class CancelEvent(threading.Event):
    """A ``threading.Event`` that also runs callbacks when set.

    Setting it (the main thread does, on ``KeyboardInterrupt``) shuts down the sockets of
    the downloads under way: a read blocked on a slow server would otherwise wait for
    data or for its timeout (30 s, retried), since a thread cannot be interrupted.
    """

    def __init__(self) -> None:
        super().__init__()
        self._callbacks_lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next_key = 0

    def set(self) -> None:
        """Set the flag, then run every registered callback (in the caller's thread)."""
        super().set()
        with self._callbacks_lock:
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            callback()

    @contextlib.contextmanager
    def on_set(self, callback: Callable[[], None]) -> Iterator[None]:
        """Run ``callback`` if the event is set while the ``with`` block runs."""
        with self._callbacks_lock:
            key = self._next_key
            self._next_key += 1
            self._callbacks[key] = callback
        try:
            if self.is_set():
                callback()
            yield
        finally:
            with self._callbacks_lock:
                del self._callbacks[key]


def shut_down(connection: http.client.HTTPConnection | None) -> None:
    """End the blocked reads on ``connection``'s socket at once (from another thread).

    ``shutdown``, not ``close``: closing would free the descriptor while the reading thread
    still uses it. The plain socket's method, since ``SSLSocket.shutdown`` also drops the
    TLS object under the reading thread.
    """
    sock = connection.sock if connection is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
