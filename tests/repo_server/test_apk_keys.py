"""Signing keys: Alpine naming, files on disk, signatures a stock verifier accepts."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from ipydeps_repo.apk.keys import (
    SigningKey,
    generate_key,
    load_key,
    load_public_keys,
    save_key,
)
from ipydeps_repo.errors import ConfigurationError


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("ipydeps-test", 2048)


def test_generated_key_has_alpine_name(key: SigningKey) -> None:
    assert re.fullmatch(r"ipydeps-test-[0-9a-f]{8}\.rsa", key.name)
    assert key.public_name == key.name + ".pub"
    assert "PRIVATE" not in repr(key)


def test_public_pem_is_subject_public_key_info(key: SigningKey) -> None:
    pem = key.public_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    public = load_pem_public_key(pem)
    signature = key.sign(b"message")
    public.verify(signature, b"message", padding.PKCS1v15(), hashes.SHA1())  # type: ignore[union-attr,call-arg,arg-type]


@pytest.mark.parametrize(
    ("hash_name", "algorithm"),
    [("sha1", hashes.SHA1()), ("sha256", hashes.SHA256()), ("sha512", hashes.SHA512())],
)
def test_sign_with_each_apk_hash(
    key: SigningKey, hash_name: str, algorithm: hashes.HashAlgorithm
) -> None:
    signature = key.sign(b"data", hash_name)
    assert len(signature) == 256
    key.public_key().verify(signature, b"data", padding.PKCS1v15(), algorithm)


def test_unknown_hash_is_refused(key: SigningKey) -> None:
    with pytest.raises(ConfigurationError, match="unsupported signature hash 'md5'"):
        key.sign(b"data", "md5")


def test_save_and_load(tmp_path: Path, key: SigningKey) -> None:
    private, public = save_key(key, tmp_path / "keys")
    assert private.name == key.name and public.name == key.public_name
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_bytes() == key.public_pem()
    assert load_key(private) == key
    keys = load_public_keys(tmp_path / "keys")
    assert list(keys) == [key.public_name]
    assert keys[key.public_name].public_numbers() == key.public_key().public_numbers()


def test_save_refuses_to_overwrite(tmp_path: Path, key: SigningKey) -> None:
    save_key(key, tmp_path)
    with pytest.raises(ConfigurationError, match="refusing to overwrite existing key file"):
        save_key(key, tmp_path)
    save_key(key, tmp_path, overwrite=True)


@pytest.mark.parametrize("prefix", ["", "a/b", "../x", "white space", "-x"])
def test_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid key name prefix"):
        generate_key(prefix, 2048)


def test_small_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="RSA key size 1024 is too small"):
        generate_key("x", 1024)


def test_bad_key_name_is_refused(key: SigningKey) -> None:
    with pytest.raises(ConfigurationError, match="invalid signing key name 'x.pub'"):
        SigningKey(name="x.pub", private_pem=key.private_pem)


def test_load_key_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read signing key"):
        load_key(tmp_path / "missing-12345678.rsa")
    broken = tmp_path / "broken-12345678.rsa"
    broken.write_bytes(b"not a key")
    with pytest.raises(ConfigurationError, match="not a readable unencrypted PEM private key"):
        load_key(broken)


def test_load_public_keys_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_public_keys(tmp_path / "none")
    (tmp_path / "bad.rsa.pub").write_bytes(b"garbage")
    with pytest.raises(ConfigurationError, match="'bad.rsa.pub' is not a readable PEM public key"):
        load_public_keys(tmp_path)
