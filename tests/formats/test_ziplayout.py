"""The ZIP records read by hand agree with what zipfile writes and reads."""

from __future__ import annotations

import io
import zipfile

import pytest

from ipydeps.formats.ziplayout import (
    LOCAL_HEADER,
    DamagedZipError,
    Zip64Error,
    read_central_directory,
    read_local_header,
)


def archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as writer:
        for name, data, mode in (
            ("demo/__init__.py", b"x = 1\n", 0o644),
            ("demo/tool.sh", b"#!/bin/sh\necho hi\n", 0o755),
            ("demo/é.txt", b"", 0o644),
        ):
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            writer.writestr(info, data)
    return buffer.getvalue()


def test_local_headers_give_each_member_sizes_crc_and_data_offset() -> None:
    data = archive()
    with zipfile.ZipFile(io.BytesIO(data)) as reader:
        for info in reader.infolist():
            header = read_local_header(data[info.header_offset :])
            assert header is not None
            assert (header.crc, header.size, header.compressed_size) == (
                info.CRC,
                info.file_size,
                info.compress_size,
            )
            start = info.header_offset + header.length
            assert data[start : start + header.size] == reader.read(info)
    assert LOCAL_HEADER.size == 30


def test_anything_else_is_not_a_local_header() -> None:
    data = archive()
    assert read_local_header(data[:29]) is None
    assert read_local_header(b"PK\x01\x02" + data[4:30]) is None


def test_the_central_directory_lists_what_zipfile_lists() -> None:
    data = archive()
    with zipfile.ZipFile(io.BytesIO(data)) as reader:
        infos = reader.infolist()
        start = reader.start_dir  # type: ignore[attr-defined]
    entries = read_central_directory(data[start:], start)
    assert [(e.name, e.header_offset, e.crc, e.size, e.executable) for e in entries] == [
        (i.filename, i.header_offset, i.CRC, i.file_size, bool((i.external_attr >> 16) & 0o111))
        for i in infos
    ]
    assert [entry.executable for entry in entries] == [False, True, False]


def test_a_central_directory_that_disagrees_or_is_cut_is_damaged() -> None:
    data = archive()
    with zipfile.ZipFile(io.BytesIO(data)) as reader:
        start = reader.start_dir  # type: ignore[attr-defined]
    with pytest.raises(DamagedZipError):
        read_central_directory(data[start:], start + 1)  # not where the end record says
    with pytest.raises(DamagedZipError):
        read_central_directory(data[start:-5], start)


def test_zip64_records_are_left_to_zipfile() -> None:
    data = archive()
    with zipfile.ZipFile(io.BytesIO(data)) as reader:
        start = reader.start_dir  # type: ignore[attr-defined]
    # A 32-bit size of 0xFFFFFFFF says: the real one is in a zip64 extra field.
    tail = data[start : start + 20] + b"\xff\xff\xff\xff" + data[start + 24 :]
    with pytest.raises(Zip64Error):
        read_central_directory(tail, start)
