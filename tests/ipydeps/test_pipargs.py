"""Reading pip command lines: what ipydeps takes over, and what goes to the real pip."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipydeps.errors import IpydepsError
from ipydeps.magics import rewrite_shell_pip
from ipydeps.pipargs import (
    OwnOptionError,
    parse_install,
    read_requirement_file,
    refuse_own_options,
    split_command,
)


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


def test_request_build_is_ipydeps_own_install_option() -> None:
    parsed = parse_install(["install", "--request-build", "--dry-run", "scikit-learn"])
    assert parsed is not None and parsed.request_build and parsed.dry_run
    assert parsed.requirements == ("scikit-learn",)
    plain = parse_install(["install", "scikit-learn"])
    assert plain is not None and not plain.request_build


@pytest.mark.parametrize(
    "args",
    [
        ["install", "--request-build", "--no-deps", "x"],
        ["install", "-e", ".", "--request-build"],
        ["download", "--request-build", "x"],
        ["--request-build", "install", "x"],
    ],
)
def test_a_command_for_the_real_pip_may_not_carry_request_build(args: list[str]) -> None:
    with pytest.raises(OwnOptionError, match="--request-build is ipydeps' own option") as error:
        refuse_own_options(args)
    assert error.value.hint is not None and "request_build" in error.value.hint
    refuse_own_options([word for word in args if word != "--request-build"])  # the rest: as before


def test_a_refused_command_line_shows_no_credentials() -> None:
    args = ["install", "--request-build", "--no-deps", "-i", "https://me:s3cret@127.0.0.1/", "x"]
    with pytest.raises(OwnOptionError) as error:
        refuse_own_options(args)
    assert "s3cret" not in str(error.value) and "me:***@127.0.0.1" in str(error.value)


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
