"""The repository's own signing key and the public keys it trusts for published apks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from .layout import DataLayout

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    from ..apk.keys import SigningKey


def load_signing_key(layout: DataLayout) -> SigningKey:
    """Return the one private key in ``<data>/keys/``.

    Raises:
        ConfigurationError: no key (run keygen), or more than one (ambiguous).
    """
    from ..apk.keys import load_key

    keys = sorted(layout.keys.glob("*.rsa")) if layout.keys.is_dir() else []
    if not keys:
        raise ConfigurationError(
            f"no signing key in {layout.keys}",
            hint="run 'ipydeps-repo keygen --name NAME --data DIR' first",
        )
    if len(keys) > 1:
        raise ConfigurationError(
            "more than one signing key in "
            + str(layout.keys)
            + ": "
            + ", ".join(path.name for path in keys),
            hint="keep one; 'ipydeps-repo keygen --force' replaces the key cleanly",
        )
    return load_key(keys[0])


def trusted_public_keys(layout: DataLayout) -> dict[str, RSAPublicKey]:
    """Return the keys an uploaded apk may be signed with, by file name.

    These are the repository's own published keys (``<tree>/keys``, including earlier
    ones kept after a key rotation) and the builders' keys in ``<data>/trusted-keys``.

    Raises:
        ConfigurationError: a ``.pub`` file there is not an RSA public key.
    """
    from ..apk.keys import load_public_keys

    keys: dict[str, RSAPublicKey] = {}
    for folder in (layout.public_keys, layout.trusted_keys):
        if folder.is_dir():
            keys.update(load_public_keys(folder))
    return keys
