"""Malformed and hostile requests get a clear 4xx in JSON, never a 500 or a traceback."""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, repo_cli, start_server
from tests.support.wheels import make_wheel


def address(server: RunningServer) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(server.url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80


def exchange(server: RunningServer, request: bytes) -> tuple[int, dict[str, object]]:
    """Send raw bytes, read until the server closes; return (status, JSON body)."""
    with socket.create_connection(address(server), timeout=60) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def server_log(server: RunningServer) -> str:
    """Stop the server and return everything it wrote."""
    server.process.terminate()
    assert server.process.stdout is not None
    output = server.process.stdout.read()
    server.process.wait()
    return output


def temp_files(server: RunningServer) -> list[Path]:
    return sorted((server.data / "state" / "tmp").iterdir())


@pytest.fixture
def logged_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path / "data", "--body-timeout", "1")
    try:
        yield server
    finally:
        server.stop()


def test_nul_in_a_path_is_400_without_a_traceback(logged_server: RunningServer) -> None:
    for path in ("/files/demo/a%00b.whl", "/simple/a%00b/", "/keys/%00", "/alpine/v3.22/%00"):
        status, body = exchange(
            logged_server, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert (status, body["error"]) == (400, "the URL path contains a NUL character"), path
    assert logged_server.get("api/v1/health")[0] == 200
    assert "Traceback" not in server_log(logged_server)


def test_forbidden_path_message_is_formatted(logged_server: RunningServer) -> None:
    status, body = exchange(
        logged_server,
        b"GET /keys/..%2F..%2Fstate%2Ftokens.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert status == 403
    assert body["error"] == "keys/../../state/tokens.json is not in root static directory"


def test_non_ascii_content_length_is_400(logged_server: RunningServer) -> None:
    request = (
        "PUT /api/v1/upload/demo-1.0-py3-none-any.whl HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {logged_server.token}\r\nContent-Length: \u00b2\r\n\r\nab"
    ).encode("latin-1")
    status, body = exchange(logged_server, request)
    assert status == 400
    assert body["problems"] == ["Content-Length '\u00b2' is not a byte count"]
    assert temp_files(logged_server) == []
    assert "Traceback" not in server_log(logged_server)


def test_stalled_upload_is_cut_off_and_leaves_nothing(
    logged_server: RunningServer, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/blob.bin": os.urandom(100_000)})
    data = wheel.read_bytes()
    request = (
        f"PUT /api/v1/upload/{wheel.name} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {logged_server.token}\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data[:1000]
    # The client sends a little and then nothing: the server answers and closes.
    status, body = exchange(logged_server, request)
    assert status == 408
    assert str(body["error"]).startswith("no part of the body came for 1 s")
    assert temp_files(logged_server) == []
    assert logged_server.get("simple/demo/")[0] == 404
    assert logged_server.upload(wheel)[0] == 201


def test_publish_command_reports_a_refusal_of_a_large_file(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    # Sent without waiting, 200 MB meet a closed connection ("Connection reset").
    big = make_wheel(tmp_path, "big", "1.0")
    with big.open("ab") as stream:
        stream.truncate(200 * 1024 * 1024)
    result = repo_cli(
        "publish",
        str(big),
        "--url",
        repo_server.url,
        "--token",
        "wrong",
        data=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert "error: big-1.0-py3-none-any.whl: invalid token" in result.stderr
    token = repo_cli(
        "token", "create", "ci", "--no-force", data=repo_server.data
    ).stdout.splitlines()[-1]
    result = repo_cli(
        "publish",
        str(big),
        "--force",
        "--url",
        repo_server.url,
        "--token",
        token,
        data=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert "error: big-1.0-py3-none-any.whl: token 'ci' may not force" in result.stderr
    assert temp_files(repo_server) == []


class _NestedReply(http.server.BaseHTTPRequestHandler):
    """A hostile repository: every upload is answered with JSON nested 100000 deep."""

    def do_PUT(self) -> None:  # noqa: N802 (the stdlib's naming)
        body = b"[" * 100_000
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


def test_publish_command_survives_deeply_nested_json(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NestedReply)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wheel = make_wheel(tmp_path, "demo", "1.0")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "ipydeps_repo",
                "publish",
                str(wheel),
                "--url",
                f"http://127.0.0.1:{server.server_address[1]}/",
                "--token",
                "t",
                "--data",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env=clean_pip_env(),
            timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "error: demo-1.0-py3-none-any.whl is invalid: [[[[" in result.stderr


def test_stalled_legacy_upload_is_cut_off_and_leaves_nothing(
    logged_server: RunningServer, tmp_path: Path
) -> None:
    """twine's form upload (POST /legacy/) has the same idle body timeout as the PUT API."""
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/blob.bin": os.urandom(100_000)})
    data = wheel.read_bytes()
    boundary = "b0undary"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{wheel.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode() + data
    credentials = base64.b64encode(f"__token__:{logged_server.token}".encode()).decode()
    request = (
        f"POST /legacy/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {credentials}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(form) + 100}\r\n\r\n"
    ).encode() + form[: len(form) // 2]
    with socket.create_connection(address(logged_server), timeout=60) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert int(head.split()[1]) == 408
    assert b"no part of the body came for 1 s" in body
    assert temp_files(logged_server) == []
    assert logged_server.get("simple/demo/")[0] == 404
    assert logged_server.upload(wheel)[0] == 201
