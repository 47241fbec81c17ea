"""Signed APKINDEX.tar.gz: build, verify, and catch tampered indexes and repositories."""

from __future__ import annotations

import dataclasses
import gzip
import io
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from ipydeps_repo.apk.archive import END_OF_ARCHIVE, gzip_member, read_tar, regular_info, tar_entry
from ipydeps_repo.apk.index import (
    build_directory_index,
    build_index,
    index_record,
    index_record_of_file,
)
from ipydeps_repo.apk.keys import SigningKey, generate_key, load_public_keys, save_key
from ipydeps_repo.apk.package import ApkEntry, ApkPackage, build_apk, read_apk
from ipydeps_repo.apk.pkginfo import PkgInfo
from ipydeps_repo.apk.verify import verify_index, verify_repository
from ipydeps_repo.errors import ApkFormatError, SignatureError, ValidationError

from ipydeps.formats.apkindex import parse_apkindex, read_apkindex_archive
from tests.support.apk import gzip_members, raw_members


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("index-test", 2048)


@pytest.fixture(scope="module")
def trusted(key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RSAPublicKey]:
    folder: Path = tmp_path_factory.mktemp("keys")
    save_key(key, folder)
    return load_public_keys(folder)


def make_apk(key: SigningKey, name: str, version: str, arch: str = "x86_64") -> bytes:
    info = PkgInfo(
        pkgname=name,
        pkgver=version,
        pkgdesc=f"{name} for tests",
        arch=arch,
        license="MIT",
        builddate=1700000000,
        depends=("python3~3.12",),
        provides=(f"py3.12:{name.replace('-', '_')}={version}",),
    )
    return build_apk([ApkEntry.file(f"usr/share/{name}/{version}", b"x")], info, key)


@pytest.fixture(scope="module")
def packages(key: SigningKey) -> dict[str, bytes]:
    built = [
        make_apk(key, "py3-zeta", "1.0-r0"),
        make_apk(key, "py3-alpha", "2.0-r1", arch="noarch"),
        make_apk(key, "py3-alpha", "2.0_rc1-r0"),
    ]
    return {read_apk(data).filename: data for data in built}


@pytest.fixture
def repository(tmp_path: Path, key: SigningKey, packages: dict[str, bytes]) -> Path:
    folder = tmp_path / "x86_64"
    folder.mkdir()
    for filename, data in packages.items():
        (folder / filename).write_bytes(data)
    parsed = [read_apk(data) for data in packages.values()]
    (folder / "APKINDEX.tar.gz").write_bytes(
        build_index(parsed, key, arch="x86_64", description="sci v3.22")
    )
    return folder


def test_index_record_matches_the_package(packages: dict[str, bytes]) -> None:
    data = packages["py3-zeta-1.0-r0.apk"]
    package = read_apk(data)
    record = index_record(package)
    assert record.checksum == package.control_checksum
    assert record.size == len(data)
    assert record.installed_size == package.info.size
    assert (record.name, record.version, record.arch) == ("py3-zeta", "1.0-r0", "x86_64")
    assert record.depends == ("python3~3.12",)
    assert record.provides == ("py3.12:py3_zeta=1.0-r0",)


def test_built_index_verifies_and_round_trips(
    repository: Path, trusted: dict[str, RSAPublicKey]
) -> None:
    data = (repository / "APKINDEX.tar.gz").read_bytes()
    description, records = verify_index(data, trusted)
    assert description == "sci v3.22"
    # apk's order: by name, then version; noarch rewritten to the index arch.
    assert [(r.name, r.version, r.arch) for r in records] == [
        ("py3-alpha", "2.0_rc1-r0", "x86_64"),
        ("py3-alpha", "2.0-r1", "x86_64"),
        ("py3-zeta", "1.0-r0", "x86_64"),
    ]
    # The client's reader sees the same text.
    assert read_apkindex_archive(data)[0] == "sci v3.22"
    assert parse_apkindex(read_apkindex_archive(data)[1]) == records


def test_index_layout(repository: Path, key: SigningKey) -> None:
    data = (repository / "APKINDEX.tar.gz").read_bytes()
    assert len(gzip_members(data)) == 2
    signature, index = (read_tar(raw, "member") for raw in raw_members(data))
    assert [e.name for e in signature.entries] == [f".SIGN.RSA.{key.public_name}"]
    assert not signature.has_end_marker
    assert [e.name for e in index.entries] == ["DESCRIPTION", "APKINDEX"]
    assert index.has_end_marker
    assert all(e.mode == 0o644 and e.uname == "root" for e in index.entries)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        assert archive.getnames()[1:] == ["DESCRIPTION", "APKINDEX"]


def test_repository_verifies(repository: Path, trusted: dict[str, RSAPublicKey]) -> None:
    assert len(verify_repository(repository, trusted)) == 3


def test_index_refuses_other_arch_and_duplicates(
    key: SigningKey, packages: dict[str, bytes]
) -> None:
    package = read_apk(packages["py3-zeta-1.0-r0.apk"])
    with pytest.raises(ApkFormatError, match="py3-zeta-1.0-r0.apk is for x86_64, not aarch64"):
        build_index([package], key, arch="aarch64")
    with pytest.raises(ApkFormatError, match="py3-zeta-1.0-r0.apk is listed twice"):
        build_index([package, package], key, arch="x86_64")


def test_index_refuses_multiline_description(key: SigningKey) -> None:
    with pytest.raises(ApkFormatError, match="description must be one line"):
        build_index([], key, arch="x86_64", description="a\nb")


def _resign(key: SigningKey, text: bytes) -> bytes:
    """An index with arbitrary APKINDEX text, correctly signed."""
    body = gzip_member(tar_entry(regular_info("APKINDEX", len(text)), text) + END_OF_ARCHIVE)
    signature = key.sign(body)
    name = f".SIGN.RSA.{key.public_name}"
    return gzip_member(tar_entry(regular_info(name, len(signature)), signature)) + body


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"P:a\nV:1.0-r0\n\n", "record at line 1: missing C: (checksum)"),
        (b"C:Q1" + b"A" * 27 + b"=\nP:a\nV:1.0-r0\n", "does not end with a blank line"),
        (b"C:Q1" + b"A" * 27 + b"=\r\nP:a\r\nV:1.0-r0\r\n\r\n", "contains CR characters"),
    ],
)
def test_malformed_index_text(
    key: SigningKey, trusted: dict[str, RSAPublicKey], text: bytes, problem: str
) -> None:
    with pytest.raises(ApkFormatError, match="APKINDEX.tar.gz is invalid") as caught:
        verify_index(_resign(key, text), trusted)
    assert problem in "\n".join(caught.value.problems)


def test_index_changed_after_signing(repository: Path, trusted: dict[str, RSAPublicKey]) -> None:
    signature, index = gzip_members((repository / "APKINDEX.tar.gz").read_bytes())
    tampered = gzip.decompress(index).replace(b"T:py3-zeta for tests", b"T:py3-zeta for TESTS")
    with pytest.raises(SignatureError, match="BAD signature by index-test-"):
        verify_index(signature + gzip_member(tampered), trusted)


def test_unsigned_and_untrusted_index(repository: Path, trusted: dict[str, RSAPublicKey]) -> None:
    signature, index = gzip_members((repository / "APKINDEX.tar.gz").read_bytes())
    with pytest.raises(SignatureError, match="unsigned"):
        verify_index(index, trusted)
    with pytest.raises(SignatureError, match="untrusted key"):
        verify_index(signature + index, {})


def test_index_with_extra_members(repository: Path, trusted: dict[str, RSAPublicKey]) -> None:
    data = (repository / "APKINDEX.tar.gz").read_bytes()
    with pytest.raises(
        ApkFormatError, match="expected one index gzip member after the signature, found 2"
    ):
        verify_index(data + gzip_member(b"x"), trusted)


def _rewrite_index(folder: Path, key: SigningKey, change: dict[str, object]) -> None:
    """Re-sign the index with one record changed (as a compromised index would be)."""
    _, records = verify_index(
        (folder / "APKINDEX.tar.gz").read_bytes(), {key.public_name: key.public_key()}
    )
    records[0] = dataclasses.replace(records[0], **change)  # type: ignore[arg-type]
    (folder / "APKINDEX.tar.gz").write_bytes(build_index(records, key, arch="x86_64"))


def test_repository_wrong_checksum(
    repository: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    _rewrite_index(repository, key, {"checksum": "Q1" + "B" * 27 + "="})
    with pytest.raises(
        SignatureError, match=r"py3-alpha-2.0_rc1-r0.apk: index C:Q1B+= but the package has Q1"
    ):
        verify_repository(repository, trusted)


def test_repository_wrong_size(
    repository: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    _rewrite_index(repository, key, {"size": 1})
    with pytest.raises(
        ValidationError, match=r"py3-alpha-2.0_rc1-r0.apk: index S:1 but the file has \d+ bytes"
    ):
        verify_repository(repository, trusted)


def test_repository_missing_package(repository: Path, trusted: dict[str, RSAPublicKey]) -> None:
    (repository / "py3-zeta-1.0-r0.apk").unlink()
    with pytest.raises(
        ValidationError, match="py3-zeta-1.0-r0.apk: listed in the index but missing"
    ):
        verify_repository(repository, trusted)


def test_repository_tampered_package(repository: Path, trusted: dict[str, RSAPublicKey]) -> None:
    path = repository / "py3-zeta-1.0-r0.apk"
    signature, control, data = gzip_members(path.read_bytes())
    path.write_bytes(
        signature + control + gzip_member(gzip.decompress(data).replace(b"x\0", b"y\0", 1))
    )
    with pytest.raises(SignatureError, match="py3-zeta-1.0-r0.apk: datahash mismatch"):
        verify_repository(repository, trusted)


def test_repository_without_index(tmp_path: Path, trusted: dict[str, RSAPublicKey]) -> None:
    with pytest.raises(ValidationError, match="no APKINDEX.tar.gz"):
        verify_repository(tmp_path, trusted)


def test_records_can_be_reused_without_the_packages(
    repository: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    # The server can rebuild an index from the records of the previous one plus new packages.
    _, records = verify_index((repository / "APKINDEX.tar.gz").read_bytes(), trusted)
    new = read_apk(make_apk(key, "py3-beta", "0.1-r0"))
    rebuilt = build_index([*records, new], key, arch="x86_64")
    names = [r.name for r in verify_index(rebuilt, trusted)[1]]
    assert names == ["py3-alpha", "py3-alpha", "py3-beta", "py3-zeta"]
    assert isinstance(new, ApkPackage)


def test_directory_index_matches_full_read(
    repository: Path, key: SigningKey, packages: dict[str, bytes]
) -> None:
    for data in packages.values():
        assert index_record_of_file(data) == index_record(read_apk(data))
    parsed = [read_apk(data) for data in packages.values()]
    expected = build_index(parsed, key, arch="x86_64", description="sci v3.22")
    assert (
        build_directory_index(repository, key, arch="x86_64", description="sci v3.22") == expected
    )


def test_directory_index_refuses_misnamed_and_broken_files(
    repository: Path, key: SigningKey
) -> None:
    (repository / "py3-zeta-1.0-r0.apk").rename(repository / "py3-zeta-9.9-r0.apk")
    (repository / "junk-1-r0.apk").write_bytes(gzip_member(b"not a tar"))
    with pytest.raises(ApkFormatError) as caught:
        build_directory_index(repository, key, arch="x86_64")
    assert caught.value.problems == [
        "junk-1-r0.apk: no control section starting with .PKGINFO",
        "py3-zeta-9.9-r0.apk: its .PKGINFO names it py3-zeta-1.0-r0.apk",
    ]
