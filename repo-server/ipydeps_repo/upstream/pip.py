"""Ask pip about the upstream index: resolve a dependency closure, download pinned wheels.

Real pip does the talking (its resolver, its index formats, its TLS and proxy settings):
``pip install --dry-run --report`` resolves reading only PEP 658 metadata, and
``pip download`` in hash-checking mode fetches exactly the resolved files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..errors import UpstreamError
from ..fileops import sha256_file


@dataclass(frozen=True)
class Target:
    """The interpreter and platforms wheels are chosen for; empty means this host."""

    python_version: tuple[int, int] | None = None
    platforms: tuple[str, ...] = ()
    implementation: str = "cp"

    def pip_arguments(self) -> list[str]:
        """Return pip's target options (``--python-version``, ``--platform``...)."""
        arguments: list[str] = []
        if self.python_version is not None:
            major, minor = self.python_version
            arguments += ["--python-version", f"{major}.{minor}"]
        for platform in self.platforms:
            arguments += ["--platform", platform]
        if self.python_version is not None or self.platforms:
            arguments += ["--implementation", self.implementation]
        return arguments

    def describe(self) -> str:
        """Return a short human description, e.g. ``cp3.12 manylinux_2_28_x86_64``."""
        major, minor = self.python_version or sys.version_info[:2]
        platforms = " ".join(self.platforms) or "this host"
        return f"{self.implementation}{major}.{minor} {platforms}"


@dataclass(frozen=True)
class UpstreamWheel:
    """One wheel of the resolved closure, as pip reported it."""

    project: str
    version: str
    filename: str
    url: str
    sha256: str


def pip_environment(base: Mapping[str, str]) -> dict[str, str]:
    """Return ``base`` without pip/uv settings and with pip's config files off.

    A machine's find-links, constraints or extra indexes must not change what is mirrored;
    the TLS trust setting is kept, as it says how to reach the index, not what to take.
    """
    keep = {"PIP_CERT", "PIP_CLIENT_CERT"}
    env = {
        key: value
        for key, value in base.items()
        if not key.startswith(("PIP_", "UV_", "IPYDEPS_")) or key in keep
    }
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _run_pip(arguments: list[str], env: Mapping[str, str], what: str) -> None:
    command = [sys.executable, "-m", "pip", *arguments]
    finished = subprocess.run(command, env=dict(env), capture_output=True, text=True)
    if finished.returncode != 0:
        # pip's last lines name the failing requirement (e.g. "No matching distribution").
        tail = "\n".join((finished.stderr or finished.stdout).strip().splitlines()[-6:])
        raise UpstreamError(
            f"pip could not {what}:\n{tail}",
            hint="check the requirement names, the target and --index-url; "
            "only wheels are mirrored, never sdists",
        )


def resolve(
    requirements: Sequence[Requirement],
    *,
    target: Target,
    index_url: str,
    env: Mapping[str, str],
    workdir: Path,
) -> list[UpstreamWheel]:
    """Return the wheels of the requirements' dependency closure for ``target``.

    Raises ``UpstreamError`` when pip cannot resolve (with pip's reason).
    """
    report = workdir / "resolution.json"
    _run_pip(
        [
            "install",
            "--dry-run",
            "--ignore-installed",
            "--only-binary=:all:",
            "--quiet",
            "--index-url",
            index_url,
            *target.pip_arguments(),
            "--report",
            str(report),
            *[str(requirement) for requirement in requirements],
        ],
        env,
        "resolve " + " ".join(str(requirement) for requirement in requirements),
    )
    wheels = []
    for item in json.loads(report.read_text(encoding="utf-8"))["install"]:
        url = item["download_info"]["url"]
        wheels.append(
            UpstreamWheel(
                project=canonicalize_name(item["metadata"]["name"]),
                version=item["metadata"]["version"],
                filename=unquote(urlsplit(url).path.rsplit("/", 1)[-1]),
                url=url,
                sha256=item["download_info"]["archive_info"]["hashes"]["sha256"],
            )
        )
    return wheels


def download(
    wheels: Sequence[UpstreamWheel],
    *,
    target: Target,
    index_url: str,
    env: Mapping[str, str],
    destination: Path,
) -> list[Path]:
    """Download exactly these wheels (pip's hash-checking mode) into ``destination``.

    Raises ``UpstreamError`` if pip fails or a file is missing afterwards.
    """
    pins = destination / "pins.txt"
    pins.write_text(
        "".join(
            f"{wheel.project}=={wheel.version} --hash=sha256:{wheel.sha256}\n" for wheel in wheels
        ),
        encoding="utf-8",
    )
    _run_pip(
        [
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--progress-bar",
            "off",
            "--index-url",
            index_url,
            *target.pip_arguments(),
            "--dest",
            str(destination),
            "--requirement",
            str(pins),
        ],
        env,
        f"download {len(wheels)} wheel(s)",
    )
    paths = [destination / wheel.filename for wheel in wheels]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise UpstreamError(f"pip did not download {', '.join(missing)}")
    # pip's hash-checking mode already refused other bytes; checking again costs little.
    wrong = [
        wheel.filename
        for wheel, path in zip(wheels, paths, strict=True)
        if sha256_file(path) != wheel.sha256
    ]
    if wrong:
        raise UpstreamError(
            f"{', '.join(wrong)}: sha256 differs from the resolved one",
            hint="the upstream index changed files while mirroring; run again",
        )
    return paths
