"""APKINDEX text: parse, render in apk's order, and refuse malformed input with reasons."""

from __future__ import annotations

import dataclasses
import gzip
import io
import re
import string
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipydeps.formats.apkindex import (
    ApkIndexError,
    ApkIndexRecord,
    parse_apkindex,
    read_apkindex_archive,
    render_apkindex,
)

CHECKSUM = "Q1" + "A" * 27 + "="
FULL = ApkIndexRecord(
    checksum="Q1pHbO2EC6GEkxjUA3yhvszq9KtNo=",
    name="py3-numpy",
    version="2.2.6-r0",
    arch="x86_64",
    size=4321,
    installed_size=98765,
    description="Fundamental package for array computing in Python",
    url="https://numpy.org",
    license="BSD-3-Clause",
    origin="py3-numpy",
    maintainer="Repo Bot <bot@example.org>",
    build_time=1700000000,
    commit="0123abcd",
    provider_priority=10,
    depends=("python3~3.12", "so:libopenblas.so.0"),
    provides=("py3.12:numpy=2.2.6-r0", "cmd:f2py=2.2.6-r0"),
    install_if=("python3", "openblas"),
)

# What apk-tools writes for FULL, field by field (apk_pkg_write_index_header order).
FULL_TEXT = (
    "C:Q1pHbO2EC6GEkxjUA3yhvszq9KtNo=\n"
    "P:py3-numpy\n"
    "V:2.2.6-r0\n"
    "A:x86_64\n"
    "S:4321\n"
    "I:98765\n"
    "T:Fundamental package for array computing in Python\n"
    "U:https://numpy.org\n"
    "L:BSD-3-Clause\n"
    "o:py3-numpy\n"
    "m:Repo Bot <bot@example.org>\n"
    "t:1700000000\n"
    "c:0123abcd\n"
    "k:10\n"
    "D:python3~3.12 so:libopenblas.so.0\n"
    "p:py3.12:numpy=2.2.6-r0 cmd:f2py=2.2.6-r0\n"
    "i:python3 openblas\n"
    "\n"
)


def minimal(name: str, version: str) -> ApkIndexRecord:
    return ApkIndexRecord(checksum=CHECKSUM, name=name, version=version)


def test_render_full_record_in_apk_field_order() -> None:
    assert render_apkindex([FULL]) == FULL_TEXT


def test_minimal_record_keeps_the_fields_apk_always_writes() -> None:
    text = render_apkindex([minimal("a", "1.0-r0")])
    assert text == f"C:{CHECKSUM}\nP:a\nV:1.0-r0\nS:0\nI:0\nT:\nU:\nL:\n\n"


def test_round_trip() -> None:
    records = [FULL, minimal("zlib", "1.3-r0"), minimal("a", "1.0-r0")]
    parsed = parse_apkindex(render_apkindex(records))
    assert sorted(parsed, key=lambda r: r.name) == sorted(records, key=lambda r: r.name)


def test_records_sorted_by_name_case_insensitively_then_version() -> None:
    records = [
        minimal("b", "1.10-r0"),
        minimal("B", "1.0-r0"),
        minimal("a", "2.0-r0"),
        minimal("b", "1.9-r0"),
        minimal("b", "1.10_rc1-r0"),
    ]
    order = [(r.name, r.version) for r in parse_apkindex(render_apkindex(records))]
    assert order == [
        ("a", "2.0-r0"),
        ("B", "1.0-r0"),
        ("b", "1.9-r0"),
        ("b", "1.10_rc1-r0"),
        ("b", "1.10-r0"),
    ]


def test_every_record_ends_with_a_blank_line_and_lf_only() -> None:
    text = render_apkindex([minimal("a", "1-r0"), minimal("b", "1-r0")])
    assert text.endswith("L:\n\n")
    assert text.count("\n\n") == 2
    assert "\r" not in text


def test_unknown_lowercase_fields_are_ignored() -> None:
    (record,) = parse_apkindex(f"C:{CHECKSUM}\nP:a\nV:1-r0\nz:whatever\n\n")
    assert record == minimal("a", "1-r0")


def test_empty_index_has_no_records() -> None:
    assert parse_apkindex("") == []
    assert render_apkindex([]) == ""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("P:a\nV:1-r0\n\n", "record at line 1: missing C: (checksum)"),
        (f"C:{CHECKSUM}\nV:1-r0\n\n", "missing P: (name)"),
        (f"C:{CHECKSUM}\nP:a\n\n", "missing V: (version)"),
        (f"C:{CHECKSUM}\nP:a\nV:1-r0\n", "the last record does not end with a blank line"),
        (f"C:{CHECKSUM}\r\nP:a\r\nV:1-r0\r\n\r\n", "contains CR characters"),
        (f"C:{CHECKSUM}\nP:a\nV:1-r0\nS:big\n\n", "line 4: S: must be a number, got 'big'"),
        (f"C:{CHECKSUM}\nP:a\nV:1-r0\nX:1\n\n", "line 4: unknown field 'X'"),
        (f"C:{CHECKSUM}\nP:a\nP:b\nV:1-r0\n\n", "line 3: field 'P' appears twice"),
        (f"C:{CHECKSUM}\nP:a\nV:1.0rc1\n\n", "V:1.0rc1 is not a valid apk version"),
        ("C:abc\nP:a\nV:1-r0\n\n", "C:abc is not a Q1 SHA-1 checksum"),
        (f"C:{CHECKSUM}\nP:a\nV:1-r0\nnot a field\n\n", "line 4: expected '<letter>:<value>'"),
    ],
)
def test_malformed_index_is_refused_with_reason(text: str, problem: str) -> None:
    with pytest.raises(ApkIndexError, match="APKINDEX is malformed") as caught:
        parse_apkindex(text)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_all_problems_are_reported_at_once() -> None:
    text = "P:a\nV:1-r0\n\nC:x\nP:b\nV:bad!\n\n"
    with pytest.raises(ApkIndexError) as caught:
        parse_apkindex(text)
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"description": "two\nlines"}, "description contains a line break"),
        ({"depends": ("a b",)}, "depends item with whitespace"),
        ({"checksum": ""}, "has no C: (checksum)"),
        ({"description": "x" * 2100}, "apk allows at most 2047"),
    ],
)
def test_render_refuses_what_apk_cannot_read(change: dict[str, object], problem: str) -> None:
    record = dataclasses.replace(FULL, **change)  # type: ignore[arg-type]
    with pytest.raises(ApkIndexError, match=re.escape(problem)):
        render_apkindex([record])


def _tar_gz(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def test_read_archive_returns_description_and_text() -> None:
    data = _tar_gz({"DESCRIPTION": b"sci v3.22", "APKINDEX": FULL_TEXT.encode()})
    assert read_apkindex_archive(data) == ("sci v3.22", FULL_TEXT)


def test_read_archive_without_description() -> None:
    assert read_apkindex_archive(_tar_gz({"APKINDEX": b""})) == (None, "")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not gzip at all", "not a gzip stream"),
        (_tar_gz({"APKINDEX": FULL_TEXT.encode()})[:-12], "truncated gzip stream"),
        (_tar_gz({"README": b"x"}), "the archive has no APKINDEX entry"),
        (gzip.compress(b"x" * 1024), "not a valid tar archive"),
    ],
)
def test_read_archive_refuses_broken_files(data: bytes, problem: str) -> None:
    with pytest.raises(ApkIndexError, match=problem):
        read_apkindex_archive(data)


_token = st.text(
    alphabet=string.ascii_letters + string.digits + ":=<>~.-_+", min_size=1, max_size=12
)
_line = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n\x85\u2028\u2029"
    ),
    max_size=40,
)
_records = st.builds(
    ApkIndexRecord,
    checksum=st.just(CHECKSUM),
    name=st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
    version=st.sampled_from(["1.0-r0", "2.0_rc1-r3", "0.1_alpha_pre2-r0", "10.2.3-r1"]),
    arch=st.sampled_from(["", "x86_64", "aarch64"]),
    size=st.integers(0, 10**9),
    installed_size=st.integers(0, 10**9),
    description=_line,
    url=_line,
    license=_line,
    origin=_line,
    maintainer=_line,
    build_time=st.integers(0, 2**40),
    commit=st.from_regex(r"[0-9a-f]{0,12}", fullmatch=True),
    provider_priority=st.integers(0, 1000),
    depends=st.lists(_token, max_size=4).map(tuple),
    provides=st.lists(_token, max_size=4).map(tuple),
    install_if=st.lists(_token, max_size=3).map(tuple),
)


@settings(deadline=None, max_examples=200)
@given(st.lists(_records, max_size=5, unique_by=lambda r: (r.name, r.version)))
def test_render_parse_round_trip(records: list[ApkIndexRecord]) -> None:
    # Whatever the writer accepts must read back identically, and render the same again.
    text = render_apkindex(records)
    parsed = parse_apkindex(text)
    assert sorted(parsed, key=repr) == sorted(records, key=repr)
    assert render_apkindex(parsed) == text
