"""Which published files are yanked (PEP 592), kept per project in the private state.

A mark is the file name and the reason ("" when none was given). Marks live in
``<state>/yanks/<project>.json``, not in the tree, so ``index`` (which rebuilds every
page from the tree) keeps them, and a CDN that syncs the tree never serves them. They
are read and written under the publish lock, like the pages they shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .. import jsonsafe
from ..fileops import write_atomic

if TYPE_CHECKING:
    from .store import Store


def _marks_path(store: Store, project: str) -> Path:
    return store.layout.state / "yanks" / f"{project}.json"


def load_marks(store: Store, project: str) -> dict[str, str]:
    """Return ``{filename: reason}`` of the project's yanked files (empty when none)."""
    try:
        document = jsonsafe.loads(_marks_path(store, project).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {str(name): str(reason or "") for name, reason in document.items()}


def save_marks(store: Store, project: str, marks: dict[str, str]) -> None:
    """Write the project's marks atomically; no marks removes the file."""
    path = _marks_path(store, project)
    if not marks:
        path.unlink(missing_ok=True)
        return
    write_atomic(path, json.dumps(dict(sorted(marks.items())), indent=1).encode(), 0o600)
