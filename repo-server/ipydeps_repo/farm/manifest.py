"""Load the farm manifest (apkbuilds/manifest.toml): targets and each recipe's upstream."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from ..errors import ConfigurationError, ValidationError
from .recipe import Recipe, load_recipes

TargetKind = Literal["alpine", "host", "musl"]
TARGET_KINDS: tuple[TargetKind, ...] = get_args(TargetKind)
_REQUIRED_FIELDS: dict[TargetKind, tuple[str, ...]] = {
    "alpine": ("branch", "alpine_version", "python", "arch"),
    "musl": ("branch", "python", "arch"),
    "host": (),
}


@dataclass(frozen=True)
class Target:
    """Where a build runs: an Alpine branch/arch in the builder image, this host, or musl.

    A ``musl`` target builds on a musl CPython with zig (no Alpine, no Docker); its apks go
    to ``branch``. ``exclude`` maps a recipe the target cannot build to the reason.
    """

    name: str
    kind: TargetKind
    branch: str = ""
    alpine_version: str = ""
    python: str = ""
    arch: str = ""
    exclude: tuple[tuple[str, str], ...] = ()

    def excluded(self, recipe: str) -> str | None:
        """Return why this target does not build ``recipe``, or None if it does."""
        return dict(self.exclude).get(recipe)


@dataclass(frozen=True)
class RecipeSettings:
    """The manifest's per-recipe settings: upstream project and host-build options."""

    name: str
    pypi: str
    setup_args: tuple[str, ...]
    import_name: str


@dataclass(frozen=True)
class Manifest:
    """The whole farm configuration: targets, recipes (parsed) and their settings."""

    root: Path
    builder_version: str
    apk_repo: str
    targets: dict[str, Target]
    recipes: dict[str, Recipe]
    settings: dict[str, RecipeSettings]

    def target(self, name: str) -> Target:
        """Return the target called ``name``.

        Raises:
            ConfigurationError: no such target in the manifest.
        """
        if name not in self.targets:
            raise ConfigurationError(
                f"unknown farm target {name!r}",
                hint="choose one of: " + ", ".join(sorted(self.targets)),
            )
        return self.targets[name]


def load_manifest(root: Path) -> Manifest:
    """Load ``root/manifest.toml`` and every recipe under ``root``.

    Raises:
        ConfigurationError: the manifest is missing or not valid TOML.
        ValidationError: targets or recipe settings are incomplete, a recipe named in the
            manifest has no APKBUILD, or an APKBUILD has no manifest entry (all at once).
    """
    path = root / "manifest.toml"
    if not path.is_file():
        raise ConfigurationError(
            f"no farm manifest at {path}", hint="pass --apkbuilds pointing at the apkbuilds folder"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path} is not valid TOML: {error}") from error
    problems: list[str] = []
    farm = data.get("farm", {})
    targets = _parse_targets(data.get("targets", []), problems)
    recipes = load_recipes(root)
    settings: dict[str, RecipeSettings] = {}
    for name, entry in data.get("recipes", {}).items():
        if name not in recipes:
            problems.append(f"manifest names recipe {name} but {name}/APKBUILD does not exist")
            continue
        if not entry.get("pypi"):
            problems.append(f"recipe {name} has no pypi project name")
            continue
        settings[name] = RecipeSettings(
            name=name,
            pypi=str(entry["pypi"]),
            setup_args=tuple(str(arg) for arg in entry.get("setup_args", [])),
            import_name=str(entry.get("import_name", entry["pypi"])),
        )
    problems += [
        f"recipe {name} is missing from manifest.toml" for name in recipes if name not in settings
    ]
    if problems:
        raise ValidationError(str(path), problems)
    return Manifest(
        root=root,
        builder_version=str(farm.get("builder_version", "1")),
        apk_repo=str(farm.get("apk_repo", "sci")),
        targets=targets,
        recipes=recipes,
        settings=settings,
    )


def _parse_targets(entries: list[dict[str, Any]], problems: list[str]) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for entry in entries:
        name, kind = str(entry.get("name", "")), str(entry.get("kind", ""))
        if not name or kind not in TARGET_KINDS:
            problems.append(f"target {entry!r} needs a name and a kind in {TARGET_KINDS}")
            continue
        missing = [key for key in _REQUIRED_FIELDS[kind] if not entry.get(key)]
        if missing:
            problems.append(f"{kind} target {name} lacks {', '.join(missing)}")
            continue
        exclude = entry.get("exclude", {})
        if not isinstance(exclude, dict) or not all(isinstance(v, str) for v in exclude.values()):
            problems.append(f"target {name}: exclude must map recipe names to reasons")
            continue
        targets[name] = Target(
            name=name,
            kind=kind,
            branch=str(entry.get("branch", "")),
            alpine_version=str(entry.get("alpine_version", "")),
            python=str(entry.get("python", "")),
            arch=str(entry.get("arch", "")),
            exclude=tuple(sorted(exclude.items())),
        )
    return targets
