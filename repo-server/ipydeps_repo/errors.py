"""Typed errors of the repository server, its CLI and the farm; each maps to one HTTP status."""

from __future__ import annotations


class RepoError(Exception):
    """Base class: a message for the person reading it, and the HTTP status it maps to."""

    status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} (hint: {hint})")


class ValidationError(RepoError):
    """An uploaded or imported file is invalid; ``problems`` lists every problem found."""

    status = 400

    def __init__(self, subject: str, problems: list[str], *, hint: str | None = None) -> None:
        self.subject = subject
        self.problems = list(problems)
        super().__init__(f"{subject} is invalid: " + "; ".join(self.problems), hint=hint)


class ApkFormatError(ValidationError):
    """An apk or APKINDEX does not follow the apk v2 format."""


class SignatureError(ValidationError):
    """A signature is missing, made by an untrusted key, or does not match (tampering)."""


class AuthenticationError(RepoError):
    """No token, a malformed header or an unknown token (HTTP 401)."""

    status = 401


class PermissionDeniedError(RepoError):
    """A known token that was revoked or may not do this, e.g. force (HTTP 403)."""

    status = 403


class NotFoundError(RepoError):
    """The requested file or project does not exist (HTTP 404)."""

    status = 404


class ConflictError(RepoError):
    """A different file is already published under this name (HTTP 409); use force to replace."""

    status = 409


class BodyTimeoutError(RepoError):
    """An upload stopped sending its body for longer than the body timeout (HTTP 408)."""

    status = 408


class TooLargeError(RepoError):
    """An upload exceeds the configured size limit (HTTP 413)."""

    status = 413


class StorageFullError(RepoError):
    """The repository's disk (or quota) is full (HTTP 507); the upload was dropped whole."""

    status = 507


class ConfigurationError(RepoError):
    """Settings, keys or the data directory are missing or invalid."""

    status = 500


class UpstreamError(RepoError):
    """An upstream index could not be read, or pip failed on it; the reason follows.

    Upstream is PyPI or the index a mirror reads (502: the fault is upstream's).
    """

    status = 502


class BuildError(RepoError):
    """A farm build step failed; the log path says where to look."""


class StoredCopyError(RepoError):
    """The stored copy of a wheel could not be written; the wheel stays listed without it."""
