"""Entry points and the scripts made from them: one grammar, one template, shebangs that run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ipydeps.formats.scripts import (
    EntryPoint,
    console_script,
    parse_entry_points,
    rewrite_shebang,
    shebang,
)


def test_console_and_gui_scripts_are_read_with_extras_ignored() -> None:
    entries, problems = parse_entry_points(
        "[console_scripts]\ndemo-tool = demo.cli:main\nDemo2 = demo.cli:App.run [extra]\n"
        "[gui_scripts]\ndemo-gui=demo.gui:start\n[other]\nx = y:z\n"
    )
    assert problems == []
    assert entries == [
        EntryPoint("demo-tool", "demo.cli", "main", "console"),
        EntryPoint("Demo2", "demo.cli", "App.run", "console"),
        EntryPoint("demo-gui", "demo.gui", "start", "gui"),
    ]


def test_hostile_entry_points_are_problems_not_exceptions() -> None:
    _, problems = parse_entry_points(
        "[console_scripts]\nno-attr = demo.cli\n../escape = demo:main\nwith space = demo:main\n"
        "percent = %(home)s\n"
    )
    assert problems == [
        "entry point 'no-attr' = 'demo.cli' is invalid",
        "entry point '../escape' = 'demo:main' is invalid",
        "entry point 'with space' = 'demo:main' is invalid",
        "entry point 'percent' = '%(home)s' is invalid",
    ]
    entries, problems = parse_entry_points("[console_scripts]\na = b:c\na = d:e\n")
    assert entries == [] and problems[0].startswith("entry_points.txt is invalid:")


def test_shebangs_run_from_simple_spaced_and_long_paths(tmp_path: Path) -> None:
    assert shebang("/usr/bin/python3.11") == b"#!/usr/bin/python3.11\n"
    spaced = tmp_path / "my env" / "python"
    long = tmp_path / ("d" * 130) / "python"
    for python in (spaced, long):
        python.parent.mkdir()
        python.symlink_to(sys.executable)
        assert shebang(str(python)).startswith(b"#!/bin/sh\n'''exec' ")
        script = tmp_path / f"run-{len(str(python))}"
        script.write_bytes(shebang(str(python)) + b"import sys\nprint(sys.argv[1:])\n")
        script.chmod(0o755)
        ran = subprocess.run([str(script), "a b"], capture_output=True, text=True, check=True)
        assert ran.stdout == "['a b']\n"


def test_a_console_script_calls_its_entry_point(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "__init__.py").write_text("")
    (tmp_path / "demo" / "cli.py").write_text(
        "import sys\nclass App:\n    @staticmethod\n    def run():\n"
        "        print('ran', sys.argv[0].rsplit('/', 1)[1])\n        return 3\n"
    )
    script = tmp_path / "demo-tool"
    script.write_bytes(
        console_script(EntryPoint("demo-tool", "demo.cli", "App.run", "console"), sys.executable)
    )
    script.chmod(0o755)
    ran = subprocess.run(
        [str(script)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert (ran.returncode, ran.stdout) == (3, "ran demo-tool\n")


def test_only_hash_bang_python_is_rewritten() -> None:
    assert rewrite_shebang(b"#!python\nprint(1)\n", "/env/bin/python") == (
        b"#!/env/bin/python\nprint(1)\n"
    )
    assert rewrite_shebang(b"#!pythonw\nprint(1)\n", "/env/bin/python") == (
        b"#!/env/bin/python\nprint(1)\n"
    )
    for untouched in (b"#!/bin/sh\necho\n", b"#!/usr/bin/env python\n", b"\x7fELF"):
        assert rewrite_shebang(untouched, "/env/bin/python") == untouched
