"""Reading pip command lines: what ipydeps takes over, and what goes to the real pip."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipydeps.errors import IpydepsError
from ipydeps.magics import rewrite_shell_pip
from ipydeps.pipargs import parse_install, read_requirement_file, split_command


def test_install_options_ipydeps_understands() -> None:
    parsed = parse_install(
        [
            "install",
            "-U",
            "numpy>=2",
            "--index-url=http://127.0.0.1:1/simple/",
            "-q",
            "--dry-run",
            "-rreqs.txt",
        ]
    )
    assert parsed is not None
    assert parsed.requirements == ("numpy>=2",)
    assert parsed.upgrade and parsed.quiet and parsed.dry_run
    assert parsed.index_url == "http://127.0.0.1:1/simple/"
    assert parsed.requirement_files == ("reqs.txt",)


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["show", "numpy"],
        ["uninstall", "-y", "numpy"],
        ["freeze"],
        ["download", "x"],
        ["install", "-e", "."],
        ["install", "--user", "numpy"],
        ["install", "--target", "d", "x"],
        ["install"],
        ["install", "-i"],
    ],
)
def test_everything_else_goes_to_the_real_pip(args: list[str]) -> None:
    assert parse_install(args) is None


def test_split_command_never_runs_a_shell() -> None:
    assert split_command("install 'a;b' $(id) # comment") == ["install", "a;b", "$(id)"]
    with pytest.raises(IpydepsError, match="Cannot read the command line"):
        split_command("install 'unbalanced")


def test_requirement_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("# header\nnumpy>=2  # comment\n\npandas\n")
    assert read_requirement_file(plain) == ["numpy>=2", "pandas"]
    options = tmp_path / "options.txt"
    options.write_text("--index-url http://elsewhere/\nnumpy\n")
    assert read_requirement_file(options) is None
    with pytest.raises(IpydepsError, match="Cannot read requirements file"):
        read_requirement_file(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("!pip install numpy\n", "%pip install numpy\n"),
        ("!pip3 install -U scipy", "%pip install -U scipy"),
        ("  !python -m pip install pandas\n", "  %pip install pandas\n"),
        ("!python3.11 -m pip install x", "%pip install x"),
        ("!pip list", "!pip list"),
        ("x = !pip install numpy", "x = !pip install numpy"),
        ("!pip install a \\\n", "!pip install a \\\n"),
        ("print('!pip install x')", "print('!pip install x')"),
    ],
)
def test_shell_pip_lines_become_the_magic(line: str, expected: str) -> None:
    assert rewrite_shell_pip([line]) == [expected]
