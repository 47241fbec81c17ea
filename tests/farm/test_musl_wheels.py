"""A musl build's wheel: its links checked as auditwheel would, its tag rewritten honestly."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from ipydeps_repo.apk.wheelfile import read_wheel
from ipydeps_repo.errors import BuildError
from ipydeps_repo.farm.musl_toolchain import wrapper_script
from ipydeps_repo.farm.musl_wheels import check_links, musllinux_platform, retag_wheel

from tests.support.elf import make_elf
from tests.support.wheels import make_wheel

OPENBLAS = {"libopenblas.so.0": "openblas"}


def _wheel(tmp_path: Path, needed: list[str], *, bundled: dict[str, bytes] | None = None) -> Path:
    files: dict[str, bytes | str] = {
        "demo/__init__.py": "",
        "demo/_core.cpython-311-x86_64-linux-musl.so": make_elf(needed=needed),
        **(bundled or {}),
    }
    return make_wheel(tmp_path, "demo", "1.0", files=files, tag="cp311-cp311-linux_x86_64")


def test_a_wheel_needing_only_musl_libc_is_self_contained(tmp_path: Path) -> None:
    report = check_links(_wheel(tmp_path, ["libc.musl-x86_64.so.1"]), apk_libraries=OPENBLAS)
    assert report.self_contained and report.elf_files == 1


def test_a_library_from_the_farms_apk_is_allowed_but_not_self_contained(tmp_path: Path) -> None:
    report = check_links(_wheel(tmp_path, ["libopenblas.so.0"]), apk_libraries=OPENBLAS)
    assert report.from_apks == ("libopenblas.so.0",)
    assert not report.self_contained


def test_a_bundled_library_counts_as_inside(tmp_path: Path) -> None:
    bundled = {"demo.libs/libgomp-1a2b.so.1": make_elf(soname="libgomp.so.1")}
    wheel = _wheel(tmp_path, ["libgomp.so.1"], bundled=bundled)
    assert check_links(wheel, apk_libraries=OPENBLAS).self_contained


def test_an_unprovided_library_or_glibc_fails_the_build(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, ["libgfortran.so.5", "libc.so.6"])
    with pytest.raises(BuildError) as raised:
        check_links(wheel, apk_libraries=OPENBLAS)
    message = str(raised.value)
    assert "needs libgfortran.so.5, which is neither in the wheel nor provided by an apk" in message
    assert "needs libc.so.6: it was linked against glibc" in message


def test_retagging_rewrites_name_tags_and_record(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, [])
    retagged = retag_wheel(wheel, musllinux_platform("x86_64"))
    assert retagged.name == "demo-1.0-cp311-cp311-musllinux_1_2_x86_64.whl"
    assert not wheel.exists()
    # read_wheel checks RECORD's hashes and sizes against the members.
    contents = read_wheel(retagged)
    assert [str(tag) for tag in contents.tags] == ["cp311-cp311-musllinux_1_2_x86_64"]
    with zipfile.ZipFile(retagged) as archive:
        wheel_file = archive.read("demo-1.0.dist-info/WHEEL").decode()
    assert "Tag: cp311-cp311-musllinux_1_2_x86_64" in wheel_file
    assert "linux_x86_64" not in wheel_file.replace("musllinux_1_2_x86_64", "")
    assert retag_wheel(retagged, musllinux_platform("x86_64")) == retagged


def test_the_compiler_wrappers_target_musl_and_quote_the_path() -> None:
    script = wrapper_script(Path("/opt/zig dir/zig"), "c++", "x86_64-linux-musl")
    assert script == "#!/bin/sh\nexec '/opt/zig dir/zig' c++ -target x86_64-linux-musl \"$@\"\n"
    assert "-target" not in wrapper_script(Path("/z/zig"), "ar", "x86_64-linux-musl")
