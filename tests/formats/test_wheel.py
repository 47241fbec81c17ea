"""A wheel's names and layout: safe paths, its one .dist-info, .data categories, WHEEL."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from ipydeps.formats.errors import FormatError, IpydepsError
from ipydeps.formats.wheel import (
    DistInfo,
    build_tag,
    dist_info_problem,
    find_dist_info,
    is_unsafe_path,
    member_category,
    read_wheel_file,
)


@pytest.mark.parametrize(
    "name", ["../x.py", "a/../../x.py", "/etc/passwd", "a\\b.py", "C:/x", "c:x.py", "./../x"]
)
def test_names_that_could_leave_their_directory_are_unsafe(name: str) -> None:
    assert is_unsafe_path(name)


@pytest.mark.parametrize(
    "name",
    ["demo/__init__.py", "demo/./x.py", "demo//x.py", "demo/a:b.py", "demo-1.0.data/scripts/x"],
)
def test_ordinary_names_are_safe(name: str) -> None:
    assert not is_unsafe_path(name)


def test_the_wheel_has_one_dist_info_naming_its_project() -> None:
    names = ["demo_pkg/__init__.py", "Demo.Pkg-1.0.dist-info/METADATA", "demo_pkg-1.0.data/x/y"]
    found = find_dist_info(names, "demo_pkg-1.0.0-py3-none-any.whl")
    assert found == DistInfo("Demo.Pkg-1.0.dist-info", canonicalize_name("demo-pkg"), "1.0")
    assert found.data_dir == "Demo.Pkg-1.0.data"


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["x/__init__.py"], "expected one .dist-info folder, found none"),
        (
            ["a-1.0.dist-info/METADATA", "b-1.0.dist-info/METADATA"],
            "expected one .dist-info folder, found a-1.0.dist-info, b-1.0.dist-info",
        ),
        (
            ["requests-3.0.dist-info/METADATA"],
            "the wheel's requests-3.0.dist-info names another project or version than its "
            "file name (hx-meta 3.0); installers would record it under that name",
        ),
        (["hx_meta-2.0.dist-info/METADATA"], "names another project or version"),
    ],
)
def test_a_missing_doubled_or_foreign_dist_info_is_refused(names: list[str], problem: str) -> None:
    with pytest.raises(FormatError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        find_dist_info(names, "hx_meta-3.0-py3-none-any.whl")


def test_format_errors_are_ipydeps_errors() -> None:
    with pytest.raises(IpydepsError, match="not a wheel file name"):
        find_dist_info([], "not-a-wheel.zip")


def test_a_dist_info_folder_matches_as_pypi_compares_names() -> None:
    version = Version("3.1.2")
    assert dist_info_problem("Jinja2-3.1.2.dist-info", canonicalize_name("jinja2"), version) is None
    assert (
        dist_info_problem(
            "zope.interface-3.1.2.dist-info", canonicalize_name("zope-interface"), version
        )
        is None
    )
    assert dist_info_problem("jinja2-3.1.3.dist-info", canonicalize_name("jinja2"), version)


def test_data_members_go_to_the_category_they_name() -> None:
    data = "demo-1.0.data"
    assert member_category("demo/x.py", data, "platlib") == ("platlib", PurePosixPath("demo/x.py"))
    assert member_category(f"{data}/scripts/tool", data, "purelib") == (
        "scripts",
        PurePosixPath("tool"),
    )
    assert member_category(f"{data}/headers/sub/demo.h", data, "purelib") == (
        "headers",
        PurePosixPath("sub/demo.h"),
    )
    assert member_category(f"{data}/purelib/demo/y.py", data, "platlib") == (
        "purelib",
        PurePosixPath("demo/y.py"),
    )
    assert member_category(f"{data}/bin/tool", data, "purelib") == (
        f"unknown .data entry '{data}/bin/tool'"
    )
    assert member_category(f"{data}/scripts", data, "purelib") == (
        f"unknown .data entry '{data}/scripts'"
    )


def test_wheel_file_says_where_the_root_goes_and_which_version_it_is() -> None:
    assert read_wheel_file(b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n") == ("purelib", None)
    assert read_wheel_file(b"Wheel-Version: 1.9\nRoot-Is-Purelib: false\n") == ("platlib", None)
    assert read_wheel_file(b"Wheel-Version: 1.0\n").root_category == "platlib"
    assert read_wheel_file(b"Wheel-Version: 2.0\n").problem == "unsupported Wheel-Version '2.0'"
    assert read_wheel_file(b"").problem == "unsupported Wheel-Version None"


def test_build_tags_sort_as_pep_427_says() -> None:
    assert build_tag("demo-1.0-py3-none-any.whl") == ()
    assert build_tag("demo-1.0-1ipydeps-py3-none-any.whl") == (1, "ipydeps")
    assert build_tag("demo-1.0-12-py3-none-any.whl") > build_tag("demo-1.0-2b-py3-none-any.whl")
