"""A small pure-Python ELF reader: machine, SONAME and DT_NEEDED, as abuild's scanelf finds them."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import ValidationError

ELF_MAGIC = b"\x7fELF"
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_SONAME = 0, 1, 5, 10, 14
# e_machine -> Alpine architecture names.
MACHINES: dict[int, tuple[str, ...]] = {
    3: ("x86",),
    40: ("armhf", "armv7"),
    62: ("x86_64",),
    183: ("aarch64",),
    21: ("ppc64le",),
    22: ("s390x",),
    243: ("riscv64",),
    258: ("loongarch64",),
}


@dataclass(frozen=True)
class ElfInfo:
    """What matters for dependencies: the architecture, the library's own name, its needs."""

    machine: int
    bits: int
    soname: str | None
    needed: tuple[str, ...]
    interpreter: str | None

    @property
    def arches(self) -> tuple[str, ...]:
        """The Alpine architectures this machine code runs on (empty if unknown)."""
        return MACHINES.get(self.machine, ())


def is_elf(data: bytes) -> bool:
    """Return True if ``data`` starts with the ELF magic number."""
    return data[:4] == ELF_MAGIC


class _Reader:
    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        if len(data) < 52 or data[4] not in (1, 2) or data[5] not in (1, 2):
            raise self.error("truncated ELF header or unknown ELF class/byte order")
        self.bits = 32 if data[4] == 1 else 64
        self.order = "<" if data[5] == 1 else ">"

    def error(self, problem: str) -> ValidationError:
        return ValidationError(self.name, [f"malformed ELF file: {problem}"])

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        size = struct.calcsize(self.order + fmt)
        if offset < 0 or offset + size > len(self.data):
            raise self.error(f"structure at offset {offset} lies outside the file")
        return struct.unpack_from(self.order + fmt, self.data, offset)

    def string(self, offset: int) -> str:
        if offset < 0 or offset >= len(self.data):
            raise self.error(f"string at offset {offset} lies outside the file")
        end = self.data.find(b"\0", offset)
        raw = self.data[offset : end if end >= 0 else len(self.data)]
        return raw.decode("utf-8", "surrogateescape")


def _segments(reader: _Reader) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Return (e_machine, [(p_type, p_offset, p_vaddr, p_filesz)])."""
    if reader.bits == 64:
        machine = reader.unpack("H", 18)[0]
        phoff, phentsize, phnum = reader.unpack("Q", 32)[0], *reader.unpack("HH", 54)
        layout, fields = "IIQQQQQQ", (0, 2, 3, 5)
    else:
        machine = reader.unpack("H", 18)[0]
        phoff, phentsize, phnum = reader.unpack("I", 28)[0], *reader.unpack("HH", 42)
        layout, fields = "IIIIIIII", (0, 1, 2, 4)
    if phnum > 4096:
        raise reader.error(f"{phnum} program headers")
    segments = []
    for index in range(phnum):
        values = reader.unpack(layout, phoff + index * phentsize)
        segments.append(tuple(values[i] for i in fields))
    return machine, segments  # type: ignore[return-value]


def _file_offset(segments: list[tuple[int, int, int, int]], address: int) -> int | None:
    for kind, offset, vaddr, filesz in segments:
        if kind == _PT_LOAD and vaddr <= address < vaddr + filesz:
            return address - vaddr + offset
    return None


def read_elf(data: bytes, name: str = "ELF file") -> ElfInfo | None:
    """Read an ELF file's machine, SONAME, DT_NEEDED list and interpreter.

    Returns None for data that is not ELF. Static files have no needs.

    Raises:
        ValidationError: for an ELF file whose headers point outside the file.
    """
    if not is_elf(data):
        return None
    reader = _Reader(data, name)
    machine, segments = _segments(reader)
    interpreter = None
    entries: list[tuple[int, int]] = []
    entry_format = "qQ" if reader.bits == 64 else "iI"
    entry_size = struct.calcsize(reader.order + entry_format)
    for kind, offset, _vaddr, filesz in segments:
        if kind == _PT_INTERP:
            interpreter = reader.string(offset)
        elif kind == _PT_DYNAMIC:
            for position in range(offset, offset + filesz - entry_size + 1, entry_size):
                tag, value = reader.unpack(entry_format, position)
                if tag == _DT_NULL:
                    break
                entries.append((tag, value))
    strtab = next((value for tag, value in entries if tag == _DT_STRTAB), None)
    if strtab is None:
        return ElfInfo(machine, reader.bits, None, (), interpreter)
    table = _file_offset(segments, strtab)
    if table is None:
        raise reader.error("DT_STRTAB is not inside a loaded segment")
    needed = tuple(reader.string(table + value) for tag, value in entries if tag == _DT_NEEDED)
    sonames = [reader.string(table + value) for tag, value in entries if tag == _DT_SONAME]
    return ElfInfo(machine, reader.bits, sonames[0] if sonames else None, needed, interpreter)
