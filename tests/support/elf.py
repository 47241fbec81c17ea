"""Build tiny but well-formed ELF shared objects in code (for the apk/wheel dependency scans)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

EM_X86_64 = 62
EM_AARCH64 = 183
EM_ARM = 40


def make_elf(
    *,
    needed: Sequence[str] = (),
    soname: str | None = None,
    machine: int = EM_X86_64,
    bits: int = 64,
    interpreter: str | None = None,
) -> bytes:
    """Return an ELF file (little endian) with a PT_DYNAMIC listing DT_NEEDED and DT_SONAME."""
    wide = bits == 64
    header_size, phdr_size = (64, 56) if wide else (52, 32)
    phnum = 3 if interpreter else 2
    offset = header_size + phnum * phdr_size
    interp = (interpreter.encode() + b"\0") if interpreter else b""
    interp_offset = offset
    offset += len(interp)
    strings = b"\0"
    positions: dict[str, int] = {}
    for name in [*needed, *([soname] if soname else [])]:
        positions[name] = len(strings)
        strings += name.encode() + b"\0"
    strtab_offset = offset
    offset += len(strings)
    dynamic_entries = [(1, positions[name]) for name in needed]
    if soname:
        dynamic_entries.append((14, positions[soname]))
    dynamic_entries += [(5, strtab_offset), (10, len(strings)), (0, 0)]
    dyn_format = "<qQ" if wide else "<iI"
    dynamic = b"".join(struct.pack(dyn_format, tag, value) for tag, value in dynamic_entries)
    dynamic_offset = offset
    total = offset + len(dynamic)
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1, 1]) + bytes(9)
    if wide:
        header = ident + struct.pack(
            "<HHIQQQIHHHHHH",
            3,
            machine,
            1,
            0,
            header_size,
            0,
            0,
            header_size,
            phdr_size,
            phnum,
            64,
            0,
            0,
        )
    else:
        header = ident + struct.pack(
            "<HHIIIIIHHHHHH",
            3,
            machine,
            1,
            0,
            header_size,
            0,
            0,
            header_size,
            phdr_size,
            phnum,
            40,
            0,
            0,
        )

    def phdr(kind: int, start: int, size: int) -> bytes:
        if wide:
            return struct.pack("<IIQQQQQQ", kind, 4, start, start, start, size, size, 8)
        return struct.pack("<IIIIIIII", kind, start, start, start, size, size, 4, 4)

    phdrs = phdr(1, 0, total) + phdr(2, dynamic_offset, len(dynamic))
    if interpreter:
        phdrs += phdr(3, interp_offset, len(interp))
    return header + phdrs + interp + strings + dynamic
