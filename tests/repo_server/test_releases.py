"""Yank, unyank and delete (API and CLI), normalized-name redirects and the landing page order."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, repo_cli
from tests.support.wheels import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"


def request(
    server: RunningServer,
    method: str,
    path: str,
    *,
    token: str | None = None,
    accept: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request without following redirects; return (status, headers, body)."""
    url = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if accept:
        headers["Accept"] = accept
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    result = response.status, dict(response.headers), response.read()
    connection.close()
    return result


def project_json(server: RunningServer, project: str) -> dict[str, Any]:
    status, _headers, body = server.get(f"simple/{project}/", accept=JSON)
    assert status == 200
    document = json.loads(body)
    assert isinstance(document, dict)
    return document


def install(server: RunningServer, target: Path, requirement: str, *, tool: str = "pip") -> str:
    if tool == "pip":
        command = [sys.executable, "-m", "pip", "install", "--no-cache-dir"]
    else:
        command = [
            str(Path(sys.executable).parent / "uv"),
            "pip",
            "install",
            "--no-cache",
            "--python",
            sys.executable,
        ]
    result = subprocess.run(
        [*command, "--target", str(target), "--index-url", server.url + "simple/", requirement],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return (target / "ipd_yanky" / "__init__.py").read_text().split("'")[1]


@pytest.fixture
def published(repo_server: RunningServer, tmp_path: Path) -> RunningServer:
    for version in ("1.0", "2.0"):
        assert repo_server.upload(make_wheel(tmp_path, "ipd-yanky", version))[0] == 201
    return repo_server


@pytest.mark.e2e
@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_yanked_release_is_skipped_unless_pinned(
    published: RunningServer, tmp_path: Path, tool: str
) -> None:
    status, _, body = request(
        published,
        "POST",
        "/api/v1/projects/IPD_Yanky/2.0/yank?reason=broken+import",
        token=published.token,
    )
    assert status == 200, body
    assert json.loads(body)["files"] == ["ipd_yanky-2.0-py3-none-any.whl"]
    links = [
        line
        for line in published.get("simple/ipd-yanky/")[2].decode().splitlines()
        if line.startswith("<a ")
    ]
    assert "data-yanked" not in links[0]
    assert links[1].endswith('data-yanked="broken import">ipd_yanky-2.0-py3-none-any.whl</a><br>')
    files = project_json(published, "ipd-yanky")["files"]
    yanked = {item["filename"]: item["yanked"] for item in files}
    assert yanked == {
        "ipd_yanky-1.0-py3-none-any.whl": False,
        "ipd_yanky-2.0-py3-none-any.whl": "broken import",
    }
    assert install(published, tmp_path / "free", "ipd-yanky", tool=tool) == "1.0"
    assert install(published, tmp_path / "pinned", "ipd-yanky==2.0", tool=tool) == "2.0"

    status, _, _ = request(
        published, "DELETE", "/api/v1/projects/ipd-yanky/2.0/yank", token=published.token
    )
    assert status == 200
    assert "data-yanked" not in published.get("simple/ipd-yanky/")[2].decode()
    assert install(published, tmp_path / "again", "ipd-yanky", tool=tool) == "2.0"


def test_yank_without_reason_and_errors(published: RunningServer) -> None:
    status, _, _ = request(
        published, "POST", "/api/v1/projects/ipd-yanky/1.0/yank", token=published.token
    )
    assert status == 200
    files = project_json(published, "ipd-yanky")["files"]
    assert [item["yanked"] for item in files] == [True, False]
    assert 'data-yanked="">ipd_yanky-1.0' in published.get("simple/ipd-yanky/")[2].decode()
    status, _, body = request(
        published, "POST", "/api/v1/projects/ipd-yanky/3.0/yank", token=published.token
    )
    assert status == 404 and b"has no published version 3.0" in body
    status, _, body = request(
        published, "POST", "/api/v1/projects/ipd-yanky/not!a!version/yank", token=published.token
    )
    assert status == 400
    assert request(published, "POST", "/api/v1/projects/ipd-yanky/1.0/yank")[0] == 401


def test_delete_removes_everything_of_the_file(published: RunningServer, tmp_path: Path) -> None:
    folder = published.data / "tree" / "files" / "ipd-yanky"
    variant = make_wheel(tmp_path, "ipd-yanky", "2.0", tag="1ipydeps-py3-none-any")
    assert published.upload(variant)[0] == 201
    request(published, "POST", "/api/v1/projects/ipd-yanky/2.0/yank", token=published.token)
    assert (published.data / "state" / "yanks" / "ipd-yanky.json").is_file()

    no_force = (
        repo_cli("token", "create", "no-force", "--no-force", data=published.data)
        .stdout.strip()
        .splitlines()[-1]
    )
    path = "/api/v1/projects/ipd-yanky/2.0?file=ipd_yanky-2.0-py3-none-any.whl"
    assert request(published, "DELETE", path, token=no_force)[0] == 403
    status, _, body = request(published, "DELETE", path, token=published.token)
    assert status == 200, body
    assert json.loads(body)["files"] == ["ipd_yanky-2.0-py3-none-any.whl", variant.name]
    assert sorted(path.name for path in folder.iterdir()) == [
        "ipd_yanky-1.0-py3-none-any.whl",
        "ipd_yanky-1.0-py3-none-any.whl.metadata",
        "ipd_yanky-1.0-py3-none-any.whl.stored",
    ]
    assert [item["filename"] for item in project_json(published, "ipd-yanky")["files"]] == [
        "ipd_yanky-1.0-py3-none-any.whl"
    ]
    assert not (published.data / "state" / "yanks" / "ipd-yanky.json").exists()

    assert (
        request(published, "DELETE", "/api/v1/projects/ipd-yanky/1.0", token=published.token)[0]
        == 200
    )
    assert published.get("simple/ipd-yanky/")[0] == 404
    assert b"ipd-yanky" not in published.get("simple/")[2]
    assert not any(folder.iterdir())


def test_cli_yanks_remotely_and_deletes_in_place(published: RunningServer) -> None:
    remote = repo_cli(
        "yank",
        "IPD.yanky",
        "2.0",
        "--reason",
        "oops",
        "--url",
        published.url,
        "--token",
        published.token,
        data=published.data,
    )
    assert remote.stdout == "yanked ipd-yanky/ipd_yanky-2.0-py3-none-any.whl\n"
    assert 'data-yanked="oops"' in published.get("simple/ipd-yanky/")[2].decode()
    refused = repo_cli(
        "unyank",
        "ipd-yanky",
        "2.0",
        "--url",
        published.url,
        "--token",
        "wrong",
        data=published.data,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: invalid token")
    local = repo_cli("delete", "ipd-yanky", "2.0", data=published.data)
    assert local.stdout == "deleted ipd-yanky/ipd_yanky-2.0-py3-none-any.whl\n"
    assert "ipd_yanky-2.0" not in published.get("simple/ipd-yanky/")[2].decode()
    missing = repo_cli("delete", "ipd-yanky", "9", data=published.data, check=False)
    assert (missing.returncode, missing.stderr.splitlines()[0]) == (
        1,
        "error: ipd-yanky has no published version 9",
    )


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple/IPD_Yanky/", "/simple/ipd-yanky/"),
        ("/simple/IPD.yanky", "/simple/ipd-yanky/"),
        ("/simple/ipd-yanky", "/simple/ipd-yanky/"),
        ("/simple/Ipd-Yanky/?format=json", "/simple/ipd-yanky/?format=json"),
        ("/simple/ipd-yanky?format=json", "/simple/ipd-yanky/?format=json"),
        ("/simple/IPD-yanky/index.json", "/simple/ipd-yanky/index.json"),
    ],
)
def test_non_normalized_names_redirect(published: RunningServer, path: str, location: str) -> None:
    for accept in (None, JSON):
        status, headers, _ = request(published, "GET", path, accept=accept)
        assert (status, headers["Location"]) == (301, location)


def test_redirect_keeps_the_negotiated_form(published: RunningServer) -> None:
    # urllib follows the 301 and sends Accept again: JSON comes back.
    status, headers, body = published.get("simple/IPD_Yanky/", accept=JSON)
    assert status == 200 and headers["Content-Type"] == JSON
    assert json.loads(body)["name"] == "ipd-yanky"


@pytest.mark.parametrize(
    "page", ["simple/ipd-yanky/index.json", "simple/index.json", "simple/ipd-yanky/index.html"]
)
def test_index_files_are_served_as_themselves(published: RunningServer, page: str) -> None:
    status, headers, body = published.get(page, accept="text/html")
    assert status == 200
    if page.endswith(".json"):
        assert headers["Content-Type"] == JSON
        assert "meta" in json.loads(body)
    else:
        assert headers["Content-Type"].startswith("text/html")
        assert body.startswith(b"<!DOCTYPE html>")


def test_landing_page_sorts_versions_as_versions(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    for version in ("1.10", "1.9", "1.2.post1", "2.0rc1"):
        assert repo_server.upload(make_wheel(tmp_path, "ipd-sorted", version))[0] == 201
    request(repo_server, "POST", "/api/v1/projects/ipd-sorted/1.9/yank", token=repo_server.token)
    page = repo_server.get("")[2].decode()
    assert "ipd-sorted</a> 1.2.post1, 1.9 (yanked), 1.10, 2.0rc1</li>" in page
    assert f"twine upload --repository-url {repo_server.url}legacy/" in page


def test_index_rebuild_keeps_yanks(published: RunningServer) -> None:
    request(
        published, "POST", "/api/v1/projects/ipd-yanky/2.0/yank?reason=bad", token=published.token
    )
    (published.data / "tree" / "simple" / "ipd-yanky" / "index.json").unlink()
    repo_cli("index", data=published.data)
    files = project_json(published, "ipd-yanky")["files"]
    assert [item["yanked"] for item in files] == [False, "bad"]


def test_deeply_nested_json_body_is_a_400_not_a_crash(published: RunningServer) -> None:
    url = urllib.parse.urlsplit(published.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    # As deep as fits the 64 KiB a JSON endpoint takes; Python's parser gives up at 1000.
    body = b"[" * 30_000 + b"]" * 30_000
    connection.request(
        "POST",
        "/api/v1/projects/ipd-yanky/2.0/yank",
        body=body,
        headers={"Authorization": f"Bearer {published.token}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    status, reply = response.status, json.loads(response.read())
    connection.close()
    assert status == 400
    assert reply["problems"] == ["it must be a JSON object"]
    # Nothing was yanked, and the server still answers.
    page = json.loads(
        request(
            published, "GET", "/simple/ipd-yanky/", accept="application/vnd.pypi.simple.v1+json"
        )[2]
    )
    assert all(not entry.get("yanked") for entry in page["files"])
