"""The apk verifier accepts what we build and names every kind of tampering or breakage."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from ipydeps_repo.apk.archive import gzip_member, regular_info, tar_entry
from ipydeps_repo.apk.keys import SigningKey, generate_key, load_public_keys, save_key
from ipydeps_repo.apk.package import ApkEntry, build_apk
from ipydeps_repo.apk.pkginfo import PkgInfo
from ipydeps_repo.apk.verify import verify_apk
from ipydeps_repo.errors import ApkFormatError, SignatureError

from tests.support.apk import (
    PKGINFO,
    craft_apk,
    data_tar,
    gzip_members,
    raw_members,
    tar_dir,
    tar_file,
)

INFO = PkgInfo(pkgname="hello", pkgver="1.0-r0", pkgdesc="hi", arch="noarch", license="MIT")
ENTRIES = [
    ApkEntry.file("usr/bin/hello", b"#!/bin/sh\necho hello\n", mode=0o755),
    ApkEntry.symlink("usr/bin/hi", "hello"),
]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("verify-test", 2048)


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return generate_key("intruder", 2048)


@pytest.fixture(scope="module")
def trusted(key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RSAPublicKey]:
    folder: Path = tmp_path_factory.mktemp("keys")
    save_key(key, folder)
    (folder / key.name).unlink()
    return load_public_keys(folder)


@pytest.fixture(scope="module")
def apk(key: SigningKey) -> bytes:
    return build_apk(ENTRIES, INFO, key)


def problems_of(
    error: pytest.ExceptionInfo[ApkFormatError] | pytest.ExceptionInfo[SignatureError],
) -> str:
    return "\n".join(error.value.problems)


def test_built_package_verifies(apk: bytes, trusted: dict[str, RSAPublicKey]) -> None:
    package = verify_apk(apk, trusted)
    assert package.info.pkgname == "hello"


def test_data_changed_after_signing(apk: bytes, trusted: dict[str, RSAPublicKey]) -> None:
    signature, control, data = gzip_members(apk)
    raw = bytearray(gzip.decompress(data))
    raw[raw.index(b"echo hello")] = ord("E")
    with pytest.raises(SignatureError, match="datahash mismatch") as caught:
        verify_apk(signature + control + gzip_member(bytes(raw)), trusted)
    assert "data changed after signing" in problems_of(caught)


def test_control_changed_after_signing(apk: bytes, trusted: dict[str, RSAPublicKey]) -> None:
    signature, control, data = gzip_members(apk)
    tampered = gzip.decompress(control).replace(b"pkgdesc = hi", b"pkgdesc = HI")
    with pytest.raises(SignatureError, match="BAD signature by verify-test-"):
        verify_apk(signature + gzip_member(tampered) + data, trusted)


def test_resigned_by_untrusted_key(
    apk: bytes, other_key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    resigned = build_apk(ENTRIES, INFO, other_key)
    with pytest.raises(
        SignatureError, match=r"signed by untrusted key\(s\) intruder-[0-9a-f]{8}\.rsa\.pub"
    ):
        verify_apk(resigned, trusted)


def test_other_key_under_the_trusted_name_is_bad(
    key: SigningKey, other_key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    # A different key stored under the expected file name: apk says BAD signature.
    forged = craft_apk(other_key, data_tar([]), sign_name=f".SIGN.RSA.{key.public_name}")
    with pytest.raises(SignatureError, match="BAD signature"):
        verify_apk(forged, trusted)


def test_key_file_name_mismatch(key: SigningKey, apk: bytes) -> None:
    # The right key, but filed under another name: apk looks keys up by file name.
    renamed = {"renamed.rsa.pub": key.public_key()}
    with pytest.raises(SignatureError, match="untrusted key"):
        verify_apk(apk, renamed)


def test_unsigned(trusted: dict[str, RSAPublicKey]) -> None:
    with pytest.raises(SignatureError, match="unsigned: no .SIGN"):
        verify_apk(craft_apk(None, data_tar([])), trusted)


def test_truncated(apk: bytes, trusted: dict[str, RSAPublicKey]) -> None:
    with pytest.raises(ApkFormatError, match="gzip member 3 is truncated"):
        verify_apk(apk[:-10], trusted)


def test_crafted_valid_package_verifies(key: SigningKey, trusted: dict[str, RSAPublicKey]) -> None:
    tar = data_tar([tar_dir("usr"), tar_dir("usr/bin"), tar_file("usr/bin/x", b"x")])
    assert verify_apk(craft_apk(key, tar), trusted).info.pkgname == "hello"


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        (
            [tar_dir("./"), tar_dir("./usr"), tar_file("./usr/x", b"x")],
            "data entry './usr/x': './' prefix",
        ),
        ([tar_file("/x", b"x")], "data entry '/x': absolute path"),
        ([tar_dir("usr"), tar_file("usr/../x", b"x")], "'.' or '..' path component"),
        ([tar_file(".hidden", b"x")], "starts with '.', apk silently skips it"),
        (
            [tar_dir("usr"), tar_file("usr/lib/x.so", b"x")],
            "no directory entry for its parent 'usr/lib' before it (apk: no dirent in archive)",
        ),
        (
            [tar_dir("usr"), tar_file("usr/x", b"x", checksum="0" * 40)],
            "APK-TOOLS.checksum.SHA1 is 0000000000000000000000000000000000000000, content has",
        ),
        (
            [tar_dir("usr"), tar_file("usr/x", b"x", checksum=None)],
            "no APK-TOOLS.checksum.SHA1 PAX header",
        ),
        ([tar_dir("usr"), tar_dir("usr")], "appears twice"),
    ],
)
def test_bad_data_sections(
    key: SigningKey, trusted: dict[str, RSAPublicKey], entries: list[bytes], problem: str
) -> None:
    with pytest.raises(ApkFormatError, match="apk is invalid") as caught:
        verify_apk(craft_apk(key, data_tar(entries)), trusted)
    assert problem in problems_of(caught)


def test_all_problems_are_listed(key: SigningKey, trusted: dict[str, RSAPublicKey]) -> None:
    tar = data_tar([tar_file("/abs", b"x"), tar_file("usr/x", b"y", checksum=None)])
    with pytest.raises(ApkFormatError) as caught:
        verify_apk(craft_apk(key, tar), trusted)
    assert len(caught.value.problems) >= 3


def test_size_zero_is_refused(key: SigningKey, trusted: dict[str, RSAPublicKey]) -> None:
    crafted = craft_apk(key, data_tar([]), pkginfo=PKGINFO.replace("size = 10", "size = 0"))
    with pytest.raises(ApkFormatError, match="size must be > 0"):
        verify_apk(crafted, trusted)


def test_missing_datahash_is_refused(key: SigningKey, trusted: dict[str, RSAPublicKey]) -> None:
    crafted = craft_apk(key, data_tar([]), pkginfo=PKGINFO.replace("datahash = {datahash}\n", ""))
    with pytest.raises(SignatureError, match="no datahash in .PKGINFO"):
        # Without datahash the signature covers control + data, which craft_apk did not do.
        verify_apk(crafted, trusted)


def test_control_tar_with_end_blocks(key: SigningKey, trusted: dict[str, RSAPublicKey]) -> None:
    with pytest.raises(
        ApkFormatError,
        match=r"control section ends with end-of-archive blocks \(apk: BAD archive\)",
    ):
        verify_apk(craft_apk(key, data_tar([]), control_end=True), trusted)


def test_signature_tar_with_end_blocks(key: SigningKey, trusted: dict[str, RSAPublicKey]) -> None:
    with pytest.raises(ApkFormatError, match="signature section ends with end-of-archive blocks"):
        verify_apk(craft_apk(key, data_tar([]), sign_end=True), trusted)


def test_data_tar_without_end_blocks(key: SigningKey, trusted: dict[str, RSAPublicKey]) -> None:
    with pytest.raises(ApkFormatError, match="data section has no end-of-archive blocks"):
        verify_apk(craft_apk(key, data_tar([tar_dir("usr")], end=False)), trusted)


def test_prefixed_signature_entry_is_not_a_signature(
    key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    crafted = craft_apk(key, data_tar([]), sign_name=f"./.SIGN.RSA.{key.public_name}")
    with pytest.raises(ApkFormatError, match="control section must start with .PKGINFO"):
        verify_apk(crafted, trusted)


def test_control_entry_that_is_not_a_dot_file(apk: bytes, trusted: dict[str, RSAPublicKey]) -> None:
    signature, control, data = raw_members(apk)
    extra = tar_entry(regular_info("usr/evil", 1), b"x")
    rebuilt = gzip_member(signature) + gzip_member(control + extra) + gzip_member(data)
    with pytest.raises(SignatureError) as caught:
        verify_apk(rebuilt, trusted)
    assert "control section: 'usr/evil' is not a top-level dot-file" in problems_of(caught)
