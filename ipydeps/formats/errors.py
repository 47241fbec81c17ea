"""The error base both distributions share, and the error of input that breaks a format.

``IpydepsError`` is defined here, in the shared package, so that the formats' errors (a
malformed APKINDEX, an invalid apk version) are ``IpydepsError``s on the client, shown at its
edges as a message without a traceback, while this package imports nothing else of the
client. ``ipydeps.errors`` re-exports it: there is one class.
"""

from __future__ import annotations

__all__ = ["FormatError", "IpydepsError"]


class IpydepsError(Exception):
    """Base class of every error ipydeps raises on purpose.

    At the edges (the IPython magic, ``python -m ipydeps``) an ``IpydepsError`` is
    shown as its message alone, without a traceback: the message is written for
    the notebook author. Any other exception is a bug and keeps its traceback.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")

    def _render_traceback_(self) -> list[str]:
        """Return what IPython shows for this error in place of a traceback: the message.

        The cell still fails (its ``error`` reply keeps the class name), so a notebook's
        "Run All" stops here as at any failing cell.
        """
        return f"{type(self).__name__}: {self}".splitlines()


class FormatError(IpydepsError):
    """Bytes or text that break the rules of a format (an APKINDEX, an apk version, a ZIP)."""
