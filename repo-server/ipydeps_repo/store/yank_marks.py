"""Which published files are yanked (PEP 592), kept per project in the private state.

A mark is the file name and the reason ("" when none was given). Marks live in
``<state>/yanks/<project>.json``, not in the tree, so ``index`` (which rebuilds every
page from the tree) keeps them, and a CDN that syncs the tree never serves them. They
are read and written under the publish lock, like the pages they shape.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import jsonsafe
from ..fileops import write_atomic
from .layout import DataLayout


class YankMarks:
    """The yank marks of every project of one data directory."""

    def __init__(self, layout: DataLayout) -> None:
        self._folder = layout.state / "yanks"

    def _path(self, project: str) -> Path:
        return self._folder / f"{project}.json"

    def load(self, project: str) -> dict[str, str]:
        """Return ``{filename: reason}`` of the project's yanked files (empty when none)."""
        try:
            document = jsonsafe.loads(self._path(project).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        if not isinstance(document, dict):
            return {}
        return {str(name): str(reason or "") for name, reason in document.items()}

    def save(self, project: str, marks: dict[str, str]) -> None:
        """Write the project's marks atomically; no marks removes the file."""
        path = self._path(project)
        if not marks:
            path.unlink(missing_ok=True)
            return
        write_atomic(path, json.dumps(dict(sorted(marks.items())), indent=1).encode(), 0o600)
