"""Publish tokens: created at random, stored only as SHA-256 hashes, checked in constant time.

A token has rights (``upload``; ``force`` to replace or delete published files), may be
limited to projects (``token_scope.py``) and to a time (``expires``), and records when it
was last used. Status policy (documented in the README of the API): no token or an
unknown token is 401 (``AuthenticationError``); a token we know but that was revoked, has
expired, lacks the right or acts outside its projects is 403 (``PermissionDeniedError``),
because the caller is identified and the answer is a refusal, not a request to log in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .. import jsonsafe
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from ..store.locking import file_lock
from .token_scope import format_time, normalize_pattern, parse_time, project_in_scope

SCOPE_UPLOAD = "upload"
SCOPE_FORCE = "force"
ALL_SCOPES = (SCOPE_UPLOAD, SCOPE_FORCE)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# Recording every use would rewrite (and fsync) the file on every request of a busy CI.
LAST_USED_RESOLUTION = timedelta(minutes=1)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token, never the token itself.

    ``projects`` is None for a token that reaches every project (all tokens made before
    project scopes existed), else the normalized names and patterns it is limited to.
    """

    name: str
    created: str
    last4: str
    scopes: tuple[str, ...]
    revoked: str | None = None
    projects: tuple[str, ...] | None = None
    expires: str | None = None
    last_used: str | None = None

    def check_project(self, project: str) -> None:
        """Refuse ``project`` if it is outside this token's projects.

        Raises:
            PermissionDeniedError: naming the token's scope.
        """
        if not project_in_scope(self.projects, project):
            raise PermissionDeniedError(
                f"token {self.name!r} may not act on project {project!r}: its scope is "
                f"project {', '.join(self.projects or ('(none)',))}",
                hint="use a token created with --project for this project",
            )


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a token (tokens are 256-bit random, so no salt/KDF is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return format_time(datetime.now(UTC))


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

    def create(
        self,
        name: str,
        *,
        scopes: tuple[str, ...] = ALL_SCOPES,
        projects: tuple[str, ...] | None = None,
        expires: datetime | None = None,
    ) -> str:
        """Create a token called ``name`` and return it (the only time it is ever shown).

        ``projects`` limits it to those project names or patterns (``acme-*``); None
        means every project. ``expires`` is when it stops working (None: never).

        Raises:
            ValidationError: for a name that is not 1-64 letters, digits or ``._@-``, an
                unknown right, an empty or invalid project pattern.
            ConflictError: if a token with that name exists (revoked ones too: names are audit).
        """
        if _NAME_RE.fullmatch(name) is None:
            raise ValidationError(
                f"token name {name!r}", ["use 1-64 letters, digits, '.', '_', '@' or '-'"]
            )
        unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
        if unknown or SCOPE_UPLOAD not in scopes:
            raise ValidationError(f"token scopes {scopes!r}", [f"scopes are {ALL_SCOPES}"])
        if projects is not None and not projects:
            raise ValidationError("token projects", ["name at least one project"])
        patterns = (
            None
            if projects is None
            else tuple(dict.fromkeys(normalize_pattern(project) for project in projects))
        )
        entry: dict[str, Any] = {
            "scopes": list(scopes),
            "projects": None if patterns is None else list(patterns),
            "expires": None if expires is None else format_time(expires),
            "last_used": None,
        }
        with file_lock(self._lock_path):
            return self._create_locked(name, entry)

    def _create_locked(self, name: str, limits: dict[str, Any]) -> str:
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
                **limits,
                "revoked": None,
            }
        )
        self._save(tokens)
        return token

    def list(self) -> list[TokenInfo]:
        """Return what is known of every token (never the token itself)."""
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

    def authenticate(
        self, authorization: str | None, *, scope: str = SCOPE_UPLOAD, project: str | None = None
    ) -> TokenInfo:
        """Check an ``Authorization`` header value and return the token's info.

        ``project`` is the project the request acts on, when it is known from the URL (the
        legacy form tells it later: its handler calls ``TokenInfo.check_project``). A use
        that passes is recorded as the token's ``last_used`` (to the minute).

        Raises:
            AuthenticationError: header missing, not ``Bearer <token>``, or token unknown.
            PermissionDeniedError: token revoked or expired, lacking ``scope``, or limited
                to other projects than ``project``.
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
        _check_expiry(info)
        if scope not in info.scopes:
            raise PermissionDeniedError(
                f"token {info.name!r} may not {scope}",
                hint="replacing a published file needs a token created without --no-force",
            )
        if project is not None:
            info.check_project(project)
        self._record_use(info, digest)
        return info

    def _record_use(self, info: TokenInfo, digest: str) -> None:
        """Set the token's ``last_used`` unless it was set within ``LAST_USED_RESOLUTION``.

        Failing to record (a full disk, a read-only state directory) never fails the
        request: the time is a convenience for ``token list``, not part of the check.
        """
        now = datetime.now(UTC)
        last = parse_time(info.last_used) if info.last_used else None
        if last is not None and now - last < LAST_USED_RESOLUTION:
            return
        try:
            with file_lock(self._lock_path):
                tokens = self._load()
                for entry in tokens:
                    if entry.get("sha256") == digest:
                        entry["last_used"] = format_time(now)
                self._save(tokens)
        except (OSError, ConfigurationError) as error:
            logger.warning("could not record the use of token %r: %s", info.name, error)


def _check_expiry(info: TokenInfo) -> None:
    """Refuse an expired token; one whose expiry does not parse counts as expired.

    Raises:
        PermissionDeniedError: naming when it expired.
    """
    if info.expires is None:
        return
    expires = parse_time(info.expires)
    if expires is None or datetime.now(UTC) >= expires:
        raise PermissionDeniedError(
            f"token {info.name!r} expired at {info.expires}",
            hint="ask the repository maintainer for a new token",
        )


def _info(entry: dict[str, Any]) -> TokenInfo:
    # Entries written before project scopes, expiry and last use have none of those keys:
    # every project, no expiry, never used since.
    projects = entry.get("projects")
    if projects is not None and not isinstance(projects, list):
        projects = []  # damaged: reach nothing rather than everything
    return TokenInfo(
        name=str(entry.get("name", "")),
        created=str(entry.get("created", "")),
        last4=str(entry.get("last4", "")),
        scopes=tuple(entry.get("scopes", ALL_SCOPES)),
        revoked=entry.get("revoked") or None,
        projects=None if projects is None else tuple(str(item) for item in projects),
        expires=str(entry["expires"]) if entry.get("expires") else None,
        last_used=str(entry["last_used"]) if entry.get("last_used") else None,
    )
