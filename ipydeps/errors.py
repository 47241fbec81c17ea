"""Typed errors of the ipydeps library: each says what happened, why, and what to try."""

from __future__ import annotations

import shlex

from .advice import Hint, Wording

# The base lives in the shared package (its errors are ipydeps errors too); one class.
from .formats.errors import IpydepsError as IpydepsError


class InvalidRequirementError(IpydepsError):
    """One or more requirement strings are not valid PEP 508; nothing was run."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        lines = [f"  {text!r}: {why}" for text, why in self.problems.items()]
        super().__init__(
            "Refused invalid requirement(s); nothing was installed:\n" + "\n".join(lines),
            hint="use PEP 508 strings such as 'scipy', 'numpy>=2', 'pandas[performance]'",
        )


class ConfigError(IpydepsError):
    """The configuration file, an environment variable or an argument is invalid."""


class RepositoryError(IpydepsError):
    """The package repository could not be read (down, unreachable, bad response)."""


class NotFoundError(RepositoryError):
    """The repository answered 404 for ``url``: for a project page it means "no such project".

    ``Fetcher.get_bytes`` raises this for a 404 so that sources can treat a missing
    project as "no candidates" without looking at status codes themselves.
    """

    def __init__(self, url: str, *, hint: str | None = None) -> None:
        self.url = url
        self.status = 404
        super().__init__(f"{url} was not found (HTTP 404)", hint=hint)


class AdvisedError(IpydepsError):
    """An error whose hint may name a setting of the call (``upgrade``, ``upstream``).

    ``hint`` words it for Python, as ``ipydeps.pip()`` takes it; ``advice`` keeps the
    setting itself, so that another edge words it its own way (``describe``): the command
    line says ``--upstream allow`` where the notebook says ``upstream="allow"``.
    """

    def __init__(self, message: str, *, hint: Hint | str | None = None) -> None:
        self.advice = Hint.of(hint) if isinstance(hint, str) else hint
        super().__init__(message, hint=None if self.advice is None else str(self.advice))

    def describe(self, wording: Wording) -> str:
        """Return the message and the hint worded by ``wording``, as ``str()`` lays them out."""
        if self.advice is None:
            return self.message
        return f"{self.message}\n  hint: {self.advice.worded(wording)}"


class NoCandidateError(AdvisedError):
    """No allowed source offers a version that satisfies a requirement."""

    def __init__(self, requirement: str, reason: str, *, hint: Hint | str | None = None) -> None:
        self.requirement = requirement
        self.reason = reason
        super().__init__(f"Cannot install {requirement!r}: {reason}", hint=hint)


class ResolutionError(AdvisedError):
    """The requirements (with their dependencies) conflict with each other."""


class DownloadError(IpydepsError):
    """A file could not be downloaded, even after retries."""

    def __init__(self, url: str, reason: str, *, hint: str | None = None) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"Download of {url} failed: {reason}", hint=hint)


class FileMissingError(DownloadError):
    """The server answered 404 for a file its index lists."""

    def __init__(self, url: str) -> None:
        super().__init__(
            url,
            "not found (HTTP 404)",
            hint="the index lists a file the server lacks; tell the repository maintainer",
        )


class HashMismatchError(IpydepsError):
    """A downloaded file does not have the sha256 the index promised: it was refused."""

    def __init__(self, url: str, expected: str, actual: str, *, kind: str = "sha256") -> None:
        """``kind`` names the hash: a stored copy may be checked by its "outline sha256"."""
        self.url = url
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"Refused {url}: its {kind} is {actual}, the index says {expected}. "
            "The file was corrupted or tampered with; nothing was installed.",
            hint="retry; if it persists, tell the repository maintainer",
        )


class InstallError(IpydepsError):
    """Installing a planned step failed; the environment was rolled back."""


class InvalidWheelError(InstallError):
    """The wheel file breaks the wheel spec (unsafe path, missing metadata, bad entry)."""


class RecordMismatchError(InvalidWheelError):
    """A member's bytes do not have the hash (or size) the wheel's RECORD gives: refused."""

    def __init__(self, wheel: str, member: str, expected: str, actual: str) -> None:
        self.wheel = wheel
        self.member = member
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"Refused {wheel}: {member!r} has {actual}, its RECORD says {expected}. The "
            "wheel was altered after it was built; nothing was installed.",
            hint="the wheel is malformed or hostile; tell its publisher",
        )


class CancelledError(InstallError):
    """The work was cancelled (Ctrl-C, or another download of the same install failed)."""

    def __init__(self, what: str = "Installation") -> None:
        super().__init__(f"{what} cancelled; nothing was installed")


class PipFailedError(IpydepsError):
    """An install handed to the real pip (with options ipydeps does not take) failed."""

    def __init__(self, command: list[str], returncode: int) -> None:
        self.command = list(command)
        self.returncode = returncode
        super().__init__(
            f"pip {shlex.join(command)} exited with code {returncode}; its output above says why"
        )


class ApkFailedError(InstallError):
    """``apk add`` refused or failed; its own output is kept in ``output``."""

    def __init__(self, packages: list[str], returncode: int, output: str) -> None:
        self.packages = list(packages)
        self.returncode = returncode
        self.output = output
        super().__init__(
            f"apk add {' '.join(self.packages)} failed with exit code {returncode}:\n{output}\n"
            "No wheel of this install was installed.",
            hint=_apk_hint(output),
        )


def _apk_hint(output: str) -> str:
    """Return what to try, from what apk said: a key problem is only one of its failures."""
    if "UNTRUSTED" in output or "BAD signature" in output:
        return "check that the repository's public key is in /etc/apk/keys"
    if "unable to select packages" in output:
        return (
            "apk cannot install these packages together (a conflict, or a dependency "
            "no configured repository provides; apk's output names it): tell the "
            "repository's maintainer"
        )
    if "temporary error" in output or "network" in output or "fetch" in output.lower():
        return "check the repositories in /etc/apk/repositories and that they are reachable"
    return "check the repository URL and that its public key is in /etc/apk/keys"


class PartialInstallError(InstallError):
    """``apk add`` succeeded, then committing the wheels failed: the wheels were rolled back.

    The apks stay installed (``apk_packages``): the root helper can only add packages, so
    ipydeps cannot take them back. Running the same install again installs the wheels.
    """

    def __init__(self, apk_packages: list[str], cause: IpydepsError) -> None:
        self.apk_packages = list(apk_packages)
        self.cause = cause
        super().__init__(
            f"apk installed {' '.join(self.apk_packages)}, then installing the wheels failed "
            f"and they were rolled back: {cause.message}\nThe apks stay installed (the apk "
            "helper can only add packages).",
            hint=f"{cause.hint + '; then ' if cause.hint else ''}run the same install again: "
            "the apks are in place now, so only the wheels are left to install",
        )
