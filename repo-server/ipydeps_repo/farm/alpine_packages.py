"""What an Alpine branch has: its package data (names, versions) and the recipes' needs held to it.

The data is a small TSV per branch under ``apkbuilds/alpine-packages/<branch>.tsv``, refreshed
from Alpine's APKINDEX by ``scripts/alpine_packages.py``; only the names the farm uses are kept.
Its ``# asked:`` header lists every name the refresh looked for, so a name that was asked and has
no row is a fact (the branch lacks it), while a name never asked means the data is stale.

Data read from a source that is not the index itself (Alpine's package pages, when the index
cannot be reached) may be incomplete: its ``# unseen:`` header lists the names the source showed
nothing for, which are neither present nor known to be missing (``unverified_needs``). Such a
source may also show a package on another architecture only (``# cross-arch: yes``): one branch
builds every architecture at the same version, so that row stands for the branch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ipydeps.formats.apkversion import (
    ApkDependency,
    ApkVersionError,
    apk_version_matches,
    is_valid_apk_version,
)

from ..errors import ConfigurationError, ValidationError
from .recipe import Recipe

COLUMNS = ("repo", "arch", "name", "version", "provides")
HEADER_KEYS = ("branch", "taken", "source", "asked")
OPTIONAL_HEADER_KEYS = ("unseen", "cross-arch")
# `apk add` in a Dockerfile RUN: the words after it, up to the end of that shell command.
_APK_ADD = re.compile(r"\bapk\s+add\b(?P<rest>[^;&|]*)")
# apk add options that take a value (the next word is not a package).
_APK_VALUE_OPTIONS = frozenset({"--virtual", "-t", "--repository", "-X", "--root", "-p"})


@dataclass(frozen=True)
class BranchPackage:
    """One package of the branch: where it lives, its full version, the plain names it provides."""

    repo: str
    arch: str
    name: str
    version: str
    provides: tuple[str, ...] = ()


@dataclass(frozen=True)
class BranchPackages:
    """A branch's package data as recorded: when, from where, which names were looked for."""

    branch: str
    taken: str
    source: str
    asked: frozenset[str]
    packages: tuple[BranchPackage, ...]
    # Asked, but the source showed nothing either way (an incomplete source; see the module).
    unseen: frozenset[str] = frozenset()
    # Rows of another architecture stand for ``arch`` when it has none of its own.
    cross_arch: bool = False

    def candidates(self, name: str, arch: str) -> list[BranchPackage]:
        """Return the packages of ``arch`` that are ``name`` or provide it."""
        matching = [
            package for package in self.packages if package.name == name or name in package.provides
        ]
        own = [package for package in matching if package.arch == arch]
        return own if own or not self.cross_arch else matching

    @property
    def arches(self) -> tuple[str, ...]:
        """The architectures the data covers."""
        return tuple(sorted({package.arch for package in self.packages}))


@dataclass(frozen=True)
class PackageNeed:
    """A package a recipe or Dockerfile asks for: ``name``, optional ``op version``, and where."""

    name: str
    op: str
    version: str
    where: str

    def __str__(self) -> str:
        """Return the need as apk writes it, e.g. ``cython>=3.1.0``."""
        return f"{self.name}{self.op}{self.version}"


def parse_branch_packages(text: str, subject: str) -> BranchPackages:
    """Parse a branch TSV (``# key: value`` header lines, then a column line and rows).

    Raises:
        ValidationError: a header key is missing, a row has the wrong number of fields or an
            invalid apk version (every problem at once).
    """
    header: dict[str, str] = {}
    packages: list[BranchPackage] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith("#"):
            key, found, value = line[1:].partition(":")
            if found and key.strip() in HEADER_KEYS + OPTIONAL_HEADER_KEYS:
                header[key.strip()] = value.strip()
            continue
        fields = line.split("\t")
        if tuple(fields) == COLUMNS:
            continue
        if len(fields) not in (4, 5):
            problems.append(f"line {number}: {len(fields)} fields, expected {len(COLUMNS)}")
            continue
        repo, arch, name, version = fields[:4]
        if not is_valid_apk_version(version):
            problems.append(f"line {number}: {name} has an invalid apk version {version!r}")
            continue
        provides = tuple(fields[4].split()) if len(fields) == 5 else ()
        packages.append(BranchPackage(repo, arch, name, version, provides))
    problems += [f"header '# {key}:' is missing" for key in HEADER_KEYS if key not in header]
    if problems:
        raise ValidationError(
            subject, problems, hint="regenerate it with scripts/alpine_packages.py"
        )
    return BranchPackages(
        branch=header["branch"],
        taken=header["taken"],
        source=header["source"],
        asked=frozenset(header["asked"].split()),
        packages=tuple(packages),
        unseen=frozenset(header.get("unseen", "").split()),
        cross_arch=header.get("cross-arch", "no") == "yes",
    )


def render_branch_packages(data: BranchPackages) -> str:
    """Render branch data as the TSV ``parse_branch_packages`` reads (rows sorted)."""
    lines = [
        f"# Alpine {data.branch}: names and versions of the packages the farm's recipes and",
        "# Dockerfiles use. Regenerate with scripts/alpine_packages.py; do not edit by hand.",
        f"# branch: {data.branch}",
        f"# taken: {data.taken}",
        f"# source: {data.source}",
        f"# asked: {' '.join(sorted(data.asked))}",
    ]
    if data.cross_arch:
        lines.append("# cross-arch: yes")
    if data.unseen:
        lines.append(f"# unseen: {' '.join(sorted(data.unseen))}")
    lines.append("\t".join(COLUMNS))
    for package in sorted(data.packages, key=lambda p: (p.arch, p.repo, p.name)):
        lines.append(
            "\t".join(
                (
                    package.repo,
                    package.arch,
                    package.name,
                    package.version,
                    " ".join(package.provides),
                )
            )
        )
    return "\n".join(lines) + "\n"


def data_path(folder: Path, branch: str) -> Path:
    """Return where ``branch``'s data lives: ``<folder>/<branch>.tsv``."""
    return folder / f"{branch}.tsv"


def load_branch_packages(folder: Path, branch: str) -> BranchPackages:
    """Read ``<folder>/<branch>.tsv``.

    Raises:
        ConfigurationError: there is no data for that branch.
        ValidationError: the file is malformed, or is for another branch.
    """
    path = data_path(folder, branch)
    if not path.is_file():
        raise ConfigurationError(
            f"no package data for Alpine {branch} at {path}",
            hint=f"run: python3 scripts/alpine_packages.py {branch}",
        )
    data = parse_branch_packages(path.read_text(encoding="utf-8"), str(path))
    if data.branch != branch:
        raise ValidationError(str(path), [f"holds data for {data.branch}, not {branch}"])
    return data


def _need(token: str, where: str) -> PackageNeed | None:
    dependency = ApkDependency.parse(token)
    if dependency is None or dependency.conflict:
        return None
    return PackageNeed(dependency.name, dependency.op, dependency.version, where)


def recipe_needs(recipes: Mapping[str, Recipe]) -> list[PackageNeed]:
    """Return what the recipes need from the branch: their depends, makedepends, checkdepends.

    Names one of the recipes builds (``py3-numpy``, ``py3-numpy-dev``) come from our own
    repository, and ``$pkgname`` references are the recipe itself: both are left out.
    """
    ours = {name for recipe in recipes.values() for name in recipe.provides}
    needs: list[PackageNeed] = []
    for recipe in recipes.values():
        # The raw values: Recipe's own lists keep names only, the check needs the constraints.
        for field in ("depends", "makedepends", "checkdepends", "depends_dev"):
            for token in recipe.variables.get(field, "").split():
                need = _need(token, f"{recipe.name}/APKBUILD {field}")
                if need is not None and need.name not in ours and "$" not in need.name:
                    needs.append(need)
    return needs


def dockerfile_needs(path: Path) -> list[PackageNeed]:
    """Return the packages ``apk add`` installs in a Dockerfile (continuation lines joined)."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    needs: list[PackageNeed] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        for match in _APK_ADD.finditer(line):
            words = iter(match["rest"].split())
            for word in words:
                if word in _APK_VALUE_OPTIONS:
                    next(words, None)
                elif not word.startswith("-"):
                    need = _need(word, f"{path.name} (apk add, RUN near line {number})")
                    if need is not None:
                        needs.append(need)
    return needs


def check_needs(needs: Iterable[PackageNeed], data: BranchPackages, arch: str) -> list[str]:
    """Return every need the branch cannot meet on ``arch`` (empty: all are met).

    A name that the data never asked for is reported as stale data, not as missing.
    """
    problems: list[str] = []
    for need in needs:
        if need.name not in data.asked:
            problems.append(
                f"{need.where}: {need.name} was not looked up when {data.branch}'s data was taken "
                f"({data.taken}); rerun scripts/alpine_packages.py {data.branch}"
            )
            continue
        found = data.candidates(need.name, arch)
        if not found and need.name in data.unseen:
            continue  # unknown either way: unverified_needs lists it
        if not found:
            problems.append(
                f"{need.where}: {need.name} does not exist in Alpine {data.branch} {arch}"
            )
            continue
        if need.op and not any(_meets(package, need) for package in found):
            versions = ", ".join(f"{p.name} {p.version}" for p in found)
            problems.append(
                f"{need.where}: needs {need}, Alpine {data.branch} {arch} has {versions}"
            )
    return problems


def unverified_needs(
    needs: Iterable[PackageNeed], data: BranchPackages, arch: str
) -> list[PackageNeed]:
    """Return the needs the data can neither confirm nor refute: unseen by an incomplete source."""
    return [
        need for need in needs if need.name in data.unseen and not data.candidates(need.name, arch)
    ]


def _meets(package: BranchPackage, need: PackageNeed) -> bool:
    try:
        return apk_version_matches(package.version, need.op, need.version)
    except ApkVersionError:
        return False
