"""The root of the simple index: which projects have files, kept so a publish looks at one.

The set lives in ``<state>/cache/projects.json``; like every cache it can be rebuilt from
the tree (``rebuild``, and on first use when it is missing). A project is listed while its
folder under ``files/`` holds a wheel or sdist. The root pages change only when a project
appears or goes, so publishing into a project that is listed already reads no other
project's folder, whatever the number of projects.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import jsonsafe
from ..fileops import write_atomic
from ..validation.sdist import SDIST_SUFFIXES
from .layout import DataLayout
from .pages import render_root_html, render_root_json

CACHE_NAME = "projects.json"
_PAGES = ("index.html", "index.json")


def distribution_files(folder: Path) -> list[Path]:
    """Return the wheels and sdists in ``folder`` (no hidden temp files), sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for pattern in ("*.whl", *(f"*{suffix}" for suffix in SDIST_SUFFIXES))
        for path in folder.glob(pattern)
        if not path.name.startswith(".")
    )


def project_folders(files: Path) -> list[str]:
    """Return every folder under ``files``, also those whose last file was removed."""
    if not files.is_dir():
        return []
    return sorted(
        entry.name for entry in files.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )


class ProjectIndex:
    """The listed projects of one data directory and the two root pages that name them."""

    def __init__(self, layout: DataLayout) -> None:
        self._files = layout.tree / "files"
        self._simple = layout.tree / "simple"
        self._cache = layout.cache / CACHE_NAME

    def names(self) -> list[str]:
        """Return the listed projects, sorted (read from the tree if the cache is missing).

        Only ``update`` and ``rebuild``, under the lock, write the cache: a reader that
        wrote what it read from the tree could put back a list older than a publish's.
        """
        names = self._load()
        return sorted(self._from_tree() if names is None else names)

    def pages_exist(self) -> bool:
        """Tell whether both root pages are there."""
        return all((self._simple / name).is_file() for name in _PAGES)

    def update(self, project: str, *, listed: bool) -> None:
        """Make ``project`` listed or not, rewriting the root pages if that changed them.

        The caller holds the publish lock.
        """
        cached = self._load()
        names = self._from_tree() if cached is None else cached
        if cached is not None and (project in names) == listed and self.pages_exist():
            return
        if listed:
            names.add(project)
        else:
            names.discard(project)
        self._save(names)
        self._write_pages(names)

    def rebuild(self) -> list[str]:
        """Recompute the listed projects from the tree and rewrite the root pages."""
        names = self._from_tree()
        self._save(names)
        self._write_pages(names)
        return sorted(names)

    def _from_tree(self) -> set[str]:
        return {
            name for name in project_folders(self._files) if distribution_files(self._files / name)
        }

    def _load(self) -> set[str] | None:
        try:
            document = jsonsafe.loads(self._cache.read_bytes())
        except (FileNotFoundError, jsonsafe.JsonInputError):
            return None
        if not isinstance(document, list) or not all(isinstance(n, str) for n in document):
            return None
        return set(document)

    def _save(self, names: set[str]) -> None:
        write_atomic(self._cache, json.dumps(sorted(names)).encode(), 0o600)

    def _write_pages(self, names: set[str]) -> None:
        write_atomic(self._simple / "index.html", render_root_html(names).encode())
        write_atomic(self._simple / "index.json", render_root_json(names).encode())
