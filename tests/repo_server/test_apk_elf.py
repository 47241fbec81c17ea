"""The ELF reader finds what abuild's scanelf finds: machine, SONAME and DT_NEEDED."""

from __future__ import annotations

import _ctypes
import shutil
import subprocess
from pathlib import Path

import pytest
from ipydeps_repo.apk.elf import read_elf
from ipydeps_repo.errors import ValidationError

from tests.support.elf import EM_ARM, EM_X86_64, make_elf


def test_64_bit_library() -> None:
    info = read_elf(
        make_elf(needed=["libopenblas.so.3", "libc.musl-x86_64.so.1"], soname="libx.so.1")
    )
    assert info is not None
    assert (info.machine, info.bits, info.arches) == (EM_X86_64, 64, ("x86_64",))
    assert info.needed == ("libopenblas.so.3", "libc.musl-x86_64.so.1")
    assert info.soname == "libx.so.1"


def test_32_bit_executable_with_interpreter() -> None:
    data = make_elf(
        needed=["libc.musl-armv7.so.1"],
        machine=EM_ARM,
        bits=32,
        interpreter="/lib/ld-musl-armhf.so.1",
    )
    info = read_elf(data)
    assert info is not None
    assert (info.bits, info.soname, info.interpreter) == (32, None, "/lib/ld-musl-armhf.so.1")
    assert info.arches == ("armhf", "armv7")


def test_not_elf() -> None:
    assert read_elf(b"#!/bin/sh\n") is None
    assert read_elf(b"") is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x7fELF" + bytes(10), "truncated ELF header"),
        (make_elf(needed=["libz.so.1"])[:80], "lies outside the file"),
    ],
)
def test_malformed_elf(data: bytes, problem: str) -> None:
    with pytest.raises(ValidationError, match=f"x.so is invalid: malformed ELF file: .*{problem}"):
        read_elf(data, "x.so")


def test_real_extension_module_matches_readelf() -> None:
    # A real shared object built by a real toolchain: this interpreter's _ctypes module.
    path = Path(_ctypes.__file__)
    info = read_elf(path.read_bytes())
    assert info is not None and info.needed
    # Every dynamically linked extension module needs a C library.
    assert any(name.startswith(("libc.so", "libc.musl")) for name in info.needed)
    readelf = shutil.which("readelf")
    if readelf is not None:
        output = subprocess.run(
            [readelf, "-d", str(path)], capture_output=True, text=True, check=True
        )
        needed = [
            line.split("[")[1].split("]")[0]
            for line in output.stdout.splitlines()
            if "(NEEDED)" in line
        ]
        assert list(info.needed) == needed
