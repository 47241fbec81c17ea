"""nginx with the shipped config in front of the real server: the same answers, faster.

Debian's nginx runs on 127.0.0.1 with ``docker/nginx/ipydeps-repo-http.conf`` and
``ipydeps-repo-locations.conf`` as shipped (``tests/support/nginx.py``), serving the
data directory's ``tree/`` and proxying the rest to ``ipydeps-repo serve``. pip, uv and
ipydeps install through it with the same results as through the Python server; our apk
index reader and verifier read its apk repository; its headers say what caches may keep.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ipydeps_repo.apk.keys import load_key, load_public_keys
from ipydeps_repo.apk.verify import verify_index, verify_repository
from ipydeps_repo.web.negotiation import choose_format
from packaging.utils import canonicalize_name

import ipydeps
from ipydeps.formats.apkindex import parse_apkindex, read_apkindex_archive
from ipydeps.sources import RepositorySource
from tests.ipydeps.test_sources import RecordingFetcher
from tests.repo_server.test_publish_apk import make_apk
from tests.support.nginx import NGINX, SHIPPED, RunningNginx, nginx_available, start_nginx
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, start_server
from tests.support.venvs import make_venv, site_packages, snapshot
from tests.support.wheels import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
APK_REPO = "alpine/v3.22/sci/x86_64"
# What the clients send (pip 24-26, uv 0.4-0.13, ipydeps.index.ACCEPT), browsers and tools.
ACCEPT_HEADERS = [
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01",
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01",
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.1",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "*/*",
    None,
    "text/html",
    "application/vnd.pypi.simple.v1+html",
    "application/vnd.pypi.simple.latest+json",
    "APPLICATION/VND.PYPI.SIMPLE.V1+JSON",
    "application/vnd.pypi.simple.v1+json;q=1.0",
    "application/vnd.pypi.simple.v1+json; q=0.5",
    "application/vnd.pypi.simple.v1+json;q=0",
    "text/html, application/vnd.pypi.simple.v1+json",
    "text/html;q=0.5, application/vnd.pypi.simple.v1+json",
    "application/vnd.pypi.simple.v1+json, text/html",
]


@dataclass
class Front:
    """The Python server and nginx in front of it, with fixtures published."""

    server: RunningServer
    nginx: RunningNginx
    work: Path

    def get(
        self, base: str, path: str, *, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        """One request to ``base`` (a server's URL), not following redirects."""
        url = urllib.parse.urlsplit(base)
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.headers), response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    if not nginx_available():
        pytest.fail("nginx is not installed: apt-get install nginx (.ci/run does)")
    work = tmp_path_factory.mktemp("nginx")
    server = start_server(work / "repo-data")
    upstream = server.url.split("//", 1)[1].rstrip("/")
    nginx = start_nginx(server.data / "tree", upstream=upstream)
    wheels = work / "wheels"
    wheels.mkdir()
    published = [
        make_wheel(
            wheels,
            "ngx-app",
            "1.0",
            requires=["ngx-lib>=2"],
            files={
                "ngx_app/__init__.py": "__version__ = '1.0'\n",
                "ngx_app/data.bin": bytes(range(256)) * 400,
            },
        ),
        make_wheel(wheels, "ngx-lib", "1.0"),
        make_wheel(wheels, "ngx-lib", "2.0"),
        make_wheel(wheels, "ngx-lib", "3.0", requires_python=">=3.99"),
    ]
    try:
        for wheel in published:
            status, body = server.upload(wheel)
            assert status == 201, body
        key = load_key(next((server.data / "keys").glob("*.rsa")))
        for name in ("py3-ngx-one", "py3-ngx-two"):
            apk = make_apk(work, name, "1.0-r0", key)
            status, body = server.upload(apk, query="branch=v3.22&repo=sci")
            assert status == 201, body
        yield Front(server, nginx, work)
    finally:
        nginx.stop()
        server.stop()


# -- negotiation and headers -------------------------------------------------------------------


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
@pytest.mark.parametrize("page", ["/simple/ngx-lib/", "/simple/"])
def test_nginx_chooses_the_page_the_python_server_chooses(
    front: Front, page: str, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    python = front.get(front.server.url, page, headers=headers)
    nginx = front.get(front.nginx.url, page, headers=headers)
    assert nginx[0] == python[0] == 200
    assert nginx[2] == python[2]  # the same file: index.json or index.html
    expected = choose_format(accept).kind
    assert nginx[2].startswith(b"{" if expected == "json" else b"<!DOCTYPE html>")
    if expected == "json":
        assert nginx[1]["Content-Type"] == python[1]["Content-Type"] == JSON
    else:
        assert nginx[1]["Content-Type"] == "text/html; charset=utf-8"
    assert nginx[1]["Vary"] == "Accept"


@pytest.mark.parametrize("query", ["format=json", "format=html"])
def test_format_query_overrides_accept(front: Front, query: str) -> None:
    nginx = front.get(front.nginx.url, f"/simple/ngx-lib/?{query}", headers={"Accept": "text/html"})
    python = front.get(
        front.server.url, f"/simple/ngx-lib/?{query}", headers={"Accept": "text/html"}
    )
    assert nginx[2] == python[2]
    assert nginx[2].startswith(b"{") == (query == "format=json")


@pytest.mark.parametrize(
    "path", ["/simple/NGX_Lib/", "/simple/ngx-lib", "/simple", "/simple/ngx.lib/?format=json"]
)
def test_other_spellings_redirect_like_the_python_server(front: Front, path: str) -> None:
    python = front.get(front.server.url, path)
    nginx = front.get(front.nginx.url, path)
    assert python[0] == nginx[0] == 301
    assert (
        urllib.parse.urlsplit(nginx[1]["Location"]).path
        == urllib.parse.urlsplit(python[1]["Location"]).path
    )


def test_missing_things_are_json_404s(front: Front) -> None:
    for path in (
        "/simple/no-such-project/",
        "/files/ngx-lib/nothing.whl",
        f"/{APK_REPO}/missing-1.0-r0.apk",
        "/keys/none.rsa.pub",
    ):
        status, headers, body = front.get(front.nginx.url, path)
        assert status == 404, path
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["status"] == 404


def test_dot_files_are_never_served(front: Front) -> None:
    folder = front.server.data / "tree" / "files" / "ngx-lib"
    (folder / ".tmp-upload").write_bytes(b"half a wheel")
    (front.server.data / "tree" / "simple" / "ngx-lib" / ".index.json.tmp").write_text("{}")
    for path in ("/files/ngx-lib/.tmp-upload", "/simple/ngx-lib/.index.json.tmp"):
        assert front.get(front.nginx.url, path)[0] == 404


def test_caching_headers_follow_what_can_change(front: Front) -> None:
    wheel = "/files/ngx-lib/ngx_lib-2.0-py3-none-any.whl"
    immutable = "public, max-age=31536000, immutable"
    revalidate = "max-age=0, must-revalidate"
    expected = {
        "/simple/ngx-lib/": revalidate,
        "/simple/ngx-lib/index.json": revalidate,
        "/simple/": revalidate,
        wheel: immutable,
        wheel + ".metadata": immutable,
        wheel + ".stored": immutable,
        f"/{APK_REPO}/APKINDEX.tar.gz": revalidate,
        f"/{APK_REPO}/py3-ngx-one-1.0-r0.apk": immutable,
    }
    key = next((front.server.data / "tree" / "keys").glob("*.pub")).name
    expected[f"/keys/{key}"] = revalidate
    for path, cache_control in expected.items():
        status, headers, _ = front.get(front.nginx.url, path)
        assert status == 200, path
        assert headers["Cache-Control"] == cache_control, path
        assert headers["ETag"] and headers["Last-Modified"], path
        # The Python server alone (the embedded default) says the same to caches.
        assert front.get(front.server.url, path)[1]["Cache-Control"] == cache_control, path
        # A cache that asks again with the ETag gets a 304 and no body.
        again = front.get(front.nginx.url, path, headers={"If-None-Match": headers["ETag"]})
        assert again[0] == 304 and again[2] == b"", path
    types = {
        wheel: "application/octet-stream",
        wheel + ".stored": "application/octet-stream",
        wheel + ".metadata": "text/plain; charset=utf-8",
        f"/{APK_REPO}/APKINDEX.tar.gz": "application/gzip",
        f"/{APK_REPO}/py3-ngx-one-1.0-r0.apk": "application/octet-stream",
        f"/keys/{key}": "application/x-pem-file",
    }
    for path, content_type in types.items():
        assert front.get(front.nginx.url, path)[1]["Content-Type"] == content_type, path
        assert front.get(front.server.url, path)[1]["Content-Type"] == content_type, path


def test_range_requests_return_the_bytes_asked_for(front: Front) -> None:
    path = "/files/ngx-app/ngx_app-1.0-py3-none-any.whl.stored"
    whole = (front.server.data / "tree" / path.lstrip("/")).read_bytes()
    status, headers, body = front.get(front.nginx.url, path, headers={"Range": "bytes=100-1099"})
    assert status == 206
    assert body == whole[100:1100]
    assert headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
    status, _, body = front.get(front.nginx.url, path, headers={"Range": "bytes=-10"})
    assert status == 206 and body == whole[-10:]
    head = front.get(front.nginx.url, path, method="HEAD")
    assert head[0] == 200 and head[2] == b""
    assert head[1]["Content-Length"] == str(len(whole))


# -- writes go through to the Python server, and show at once ----------------------------------


def test_upload_and_yank_through_nginx_show_at_once(front: Front) -> None:
    wheel = make_wheel(front.work / "wheels", "ngx-late", "1.0")
    url = urllib.parse.urlsplit(front.nginx.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    connection.request(
        "PUT",
        f"/api/v1/upload/{wheel.name}",
        body=wheel.read_bytes(),
        headers={"Authorization": f"Bearer {front.server.token}"},
    )
    response = connection.getresponse()
    assert response.status == 201, response.read()
    response.read()
    page = json.loads(front.get(front.nginx.url, "/simple/ngx-late/", headers={"Accept": JSON})[2])
    assert [item["yanked"] for item in page["files"]] == [False]
    connection.request(
        "POST",
        "/api/v1/projects/ngx-late/1.0/yank?reason=bad",
        headers={"Authorization": f"Bearer {front.server.token}"},
    )
    response = connection.getresponse()
    assert response.status == 200, response.read()
    response.read()
    connection.close()
    page = json.loads(front.get(front.nginx.url, "/simple/ngx-late/", headers={"Accept": JSON})[2])
    assert [item["yanked"] for item in page["files"]] == ["bad"]


def test_an_upload_without_a_token_is_refused_through_nginx(front: Front) -> None:
    wheel = make_wheel(front.work / "wheels", "ngx-anonymous", "1.0")
    url = urllib.parse.urlsplit(front.nginx.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    connection.request("PUT", f"/api/v1/upload/{wheel.name}", body=wheel.read_bytes())
    response = connection.getresponse()
    assert response.status == 401
    assert json.loads(response.read())["status"] == 401
    connection.close()


# -- clients install through nginx as through the Python server --------------------------------


def _pip(index: str, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--target",
            str(target),
            "--index-url",
            index,
            "ngx-app",
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )


def _uv(index: str, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "uv"),
            "pip",
            "install",
            "--no-cache",
            "--python",
            sys.executable,
            "--target",
            str(target),
            "--index-url",
            index,
            "ngx-app",
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )


def _installed(target: Path) -> dict[str, bytes | None]:
    # What the installer wrote, less what names the tool or the source URL.
    return {
        path: data
        for path, data in snapshot(target).items()
        if not path.endswith(("INSTALLER", "direct_url.json", "REQUESTED"))
    }


@pytest.mark.e2e
@pytest.mark.parametrize("tool", [_pip, _uv], ids=["pip", "uv"])
def test_pip_and_uv_install_the_same_through_nginx(
    front: Front, tmp_path: Path, tool: object
) -> None:
    assert callable(tool)
    results = {}
    for name, base in (("python", front.server.url), ("nginx", front.nginx.url)):
        target = tmp_path / name
        finished = tool(base + "simple/", target)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        results[name] = _installed(target)
    assert results["nginx"] == results["python"]
    assert "ngx_lib-2.0.dist-info/METADATA" in results["nginx"]  # 3.0 needs Python 3.99


_IPYDEPS_INSTALL = """
import json, sys, ipydeps
result = ipydeps.pip(["ngx-app"], quiet=True)
print(json.dumps({item.name: item.stored_copy for item in result.installed}))
"""


@pytest.mark.e2e
def test_ipydeps_installs_the_same_through_nginx_from_stored_copies(
    front: Front, tmp_path: Path
) -> None:
    results = {}
    for name, base in (("python", front.server.url), ("nginx", front.nginx.url)):
        python = make_venv(tmp_path / name, see_test_packages=True)
        finished = subprocess.run(
            [str(python), "-c", _IPYDEPS_INSTALL],
            capture_output=True,
            text=True,
            timeout=300,
            env=clean_pip_env(
                IPYDEPS_REPOSITORY_URL=base,
                IPYDEPS_UPSTREAM="deny",
                IPYDEPS_APK="never",
                IPYDEPS_STORED_COPIES="always",
                HOME=str(tmp_path / f"home-{name}"),
            ),
        )
        assert finished.returncode == 0, finished.stderr
        # nginx answered the JSON page, so the stored copies were found and used.
        assert json.loads(finished.stdout.splitlines()[-1]) == {"ngx-app": True, "ngx-lib": True}
        installed = _installed(site_packages(tmp_path / name))
        results[name] = {
            path: data
            for path, data in installed.items()
            if not path.startswith("zz-test-packages")
        }
    assert results["nginx"] == results["python"]
    assert "ngx_app/data.bin" in results["nginx"]


@pytest.mark.e2e
def test_on_loopback_auto_keeps_the_stored_copy_through_nginx_and_the_python_server(
    front: Front, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stored_copies = "auto" judges the network from a copy's first megabytes. nginx's
    # sendfile leaves little waiting in the socket, so on the backlog alone ipydeps took
    # the wheels through nginx in 5 of 6 installs on loopback, 2-2.5x slower; a copy of
    # 16 MB gives the probe the eight reads it needs.
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)
    wheel = make_wheel(
        tmp_path,
        "ngx-big",
        "1.0",
        files={"ngx_big/__init__.py": "", "ngx_big/blob.bin": os.urandom(16 << 20)},
    )
    status, body = front.server.upload(wheel)
    assert status == 201, body
    for name, base in (("python", front.server.url), ("nginx", front.nginx.url)):
        make_venv(tmp_path / name)
        result = ipydeps.pip(
            ["ngx-big"],
            index_url=base.rstrip("/") + "/simple/",
            upstream="deny",
            prefix=tmp_path / name,
            stream=io.StringIO(),
        )
        assert [(item.name, item.stored_copy) for item in result.installed] == [
            ("ngx-big", True)
        ], name
        blob = site_packages(tmp_path / name) / "ngx_big" / "blob.bin"
        assert blob.stat().st_size == 16 << 20


@pytest.mark.e2e
def test_a_plain_static_host_of_the_tree_serves_pip_uv_and_ipydeps(
    front: Front, tmp_path: Path
) -> None:
    # S3 or a CDN: files by path, a folder's index.html for a URL ending in "/", no Accept
    # negotiation and no Python server behind. pip and uv read the HTML pages as they are;
    # ipydeps gets HTML for its JSON Accept, reads index.json by name, and so finds and
    # installs the stored copies, as through the negotiating server.
    static = start_nginx(front.server.data / "tree", static=True)
    try:
        for tool in (_pip, _uv):
            results = {}
            for name, base in (("python", front.server.url), ("static", static.url)):
                target = tmp_path / f"{tool.__name__}-{name}"
                finished = tool(base + "simple/", target)
                assert finished.returncode == 0, finished.stdout + finished.stderr
                results[name] = _installed(target)
            assert results["static"] == results["python"], tool.__name__
        python = make_venv(tmp_path / "ipydeps", see_test_packages=True)
        finished = subprocess.run(
            [str(python), "-c", _IPYDEPS_INSTALL],
            capture_output=True,
            text=True,
            timeout=300,
            env=clean_pip_env(
                IPYDEPS_REPOSITORY_URL=static.url,
                IPYDEPS_UPSTREAM="deny",
                IPYDEPS_APK="never",
                IPYDEPS_STORED_COPIES="always",
                HOME=str(tmp_path / "home"),
            ),
        )
    finally:
        static.stop()
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout.splitlines()[-1]) == {"ngx-app": True, "ngx-lib": True}
    installed = _installed(site_packages(tmp_path / "ipydeps"))
    assert installed["ngx_app/data.bin"] == bytes(range(256)) * 400
    assert "ngx_lib-2.0.dist-info/METADATA" in installed


def test_ipydeps_reads_json_pages_by_name_only_where_the_host_does_not_negotiate(
    front: Front, tmp_path: Path
) -> None:
    # A tree written before the JSON pages existed: its static host has only index.html.
    old_tree = tmp_path / "old-tree"
    shutil.copytree(front.server.data / "tree", old_tree)
    for page in (old_tree / "simple").rglob("index.json"):
        page.unlink()
    static = start_nginx(front.server.data / "tree", static=True)
    old = start_nginx(old_tree, static=True)
    requests: dict[str, list[str]] = {}
    pages: dict[str, list[list[tuple[object, ...]]]] = {}
    try:
        hosts = {
            "python": front.server.url,
            "nginx": front.nginx.url,
            "static": static.url,
            "old": old.url,
        }
        for name, base in hosts.items():
            fetcher = RecordingFetcher()
            source = RepositorySource(base, fetcher)
            pages[name] = [
                [
                    (
                        c.filename,
                        c.sha256,
                        c.url.removeprefix(base),
                        c.stored and (c.stored.sha256, c.stored.url.removeprefix(base)),
                    )
                    for c in source.candidates(canonicalize_name(project))
                ]
                for project in ("ngx-app", "ngx-lib", "no-such-project")
            ]
            requests[name] = [url.removeprefix(base) for url in fetcher.urls]
    finally:
        static.stop()
        old.stop()
    # Where the host negotiates, one request a page: nothing extra.
    folders = ["simple/ngx-app/", "simple/ngx-lib/", "simple/no-such-project/"]
    assert requests["python"] == requests["nginx"] == folders
    # A static host of the tree: HTML at the folder, so index.json by name from then on.
    assert requests["static"] == [
        "simple/ngx-app/",
        "simple/ngx-app/index.json",
        "simple/ngx-lib/index.json",
        "simple/no-such-project/index.json",
    ]
    # An old tree: asked once, then the HTML pages as before.
    assert requests["old"] == [
        "simple/ngx-app/",
        "simple/ngx-app/index.json",
        "simple/ngx-lib/",
        "simple/no-such-project/",
    ]
    # The same files, hashes and stored copies as through negotiation; the old tree's HTML
    # pages have the same files and hashes, without stored copies.
    assert pages["static"] == pages["nginx"] == pages["python"]
    assert all(entry[3] for entry in pages["python"][0] + pages["python"][1])
    assert pages["old"] == [[(*entry[:3], None) for entry in page] for page in pages["python"]]


# -- the apk repository, as apk reads it ---------------------------------------------------------


def test_apk_repository_reads_and_verifies_through_nginx(front: Front, tmp_path: Path) -> None:
    status, _, archive = front.get(front.nginx.url, f"/{APK_REPO}/APKINDEX.tar.gz")
    assert status == 200
    assert archive == front.get(front.server.url, f"/{APK_REPO}/APKINDEX.tar.gz")[2]
    trusted = load_public_keys(front.server.data / "tree" / "keys")
    _, records = verify_index(archive, trusted)  # signed by a key the repository publishes
    # ipydeps' own reader (the planner's view of the apk route) reads the same index.
    _, text = read_apkindex_archive(archive)
    assert (
        sorted(record.name for record in parse_apkindex(text))
        == sorted(record.name for record in records)
        == ["py3-ngx-one", "py3-ngx-two"]
    )
    mirror = tmp_path / "x86_64"
    mirror.mkdir()
    (mirror / "APKINDEX.tar.gz").write_bytes(archive)
    for record in records:
        name = f"{record.name}-{record.version}.apk"
        status, _, data = front.get(front.nginx.url, f"/{APK_REPO}/{name}")
        assert status == 200
        (mirror / name).write_bytes(data)
    # apk's own checks on the fetched copy: every listed package has the C: checksum and S:
    # size of its index record, and its signature verifies.
    assert [record.name for record in verify_repository(mirror, trusted)] == [
        record.name for record in records
    ]


def test_the_compose_nginx_conf_is_valid(tmp_path: Path) -> None:
    """docker/nginx/nginx.conf parses, with the container's paths pointed at this host's."""
    if not nginx_available():
        pytest.fail("nginx is not installed: apt-get install nginx (.ci/run does)")
    shipped = SHIPPED / "nginx.conf"
    # The container's /tmp/ first: this host's paths put in below may themselves be in /tmp.
    text = (
        shipped.read_text()
        .replace("/tmp/", f"{tmp_path}/")
        .replace("/etc/nginx/ipydeps/", f"{SHIPPED}/")
        .replace("server repo:8080;", "server 127.0.0.1:9;")
        .replace("/data/tree", str(tmp_path))
    )
    assert text.count(str(SHIPPED)) == 2  # both includes found their files
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    checked = subprocess.run(
        [str(NGINX), "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr
