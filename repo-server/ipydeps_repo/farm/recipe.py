"""Read an APKBUILD's simple variable assignments without running it through a shell."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ValidationError

# Only the plain `name=value` / `name="value"` form at the start of a line is read; anything
# else (functions, exports, conditionals) is left alone, because sourcing a recipe would run it.
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<rest>.*)$")
_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_REQUIRED = ("pkgname", "pkgver", "pkgrel", "source", "sha512sums")
# An apk dependency may carry a version constraint (py3-numpy>=2) or be negated (!foo).
_DEPENDENCY_NAME = re.compile(r"^!?(?P<name>[A-Za-z0-9_.+:-]+?)(?:[<>=~].*)?$")


@dataclass(frozen=True)
class Recipe:
    """One APKBUILD: its identity, its dependencies (package names) and its text."""

    name: str
    directory: Path
    text: str
    pkgver: str
    pkgrel: int
    depends: tuple[str, ...]
    makedepends: tuple[str, ...]
    checkdepends: tuple[str, ...]
    subpackages: tuple[str, ...]
    sources: tuple[str, ...]
    sha512sums: dict[str, str]
    variables: dict[str, str]

    @property
    def provides(self) -> tuple[str, ...]:
        """Package names this recipe builds: the main package and its subpackages."""
        names = [self.name]
        # A subpackage entry may be `name:function:arch`; the package name is the first field.
        names += [entry.split(":", 1)[0] for entry in self.subpackages]
        return tuple(names)

    @property
    def build_requires(self) -> tuple[str, ...]:
        """Every package name the build needs installed (depends + makedepends + checkdepends)."""
        return self.depends + self.makedepends + self.checkdepends


def parse_assignments(text: str) -> dict[str, str]:
    """Return the top-level ``name=value`` assignments of a shell file, with ``$var`` expanded.

    Double-quoted values may span lines; single-quoted values are literal. Expansion uses
    only variables assigned earlier in the same file (as the shell would), so no code runs.

    Raises:
        ValidationError: a quoted value is never closed.
    """
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    problems: list[str] = []
    while index < len(lines):
        match = _ASSIGNMENT.match(lines[index])
        index += 1
        if match is None:
            continue
        name, rest = match["name"], match["rest"]
        if rest.startswith(("'", '"')):
            quote = rest[0]
            body = rest[1:]
            while quote not in body and index < len(lines):
                body += "\n" + lines[index]
                index += 1
            if quote not in body:
                problems.append(f"unterminated {quote} quote in the value of {name}")
                break
            raw = body[: body.index(quote)]
            values[name] = raw if quote == "'" else _expand(raw, values)
        else:
            # An unquoted value ends at whitespace or a comment (`options=!check # why`).
            raw = rest.split("#", 1)[0].strip().split(" ", 1)[0] if rest else ""
            values[name] = _expand(raw, values)
    if problems:
        raise ValidationError("APKBUILD", problems)
    return values


def _expand(raw: str, known: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        return known.get(name, "")

    return _VARIABLE.sub(substitute, raw)


def _words(value: str) -> tuple[str, ...]:
    return tuple(value.split())


def dependency_name(entry: str) -> str:
    """Return the package name of an apk dependency entry (``py3-numpy>=2`` -> ``py3-numpy``)."""
    match = _DEPENDENCY_NAME.match(entry)
    return match["name"] if match else entry


def load_recipe(directory: Path) -> Recipe:
    """Read ``directory/APKBUILD`` into a :class:`Recipe`.

    Raises:
        ValidationError: the file is missing, a required variable is absent, pkgname does
            not match the directory name, or a source has no sha512sum (all problems at once).
    """
    path = directory / "APKBUILD"
    if not path.is_file():
        raise ValidationError(str(path), ["no APKBUILD in this recipe directory"])
    text = path.read_text(encoding="utf-8")
    values = parse_assignments(text)
    problems = [f"{name} is not set" for name in _REQUIRED if not values.get(name)]
    if values.get("pkgname") and values["pkgname"] != directory.name:
        problems.append(f"pkgname {values['pkgname']!r} differs from directory {directory.name!r}")
    pkgrel = values.get("pkgrel", "")
    if pkgrel and not pkgrel.isdigit():
        problems.append(f"pkgrel {pkgrel!r} is not a number")
    sums = _parse_sha512sums(values.get("sha512sums", ""))
    sources = _words(values.get("source", ""))
    for source in sources:
        filename = source_filename(source)
        if filename not in sums:
            problems.append(f"source {filename} has no sha512sum")
    if problems:
        raise ValidationError(str(path), problems, hint="fix the recipe; see docs/farm.md")
    return Recipe(
        name=values["pkgname"],
        directory=directory,
        text=text,
        pkgver=values["pkgver"],
        pkgrel=int(pkgrel),
        depends=tuple(dependency_name(w) for w in _words(values.get("depends", ""))),
        makedepends=tuple(dependency_name(w) for w in _words(values.get("makedepends", ""))),
        checkdepends=tuple(dependency_name(w) for w in _words(values.get("checkdepends", ""))),
        subpackages=_words(values.get("subpackages", "")),
        sources=sources,
        sha512sums=sums,
        variables=values,
    )


def source_filename(source: str) -> str:
    """Return the local file name abuild uses for a source entry (``name::url`` or a URL)."""
    if "::" in source:
        return source.split("::", 1)[0]
    return source.rsplit("/", 1)[-1]


def _parse_sha512sums(value: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in value.splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1]] = parts[0]
    return sums


def load_recipes(root: Path) -> dict[str, Recipe]:
    """Load every ``root/*/APKBUILD``, keyed by pkgname.

    Raises:
        ValidationError: any recipe is invalid (the first one found, with all its problems).
    """
    recipes: dict[str, Recipe] = {}
    for directory in sorted(path.parent for path in root.glob("*/APKBUILD")):
        recipe = load_recipe(directory)
        recipes[recipe.name] = recipe
    return recipes
