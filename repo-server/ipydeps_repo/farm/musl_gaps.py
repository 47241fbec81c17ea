"""Which upstream releases lack musl wheels: the farm's work list for the musl target, as data.

``apkbuilds/musl-gaps.tsv`` lists the watched projects and, per project, the latest release on
PyPI, when it was uploaded, and whether it has a ``musllinux_*_x86_64`` wheel for CPython 3.11,
3.12 or the stable ABI (abi3). ``ipydeps-repo farm musl-gaps --refresh`` rewrites it from PyPI's
JSON API; without ``--refresh`` it shows the file. A project without a wheel for the runtime's
Python cannot be installed in the compiler-less Alpine runtime unless the farm builds it.
"""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from ..errors import UpstreamError, ValidationError
from .upstream import DEFAULT_JSON_API, project_url

COLUMNS = ("project", "latest", "uploaded", "cp311", "cp312", "abi3", "sdist", "checked")
ARCH = "x86_64"

Fetch = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True)
class MuslCoverage:
    """One project's latest release and which musllinux x86_64 wheels it has."""

    project: str
    latest: str
    uploaded: str  # date of the newest file of that release (YYYY-MM-DD)
    cp311: bool
    cp312: bool
    abi3: bool
    sdist: bool
    checked: str  # date of the refresh

    def runs_on(self, python: str) -> bool:
        """Whether a musllinux wheel serves CPython ``python`` (``3.11``/``3.12``)."""
        return self.abi3 or (self.cp311 if python == "3.11" else self.cp312)


def coverage_of(project: str, data: Mapping[str, Any], *, checked: str) -> MuslCoverage:
    """Read a ``/pypi/<project>/json`` document (its ``urls``: the latest release's files). Pure."""
    info = data.get("info", {})
    files = [entry for entry in data.get("urls", []) if not entry.get("yanked")]
    tags: set[tuple[str, str]] = set()
    for entry in files:
        try:
            _, _, _, wheel_tags = parse_wheel_filename(str(entry.get("filename", "")))
        except InvalidWheelFilename:
            continue
        tags.update(
            (tag.interpreter, tag.abi)
            for tag in wheel_tags
            if tag.platform.startswith("musllinux_") and tag.platform.endswith(f"_{ARCH}")
        )
    uploaded = max((str(entry.get("upload_time", ""))[:10] for entry in files), default="")
    return MuslCoverage(
        project=project,
        latest=str(info.get("version", "")),
        uploaded=uploaded,
        cp311=("cp311", "cp311") in tags,
        cp312=("cp312", "cp312") in tags,
        abi3=any(abi == "abi3" for _, abi in tags),
        sdist=any(entry.get("packagetype") == "sdist" for entry in files),
        checked=checked,
    )


def fetch_json(url: str) -> Mapping[str, Any]:
    """Read one JSON API document.

    Raises:
        UpstreamError: it cannot be read or is not JSON.
    """
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            data: Mapping[str, Any] = json.load(response)
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as error:
        raise UpstreamError(f"could not read {url}: {error}") from error
    return data


def refresh(
    projects: Iterable[str], *, api: str = DEFAULT_JSON_API, fetch: Fetch = fetch_json
) -> list[MuslCoverage]:
    """Ask the JSON API about each project; return their coverage, sorted by project.

    Raises:
        UpstreamError: a project cannot be read (the file is then left as it was).
    """
    today = datetime.date.today().isoformat()
    return sorted(
        (coverage_of(name, fetch(project_url(name, api)), checked=today) for name in projects),
        key=lambda coverage: coverage.project,
    )


def render_gaps(rows: Iterable[MuslCoverage]) -> str:
    """Render the TSV (a header comment, the column line, one row per project)."""
    lines = [
        "# Latest PyPI release of each watched project and whether it has a musllinux x86_64",
        "# wheel for cp311 / cp312 / abi3. Refresh: ipydeps-repo farm musl-gaps --refresh.",
        "\t".join(COLUMNS),
    ]
    for row in rows:
        flags = ("yes" if flag else "no" for flag in (row.cp311, row.cp312, row.abi3, row.sdist))
        lines.append("\t".join((row.project, row.latest, row.uploaded, *flags, row.checked)))
    return "\n".join(lines) + "\n"


def parse_gaps(text: str, subject: str) -> list[MuslCoverage]:
    """Parse the TSV ``render_gaps`` writes.

    Raises:
        ValidationError: a row without every column, or a flag that is not yes/no.
    """
    rows: list[MuslCoverage] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("\t")
        if not line.strip() or line.startswith("#") or tuple(fields) == COLUMNS:
            continue
        if len(fields) != len(COLUMNS) or any(f not in ("yes", "no") for f in fields[3:7]):
            problems.append(f"line {number}: expected {len(COLUMNS)} columns with yes/no flags")
            continue
        cp311, cp312, abi3, sdist = (field == "yes" for field in fields[3:7])
        rows.append(
            MuslCoverage(fields[0], fields[1], fields[2], cp311, cp312, abi3, sdist, fields[7])
        )
    if problems:
        raise ValidationError(subject, problems, hint="refresh it: farm musl-gaps --refresh")
    return rows


def load_gaps(path: Path) -> list[MuslCoverage]:
    """Read the table at ``path`` (an absent file is an empty table)."""
    if not path.is_file():
        return []
    return parse_gaps(path.read_text(encoding="utf-8"), str(path))


def render_report(rows: Iterable[MuslCoverage], python: str) -> str:
    """Return a fixed-width table for people, projects without a wheel for ``python`` first."""
    ordered = sorted(rows, key=lambda row: (row.runs_on(python), row.project))
    table = [("project", "latest", "uploaded", f"musl wheel for {python}", "sdist")]
    for row in ordered:
        wheel = "yes" + (" (abi3)" if row.abi3 else "") if row.runs_on(python) else "NO"
        table.append((row.project, row.latest, row.uploaded, wheel, "yes" if row.sdist else "no"))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    missing = sum(not row.runs_on(python) for row in ordered)
    body = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in table
    ]
    return "\n".join([*body, f"{missing} of {len(ordered)} have no musllinux wheel for {python}"])
