"""Inspect the running interpreter: install paths, installed distributions, tags, apk ability."""

from __future__ import annotations

import os
import shutil
import site
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.tags import Tag, sys_tags
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from .apkclosure import InstalledApks

APK_HELPER = "/usr/local/libexec/ipydeps-apk-add"
"""The narrow root helper that non-root kernels may run through doas (docker/ipydeps-apk-add)."""


@dataclass(frozen=True)
class InstallScheme:
    """Where each part of a wheel goes (the wheel spec's install scheme keys)."""

    purelib: Path
    platlib: Path
    scripts: Path
    data: Path
    headers: Path  # the parent of per-project header dirs (include/site/pythonX.Y)
    python: str  # the interpreter written into script shebangs

    def roots(self) -> dict[str, Path]:
        """Return the scheme as a mapping from wheel category to directory."""
        return {
            "purelib": self.purelib,
            "platlib": self.platlib,
            "scripts": self.scripts,
            "data": self.data,
            "headers": self.headers,
        }


@dataclass(frozen=True)
class Environment:
    """A snapshot of the interpreter ipydeps installs into."""

    scheme: InstallScheme
    python_version: str  # e.g. "3.11.2"
    tags: tuple[Tag, ...]  # supported wheel tags, most preferred first
    installed: Mapping[NormalizedName, Version] = field(default_factory=dict)
    apk_available: bool = False
    apk_reason: str = ""  # why apk is or is not usable, for plans and `config` output
    installed_apks: InstalledApks | None = None  # apk's database, read where apk can run

    @property
    def site_dirs(self) -> tuple[Path, ...]:
        """The directories distributions are installed into (purelib first)."""
        if self.scheme.platlib == self.scheme.purelib:
            return (self.scheme.purelib,)
        return (self.scheme.purelib, self.scheme.platlib)


def install_scheme(prefix: Path | None = None) -> InstallScheme:
    """Return the install scheme of ``prefix`` (default ``sys.prefix``: the kernel's environment).

    Uses the interpreter's default sysconfig scheme, as pip does for a plain
    ``pip install``; headers go to ``<prefix>/include/site/pythonX.Y`` like pip's venv scheme.
    """
    base = str(prefix or sys.prefix)
    paths = sysconfig.get_paths(vars={"base": base, "platbase": base})
    short = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return InstallScheme(
        purelib=Path(paths["purelib"]),
        platlib=Path(paths["platlib"]),
        scripts=Path(paths["scripts"]),
        data=Path(paths["data"]),
        headers=Path(base) / "include" / "site" / short,
        python=sys.executable if prefix is None else str(Path(paths["scripts"]) / "python"),
    )


def installed_distributions(
    paths: Iterable[str | os.PathLike[str]] | None = None,
) -> dict[NormalizedName, Version]:
    """Map each distribution visible on ``paths`` (default ``sys.path``) to its version.

    The first one found wins, as for imports. Names and versions come from the
    ``<name>-<version>.dist-info`` directory names (PEP 376/427), so no METADATA file is
    parsed unless a name lacks the version. Distributions with an invalid version are
    left out (nothing can be planned against them).
    """
    search = [os.fspath(path) or "." for path in (sys.path if paths is None else paths)]
    found: dict[NormalizedName, Version] = {}
    for directory in search:
        try:
            entries = os.listdir(directory)
        except OSError:
            continue  # missing directories and zip files hold no installed distributions
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            named = _name_and_version(Path(directory) / entry)
            if named is not None and named[0] not in found:
                found[named[0]] = named[1]
    return found


def _name_and_version(path: Path) -> tuple[NormalizedName, Version] | None:
    stem = path.name.rsplit(".", 1)[0]
    project, _, version = stem.partition("-")
    version = version.split("-py", 1)[0]  # egg-info: name-1.0-py3.11.egg-info
    if not version:
        # Rare (an .egg-info without a version in its name); importing importlib.metadata
        # costs about 18 ms, a tenth of ``import ipydeps``, so only this path pays for it.
        import importlib.metadata

        metadata = importlib.metadata.PathDistribution(path).metadata
        project, version = metadata["Name"] or "", metadata["Version"] or ""
    try:
        return canonicalize_name(project), Version(version)
    except InvalidVersion:
        return None


def sees_system_site_packages() -> bool:
    """Tell whether imports here see the system site-packages (where py3-* apks install)."""
    if sys.prefix == sys.base_prefix:
        return True
    system = set(site.getsitepackages([sys.base_prefix]))
    return any(entry in system for entry in sys.path)


def apk_status() -> tuple[bool, str]:
    """Whether ``apk add`` can be run from this process, and why (or why not)."""
    if shutil.which("apk") is None:
        return False, "no apk binary (not an Alpine system)"
    if not sees_system_site_packages():
        return False, "this venv does not see the system site-packages, where apks install"
    if os.geteuid() == 0:
        return True, "running as root"
    if not os.access(APK_HELPER, os.X_OK):
        return False, f"not root and the helper {APK_HELPER} is missing"
    if shutil.which("doas") is None:
        return False, "not root and doas is not installed"
    return True, f"via doas {APK_HELPER}"


APK_DATABASE = Path("/lib/apk/db/installed")


def read_installed_apks(path: Path = APK_DATABASE) -> InstalledApks:
    """Read apk's installed database (empty where there is none or it cannot be read)."""
    from .apkclosure import InstalledApks, parse_installed_db  # only where apk runs

    try:
        return parse_installed_db(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return InstalledApks()


def inspect_environment(prefix: Path | None = None, *, apk: bool | None = None) -> Environment:
    """Inspect the running interpreter (or the environment at ``prefix``) for planning.

    ``apk`` forces apk availability on or off (tests, or a config that disables it).
    """
    scheme = install_scheme(prefix)
    if prefix is None:
        installed = installed_distributions()
    else:
        installed = installed_distributions([*map(str, _unique([scheme.purelib, scheme.platlib]))])
    if apk is None:
        apk_ok, reason = apk_status()
    else:
        apk_ok, reason = apk, "set by configuration"
    return Environment(
        scheme=scheme,
        python_version=".".join(map(str, sys.version_info[:3])),
        tags=tuple(sys_tags()),
        installed=installed,
        apk_available=apk_ok,
        apk_reason=reason,
        installed_apks=read_installed_apks() if apk_ok else None,
    )


def _unique(paths: Iterable[Path]) -> list[Path]:
    result: list[Path] = []
    for path in paths:
        if path not in result:
            result.append(path)
    return result
