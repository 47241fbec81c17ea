"""Publish tokens: hashed at rest, 401 for unknown, 403 for revoked or lacking a right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ipydeps_repo.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from ipydeps_repo.web.auth import SCOPE_FORCE, SCOPE_UPLOAD, TokenStore, hash_token


def test_only_the_hash_is_stored(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("alice")
    raw = (tmp_path / "tokens.json").read_text()
    assert token not in raw
    assert json.loads(raw)["tokens"][0]["sha256"] == hash_token(token)
    assert store.authenticate(f"Bearer {token}").name == "alice"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Basic dXNlcjpwYXNz", "the Authorization header is not 'Bearer <token>'"),
        ("Bearer", "the Authorization header is not 'Bearer <token>'"),
        ("Bearer ipyr_wrong", "invalid token"),
    ],
)
def test_unauthenticated(tmp_path: Path, header: str | None, message: str) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.create("alice")
    with pytest.raises(AuthenticationError) as caught:
        store.authenticate(header)
    assert caught.value.message == message
    assert caught.value.status == 401


def test_revoked_and_scope(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    limited = store.create("ci", scopes=(SCOPE_UPLOAD,))
    assert store.authenticate(f"bearer {limited}").scopes == (SCOPE_UPLOAD,)
    with pytest.raises(PermissionDeniedError, match="token 'ci' may not force"):
        store.authenticate(f"Bearer {limited}", scope=SCOPE_FORCE)
    store.revoke("ci")
    with pytest.raises(PermissionDeniedError, match="token 'ci' was revoked at 20") as caught:
        store.authenticate(f"Bearer {limited}")
    assert caught.value.status == 403


def test_names_are_unique_and_revoke_needs_a_known_name(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.create("alice")
    with pytest.raises(ConflictError):
        store.create("alice")
    with pytest.raises(NotFoundError, match="no token named 'bob'"):
        store.revoke("bob")


def test_damaged_tokens_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "tokens.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="is damaged"):
        TokenStore(tmp_path / "tokens.json").authenticate("Bearer x")
