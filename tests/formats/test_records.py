"""RECORD: one parser that lists every problem, one writer, one encoding, one unlisted rule."""

from __future__ import annotations

import hashlib

from ipydeps.formats.records import (
    parse_record,
    record_hash,
    record_hash_of,
    record_paths,
    render_record,
    unlisted_problems,
)

DIST = "demo-1.0.dist-info"
# sha256 of no bytes, as RECORD writes it (urlsafe base64 without padding).
EMPTY_SHA256 = "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


def test_the_hash_is_written_as_the_wheel_spec_says() -> None:
    assert record_hash_of(b"") == EMPTY_SHA256
    assert record_hash(hashlib.sha256(b"")) == EMPTY_SHA256
    assert record_hash_of(b"", "sha512").startswith("sha512=")
    assert "=" not in record_hash_of(b"x", "sha512").split("=", 1)[1]  # no padding


def test_a_record_that_is_right_reads_without_problems() -> None:
    record = parse_record(f"demo/__init__.py,{EMPTY_SHA256},0\n{DIST}/RECORD,,\n".encode(), DIST)
    assert record.problems == ()
    assert record.hash_of("demo/__init__.py") == EMPTY_SHA256
    assert record.hash_of("demo/other.py") == ""
    assert record.member_problem("demo/__init__.py", EMPTY_SHA256, 0) is None


def test_every_problem_is_listed_at_once() -> None:
    text = "\n".join(
        [
            "demo/a.py,sha256=abc",  # two fields
            "demo/b.py,md5=abc,3",  # a weak algorithm
            "demo/c.py,sha256=abc,three",  # not a size
            "demo/d.py,sha256abc,3",  # not algorithm=value
            f"demo/e.py,{EMPTY_SHA256},0",
            f"demo/e.py,{EMPTY_SHA256},0",  # listed twice
            f"{DIST}/RECORD,{EMPTY_SHA256},0",  # RECORD cannot hash itself
            "",
        ]
    )
    record = parse_record(text.encode(), DIST)
    assert record.problems == (
        "RECORD row ['demo/a.py', 'sha256=abc'] does not have 3 fields",
        "RECORD uses 'md5' for 'demo/b.py'; expected sha256 or better",
        "RECORD gives 'demo/c.py' the size 'three', not a number",
        "RECORD gives 'demo/d.py' the hash 'sha256abc', not <algorithm>=<value>",
        "RECORD lists 'demo/e.py' twice",
        f"RECORD gives '{DIST}/RECORD' a hash; it cannot have one",
    )
    assert parse_record(b"\xff\xfe", DIST).problems[0].startswith(f"{DIST}/RECORD cannot be read")


def test_sha384_and_sha512_are_sha256_or_better() -> None:
    text = f"a,{record_hash_of(b'a', 'sha384')},1\nb,{record_hash_of(b'b', 'sha512')},1\n"
    record = parse_record(text.encode(), DIST)
    assert record.problems == ()
    assert record.member_problem("a", record_hash_of(b"a", "sha384"), 1) is None
    assert record.member_problem("b", record_hash_of(b"B", "sha512"), 1) == (
        "'b' does not match its RECORD hash"
    )


def test_a_member_that_disagrees_with_its_row_is_named() -> None:
    record = parse_record(f"demo/x.py,{EMPTY_SHA256},0\n".encode(), DIST)
    assert record.member_problem("demo/x.py", record_hash_of(b"x"), 0) == (
        "'demo/x.py' does not match its RECORD hash"
    )
    assert record.member_problem("demo/x.py", EMPTY_SHA256, 5) == (
        "'demo/x.py' is 5 bytes, RECORD says 0"
    )
    assert record.size_problem("demo/x.py", 5) == "'demo/x.py' is 5 bytes, RECORD says 0"
    # Nothing to disagree with: not listed, or listed without a hash.
    assert record.member_problem("demo/unlisted.py", EMPTY_SHA256, 9) is None


def test_unlisted_files_and_rows_naming_no_member() -> None:
    record = parse_record(
        f"demo/a.py,{EMPTY_SHA256},0\ndemo/ghost.py,{EMPTY_SHA256},0\ndemo/bare.py,,\n"
        f"{DIST}/RECORD,,\n".encode(),
        DIST,
    )
    members = [
        "demo/a.py",
        "demo/bare.py",
        "demo/extra.py",
        "demo/bad.py",
        f"{DIST}/RECORD",
        f"{DIST}/RECORD.jws",
    ]
    assert unlisted_problems(record, members, DIST, broken=["demo/bad.py"]) == [
        "RECORD lists 'demo/ghost.py', which the wheel lacks",
        "RECORD has no hash for 'demo/bare.py'",
        "'demo/extra.py' is not listed in RECORD",
    ]


def test_written_records_read_back_the_same() -> None:
    rows = [
        ("demo/a,b.py", EMPTY_SHA256, "0"),
        ('demo/"q".py', EMPTY_SHA256, "0"),
        ("../../bin/tool", record_hash_of(b"x"), "1"),
    ]
    data = render_record(rows, f"{DIST}/RECORD")
    assert data.endswith(f"{DIST}/RECORD,,\n".encode())
    assert data.startswith(b'"demo/a,b.py",')
    record = parse_record(data, DIST)
    assert record.problems == ()
    assert [tuple(row) for row in record.rows.values()] == [*rows, (f"{DIST}/RECORD", "", "")]


def test_an_installed_record_names_its_files_whatever_its_other_fields() -> None:
    # Written by any installer: rows this module's parser refuses still name owned files.
    data = b"demo/a.py,sha256=x,1\ndemo/b.py\n\ndemo/c.py,md5=y,2,extra\n,,\n\xff.py,,\n"
    assert record_paths(data) == ["demo/a.py", "demo/b.py", "demo/c.py", "\ufffd.py"]
