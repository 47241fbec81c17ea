"""Wheels read while planning, kept for the install so that each is downloaded once.

Without PEP 658 metadata the planner reads a wheel itself to learn its dependencies. That
wheel, already checked against the index's sha256, is kept here (in a scratch directory,
see scratch.py) and the install takes it instead of downloading it again. One
``FetchedWheels`` lives for one ``pip()`` call; the directory is made only when a wheel
is first kept, and removed on ``close``.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from .scratch import scratch_directory


class FetchedWheels:
    """Verified wheel files by (URL, sha256); thread-safe (planning reads in threads)."""

    def __init__(self, parent: str | None = None) -> None:
        """Keep files in a scratch directory made in ``parent`` (None: the temporary directory)."""
        self._parent = parent
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self._directory: Path | None = None
        self._files: dict[tuple[str, str], Path] = {}

    def keep(self, url: str, sha256: str, filename: str, data: bytes) -> None:
        """Keep ``data``, the verified bytes of ``url`` whose sha256 is ``sha256``.

        Raises ``OSError`` when the file cannot be written (the caller may go on without).
        """
        key = (url, sha256.lower())
        with self._lock:
            if key in self._files:
                return
            if self._directory is None:
                self._directory = self._stack.enter_context(scratch_directory(self._parent))
            # A directory each: the installer reads the project's name from the file name.
            path = self._directory / str(len(self._files)) / Path(filename).name
            path.parent.mkdir()
            path.write_bytes(data)
            self._files[key] = path

    def take(self, url: str, sha256: str | None) -> Path | None:
        """Return the kept file of ``url`` with ``sha256`` (the caller may remove it), or None."""
        if sha256 is None:
            return None
        with self._lock:
            return self._files.pop((url, sha256.lower()), None)

    def close(self) -> None:
        """Remove every kept file and the directory."""
        with self._lock:
            self._files.clear()
            self._directory = None
            self._stack.close()

    def __enter__(self) -> FetchedWheels:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()
