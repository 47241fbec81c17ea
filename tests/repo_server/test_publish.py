"""Publishing over the real upload API: auth, validation, conflicts, concurrency, aborts."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.pipenv import clean_pip_env
from tests.support.server import READY_PREFIX, RunningServer, repo_cli, start_server
from tests.support.wheels import make_wheel


def visible_files(server: RunningServer) -> list[str]:
    """Every file under the public tree (relative), except the key and index pages."""
    tree = server.data / "tree"
    return sorted(
        str(path.relative_to(tree))
        for path in tree.rglob("*")
        if path.is_file() and path.parts[len(tree.parts)] in ("files", "alpine")
    )


def temp_files(server: RunningServer) -> list[Path]:
    return sorted((server.data / "state" / "tmp").iterdir())


def test_publish_returns_what_was_stored(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "Demo.Pkg", "1.0")
    status, body = repo_server.upload(wheel)
    assert status == 201
    assert body["status"] == "created"
    assert body["name"] == "demo-pkg"
    assert body["path"] == "files/demo-pkg/demo_pkg-1.0-py3-none-any.whl"
    assert visible_files(repo_server) == [
        "files/demo-pkg/demo_pkg-1.0-py3-none-any.whl",
        "files/demo-pkg/demo_pkg-1.0-py3-none-any.whl.metadata",
        "files/demo-pkg/demo_pkg-1.0-py3-none-any.whl.stored",
    ]


def test_missing_token_is_401_with_bearer_challenge(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    status, body = repo_server.upload(wheel, token="")
    assert status == 401
    assert body["error"] == "missing bearer token"
    code, headers, _ = _raw_put(repo_server, wheel.name, wheel.read_bytes(), token=None)
    assert code == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert visible_files(repo_server) == []


def test_wrong_token_is_401(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    status, body = repo_server.upload(wheel, token="ipyr_not-a-real-token")
    assert status == 401
    assert body["error"] == "invalid token"
    assert visible_files(repo_server) == []


def test_revoked_token_is_403(repo_server: RunningServer, tmp_path: Path) -> None:
    token = repo_cli("token", "create", "alice", data=repo_server.data).stdout.splitlines()[-1]
    repo_cli("token", "revoke", "alice", data=repo_server.data)
    status, body = repo_server.upload(make_wheel(tmp_path, "demo", "1.0"), token=token)
    assert status == 403
    assert "token 'alice' was revoked" in str(body["error"])
    assert visible_files(repo_server) == []


def test_token_without_force_right_gets_403_for_force(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    result = repo_cli("token", "create", "ci", "--no-force", data=repo_server.data)
    token = result.stdout.splitlines()[-1]
    wheel = make_wheel(tmp_path, "demo", "1.0")
    assert repo_server.upload(wheel, token=token)[0] == 201
    status, body = repo_server.upload(wheel, token=token, query="force=1")
    assert status == 403
    assert body["error"] == "token 'ci' may not force"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("..%2F..%2Fevil-1.0-py3-none-any.whl", "the file name contains '..'"),
        ("..%2Fstate%2Ftokens.json", "the file name contains a path separator"),
        ("evil%00-1.0-py3-none-any.whl", "the file name contains a NUL character"),
        (".hidden-1.0-py3-none-any.whl", "must start with a letter or digit"),
        ("notes.txt", "only wheels (.whl), sdists (.tar.gz, .zip) and Alpine packages (.apk)"),
    ],
)
def test_unsafe_names_are_refused(repo_server: RunningServer, name: str, problem: str) -> None:
    code, _, body = _raw_put(repo_server, name, b"PK\x03\x04 not really", token=repo_server.token)
    assert code == 400
    assert any(problem in item for item in json.loads(body)["problems"])
    assert visible_files(repo_server) == []
    assert not (repo_server.data / "state" / "tokens.json").read_text().startswith("PK")


def test_not_a_zip_is_refused(repo_server: RunningServer, tmp_path: Path) -> None:
    fake = tmp_path / "demo-1.0-py3-none-any.whl"
    fake.write_bytes(b"this is not a zip archive")
    status, body = repo_server.upload(fake)
    assert status == 400
    assert (
        body["error"]
        == "wheel 'demo-1.0-py3-none-any.whl' is invalid: the file is not a zip archive"
    )
    assert visible_files(repo_server) == []
    assert temp_files(repo_server) == []


def test_metadata_name_must_match_file_name(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    renamed = wheel.rename(tmp_path / "other-1.0-py3-none-any.whl")
    status, body = repo_server.upload(renamed)
    assert status == 400
    assert "METADATA Name 'demo' does not match the file name's 'other'" in body["problems"]
    assert visible_files(repo_server) == []


def test_version_must_match_and_all_problems_are_reported(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    renamed = wheel.rename(tmp_path / "other-2.0-py3-none-any.whl")
    status, body = repo_server.upload(renamed)
    assert status == 400
    assert body["problems"] == [
        "METADATA Name 'demo' does not match the file name's 'other'",
        "METADATA Version '1.0' does not match the file name's '2.0'",
        "the wheel's demo-1.0.dist-info names another project or version than its file name "
        "(other 2.0); installers would record it under that name",
    ]


def test_oversized_upload_is_413_and_leaves_nothing(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--max-upload", "64k")
    try:
        wheel = make_wheel(tmp_path, "big", "1.0", files={"big/data.bin": os.urandom(100_000)})
        assert wheel.stat().st_size > 64 * 1024
        # Declared size over the limit: refused before any body is read.
        with socket.create_connection(_address(server)) as connection:
            connection.sendall(
                f"PUT /api/v1/upload/{wheel.name} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {server.token}\r\n"
                f"Content-Length: {wheel.stat().st_size}\r\n\r\n".encode()
            )
            response = _read_response(connection)
        assert response.startswith(b"HTTP/1.1 413 ")
        assert b"over the limit of 65536 bytes" in response
        # No declared size (chunked): the server stops reading at the limit.
        with socket.create_connection(_address(server)) as connection:
            connection.sendall(
                f"PUT /api/v1/upload/{wheel.name} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {server.token}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n".encode()
            )
            data = wheel.read_bytes()
            # The server may close before the whole body is sent.
            with contextlib.suppress(OSError):
                connection.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
            response = _read_response(connection)
        assert b" 201 " not in response
        _wait_until_no_temp_files(server)
        assert visible_files(server) == []
    finally:
        server.stop()


def test_conflict_then_force_replaces(repo_server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_wheel(tmp_path / "a", "demo", "1.0")
    second = make_wheel(tmp_path / "b", "demo", "1.0", files={"demo/__init__.py": "x = 2\n"})
    assert repo_server.upload(first)[0] == 201
    status, body = repo_server.upload(second)
    assert status == 409
    assert body["error"] == "a different file named demo-1.0-py3-none-any.whl is already published"
    assert (repo_server.data / "tree/files/demo" / first.name).read_bytes() == first.read_bytes()
    status, body = repo_server.upload(second, query="force=1")
    assert (status, body["status"]) == (201, "replaced")
    code, _, served = repo_server.get(f"files/demo/{first.name}")
    assert (code, served) == (200, second.read_bytes())


def test_same_file_again_is_unchanged(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    assert repo_server.upload(wheel)[0] == 201
    status, body = repo_server.upload(wheel)
    assert (status, body["status"]) == (200, "unchanged")
    assert len(visible_files(repo_server)) == 3


def test_concurrent_publishes_are_all_indexed(repo_server: RunningServer, tmp_path: Path) -> None:
    wheels = [make_wheel(tmp_path, "many", f"1.{n}") for n in range(12)]
    wheels += [make_wheel(tmp_path, f"proj{n}", "1.0") for n in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(repo_server.upload, wheels))
    assert [status for status, _ in results] == [201] * len(wheels)
    _, _, page = repo_server.get("simple/many/", accept="application/vnd.pypi.simple.v1+json")
    listed = {item["filename"] for item in json.loads(page)["files"]}
    assert listed == {wheel.name for wheel in wheels[:12]}
    _, _, root = repo_server.get("simple/", accept="application/vnd.pypi.simple.v1+json")
    projects = {item["name"] for item in json.loads(root)["projects"]}
    assert projects == {"many"} | {f"proj{n}" for n in range(12)}


def test_killed_upload_leaves_nothing(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/blob.bin": bytes(200_000)})
    data = wheel.read_bytes()
    with socket.create_connection(_address(repo_server)) as connection:
        connection.sendall(
            f"PUT /api/v1/upload/{wheel.name} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {repo_server.token}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
        )
        connection.sendall(data[: len(data) // 2])
    # The server must notice the close; a later request on a new connection is served
    # after the loop has handled it, and the health check proves the server still works.
    assert repo_server.get("api/v1/health")[0] == 200
    _wait_until_no_temp_files(repo_server)
    assert visible_files(repo_server) == []
    assert repo_server.get("simple/demo/")[0] == 404


def _wait_until_no_temp_files(server: RunningServer) -> None:
    # The close is handled by the server's event loop; a blocking request that goes
    # through the same loop after it is the synchronisation point (no sleeping).
    for _ in range(50):
        if not temp_files(server):
            return
        server.get("api/v1/health")
    raise AssertionError(f"temp files left behind: {temp_files(server)}")


def _address(server: RunningServer) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(server.url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80


def _read_response(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
        if b"\r\n\r\n" in b"".join(chunks):
            head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if len(body) >= length:
                break
    return b"".join(chunks)


def _raw_put(
    server: RunningServer, raw_name: str, body: bytes, *, token: str | None
) -> tuple[int, dict[str, str], bytes]:
    """PUT with the path exactly as given (urllib would not send %2F or %00 unchanged)."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    with socket.create_connection(_address(server)) as connection:
        connection.sendall(
            f"PUT /api/v1/upload/{raw_name} HTTP/1.1\r\nHost: x\r\n{auth}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        response = _read_response(connection)
    head, _, payload = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        key.strip().lower(): value.strip()
        for key, _, value in (line.partition(":") for line in lines[1:])
    }
    return int(lines[0].split()[1]), headers, payload


def test_two_replicas_on_one_data_directory_lose_nothing(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    # A second server process on the same directory, as replicas on a shared FS would be.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ipydeps_repo",
            "serve",
            "--data",
            str(repo_server.data),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_pip_env(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith(READY_PREFIX), line
    replica = RunningServer(
        url=line[len(READY_PREFIX) :].strip(),
        data=repo_server.data,
        token=repo_server.token,
        process=process,
    )
    try:
        wheels = [make_wheel(tmp_path, "shared", f"2.{n}") for n in range(16)]
        servers = [repo_server, replica] * 8
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(
                pool.map(lambda pair: pair[0].upload(pair[1]), zip(servers, wheels, strict=True))
            )
        assert [status for status, _ in results] == [201] * 16
        for server in (repo_server, replica):
            _, _, page = server.get("simple/shared/", accept="application/vnd.pypi.simple.v1+json")
            assert {item["filename"] for item in json.loads(page)["files"]} == {
                wheel.name for wheel in wheels
            }
    finally:
        replica.stop()


def test_bad_token_is_refused_before_the_body_is_sent(repo_server: RunningServer) -> None:
    # curl sends "Expect: 100-continue" for large files: the refusal must come first,
    # so a client never streams gigabytes to a server that will not take them.
    with socket.create_connection(_address(repo_server)) as connection:
        connection.sendall(
            b"PUT /api/v1/upload/demo-1.0-py3-none-any.whl HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer wrong\r\nExpect: 100-continue\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        response = _read_response(connection)
    assert response.startswith(b"HTTP/1.1 401 ")
    assert b"100 Continue" not in response
    assert b'"invalid token"' in response
    assert temp_files(repo_server) == []
