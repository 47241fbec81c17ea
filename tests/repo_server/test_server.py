"""The served tree over real HTTP: round trip, PEP 503/691/658, negotiation, caching, ranges."""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ipydeps.formats.outline import outline_sha256
from tests.support.server import RunningServer
from tests.support.wheels import make_wheel, wheel_metadata

JSON = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)


class Anchors(html.parser.HTMLParser):
    """Collect the attributes of every <a> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def anchors(page: bytes) -> list[dict[str, str | None]]:
    parser = Anchors()
    parser.feed(page.decode())
    return parser.anchors


def resolve(server: RunningServer, page: str, href: str) -> str:
    return urllib.parse.urljoin(server.url + page, href).removeprefix(server.url)


def test_wheel_round_trip_html(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "Round_Trip", "2.1", requires_python=">=3.9")
    assert repo_server.upload(wheel)[0] == 201
    status, headers, page = repo_server.get("simple/round-trip/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Vary"] == "Accept"
    (link,) = anchors(page)
    href = str(link["href"])
    url, _, fragment = href.partition("#")
    data = wheel.read_bytes()
    assert fragment == "sha256=" + hashlib.sha256(data).hexdigest()
    assert link["data-requires-python"] == ">=3.9"
    metadata = wheel_metadata(wheel)
    expected = "sha256=" + hashlib.sha256(metadata).hexdigest()
    assert link["data-core-metadata"] == link["data-dist-info-metadata"] == expected
    path = resolve(repo_server, "simple/round-trip/", url)
    assert path == f"files/round-trip/{wheel.name}"
    assert repo_server.get(path)[2] == data
    assert repo_server.get(path + ".metadata")[2] == metadata
    _, _, root = repo_server.get("simple/")
    assert [a["href"] for a in anchors(root)] == ["round-trip/"]


def test_wheel_round_trip_json(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", requires_python=">=3.8")
    make_wheel(tmp_path, "demo", "1.1")
    for path in sorted(tmp_path.glob("*.whl")):
        assert repo_server.upload(path)[0] == 201
    status, headers, body = repo_server.get("simple/demo/", accept=PIP_ACCEPT)
    assert status == 200
    assert headers["Content-Type"] == JSON
    page = json.loads(body)
    assert page["meta"] == {"api-version": "1.1"}
    assert page["name"] == "demo"
    assert page["versions"] == ["1.0", "1.1"]
    first = page["files"][0]
    data = wheel.read_bytes()
    assert first["filename"] == wheel.name
    assert first["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert first["size"] == len(data)
    assert first["requires-python"] == ">=3.8"
    metadata_hash = hashlib.sha256(wheel_metadata(wheel)).hexdigest()
    assert first["core-metadata"] == {"sha256": metadata_hash}
    assert "requires-python" not in page["files"][1]
    downloaded = repo_server.get(resolve(repo_server, "simple/demo/", first["url"]))[2]
    assert hashlib.sha256(downloaded).hexdigest() == first["hashes"]["sha256"]
    _, _, root = repo_server.get("simple/", accept=JSON)
    assert json.loads(root) == {"meta": {"api-version": "1.1"}, "projects": [{"name": "demo"}]}


def test_negotiation_follows_q_values_and_format_override(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))
    cases = {
        None: "text/html",
        "*/*": "text/html",
        "text/html": "text/html",
        "application/vnd.pypi.simple.v1+html": "application/vnd.pypi.simple.v1+html",
        "application/vnd.pypi.simple.latest+json": JSON,
        "text/html;q=0.2, application/vnd.pypi.simple.v1+json;q=0.9": JSON,
        "text/html, application/vnd.pypi.simple.v1+json;q=0.5": "text/html",
        "image/png": "text/html",
    }
    for accept, expected in cases.items():
        _, headers, _ = repo_server.get("simple/demo/", accept=accept)
        assert headers["Content-Type"].split(";")[0] == expected, accept
    _, headers, body = repo_server.get("simple/demo/?format=json")
    assert headers["Content-Type"] == JSON
    assert json.loads(body)["name"] == "demo"


def test_etag_and_last_modified_give_304(repo_server: RunningServer, tmp_path: Path) -> None:
    repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))
    _, html_headers, _ = repo_server.get("simple/demo/")
    _, json_headers, _ = repo_server.get("simple/demo/", accept=JSON)
    assert html_headers["Etag"] != json_headers["Etag"]
    request = urllib.request.Request(repo_server.url + "simple/demo/")
    request.add_header("If-None-Match", html_headers["Etag"])
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("expected 304")
    except urllib.error.HTTPError as error:
        assert error.code == 304
    # A new upload rewrites the page, so the old ETag no longer matches.
    repo_server.upload(make_wheel(tmp_path, "demo", "1.1"))
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert b"demo-1.1-py3-none-any.whl" in response.read()


def test_range_request_gives_206(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    repo_server.upload(wheel)
    request = urllib.request.Request(repo_server.url + f"files/demo/{wheel.name}")
    request.add_header("Range", "bytes=10-19")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 10-19/{wheel.stat().st_size}"
        assert response.read() == wheel.read_bytes()[10:20]


def test_files_bigger_than_a_read_chunk_are_served_whole_and_by_range(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = make_wheel(
        tmp_path,
        "bigfile",
        "1.0",
        files={"bigfile/__init__.py": "", "bigfile/data.bin": os.urandom(3 * 1024 * 1024 + 17)},
    )
    repo_server.upload(wheel)
    copy = repo_server.data / "tree" / "files" / "bigfile" / f"{wheel.name}.stored"
    expected = copy.read_bytes()
    assert len(expected) > 3 * 1024 * 1024
    url = repo_server.url + f"files/bigfile/{wheel.name}.stored"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == expected
    start, end = 1024 * 1024 - 5, 2 * 1024 * 1024 + 5  # across two read chunks
    request = urllib.request.Request(url)
    request.add_header("Range", f"bytes={start}-{end}")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 206
        assert response.read() == expected[start : end + 1]


def test_head_has_length_and_no_body(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    repo_server.upload(wheel)
    request = urllib.request.Request(repo_server.url + f"files/demo/{wheel.name}", method="HEAD")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert int(response.headers["Content-Length"]) == wheel.stat().st_size
        assert response.read() == b""


def test_missing_things_are_json_404(repo_server: RunningServer) -> None:
    for path in (
        "simple/nothing/",
        "files/nothing/x.whl",
        "alpine/v3.22/sci/x86_64/x.apk",
        "no/such/route",
        "keys/missing.rsa.pub",
    ):
        status, headers, body = repo_server.get(path)
        assert status == 404, path
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["error"].startswith("not found"), path


def test_state_and_private_keys_are_not_served(repo_server: RunningServer) -> None:
    for path in (
        "state/tokens.json",
        "keys/../../state/tokens.json",
        "files/../state/tokens.json",
        "files/%2E%2E/%2E%2E/state/tokens.json",
        "keys/test.rsa",
    ):
        status, _, body = repo_server.get(path)
        assert status in (403, 404), path
        assert b"sha256" not in body


def test_simple_without_slash_redirects(repo_server: RunningServer, tmp_path: Path) -> None:
    repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))
    status, _, body = repo_server.get("simple/demo")  # urllib follows the redirect
    assert status == 200
    assert b"demo-1.0-py3-none-any.whl" in body


def test_public_key_is_served(repo_server: RunningServer) -> None:
    (key,) = (repo_server.data / "tree" / "keys").glob("test-*.rsa.pub")
    status, _, body = repo_server.get(f"keys/{key.name}")
    assert status == 200
    assert body.startswith(b"-----BEGIN PUBLIC KEY-----")


def test_health_and_packages_listing(repo_server: RunningServer, tmp_path: Path) -> None:
    assert json.loads(repo_server.get("api/v1/health")[2])["status"] == "ok"
    wheel = make_wheel(tmp_path, "demo", "1.0")
    repo_server.upload(wheel)
    listing = json.loads(repo_server.get("api/v1/packages")[2])
    stored = repo_server.data / "tree" / "files" / "demo" / f"{wheel.name}.stored"
    assert listing["wheels"]["demo"] == [
        {
            "filename": wheel.name,
            "version": "1.0",
            "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            "size": wheel.stat().st_size,
            "url": f"files/demo/{wheel.name}",
            "stored_sha256": hashlib.sha256(stored.read_bytes()).hexdigest(),
            "stored_size": stored.stat().st_size,
            "stored_outline_sha256": outline_sha256(stored),
            "yanked": None,
        }
    ]
    assert listing["apks"] == {}


def test_landing_page_has_client_configuration(repo_server: RunningServer, tmp_path: Path) -> None:
    repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))
    status, headers, body = repo_server.get("")
    page = body.decode()
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    (key,) = (repo_server.data / "tree" / "keys").glob("*.rsa.pub")
    assert f"wget -O /etc/apk/keys/{key.name} {repo_server.url}keys/{key.name}" in page
    assert f"echo '{repo_server.url}alpine/v3.22/sci' &gt;&gt; /etc/apk/repositories" in page
    assert f"pip install --index-url {repo_server.url}simple/ PACKAGE" in page
    assert f'repository_url = "{repo_server.url}"' in page
    assert f"export IPYDEPS_REPOSITORY_URL={repo_server.url}" in page
    assert '<a href="simple/demo/">demo</a> 1.0' in page


def test_many_errors_do_not_stall_a_server_whose_output_nobody_reads(
    repo_server: RunningServer,
) -> None:
    # The fixture stops reading the server's stdout/stderr pipe after the ready line. If
    # each 404 were logged, ~64 KiB of log lines would fill the pipe and block the server.
    missing = "files/" + "x" * 120 + "/missing.whl"
    for _ in range(700):
        assert repo_server.get(missing)[0] == 404
    assert repo_server.get("api/v1/health")[0] == 200


def test_head_on_simple_pages_negotiates_too(repo_server: RunningServer, tmp_path: Path) -> None:
    repo_server.upload(make_wheel(tmp_path, "demo", "1.0"))
    request = urllib.request.Request(repo_server.url + "simple/demo/", method="HEAD")
    request.add_header("Accept", JSON)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == JSON
        size = (repo_server.data / "tree/simple/demo/index.json").stat().st_size
        assert int(response.headers["Content-Length"]) == size
        assert response.read() == b""
