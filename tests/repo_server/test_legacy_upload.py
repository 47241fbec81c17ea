"""The legacy upload API (POST /legacy/) with the clients people use: twine and uv publish."""

from __future__ import annotations

import base64
import http.client
import json
import random
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.support.pipenv import clean_pip_env
from tests.support.sdists import legacy_form, make_sdist
from tests.support.server import RunningServer
from tests.support.wheels import make_wheel

TOOLS = Path(sys.executable).parent


def post_form(
    server: RunningServer, body: bytes, content_type: str, *, authorization: str | None = None
) -> tuple[int, str, str]:
    """POST a raw form to /legacy/; return (status, reason phrase, body text)."""
    url = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    if authorization is None:
        authorization = "Basic " + base64.b64encode(f"__token__:{server.token}".encode()).decode()
    connection.request(
        "POST",
        "/legacy/",
        body=body,
        headers={"Content-Type": content_type, "Authorization": authorization},
    )
    response = connection.getresponse()
    result = response.status, response.reason, response.read().decode()
    connection.close()
    return result


def visible_files(server: RunningServer) -> list[str]:
    files = server.data / "tree" / "files"
    return sorted(str(path.relative_to(files)) for path in files.rglob("*") if path.is_file())


def leftover_uploads(server: RunningServer) -> list[Path]:
    return list((server.data / "state" / "tmp").iterdir())


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-cache-dir"],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )


@pytest.mark.e2e
def test_twine_uploads_a_wheel_and_an_sdist_and_pip_installs_them(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = make_wheel(dist, "ipd-twined", "1.0")
    sdist = make_sdist(dist, "ipd-twined", "1.0", requires_python=">=3.8")
    result = subprocess.run(
        [
            str(TOOLS / "twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            repo_server.url + "legacy/",
            "-u",
            "__token__",
            "-p",
            repo_server.token,
            str(wheel),
            str(sdist),
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert visible_files(repo_server) == [
        "ipd-twined/ipd_twined-1.0-py3-none-any.whl",
        "ipd-twined/ipd_twined-1.0-py3-none-any.whl.metadata",
        "ipd-twined/ipd_twined-1.0-py3-none-any.whl.stored",
        "ipd-twined/ipd_twined-1.0.tar.gz",
    ]
    installed = pip(
        "install",
        "--target",
        str(tmp_path / "site"),
        "--index-url",
        repo_server.url + "simple/",
        "ipd-twined",
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (tmp_path / "site" / "ipd_twined" / "__init__.py").is_file()


@pytest.mark.e2e
def test_uv_publish_uploads_and_uv_installs(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "ipd-uv-published", "2.0")
    result = subprocess.run(
        [
            str(TOOLS / "uv"),
            "publish",
            "--publish-url",
            repo_server.url + "legacy/",
            "--token",
            repo_server.token,
            str(wheel),
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    status, _headers, page = repo_server.get(
        "simple/ipd-uv-published/", accept="application/vnd.pypi.simple.v1+json"
    )
    assert status == 200
    assert [item["filename"] for item in json.loads(page)["files"]] == [wheel.name]
    target = tmp_path / "site"
    installed = subprocess.run(
        [
            str(TOOLS / "uv"),
            "pip",
            "install",
            "--no-cache",
            "--python",
            sys.executable,
            "--target",
            str(target),
            "--index-url",
            repo_server.url + "simple/",
            "ipd-uv-published",
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (target / "ipd_uv_published" / "__init__.py").is_file()


@pytest.mark.e2e
def test_pip_download_no_binary_gets_the_sdist(repo_server: RunningServer, tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "ipd-sourced", "1.5")
    body, content_type = legacy_form(sdist)
    assert post_form(repo_server, body, content_type)[0] == 200
    status, _headers, page = repo_server.get(
        "simple/ipd-sourced/", accept="application/vnd.pypi.simple.v1+json"
    )
    entry = json.loads(page)["files"][0]
    assert entry["filename"] == "ipd_sourced-1.5.tar.gz"
    assert "core-metadata" not in entry and "_ipydeps-stored" not in entry
    out = tmp_path / "out"
    result = pip(
        "download",
        "--no-binary",
        ":all:",
        "--no-deps",
        "--no-build-isolation",
        "-d",
        str(out),
        "--index-url",
        repo_server.url + "simple/",
        "ipd-sourced",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "ipd_sourced-1.5.tar.gz").read_bytes() == sdist.read_bytes()


@pytest.mark.e2e
def test_twine_with_a_wrong_token_says_so(repo_server: RunningServer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "ipd-refused", "1.0")
    result = subprocess.run(
        [
            str(TOOLS / "twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            repo_server.url + "legacy/",
            "-u",
            "__token__",
            "-p",
            "ipyr_not-a-token",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )
    assert result.returncode == 1
    output = " ".join((result.stdout + result.stderr).split())
    assert "401 Unauthorized" in output
    assert "invalid token" in output
    assert visible_files(repo_server) == []


def run_tool(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [str(TOOLS / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
    )
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.mark.e2e
def test_what_works_in_place_of_twine_skip_existing(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    """The README's advice for re-running an upload, checked with the real twine and uv."""
    wheel = make_wheel(tmp_path, "ipd-again", "1.0")
    sdist = make_sdist(tmp_path, "ipd-again", "1.0")
    twine = (
        "twine",
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        repo_server.url + "legacy/",
        "-u",
        "__token__",
        "-p",
        repo_server.token,
    )
    assert run_tool(*twine, str(wheel), str(sdist))[0] == 0
    # The same files again: 200 "unchanged", so a plain re-run succeeds.
    assert run_tool(*twine, str(wheel), str(sdist))[0] == 0
    # twine 7 refuses --skip-existing for any index but PyPI's, before sending anything.
    status, output = run_tool(*twine, "--skip-existing", str(wheel))
    assert (
        status,
        "does not have support for the following features: --skip-existing" in output,
    ) == (1, True), output
    # uv publish --check-url skips what the index has with the same hash.
    uv = (
        "uv",
        "publish",
        "--publish-url",
        repo_server.url + "legacy/",
        "--token",
        repo_server.token,
        "--check-url",
        repo_server.url + "simple/",
    )
    status, output = run_tool(*uv, str(wheel), str(sdist))
    assert (status, f"File {wheel.name} already exists, skipping" in output) == (0, True), output
    # A different file under a published name is refused by both, and says so.
    (tmp_path / "rebuilt").mkdir()
    rebuilt = make_wheel(tmp_path / "rebuilt", "ipd-again", "1.0", summary="rebuilt")
    status, output = run_tool(*twine, str(rebuilt))
    assert status == 1
    assert (
        f"409 Conflict from {repo_server.url}legacy/ a different file named {wheel.name}" in output
    )
    status, output = run_tool(*uv, str(rebuilt))
    assert (status, "Local file and index file do not match" in output) == (2, True), output


def test_any_user_name_and_bearer_are_accepted(repo_server: RunningServer, tmp_path: Path) -> None:
    first = make_wheel(tmp_path, "ipd-auth", "1.0")
    second = make_wheel(tmp_path, "ipd-auth", "2.0")
    basic = "Basic " + base64.b64encode(f"alice:{repo_server.token}".encode()).decode()
    assert post_form(repo_server, *legacy_form(first), authorization=basic)[0] == 200
    bearer = f"Bearer {repo_server.token}"
    assert post_form(repo_server, *legacy_form(second), authorization=bearer)[0] == 200
    no_password = "Basic " + base64.b64encode(b"__token__:").decode()
    status, reason, _ = post_form(repo_server, *legacy_form(second), authorization=no_password)
    assert (status, reason) == (401, "no token in the password of the Basic credentials")


@pytest.mark.parametrize("cut", ["closing", "headers"])
def test_a_broken_multipart_body_is_400_and_leaves_nothing(
    repo_server: RunningServer, tmp_path: Path, cut: str
) -> None:
    wheel = make_wheel(tmp_path, "ipd-broken", "1.0")
    body, content_type = legacy_form(wheel)
    if cut == "closing":
        body = body[: body.rindex(b"--" + content_type.split("=")[1].encode())]
    else:
        body = body.replace(b"Content-Disposition: form-data;", b"Content-Disposition: x;", 1)
    status, reason, text = post_form(repo_server, body, content_type)
    assert status == 400
    assert reason.startswith("upload form is invalid")
    assert "multipart" in text
    assert visible_files(repo_server) == []
    assert leftover_uploads(repo_server) == []
    assert repo_server.get("simple/ipd-broken/")[0] == 404


def test_form_fields_are_checked_against_the_file(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "ipd-checked", "1.0")
    body, content_type = legacy_form(
        wheel,
        {"sha256_digest": "0" * 64, "md5_digest": "0" * 32, "name": "other", "version": "2.0"},
    )
    status, reason, text = post_form(repo_server, body, content_type)
    assert status == 400
    assert reason.startswith("upload of 'ipd_checked-1.0-py3-none-any.whl' is invalid")
    for problem in ("'sha256_digest'", "'md5_digest'", "'name' 'other'", "'version' '2.0'"):
        assert problem in text
    assert visible_files(repo_server) == []
    body, content_type = legacy_form(wheel, {":action": "remove_pkg"})
    status, _reason, text = post_form(repo_server, body, content_type)
    assert status == 400 and "':action' must be 'file_upload'" in text


def test_same_validation_as_the_put_api(repo_server: RunningServer, tmp_path: Path) -> None:
    # A different file under a published name is a conflict (twine --skip-existing knows 409).
    first = make_wheel(tmp_path, "ipd-same", "1.0")
    assert post_form(repo_server, *legacy_form(first))[0] == 200
    assert post_form(repo_server, *legacy_form(first))[0] == 200  # same bytes: unchanged
    changed = make_wheel(tmp_path, "ipd-same", "1.0", summary="changed")
    status, reason, text = post_form(repo_server, *legacy_form(changed))
    assert status == 409
    assert "already published" in reason
    assert "hint:" in text


def test_oversized_upload_is_413(tmp_path: Path) -> None:
    from tests.support.server import start_server

    server = start_server(tmp_path / "data", "--max-upload", "2K")
    try:
        # Incompressible bytes, so the wheel itself is over the 2 KiB limit.
        blob = random.Random(0).randbytes(16 * 1024)
        wheel = make_wheel(tmp_path, "ipd-big", "1.0", files={"ipd_big/blob.bin": blob})
        status, reason, _ = post_form(server, *legacy_form(wheel))
        assert status == 413
        assert "over the limit" in reason
        assert visible_files(server) == []
        assert leftover_uploads(server) == []
    finally:
        server.stop()


@pytest.mark.e2e
def test_poetry_publishes_its_wheel_and_sdist(repo_server: RunningServer, tmp_path: Path) -> None:
    project = tmp_path / "poetic"
    (project / "ipd_poetic").mkdir(parents=True)
    (project / "ipd_poetic" / "__init__.py").write_text('__version__ = "0.3.0"\n')
    (project / "pyproject.toml").write_text(
        '[project]\nname = "ipd-poetic"\nversion = "0.3.0"\n'
        'description = "A fixture built by poetry"\nrequires-python = ">=3.8"\n\n'
        '[build-system]\nrequires = ["poetry-core>=2.0"]\n'
        'build-backend = "poetry.core.masonry.api"\n'
    )
    env = clean_pip_env(
        POETRY_CONFIG_DIR=str(tmp_path / "poetry-config"),
        POETRY_CACHE_DIR=str(tmp_path / "poetry-cache"),
        POETRY_DATA_DIR=str(tmp_path / "poetry-data"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        # The same as 'poetry config repositories.ipydeps URL' + 'poetry config pypi-token.ipydeps'.
        POETRY_REPOSITORIES_IPYDEPS_URL=repo_server.url + "legacy/",
        POETRY_PYPI_TOKEN_IPYDEPS=repo_server.token,
    )
    for step in (["build"], ["publish", "-r", "ipydeps"]):
        result = subprocess.run(
            [str(TOOLS / "poetry"), "-n", *step],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert [
        name for name in visible_files(repo_server) if not name.endswith((".metadata", ".stored"))
    ] == [
        "ipd-poetic/ipd_poetic-0.3.0-py3-none-any.whl",
        "ipd-poetic/ipd_poetic-0.3.0.tar.gz",
    ]


def test_a_large_wheel_arrives_whole_across_many_chunks(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    blob = random.Random(1).randbytes(6 * 1024 * 1024)
    wheel = make_wheel(tmp_path, "ipd-large", "1.0", files={"ipd_large/blob.bin": blob})
    status, _reason, text = post_form(repo_server, *legacy_form(wheel))
    assert status == 200, text
    assert json.loads(text)["status"] == "created"
    stored = repo_server.data / "tree" / "files" / "ipd-large" / wheel.name
    assert stored.read_bytes() == wheel.read_bytes()
    assert leftover_uploads(repo_server) == []


def test_get_on_the_upload_url_says_to_post(repo_server: RunningServer) -> None:
    status, _headers, body = repo_server.get("legacy/")
    assert status == 405
    assert b"the upload API takes POST" in body


@pytest.mark.e2e
def test_flit_publishes_its_wheel_and_sdist(repo_server: RunningServer, tmp_path: Path) -> None:
    project = tmp_path / "flitted"
    (project / "ipd_flitted").mkdir(parents=True)
    (project / "ipd_flitted" / "__init__.py").write_text('"""A fixture published by flit."""\n')
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core>=3.4"]\nbuild-backend = "flit_core.buildapi"\n\n'
        '[project]\nname = "ipd-flitted"\nversion = "0.1.0"\n'
        'description = "A fixture published by flit"\n'
    )
    # The ~/.pypirc of repo-server/README.md.
    (tmp_path / ".pypirc").write_text(
        f"[distutils]\nindex-servers = ipydeps\n[ipydeps]\nrepository = {repo_server.url}legacy/\n"
        f"username = __token__\npassword = {repo_server.token}\n"
    )
    env = clean_pip_env(HOME=str(tmp_path))
    result = subprocess.run(
        [str(TOOLS / "flit"), "publish", "--repository", "ipydeps"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [
        name for name in visible_files(repo_server) if not name.endswith((".metadata", ".stored"))
    ] == [
        "ipd-flitted/ipd_flitted-0.1.0-py2.py3-none-any.whl",
        "ipd-flitted/ipd_flitted-0.1.0.tar.gz",
    ]


def test_a_client_gone_mid_upload_leaves_nothing(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    blob = random.Random(2).randbytes(400_000)
    wheel = make_wheel(tmp_path, "ipd-gone", "1.0", files={"ipd_gone/blob.bin": blob})
    body, content_type = legacy_form(wheel)
    url = urllib.parse.urlsplit(repo_server.url)
    with socket.create_connection((url.hostname or "", url.port or 80)) as connection:
        connection.sendall(
            f"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Authorization: Bearer {repo_server.token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        connection.sendall(body[: len(body) // 2])
    # The server sees the close once it has taken the half that came (hashed and written in
    # a worker thread, slow on a loaded machine): wait for it, asking on new connections,
    # which go through the same event loop. A generous bound, not a timing claim.
    deadline = time.monotonic() + 60
    while leftover_uploads(repo_server) and time.monotonic() < deadline:
        repo_server.get("api/v1/health")
        time.sleep(0.05)
    assert leftover_uploads(repo_server) == []
    assert visible_files(repo_server) == []
