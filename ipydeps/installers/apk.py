"""Install the apk steps of a plan in one ``apk add`` run, behind the ``ApkRunner`` protocol."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..environment import APK_HELPER
from ..errors import ApkFailedError, InstallError
from ..models import Step

# The same rule the root helper enforces (docker/ipydeps-apk-add): a name, optionally
# =version starting with a letter or digit, and no ".apk" anywhere (apk add reads such an
# argument as a local package file); tests hold the two against one table of cases.
APK_SPEC = re.compile(r"(?!.*\.[Aa][Pp][Kk])[a-z0-9][a-z0-9._+-]*(=[A-Za-z0-9][A-Za-z0-9._+-]*)?")
# The helper takes at most this many packages in one run.
MAX_APK_SPECS = 200


@dataclass(frozen=True)
class ApkOutcome:
    """What one ``apk add`` run did: its exit code and combined output."""

    returncode: int
    output: str


class ApkRunner(Protocol):
    """Runs ``apk add`` for a list of validated ``name=version`` specs (one transaction)."""

    def add(self, specs: Sequence[str]) -> ApkOutcome:
        """Install every spec or none (apk's own transaction); return its outcome."""
        ...


class SystemApkRunner:
    """The real runner: ``apk add`` as root, else the narrow helper through ``doas -n``.

    The helper (``/usr/local/libexec/ipydeps-apk-add``) is the only command the doas
    rule lets the kernel user run; it re-validates every name and uses only the
    repository configured in a root-owned file. No shell is involved.
    """

    def __init__(self, *, helper: str = APK_HELPER, timeout: float = 900.0) -> None:
        self.helper = helper
        self.timeout = timeout

    def command(self, specs: Sequence[str]) -> list[str]:
        """Return the argument list that would run for ``specs``."""
        if os.geteuid() == 0:
            return ["apk", "add", "--no-cache", "--", *specs]
        return ["doas", "-n", self.helper, *specs]

    def add(self, specs: Sequence[str]) -> ApkOutcome:
        """Run the command; raises ``InstallError`` when it cannot even start."""
        try:
            completed = subprocess.run(
                self.command(specs),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise InstallError(
                f"Could not run apk: {error}",
                hint="check that apk (and doas, when not root) is installed",
            ) from None
        return ApkOutcome(completed.returncode, completed.stdout + completed.stderr)


def apk_specs(steps: Sequence[Step]) -> list[str]:
    """``name=version`` for each apk step; raises ``InstallError`` for a name apk would misread."""
    specs: list[str] = []
    bad: list[str] = []
    for step in steps:
        candidate = step.candidate
        name = candidate.apk_name or ""
        spec = f"{name}={candidate.apk_version}" if candidate.apk_version else name
        (specs if APK_SPEC.fullmatch(spec) else bad).append(spec)
    if bad:
        raise InstallError(
            f"Refused apk package name(s) {bad!r}: not valid apk names",
            hint="the apk index is malformed; tell the repository maintainer",
        )
    if len(specs) > MAX_APK_SPECS:
        raise InstallError(
            f"The plan has {len(specs)} apks; the root helper installs at most "
            f"{MAX_APK_SPECS} in one run",
            hint="install the requirements in smaller groups",
        )
    return specs


def install_apks(steps: Sequence[Step], runner: ApkRunner) -> ApkOutcome:
    """Install all apk ``steps`` in ONE ``apk add`` run (apk rolls back its own failures).

    Raises ``ApkFailedError`` with apk's output when it exits non-zero.
    """
    specs = apk_specs(steps)
    outcome = runner.add(specs)
    if outcome.returncode != 0:
        raise ApkFailedError(specs, outcome.returncode, outcome.output.strip())
    return outcome
