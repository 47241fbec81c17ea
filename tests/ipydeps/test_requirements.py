"""Requirement strings: valid ones parse, hostile or mistaken ones are refused all at once."""

from __future__ import annotations

import pytest

from ipydeps.errors import InvalidRequirementError
from ipydeps.models import Skipped
from ipydeps.requirements import is_standard_library, parse_requirements, partition_requests

MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.1",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "implementation_version": "3.12.1",
    "platform_release": "",
    "platform_version": "",
}


@pytest.mark.parametrize(
    ("text", "name", "specifier", "extras"),
    [
        ("scipy", "scipy", "", set()),
        ("numpy>=2", "numpy", ">=2", set()),
        ("pandas[performance]", "pandas", "", {"performance"}),
        ("  numpy >= 1.26, < 3  ", "numpy", "<3,>=1.26", set()),
        ("numpy (>=1)", "numpy", ">=1", set()),
        ('tomli; python_version < "3.11"', "tomli", "", set()),
    ],
)
def test_valid_requirements_parse(text: str, name: str, specifier: str, extras: set[str]) -> None:
    [request] = parse_requirements(text)
    assert request.name == name
    assert str(request.requirement.specifier) == specifier
    assert request.requirement.extras == extras
    assert request.text == text.strip()


def test_a_list_keeps_order_and_one_string_is_one_requirement() -> None:
    requests = parse_requirements(["scipy", "numpy>=2"])
    assert [r.name for r in requests] == ["scipy", "numpy"]
    assert len(parse_requirements("scipy")) == 1


HOSTILE = {
    "exec()": "looks like code",
    "numpy; rm -rf /": "not a valid PEP 508 requirement",
    "../x": "local paths are refused by policy",
    "/etc/passwd": "local paths are refused by policy",
    "http://evil/x.whl": "URLs are refused by policy",
    "x @ http://evil/x.whl": "direct references (x @ URL) are refused by policy",
    "x @ file:///tmp/x.whl": "direct references",
    "": "empty requirement",
    "   ": "empty requirement",
    "-r requirements.txt": "run pip directly",
    "--index-url=http://evil/": "run pip directly",
    "numpy scipy": "pass a list instead: ['numpy', 'scipy']",
    "evil.whl": "looks like a file name",
    "numpy\nscipy": "control characters",
    "$(reboot)": "not a valid PEP 508 requirement",
    "`id`": "not a valid PEP 508 requirement",
    'numpy; os.system("id")': "not a valid PEP 508 requirement",
    "numpy>=1 && curl evil": "not a valid PEP 508 requirement",
    "x" * 600: "longer than 500 characters",
}


def test_every_hostile_string_is_named_with_its_reason_in_one_error() -> None:
    with pytest.raises(InvalidRequirementError) as caught:
        parse_requirements(["scipy", *HOSTILE])
    error = caught.value
    assert set(error.problems) == set(HOSTILE)
    for text, reason in HOSTILE.items():
        assert reason in error.problems[text], (text, error.problems[text])
    assert "nothing was installed" in str(error)
    assert "'scipy'" not in error.problems


def test_single_bad_string_and_empty_list_are_refused() -> None:
    with pytest.raises(InvalidRequirementError, match="exec"):
        parse_requirements("exec()")
    with pytest.raises(InvalidRequirementError, match="no requirements given"):
        parse_requirements([])


def test_non_string_items_are_refused() -> None:
    with pytest.raises(InvalidRequirementError, match="must be strings, not int"):
        parse_requirements(["scipy", 3])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["json", "JSON", "os", "asyncio", "tkinter", "sqlite3"])
def test_standard_library_names(name: str) -> None:
    assert is_standard_library(name)


@pytest.mark.parametrize("name", ["numpy", "typing", "dataclasses", "typing-extensions", "six"])
def test_installable_names_are_not_standard_library(name: str) -> None:
    assert not is_standard_library(name)


def test_partition_skips_stdlib_and_false_markers_with_a_note() -> None:
    requests = parse_requirements(
        ["numpy", "json", 'tomli; python_version < "3.11"', 'pywin32; sys_platform == "win32"']
    )
    kept, skipped = partition_requests(requests, MARKERS)
    assert [r.name for r in kept] == ["numpy"]
    assert skipped[0] == Skipped("json", "json is part of Python's standard library")
    assert skipped[1].text == 'tomli; python_version < "3.11"'
    assert "marker" in skipped[1].reason and "false here" in skipped[1].reason
    assert len(skipped) == 3
