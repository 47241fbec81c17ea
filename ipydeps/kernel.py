"""Make freshly installed packages importable in the running interpreter, and say when not."""

from __future__ import annotations

import importlib
import site
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Upgraded:
    """A distribution whose installed version changed, with its importable top-level names."""

    name: str
    old_version: str
    new_version: str
    top_level: tuple[str, ...]


def refresh_import_system(site_dirs: Sequence[Path], new_pth_files: Iterable[Path] = ()) -> None:
    """Let the next ``import`` see what was just installed, with no sleep and no restart.

    Clears the finders' directory caches (``importlib.invalidate_caches``, which also
    resets importlib.metadata's path cache), adds site directories that are not on
    ``sys.path`` yet (processing their .pth files), and runs new .pth files in
    directories that already are.
    """
    importlib.invalidate_caches()
    on_path = {str(Path(entry)) for entry in sys.path}
    for directory in site_dirs:
        if str(directory) not in on_path and directory.is_dir():
            site.addsitedir(str(directory))
            on_path.add(str(directory))
        elif directory.is_dir():
            for pth in new_pth_files:
                if pth.parent == directory and pth.is_file():
                    # site.addpackage is how site itself runs a .pth: paths and import lines.
                    site.addpackage(str(directory), pth.name, None)
    importlib.invalidate_caches()


def restart_warnings(upgraded: Iterable[Upgraded]) -> list[str]:
    """One warning per upgraded distribution that is already imported in this process."""
    warnings: list[str] = []
    for item in upgraded:
        if any(name in sys.modules for name in item.top_level):
            warnings.append(
                f"{item.name} {item.old_version} is already imported; "
                f"restart the kernel to use {item.new_version}"
            )
    return warnings
