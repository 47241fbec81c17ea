"""The apk writer and reader: .PKGINFO, round trips, and the exact v2 layout."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib

import pytest
from ipydeps_repo.apk.archive import q1_checksum, read_tar
from ipydeps_repo.apk.keys import SigningKey, generate_key
from ipydeps_repo.apk.package import ApkEntry, build_apk, complete_tree, read_apk
from ipydeps_repo.apk.pkginfo import PkgInfo, parse_pkginfo
from ipydeps_repo.errors import ApkFormatError

from tests.support.apk import PKGINFO, craft_apk, data_tar, gzip_members, raw_members

INFO = PkgInfo(
    pkgname="py3-hello",
    pkgver="1.0_rc1-r2",
    pkgdesc="Hello for tests",
    url="https://example.org",
    builddate=1700000000,
    packager="tests",
    arch="x86_64",
    maintainer="Tester <t@example.org>",
    license="MIT",
    depends=("python3~3.12", "so:libfake.so.1"),
    provides=("py3.12:hello=1.0_rc1-r2", "cmd:hello=1.0_rc1-r2"),
    install_if=("python3", "hello-base"),
    replaces=("py3-hello-old",),
)
ENTRIES = [
    ApkEntry.file("usr/lib/python3.12/site-packages/hello/__init__.py", b"x = 1\n"),
    ApkEntry.file("usr/bin/hello", b"#!/bin/sh\necho hello\n", mode=0o755),
    ApkEntry.symlink("usr/bin/hi", "hello"),
    ApkEntry.directory("usr/share/hello"),
]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("pkg-test", 2048)


@pytest.fixture(scope="module")
def apk(key: SigningKey) -> bytes:
    return build_apk(ENTRIES, INFO, key, scripts={".post-install": b"#!/bin/sh\ntrue\n"})


def test_pkginfo_renders_in_abuild_order_with_datahash_last() -> None:
    text = PkgInfo(**{**INFO.__dict__, "size": 7, "datahash": "a" * 64}).render()
    keys = [line.split(" = ")[0] for line in text.splitlines() if not line.startswith("#")]
    assert keys == [
        "pkgname",
        "pkgver",
        "pkgdesc",
        "url",
        "builddate",
        "packager",
        "size",
        "arch",
        "origin",
        "maintainer",
        "license",
        "replaces",
        "depend",
        "depend",
        "provides",
        "provides",
        "install_if",
        "datahash",
    ]
    assert "install_if = python3 hello-base\n" in text
    assert parse_pkginfo(text) == PkgInfo(**{**INFO.__dict__, "size": 7, "datahash": "a" * 64})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"size": 0}, "size must be > 0"),
        ({"pkgver": "1.0"}, "lacks the -rN release"),
        ({"pkgver": "1.0rc1-r0"}, "not a valid apk version"),
        ({"pkgname": "bad name"}, "not a valid apk package name"),
        ({"pkgdesc": "two\nlines"}, "pkgdesc contains a line break"),
        ({"depends": ("a b",)}, "depends item 'a b' is empty or contains whitespace"),
        ({"datahash": "XYZ"}, "not a lowercase hex SHA-256"),
    ],
)
def test_pkginfo_refuses_what_apk_cannot_use(change: dict[str, object], problem: str) -> None:
    info = PkgInfo(**{**INFO.__dict__, "size": 1, **change})
    with pytest.raises(ApkFormatError, match=problem):
        info.render()


def test_parse_pkginfo_reports_every_problem() -> None:
    text = "pkgname = a\npkgname = b\nsize = big\nnonsense line\n"
    with pytest.raises(ApkFormatError) as caught:
        parse_pkginfo(text)
    assert caught.value.problems == [
        "line 2: 'pkgname' appears twice",
        "line 3: size must be a number, got 'big'",
        "line 4: expected 'key = value', got 'nonsense line'",
        "missing pkgver",
    ]


def test_parse_pkginfo_keeps_unknown_keys() -> None:
    text = "pkgname = a\npkgver = 1-r0\nsize = 1\nfuture_key = x\n"
    info = parse_pkginfo(text)
    assert info.extra == (("future_key", "x"),)
    assert "future_key = x\n" in info.render()


def test_round_trip(apk: bytes, key: SigningKey) -> None:
    package = read_apk(apk)
    assert package.info.pkgname == "py3-hello"
    assert package.info.size == 6 + 21 + 5
    assert package.info.datahash == package.data_hash
    assert package.signature_keys == (("RSA", key.public_name),)
    assert package.file_size == len(apk)
    assert [name for name, _ in package.control_files] == [".PKGINFO", ".post-install"]
    paths = [e.path for e in package.entries]
    assert paths == [
        "usr",
        "usr/bin",
        "usr/bin/hello",
        "usr/bin/hi",
        "usr/lib",
        "usr/lib/python3.12",
        "usr/lib/python3.12/site-packages",
        "usr/lib/python3.12/site-packages/hello",
        "usr/lib/python3.12/site-packages/hello/__init__.py",
        "usr/share",
        "usr/share/hello",
    ]
    by_path = {e.path: e for e in package.entries}
    assert by_path["usr/bin/hello"].mode == 0o755
    assert by_path["usr/bin/hi"].target == "hello"
    assert by_path["usr/bin/hello"].checksum == hashlib.sha1(b"#!/bin/sh\necho hello\n").hexdigest()
    assert by_path["usr/bin/hi"].checksum == hashlib.sha1(b"hello").hexdigest()
    assert package.filename == "py3-hello-1.0_rc1-r2.apk"


def test_layout_is_three_gzip_members_of_one_tar_stream(apk: bytes, key: SigningKey) -> None:
    members = gzip_members(apk)
    raw = raw_members(apk)
    assert len(members) == 3
    # Signature and control tars are cut (no end blocks); the data tar is ended.
    signature, control, data = (read_tar(r, "member") for r in raw)
    assert not signature.has_end_marker and not control.has_end_marker and data.has_end_marker
    assert [e.name for e in signature.entries] == [f".SIGN.RSA.{key.public_name}"]
    assert [e.name for e in control.entries] == [".PKGINFO", ".post-install"]
    assert control.entries[1].mode == 0o755
    # Python's own gzip and tarfile read the concatenation as one continuous tar stream.
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(apk))) as archive:
        names = archive.getnames()
    assert names[:2] == [f".SIGN.RSA.{key.public_name}", ".PKGINFO"]
    assert "usr/bin/hello" in names and "./usr" not in names
    # Identity, datahash and signature are over the compressed member bytes.
    package = read_apk(apk)
    assert package.control_checksum == q1_checksum(members[1])
    assert package.info.datahash == hashlib.sha256(members[2]).hexdigest()
    assert len(package.control_checksum) == 30 and package.control_checksum.startswith("Q1")


def test_members_are_reproducible(key: SigningKey) -> None:
    assert build_apk(ENTRIES, INFO, key) == build_apk(ENTRIES, INFO, key)
    assert all(
        zlib.decompressobj(31).decompress(m) for m in gzip_members(build_apk(ENTRIES, INFO, key))
    )


def test_sha256_signature_type(key: SigningKey) -> None:
    package = read_apk(build_apk(ENTRIES, INFO, key, hash_name="sha256"))
    assert package.signatures[0].type == "RSA256"


def test_complete_tree_adds_parents_first() -> None:
    tree = complete_tree([ApkEntry.file("a/b/c.txt", b"x"), ApkEntry.file("a/a.txt", b"y")])
    assert [(e.path, e.kind) for e in tree] == [
        ("a", "dir"),
        ("a/a.txt", "file"),
        ("a/b", "dir"),
        ("a/b/c.txt", "file"),
    ]


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([ApkEntry.file("/usr/x", b"")], "without a leading '/', '.' or './'"),
        ([ApkEntry.file("./usr/x", b"")], "without a leading '/', '.' or './'"),
        ([ApkEntry.file("usr/../etc/passwd", b"")], "'..' path components"),
        ([ApkEntry.file("usr/x", b""), ApkEntry.file("usr/x", b"")], "appears twice"),
        ([ApkEntry.file("usr", b""), ApkEntry.file("usr/x", b"")], "'usr' is a file but holds"),
        ([ApkEntry("usr/h", "hardlink", target="usr/x")], "hardlinks are not supported"),
    ],
)
def test_bad_entries_are_refused(entries: list[ApkEntry], problem: str, key: SigningKey) -> None:
    with pytest.raises(ApkFormatError, match="package contents is invalid") as caught:
        build_apk(entries, INFO, key)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_unknown_script_is_refused(key: SigningKey) -> None:
    with pytest.raises(ApkFormatError, match="unknown script name '.install'"):
        build_apk(ENTRIES, INFO, key, scripts={".install": b""})


def test_read_apk_refuses_non_apk_data() -> None:
    with pytest.raises(ApkFormatError, match="not valid gzip"):
        read_apk(b"PK\x03\x04 a zip file")
    with pytest.raises(ApkFormatError, match="the file is empty"):
        read_apk(b"")


def test_compression_level_changes_only_the_data_member(key: SigningKey) -> None:
    entries = [ApkEntry.file("usr/share/big.txt", b"".join(b"line %d\n" % i for i in range(20000)))]
    fast, small = (build_apk(entries, INFO, key, compresslevel=level) for level in (1, 9))
    assert len(gzip_members(fast)[2]) > len(gzip_members(small)[2])
    assert gzip.decompress(gzip_members(fast)[2]) == gzip.decompress(gzip_members(small)[2])
    assert read_apk(fast).info.datahash == hashlib.sha256(gzip_members(fast)[2]).hexdigest()


def test_read_apk_reports_pkginfo_problems(key: SigningKey) -> None:
    crafted = craft_apk(key, data_tar([]), pkginfo=PKGINFO.replace("pkgver = 1.0-r0\n", ""))
    with pytest.raises(ApkFormatError, match="hello.apk is invalid: .PKGINFO: missing pkgver"):
        read_apk(crafted, subject="hello.apk")


def test_long_and_non_ascii_paths_round_trip(key: SigningKey) -> None:
    long_path = "usr/share/" + "/".join(["d" * 40] * 4) + "/file.txt"
    unicode_path = "usr/share/données/ünïcode.txt"
    package = read_apk(
        build_apk([ApkEntry.file(long_path, b"x"), ApkEntry.file(unicode_path, b"y")], INFO, key)
    )
    files = {e.path: e.data for e in package.entries if e.kind == "file"}
    assert files == {long_path: b"x", unicode_path: b"y"}
    with tarfile.open(
        fileobj=io.BytesIO(
            gzip.decompress(gzip_members(build_apk([ApkEntry.file(long_path, b"x")], INFO, key))[2])
        )
    ) as archive:
        assert long_path in archive.getnames()
