"""RSA signing keys with Alpine key naming: generate, save, load, sign and load trusted keys."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..errors import ConfigurationError
from ..fileops import write_atomic

# apk looks a key up by the file name written in the ``.SIGN.<TYPE>.<keyname>`` entry,
# so a name must be a plain file name: abuild-keygen writes ``<id>-<8 hex>.rsa``.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*\.rsa")
_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")

# Signature entry TYPE -> hash, as apk-tools 2.14 reads them (RSA is what abuild writes).
SIGNATURE_HASHES: dict[str, str] = {"RSA": "sha1", "RSA256": "sha256", "RSA512": "sha512"}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha512": hashes.SHA512,
}
MIN_BITS = 2048


def hash_algorithm(hash_name: str) -> hashes.HashAlgorithm:
    """Return the ``cryptography`` hash for ``sha1``/``sha256``/``sha512``.

    Raises:
        ConfigurationError: for any other name.
    """
    try:
        return _HASHES[hash_name]()
    except KeyError:
        raise ConfigurationError(
            f"unsupported signature hash {hash_name!r}",
            hint="use one of " + ", ".join(sorted(_HASHES)),
        ) from None


def signature_type(hash_name: str) -> str:
    """Return the ``.SIGN.<TYPE>`` word for a hash name (``sha1`` -> ``RSA``).

    Raises:
        ConfigurationError: for an unsupported hash name.
    """
    for sign_type, name in SIGNATURE_HASHES.items():
        if name == hash_name:
            return sign_type
    hash_algorithm(hash_name)  # raises the explanatory error
    raise ConfigurationError(f"unsupported signature hash {hash_name!r}")


def is_valid_key_name(name: str) -> bool:
    """Return True if ``name`` is a private key file name apk can refer to (``x-1a2b3c4d.rsa``)."""
    return _NAME_RE.fullmatch(name) is not None


@dataclass(frozen=True)
class SigningKey:
    """A private RSA key and its Alpine file name, e.g. ``ipydeps-65a1b2c3.rsa``."""

    name: str
    private_pem: bytes = field(repr=False)

    def __post_init__(self) -> None:
        """Check the name; the PEM is parsed lazily by ``sign``/``public_pem``."""
        if not is_valid_key_name(self.name):
            raise ConfigurationError(
                f"invalid signing key name {self.name!r}",
                hint="use an Alpine key file name such as 'ipydeps-1a2b3c4d.rsa'",
            )

    @property
    def public_name(self) -> str:
        """The public key's file name in /etc/apk/keys and in ``.SIGN.RSA.<public_name>``."""
        return self.name + ".pub"

    @cached_property
    def _private_key(self) -> rsa.RSAPrivateKey:
        return _parse_private_key(self.private_pem, self.name)

    def public_key(self) -> rsa.RSAPublicKey:
        """Return the public half of this key."""
        return self._private_key.public_key()

    def public_pem(self) -> bytes:
        """Return the public key as PEM SubjectPublicKeyInfo (what apk's PUBKEY reader wants)."""
        return self.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes, hash_name: str = "sha1") -> bytes:
        """Sign ``data`` with PKCS#1 v1.5 and ``hash_name`` (sha1 is what abuild-sign uses).

        Raises:
            ConfigurationError: for an unsupported hash name.
        """
        return self._private_key.sign(data, padding.PKCS1v15(), hash_algorithm(hash_name))


def _parse_private_key(pem: bytes, name: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise ConfigurationError(
            f"signing key {name!r} is not a readable unencrypted PEM private key: {error}",
            hint="generate one with 'ipydeps-repo keygen'",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(
            f"signing key {name!r} is not an RSA key", hint="apk v2 signatures need RSA"
        )
    return key


def generate_key(prefix: str, bits: int = 4096) -> SigningKey:
    """Generate a new RSA key named ``<prefix>-<8 hex>.rsa``.

    The 8 hex digits are the start of the SHA-256 of the public key, so the name
    identifies the key (abuild-keygen uses the creation time instead).

    Raises:
        ConfigurationError: for a prefix that is not a plain name or ``bits`` below 2048.
    """
    if _PREFIX_RE.fullmatch(prefix) is None:
        raise ConfigurationError(
            f"invalid key name prefix {prefix!r}",
            hint="use letters, digits and . _ @ + - only, e.g. 'ipydeps' or 'me@example.org'",
        )
    if bits < MIN_BITS:
        raise ConfigurationError(
            f"RSA key size {bits} is too small", hint=f"use at least {MIN_BITS} bits"
        )
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    suffix = hashlib.sha256(public_der).hexdigest()[:8]
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKey(name=f"{prefix}-{suffix}.rsa", private_pem=pem)


def save_key(
    key: SigningKey, directory: Path | str, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write ``<name>`` (mode 0600) and ``<name>.pub`` (mode 0644) into ``directory``.

    Returns (private path, public path).

    Raises:
        ConfigurationError: if a file of that name exists and ``overwrite`` is false.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    private_path = folder / key.name
    public_path = folder / key.public_name
    if not overwrite:
        existing = [str(p) for p in (private_path, public_path) if p.exists()]
        if existing:
            raise ConfigurationError(
                "refusing to overwrite existing key file(s): " + ", ".join(existing),
                hint="pass overwrite=True or generate a key with another prefix",
            )
    write_atomic(private_path, key.private_pem, 0o600)
    write_atomic(public_path, key.public_pem(), 0o644)
    return private_path, public_path


def load_key(private_path: Path | str) -> SigningKey:
    """Read a private key file; its file name becomes the key name.

    Raises:
        ConfigurationError: if the file is missing, badly named or not an RSA PEM key.
    """
    path = Path(private_path)
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise ConfigurationError(
            f"cannot read signing key {path}: {error.strerror}",
            hint="generate one with 'ipydeps-repo keygen'",
        ) from None
    key = SigningKey(name=path.name, private_pem=pem)
    _parse_private_key(pem, key.name)  # fail now, not at the first signature
    return key


def load_public_key(pem: bytes, name: str) -> rsa.RSAPublicKey:
    """Parse one PEM public key (SubjectPublicKeyInfo or PKCS#1).

    Raises:
        ConfigurationError: if it is not a readable RSA public key.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ConfigurationError(
            f"public key {name!r} is not a readable PEM public key: {error}"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigurationError(f"public key {name!r} is not an RSA key")
    return key


def load_public_keys(directory: Path | str) -> dict[str, rsa.RSAPublicKey]:
    """Load every ``*.pub`` file in ``directory``, keyed by file name (like /etc/apk/keys).

    Raises:
        ConfigurationError: if the directory is missing or a ``.pub`` file is not an RSA key.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise ConfigurationError(f"keys directory {folder} does not exist")
    keys: dict[str, rsa.RSAPublicKey] = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".pub") and path.is_file():
            keys[path.name] = load_public_key(path.read_bytes(), path.name)
    return keys
