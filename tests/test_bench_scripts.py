"""Every script in bench/ and scripts/ still loads: its imports name modules that exist.

mypy checks the two packages, not these scripts, so a module that moves (as the server's did
when it was laid out by layer) would otherwise break a benchmark only when someone reruns it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted([*ROOT.glob("bench/*.py"), *ROOT.glob("scripts/*.py")])

pytestmark = pytest.mark.static

# Run the module's top level (its imports and definitions) as `python SCRIPT` would, with the
# script's folder first on sys.path, but under another name than __main__: nothing is run.
LOAD = (
    "import runpy, sys; sys.path.insert(0, sys.argv[2]); "
    "runpy.run_path(sys.argv[1], run_name='_load')"
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_script_loads(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LOAD, str(script), str(script.parent)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_there_are_scripts_to_check() -> None:
    assert {path.parent.name for path in SCRIPTS} == {"bench", "scripts"}
