"""Tokens limited to projects and to a time, with their last use (issue 15, item 3).

A token made with ``--project`` publishes, yanks and deletes in its projects only, and a
request outside them gets 403 naming the scope, from the headers wherever the URL names
the project (and, on the legacy form, before a byte of the file is stored). Tokens made
before scopes existed keep reaching every project.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ipydeps_repo.errors import PermissionDeniedError, ValidationError
from ipydeps_repo.validation.names import project_of_filename
from ipydeps_repo.web.auth import SCOPE_FORCE, SCOPE_UPLOAD, TokenStore, hash_token
from ipydeps_repo.web.token_scope import parse_expiry

from tests.support.sdists import legacy_form, make_sdist
from tests.support.server import RunningServer, repo_cli
from tests.support.wheels import make_wheel

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_a_scoped_token_reaches_its_projects_and_patterns_only(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("acme", projects=("Acme", "acme_*"), scopes=(SCOPE_UPLOAD,))
    header = f"Bearer {token}"
    for project in ("acme", "acme-tools", "acme-x-y"):
        assert store.authenticate(header, project=project).projects == ("acme", "acme-*")
    with pytest.raises(PermissionDeniedError) as caught:
        store.authenticate(header, project="requests")
    assert caught.value.message == (
        "token 'acme' may not act on project 'requests': its scope is project acme, acme-*"
    )
    assert caught.value.status == 403
    # The right is checked as before; the project scope does not widen it.
    with pytest.raises(PermissionDeniedError, match="may not force"):
        store.authenticate(header, scope=SCOPE_FORCE, project="acme")


def test_token_files_from_before_scopes_keep_working(tmp_path: Path) -> None:
    # The entries ipydeps-repo wrote before projects, expiry and last use existed.
    token = "ipyr_" + "x" * 43
    (tmp_path / "tokens.json").write_text(
        json.dumps(
            {
                "tokens": [
                    {
                        "name": "old",
                        "sha256": hash_token(token),
                        "created": "2026-01-01T00:00:00+00:00",
                        "last4": token[-4:],
                        "scopes": ["upload", "force"],
                        "revoked": None,
                    }
                ]
            }
        )
    )
    store = TokenStore(tmp_path / "tokens.json")
    info = store.authenticate(f"Bearer {token}", scope=SCOPE_FORCE, project="anything")
    assert (info.projects, info.expires) == (None, None)
    # Its use is recorded in the same file, which stays readable by the same code.
    assert store.list()[0].last_used is not None
    assert store.authenticate(f"Bearer {token}", project="other").name == "old"


def test_an_expired_token_is_403(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("soon", expires=datetime.now(UTC) + timedelta(hours=1))
    assert store.authenticate(f"Bearer {token}").name == "soon"
    document = json.loads((tmp_path / "tokens.json").read_text())
    document["tokens"][0]["expires"] = "2020-01-01T00:00:00+00:00"
    (tmp_path / "tokens.json").write_text(json.dumps(document))
    with pytest.raises(PermissionDeniedError, match="token 'soon' expired at 2020-01-01"):
        store.authenticate(f"Bearer {token}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW + timedelta(days=30)),
        ("12h", NOW + timedelta(hours=12)),
        ("2w", NOW + timedelta(weeks=2)),
        ("2027-01-31", datetime(2027, 1, 31, tzinfo=UTC)),
        ("2027-01-31T12:30+01:00", datetime(2027, 1, 31, 11, 30, tzinfo=UTC)),
    ],
)
def test_expiry_forms(text: str, expected: datetime) -> None:
    assert parse_expiry(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2020-01-01", "0d", "30 days"])
def test_bad_or_past_expiry_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_expiry(text, NOW)


@pytest.mark.parametrize("pattern", ["", "acme/*", "a b", "[ab]"])
def test_bad_project_patterns_are_refused(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(ValidationError, match="project pattern"):
        TokenStore(tmp_path / "tokens.json").create("x", projects=(pattern,))


@pytest.mark.parametrize(
    ("filename", "project"),
    [
        ("Acme_Tools-1.0-py3-none-any.whl", "acme-tools"),
        ("acme_tools-1.0.tar.gz", "acme-tools"),
        ("py3-acme-1.0-r0.apk", "py3-acme"),
        ("nonsense.whl", None),
    ],
)
def test_the_project_of_a_file_name(filename: str, project: str | None) -> None:
    assert project_of_filename(filename) == project


def scoped_token(server: RunningServer, *args: str) -> str:
    result = repo_cli("token", "create", "acme-ci", *args, data=server.data)
    assert "projects acme, acme-*" in result.stderr
    return result.stdout.splitlines()[-1]


def send(
    server: RunningServer,
    method: str,
    path: str,
    token: str,
    body: bytes = b"",
    content_type: str = "application/json",
) -> tuple[int, str]:
    url = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    credentials = base64.b64encode(f"__token__:{token}".encode()).decode()
    connection.request(
        method,
        path,
        body=body,
        headers={"Authorization": f"Basic {credentials}", "Content-Type": content_type},
    )
    response = connection.getresponse()
    result = response.status, response.read().decode()
    connection.close()
    return result


def test_out_of_scope_requests_are_403_and_change_nothing(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    # Another maintainer's project, published with the all-projects token.
    other = make_wheel(tmp_path, "other-project", "1.0")
    assert repo_server.upload(other)[0] == 201
    token = scoped_token(repo_server, "--project", "acme", "--project", "acme-*", "--no-force")
    ours = make_wheel(tmp_path, "acme-tools", "1.0")
    assert repo_server.upload(ours, token=token)[0] == 201
    assert send(repo_server, "POST", "/api/v1/projects/acme-tools/1.0/yank", token)[0] == 200

    scope = "its scope is project acme, acme-*"
    # PUT: refused from the headers, before a byte of the body (none is sent).
    host, port = urllib.parse.urlsplit(repo_server.url).hostname, repo_server.url.split(":")[-1]
    with socket.create_connection((host or "", int(port.rstrip("/"))), timeout=30) as connection:
        connection.sendall(
            f"PUT /api/v1/upload/other_project-2.0-py3-none-any.whl HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 100000000\r\n\r\n".encode()
        )
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 403 ")
    assert scope in reply.decode()
    # Yank, unyank, delete of the other project: 403 naming the scope.
    for method, path in (
        ("POST", "/api/v1/projects/other-project/1.0/yank"),
        ("DELETE", "/api/v1/projects/Other_Project/1.0/yank"),
    ):
        status, body = send(repo_server, method, path, token)
        assert (status, scope in body) == (403, True), body
    # The legacy form: refused when the file part begins, nothing of it stored.
    form, content_type = legacy_form(make_sdist(tmp_path, "other-project", "2.0"))
    status, body = send(repo_server, "POST", "/legacy/", token, form, content_type)
    assert (status, scope in body) == (403, True), body
    assert list((repo_server.data / "state" / "tmp").iterdir()) == []
    files = sorted(path.name for path in (repo_server.data / "tree" / "files").rglob("*.whl"))
    assert files == ["acme_tools-1.0-py3-none-any.whl", "other_project-1.0-py3-none-any.whl"]
    page = json.loads(
        repo_server.get("simple/other-project/", accept="application/vnd.pypi.simple.v1+json")[2]
    )
    assert [entry["yanked"] for entry in page["files"]] == [False]
    # Within its scope, the legacy form publishes.
    form, content_type = legacy_form(make_sdist(tmp_path, "acme", "1.0"))
    assert send(repo_server, "POST", "/legacy/", token, form, content_type)[0] == 200


def test_delete_in_scope_needs_force_and_the_project(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    token = scoped_token(repo_server, "--project", "acme", "--project", "ACME-*")
    for name in ("acme-tools", "other-project"):
        assert repo_server.upload(make_wheel(tmp_path, name, "1.0"))[0] == 201
    status, body = send(repo_server, "DELETE", "/api/v1/projects/other-project/1.0", token)
    assert (status, "its scope is project acme, acme-*" in body) == (403, True)
    assert send(repo_server, "DELETE", "/api/v1/projects/acme-tools/1.0", token)[0] == 200


def test_token_list_shows_projects_expiry_and_last_use(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    token = scoped_token(
        repo_server, "--project", "acme", "--project", "acme-*", "--expires", "30d"
    )
    line = next(
        line
        for line in repo_cli("token", "list", data=repo_server.data).stdout.splitlines()
        if line.startswith("acme-ci")
    )
    assert "acme,acme-*" in line
    assert line.split()[-2:] == ["never", "active"]  # not used yet
    assert repo_server.upload(make_wheel(tmp_path, "acme", "1.0"), token=token)[0] == 201
    line = next(
        line
        for line in repo_cli("token", "list", data=repo_server.data).stdout.splitlines()
        if line.startswith("acme-ci")
    )
    assert line.split()[-2].startswith("20")  # the last use, an ISO time
    expires = datetime.fromisoformat(line.split()[-3])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    bad = repo_cli("token", "create", "x", "--expires", "soon", data=repo_server.data, check=False)
    assert bad.returncode == 1
    assert "expiry 'soon' is invalid" in bad.stderr
