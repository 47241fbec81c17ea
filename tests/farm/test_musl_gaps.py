"""The musl work list: which projects' latest releases lack musllinux wheels, kept as data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ipydeps_repo.errors import ValidationError
from ipydeps_repo.farm.musl_gaps import coverage_of, load_gaps, parse_gaps, render_gaps

ROOT = Path(__file__).resolve().parents[2]


def _doc(version: str, *filenames: str, yanked: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "info": {"name": "x", "version": version},
        "urls": [
            {
                "filename": name,
                "packagetype": "sdist" if name.endswith(".tar.gz") else "bdist_wheel",
                "upload_time": f"2026-11-0{i + 1}T10:00:00",
                "yanked": name in yanked,
            }
            for i, name in enumerate(filenames)
        ],
    }


def test_coverage_reads_musllinux_wheels_of_the_latest_release() -> None:
    wheels = _doc(
        "2.0",
        "demo-2.0.tar.gz",
        "demo-2.0-cp311-cp311-musllinux_1_2_x86_64.whl",
        "demo-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "demo-2.0-cp312-cp312-musllinux_1_2_aarch64.whl",
        "demo-2.0-cp312-cp312-musllinux_1_1_x86_64.whl",
        yanked=("demo-2.0-cp312-cp312-musllinux_1_1_x86_64.whl",),
    )
    row = coverage_of("demo", wheels, checked="2026-12-07")
    assert (row.latest, row.uploaded, row.sdist) == ("2.0", "2026-11-04", True)
    # manylinux, another arch and a yanked file do not count.
    assert (row.cp311, row.cp312, row.abi3) == (True, False, False)
    assert row.runs_on("3.11") and not row.runs_on("3.12")
    abi3 = coverage_of("z", _doc("1", "z-1-cp39-abi3-musllinux_1_2_x86_64.whl"), checked="d")
    assert abi3.abi3 and abi3.runs_on("3.12") and not abi3.sdist
    assert parse_gaps(render_gaps([row, abi3]), "round trip") == [row, abi3]


def test_the_cli_refreshes_from_the_json_api_and_reports(tmp_path: Path) -> None:
    api = tmp_path / "api"
    for project, doc in {
        "has-musl": _doc("1.0", "has_musl-1.0-cp312-cp312-musllinux_1_2_x86_64.whl"),
        "no-musl": _doc("3.1", "no_musl-3.1.tar.gz", "no_musl-3.1-cp312-cp312-win_amd64.whl"),
    }.items():
        (api / project).mkdir(parents=True)
        (api / project / "json").write_text(json.dumps(doc))
    table = tmp_path / "gaps.tsv"
    command = [sys.executable, "-m", "ipydeps_repo", "farm", "musl-gaps", "--file", str(table),
               "--pypi-api", api.as_uri()]  # fmt: skip
    first = subprocess.run([*command, "--add", "no-musl", "--add", "has-musl"],
                           capture_output=True, text=True)  # fmt: skip
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "farm: refreshed 2 projects from " + api.as_uri() + " into " + str(table)
    # Projects without a wheel for the runtime's Python come first.
    assert lines[2].split() == ["no-musl", "3.1", "2026-11-02", "NO", "yes"]  # newest file
    assert lines[-1] == "1 of 2 have no musllinux wheel for 3.12"
    assert [row.project for row in load_gaps(table)] == ["has-musl", "no-musl"]
    shown = subprocess.run(command, capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.splitlines() == lines[1:]


def test_a_broken_table_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="line 2: expected 8 columns"):
        parse_gaps("# comment\nnumpy\t2.5.5\n", "gaps.tsv")


def test_the_committed_table_names_the_long_tail() -> None:
    rows = {row.project: row for row in load_gaps(ROOT / "apkbuilds" / "musl-gaps.tsv")}
    assert not rows["scikit-learn"].runs_on("3.12") and rows["scikit-learn"].sdist
    assert rows["numpy"].runs_on("3.12") and rows["pyzmq"].abi3
