"""Re-record tests/farm/data/pypi/<project>/json from PyPI's JSON API, trimmed to sdist facts.

Run from the repository root: python tests/farm/data/regenerate_pypi.py
Only what the farm reads is kept (sdist file name, URL, sha256, Requires-Python, yanked), so
the recordings stay small; tests that use them must not depend on the newest version staying put
beyond what the recording says.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

PROJECTS = ("numpy", "scipy", "pandas", "scikit-learn", "biopython", "ecos")
HERE = Path(__file__).resolve().parent / "pypi"


def trim(data: dict[str, object]) -> dict[str, object]:
    """Keep the info version and, per release, the sdist entries' farm-relevant fields."""
    releases: dict[str, list[dict[str, object]]] = {}
    for version, files in data["releases"].items():  # type: ignore[union-attr]
        releases[version] = [
            {
                "packagetype": entry["packagetype"],
                "filename": entry["filename"],
                "url": entry["url"],
                "digests": {"sha256": entry["digests"]["sha256"]},
                "requires_python": entry.get("requires_python"),
                "yanked": entry.get("yanked", False),
            }
            for entry in files
            if entry["packagetype"] == "sdist"
        ]
    info = data["info"]
    return {"info": {"name": info["name"], "version": info["version"]}, "releases": releases}  # type: ignore[index]


def main() -> None:
    """Fetch and write every project's trimmed JSON."""
    for project in PROJECTS:
        with urllib.request.urlopen(
            f"https://pypi.org/pypi/{project}/json", timeout=60
        ) as response:
            data = json.load(response)
        target = HERE / project / "json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(trim(data), indent=1, sort_keys=True) + "\n")
        print(project, data["info"]["version"], target)


if __name__ == "__main__":
    main()
