"""The Python server's read path: pages from memory, caching headers, workers sharing a port.

Pages are served from memory keyed by the file's stat; these tests hold the server to the
file: the bytes on disk, validators that change when a publish rewrites the page, 304s for
a cache that asks again, and the same Cache-Control as the shipped nginx config. ``serve
--processes N`` runs N workers on one port that stop together.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import urllib.parse
from pathlib import Path

import pytest
from ipydeps_repo.apk.keys import load_key

from tests.repo_server.test_publish_apk import make_apk
from tests.support.server import RunningServer, repo_cli, start_server
from tests.support.wheels import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
REVALIDATE = "max-age=0, must-revalidate"
IMMUTABLE = "public, max-age=31536000, immutable"


def request(
    server: RunningServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection, not following redirects."""
    url = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def page_file(server: RunningServer, page: str, kind: str) -> bytes:
    return (server.data / "tree" / page.strip("/") / f"index.{kind}").read_bytes()


# Without a query a page read is answered by the page router; with one, by the handler.
@pytest.mark.parametrize("query", ["", "?format="], ids=["router", "handler"])
def test_pages_are_the_files_and_change_with_a_publish(
    repo_server: RunningServer, tmp_path: Path, query: str
) -> None:
    assert repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))[0] == 201
    cases = [
        (page, kind, accept)
        for page in ("/simple/demo/", "/simple/")
        for kind, accept in (("json", JSON), ("html", "text/html"))
    ]
    for number, (page, kind, accept) in enumerate(cases, start=2):
        status, headers, body = request(repo_server, page + query, {"Accept": accept})
        assert status == 200, (page, kind)
        assert body == page_file(repo_server, page, kind), (page, kind)
        assert headers["Cache-Control"] == REVALIDATE
        assert headers["Vary"] == "Accept"
        assert headers["Content-Length"] == str(len(body))
        # A cache asking again gets a 304 without the body, by ETag or by date.
        for condition in (
            {"If-None-Match": headers["Etag"]},
            {"If-Modified-Since": headers["Last-Modified"]},
        ):
            again = request(repo_server, page + query, {"Accept": accept, **condition})
            assert again[0] == 304 and again[2] == b"", (page, kind, condition)
        # A publish rewrites the pages: the old ETag no longer matches, the new bytes come.
        assert repo_server.upload(make_wheel(tmp_path, "demo", f"{number}.0"))[0] == 201
        assert repo_server.upload(make_wheel(tmp_path, f"other-{number}", "1.0"))[0] == 201
        status, new_headers, new_body = request(
            repo_server, page + query, {"Accept": accept, "If-None-Match": headers["Etag"]}
        )
        assert status == 200 and new_headers["Etag"] != headers["Etag"], (page, kind)
        assert new_body == page_file(repo_server, page, kind), (page, kind)
        shown = f"demo-{number}.0-py3-none-any.whl" if page != "/simple/" else f"other-{number}"
        assert shown in new_body.decode(), (page, kind)


def test_a_page_file_replaced_behind_the_servers_back_is_served_new(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    # Same size and the same mtime to the nanosecond: only the inode tells the new file.
    assert repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))[0] == 201
    page = repo_server.data / "tree" / "simple" / "demo" / "index.json"
    first = request(repo_server, "/simple/demo/", {"Accept": JSON})[2]
    assert first == page.read_bytes()
    replacement = json.dumps({"meta": {"api-version": "1.0"}, "name": "demo", "files": []})
    replacement = replacement.ljust(len(first) - 1) + "\n"
    before = page.stat()
    staged = page.with_name(".replacement")
    staged.write_text(replacement)
    os.utime(staged, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(staged, page)
    assert page.stat().st_size == before.st_size
    assert request(repo_server, "/simple/demo/", {"Accept": JSON})[2] == replacement.encode()


def test_head_sends_the_length_and_no_body(repo_server: RunningServer, tmp_path: Path) -> None:
    assert repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))[0] == 201
    paths = ["/simple/demo/", "/simple/demo/index.json", "/simple/index.html"]
    for path in [*paths, "/simple/demo/?format=json"]:
        status, headers, body = request(repo_server, path, method="HEAD")
        full = request(repo_server, path)[2]
        assert status == 200 and body == b"", path
        assert headers["Content-Length"] == str(len(full)), path


def test_the_page_files_by_name_and_other_paths(repo_server: RunningServer, tmp_path: Path) -> None:
    assert repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))[0] == 201
    status, headers, body = request(repo_server, "/simple/demo/index.json")
    assert status == 200 and headers["Content-Type"] == JSON
    assert body == page_file(repo_server, "/simple/demo/", "json")
    assert "Vary" not in headers  # one representation at this URL
    for missing in ("/simple/demo/other", "/simple/nothing-here/", "/simple/demo/.hidden"):
        status, headers, body = request(repo_server, missing)
        assert status == 404, missing
        assert headers["Cache-Control"] == "no-store", missing
        assert json.loads(body)["status"] == 404


def test_files_are_immutable_and_indexes_are_asked_again(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    assert repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))[0] == 201
    key = load_key(next((repo_server.data / "keys").glob("*.rsa")))
    apk = make_apk(tmp_path, "py3-demo", "1.0-r0", key)
    assert repo_server.upload(apk, query="branch=v3.22&repo=sci")[0] == 201
    wheel = "/files/demo/demo-1.0-py3-none-any.whl"
    public_key = next((repo_server.data / "tree" / "keys").glob("*.pub")).name
    expected = {
        wheel: IMMUTABLE,
        wheel + ".metadata": IMMUTABLE,
        "/alpine/v3.22/sci/x86_64/py3-demo-1.0-r0.apk": IMMUTABLE,
        "/alpine/v3.22/sci/x86_64/APKINDEX.tar.gz": REVALIDATE,
        f"/keys/{public_key}": REVALIDATE,
        "/simple/demo/index.html": REVALIDATE,
    }
    for path, cache_control in expected.items():
        status, headers, _ = request(repo_server, path)
        assert status == 200, path
        assert headers["Cache-Control"] == cache_control, path
        assert "Expires" not in headers, path
        again = request(repo_server, path, {"If-None-Match": headers["Etag"]})
        assert again[0] == 304 and again[2] == b"", path
    # Tornado's ?v= would have made any file cacheable for ten years.
    status, headers, _ = request(repo_server, "/alpine/v3.22/sci/x86_64/APKINDEX.tar.gz?v=1")
    assert headers["Cache-Control"] == REVALIDATE and "Expires" not in headers
    assert request(repo_server, "/files/demo/missing.whl")[1]["Cache-Control"] == "no-store"


def test_the_access_log_has_the_page_reads(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--access-log")
    try:
        assert server.upload(make_wheel(tmp_path, "demo", "1.0"))[0] == 201
        assert request(server, "/simple/demo/", {"Accept": JSON})[0] == 200
        assert request(server, "/simple/demo/?format=json")[0] == 200
        assert request(server, "/simple/nothing/")[0] == 404
        server.process.send_signal(signal.SIGTERM)
        assert server.process.stdout is not None
        log = server.process.stdout.read()
    finally:
        server.stop()
    assert " 200 GET /simple/demo/ " in log
    assert " 200 GET /simple/demo/?format=json " in log
    assert " 404 GET /simple/nothing/ " in log


# -- serve --processes N -------------------------------------------------------------------------


def workers_of(server: RunningServer) -> list[int]:
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_share_the_port_see_each_publish_and_stop_together(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--processes", "3")
    try:
        workers = workers_of(server)
        assert len(workers) == 3
        assert server.upload(make_wheel(tmp_path, "demo", "1.0"))[0] == 201
        # New connections land on any worker; every one must have the page as it is now.
        for version in ("1.1", "1.2"):
            pages = {request(server, "/simple/demo/", {"Accept": JSON})[2] for _ in range(24)}
            assert len(pages) == 1
            assert server.upload(make_wheel(tmp_path, "demo", version))[0] == 201
            newer = {request(server, "/simple/demo/", {"Accept": JSON})[2] for _ in range(24)}
            assert newer == {page_file(server, "/simple/demo/", "json")}
            assert f"demo-{version}-py3-none-any.whl" in newer.pop().decode()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        assert not any(is_running(worker) for worker in workers)
    finally:
        server.stop()


def test_a_worker_that_dies_stops_the_server(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--processes", "2")
    try:
        first, second = workers_of(server)
        os.kill(first, signal.SIGKILL)
        assert server.process.wait(timeout=30) == 1
        assert not is_running(second)
        assert server.process.stdout is not None
        assert f"worker {first} ended" in server.process.stdout.read()
    finally:
        server.stop()


def test_a_negative_number_of_processes_is_refused(tmp_path: Path) -> None:
    result = repo_cli("serve", "--port", "0", "--processes", "-1", data=tmp_path, check=False)
    assert result.returncode != 0
    assert "--processes -1 is negative" in result.stderr
    assert "Traceback" not in result.stderr
