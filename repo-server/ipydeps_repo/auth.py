"""Publish tokens: created at random, stored only as SHA-256 hashes, checked in constant time.

Status policy (documented in the README of the API): no token or an unknown token is
401 (``AuthenticationError``); a token we know but that was revoked, or that lacks the
right to replace a published file (``force``), is 403 (``PermissionDeniedError``),
because the caller is identified and the answer is a refusal, not a request to log in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import jsonsafe
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from .locking import file_lock

SCOPE_UPLOAD = "upload"
SCOPE_FORCE = "force"
ALL_SCOPES = (SCOPE_UPLOAD, SCOPE_FORCE)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token, never the token itself."""

    name: str
    created: str
    last4: str
    scopes: tuple[str, ...]
    revoked: str | None = None


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a token (tokens are 256-bit random, so no salt/KDF is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class TokenStore:
    """The tokens file ``<state>/tokens.json``; every write is atomic (temp file + replace)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Read-modify-write of the file is serialized; readers need no lock (atomic replace).
        self._lock_path = path.with_name(path.name + ".lock")

    def _load(self) -> list[dict[str, Any]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        try:
            document = jsonsafe.loads(raw)
            tokens = document["tokens"]
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigurationError(
                f"tokens file {self.path} is damaged: {error}",
                hint="restore it from a backup, or delete it and create new tokens",
            ) from None
        if not isinstance(tokens, list):
            raise ConfigurationError(f"tokens file {self.path} is damaged: 'tokens' is not a list")
        return tokens

    def _save(self, tokens: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-", suffix=".tmp")
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump({"tokens": tokens}, stream, indent=2)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def create(self, name: str, *, scopes: tuple[str, ...] = ALL_SCOPES) -> str:
        """Create a token called ``name`` and return it (the only time it is ever shown).

        Raises:
            ValidationError: for a name that is not 1-64 letters, digits or ``._@-``.
            ConflictError: if a token with that name exists (revoked ones too: names are audit).
        """
        if _NAME_RE.fullmatch(name) is None:
            raise ValidationError(
                f"token name {name!r}", ["use 1-64 letters, digits, '.', '_', '@' or '-'"]
            )
        unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
        if unknown or SCOPE_UPLOAD not in scopes:
            raise ValidationError(f"token scopes {scopes!r}", [f"scopes are {ALL_SCOPES}"])
        with file_lock(self._lock_path):
            return self._create_locked(name, scopes)

    def _create_locked(self, name: str, scopes: tuple[str, ...]) -> str:
        tokens = self._load()
        if any(entry.get("name") == name for entry in tokens):
            raise ConflictError(
                f"a token named {name!r} already exists",
                hint="choose another name, or revoke it and create one under a new name",
            )
        token = "ipyr_" + secrets.token_urlsafe(32)
        tokens.append(
            {
                "name": name,
                "sha256": hash_token(token),
                "created": _now(),
                "last4": token[-4:],
                "scopes": list(scopes),
                "revoked": None,
            }
        )
        self._save(tokens)
        return token

    def list(self) -> list[TokenInfo]:
        """Return every token's name, creation time, last 4 characters, scopes, revocation."""
        return [_info(entry) for entry in self._load()]

    def revoke(self, name: str) -> TokenInfo:
        """Mark the token ``name`` revoked (kept, so a revoked token gets 403, not 401).

        Raises:
            NotFoundError: if no token has that name.
        """
        with file_lock(self._lock_path):
            return self._revoke_locked(name)

    def _revoke_locked(self, name: str) -> TokenInfo:
        tokens = self._load()
        for entry in tokens:
            if entry.get("name") == name:
                if not entry.get("revoked"):
                    entry["revoked"] = _now()
                    self._save(tokens)
                return _info(entry)
        raise NotFoundError(f"no token named {name!r}", hint="see 'ipydeps-repo token list'")

    def authenticate(self, authorization: str | None, *, scope: str = SCOPE_UPLOAD) -> TokenInfo:
        """Check an ``Authorization`` header value and return the token's info.

        Raises:
            AuthenticationError: header missing, not ``Bearer <token>``, or token unknown.
            PermissionDeniedError: token revoked, or lacking ``scope``.
        """
        if not authorization:
            raise AuthenticationError(
                "missing bearer token", hint="send 'Authorization: Bearer <token>'"
            )
        kind, _, token = authorization.partition(" ")
        token = token.strip()
        if kind.lower() != "bearer" or not token:
            raise AuthenticationError(
                "the Authorization header is not 'Bearer <token>'",
                hint="create a token with 'ipydeps-repo token create NAME'",
            )
        digest = hash_token(token)
        match: dict[str, Any] | None = None
        # Compare against every entry (constant time each) rather than a dict lookup.
        for entry in self._load():
            if hmac.compare_digest(str(entry.get("sha256", "")), digest):
                match = entry
        if match is None:
            raise AuthenticationError(
                "invalid token",
                hint="check the token, or create one with 'ipydeps-repo token create'",
            )
        info = _info(match)
        if info.revoked:
            raise PermissionDeniedError(
                f"token {info.name!r} was revoked at {info.revoked}",
                hint="ask the repository maintainer for a new token",
            )
        if scope not in info.scopes:
            raise PermissionDeniedError(
                f"token {info.name!r} may not {scope}",
                hint="replacing a published file needs a token created without --no-force",
            )
        return info


def _info(entry: dict[str, Any]) -> TokenInfo:
    return TokenInfo(
        name=str(entry.get("name", "")),
        created=str(entry.get("created", "")),
        last4=str(entry.get("last4", "")),
        scopes=tuple(entry.get("scopes", ALL_SCOPES)),
        revoked=entry.get("revoked") or None,
    )
