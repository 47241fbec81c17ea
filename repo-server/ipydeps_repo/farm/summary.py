"""The farm run summary: summary.json for machines and a plain table for people."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .options import SUCCEEDED, RecipeResult

SUMMARY_FILE = "summary.json"


def summary_data(results: Sequence[RecipeResult]) -> dict[str, Any]:
    """Return the JSON-ready summary: one entry per recipe and target, plus totals."""
    entries = [asdict(result) for result in results]
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return {
        "results": entries,
        "counts": counts,
        "total_build_seconds": round(sum(r.duration_seconds for r in results), 1),
        "ok": all(result.status in SUCCEEDED for result in results),
    }


def write_summary(out_dir: Path, results: Sequence[RecipeResult]) -> Path:
    """Write ``<out>/summary.json`` atomically and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SUMMARY_FILE
    handle, temp = tempfile.mkstemp(dir=out_dir, prefix=".summary.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(summary_data(results), out, indent=2)
        out.write("\n")
    os.replace(temp, path)
    return path


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def render_table(results: Sequence[RecipeResult]) -> str:
    """Return a fixed-width table: recipe, target, status, version, duration, artifacts, size."""
    rows = [("recipe", "target", "status", "version", "time", "artifact", "size")]
    for result in results:
        artifacts = result.artifacts or ()
        first = artifacts[0] if artifacts else None
        rows.append(
            (
                result.recipe,
                result.target,
                result.status,
                result.version,
                f"{result.duration_seconds:.0f}s" if result.status == "built" else "-",
                first.filename if first else result.message[:60],
                _size(first.size) if first else "",
            )
        )
        rows += [("", "", "", "", "", a.filename, _size(a.size)) for a in artifacts[1:]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
