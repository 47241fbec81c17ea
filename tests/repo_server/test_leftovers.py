"""What kill -9 leaves behind is removed at the next start or index, and nothing in use."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from tests.support.pipenv import clean_pip_env
from tests.support.server import READY_PREFIX, RunningServer, repo_cli, start_server
from tests.support.wheels import make_wheel

HOUR_AGO = time.time() - 3600


def parts(data: Path) -> list[Path]:
    return sorted((data / "state" / "tmp").glob("upload-*.part"))


def begin_upload(server: RunningServer, wheel: Path) -> socket.socket:
    """Send the headers and half the body, and return once the server holds a temp file."""
    parsed = urllib.parse.urlsplit(server.url)
    connection = socket.create_connection((parsed.hostname, parsed.port), timeout=60)
    data = wheel.read_bytes()
    connection.sendall(
        f"PUT /api/v1/upload/{wheel.name} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data[: len(data) // 2]
    )
    for _ in range(100):
        # Each request goes through the server's loop after the upload's headers did.
        if parts(server.data):
            return connection
        server.get("api/v1/health")
    raise AssertionError("the server made no temp file for the upload")


def serve_again(old: RunningServer) -> tuple[RunningServer, str]:
    """Start a server on ``old``'s data directory (keys and token kept); return it and its
    output up to the ready line."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ipydeps_repo",
            "serve",
            "--data",
            str(old.data),
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
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(READY_PREFIX):
            url = line[len(READY_PREFIX) :].strip()
            server = RunningServer(url=url, data=old.data, token=old.token, process=process)
            return server, "".join(lines)
    raise AssertionError("the server did not start: " + "".join(lines))


def test_kill_9_leftovers_are_removed_at_the_next_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/blob.bin": os.urandom(300_000)})
    connection = begin_upload(server, wheel)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    connection.close()
    server.stop()
    [orphan] = parts(data)
    # A write_atomic or stored copy cut short by the kill, inside the public tree.
    torn = data / "tree" / "files" / "demo" / ".tmp-k9x2"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(b"half a page")
    for path in (orphan, torn):
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    restarted, startup = serve_again(server)
    try:
        assert not orphan.exists()
        assert not torn.exists()
        assert "removed 2 leftover temp file(s)" in startup
        assert restarted.upload(wheel)[0] == 201
    finally:
        restarted.stop()


def test_index_removes_leftovers_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    repo_cli("keygen", "--name", "t", "--bits", "2048", data=data)
    orphan = data / "state" / "tmp" / "upload-dead.part"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(bytes(2_000_000))
    cached = data / "state" / "cache" / "simple" / ".tmp-cut"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"{")
    for path in (orphan, cached):
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    fresh = data / "state" / "tmp" / "upload-fresh.part"
    fresh.write_bytes(b"maybe a replica's upload between its close and its publish")
    result = repo_cli("index", data=data)
    assert "removed 2 leftover temp file(s), 2.0 MB" in result.stderr
    assert not orphan.exists()
    assert not cached.exists()
    assert fresh.exists()


def test_an_upload_in_progress_on_a_replica_is_left_alone(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", files={"demo/blob.bin": os.urandom(300_000)})
    connection = begin_upload(repo_server, wheel)
    try:
        [part] = parts(repo_server.data)
        # However old its last write, a temp file whose writer lives is not touched.
        os.utime(part, (HOUR_AGO, HOUR_AGO))
        result = repo_cli("index", data=repo_server.data)
        assert "leftover" not in result.stderr
        assert part.exists()
        data = wheel.read_bytes()
        connection.sendall(data[len(data) // 2 :])
        response = connection.recv(65536)
        assert response.startswith(b"HTTP/1.1 201 ")
    finally:
        connection.close()
    assert parts(repo_server.data) == []
