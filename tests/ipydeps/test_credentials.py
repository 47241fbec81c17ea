"""Reading from a private repository: Basic (URL, netrc) and Bearer (token) credentials.

A small stdlib server on 127.0.0.1 stands in front of the real repository server and
answers 401 without the right Authorization header; a second, open one on another port
plays the upstream index and a redirect target, and records whether credentials leaked.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import ipydeps
from ipydeps.credentials import redact, repository_access
from ipydeps.errors import ConfigError, RepositoryError
from tests.support.loopback import Scripted, scripted_server
from tests.support.server import RunningServer
from tests.support.venvs import make_venv, run_python
from tests.support.wheels import make_wheel

SECRET = "s3cr3t-pw"
TOKEN = "tok-9f8e7d"


class Gate:
    """A proxy to ``backend`` that wants ``authorization`` (None: open) and records requests."""

    def __init__(
        self, backend: str, authorization: str | None, redirects: dict[str, str] | None = None
    ) -> None:
        self.backend = backend.rstrip("/")
        self.authorization = authorization
        self.redirects = dict(redirects or {})
        self.seen: list[tuple[str, str | None]] = []
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                given = self.headers.get("Authorization")
                gate.seen.append((self.path, given))
                if gate.authorization is not None and given != gate.authorization:
                    self._answer(
                        401,
                        b"credentials needed",
                        "text/plain",
                        {"WWW-Authenticate": 'Basic realm="private"'},
                    )
                elif self.path in gate.redirects:
                    self._answer(302, b"", "text/plain", {"Location": gate.redirects[self.path]})
                else:
                    request = urllib.request.Request(
                        gate.backend + self.path,
                        headers={"Accept": self.headers["Accept"] or "*/*"},
                    )
                    try:
                        with urllib.request.urlopen(request, timeout=60) as response:
                            self._answer(
                                response.status,
                                response.read(),
                                response.headers.get("Content-Type", ""),
                            )
                    except urllib.error.HTTPError as error:
                        self._answer(error.code, error.read(), "text/plain")

            def _answer(
                self,
                status: int,
                body: bytes,
                content_type: str,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def credentials_seen(self) -> list[str | None]:
        return [given for _, given in self.seen]


@contextmanager
def gate(
    backend: str, authorization: str | None = None, redirects: dict[str, str] | None = None
) -> Iterator[Gate]:
    running = Gate(backend, authorization, redirects)
    running.thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def private(
    repo_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> RunningServer:
    """The real server with two packages; this process sees no machine credentials."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, requires in (("cred-dep", ()), ("cred-pkg", ("cred-dep",))):
        status, body = repo_server.upload(make_wheel(wheels, name, "1.0", requires=requires))
        assert status == 201, body
    for variable in ("IPYDEPS_REPOSITORY_TOKEN", "IPYDEPS_REPOSITORY_URL", "NETRC"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return repo_server


def install(url: str, tmp_path: Path, **options: object) -> tuple[ipydeps.Result, str]:
    make_venv(tmp_path / "env")
    out = io.StringIO()
    result = ipydeps.pip(
        ["cred-pkg"],
        index_url=url,
        prefix=tmp_path / "env",
        stream=out,
        **{"upstream": "deny", **options},
    )  # type: ignore[arg-type]
    return result, out.getvalue()


def test_credentials_in_the_url_are_sent_and_never_shown(
    private: RunningServer, tmp_path: Path
) -> None:
    with gate(private.url, basic("reader", SECRET)) as repository:
        with pytest.raises(RepositoryError, match="HTTP 401") as refused:
            install(repository.url, tmp_path)
        assert SECRET not in str(refused.value)
        assert "IPYDEPS_REPOSITORY_TOKEN" in (refused.value.hint or "")
        port = repository.url.rsplit(":", 1)[1]
        result, output = install(f"http://reader:{SECRET}@127.0.0.1:{port}", tmp_path)
    assert [item.name for item in result.installed] == ["cred-dep", "cred-pkg"]
    assert basic("reader", SECRET) in repository.credentials_seen
    shown = output + repr(result) + result._repr_html_()
    assert SECRET not in shown and "reader" not in shown, shown
    assert f"(wheel from 127.0.0.1:{port.rstrip('/')})" in repr(result)
    assert run_python(tmp_path / "env" / "bin" / "python", "import cred_pkg").returncode == 0


def test_a_token_is_sent_as_bearer_and_hidden_in_the_config(
    private: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYDEPS_REPOSITORY_TOKEN", TOKEN)
    with gate(private.url, f"Bearer {TOKEN}") as repository:
        result, output = install(repository.url, tmp_path)
    assert result.ok and len(result.installed) == 2
    assert set(repository.credentials_seen) == {f"Bearer {TOKEN}"}
    settings = ipydeps.config()
    assert settings.repository_token == TOKEN
    shown = settings.describe() + repr(settings) + output
    assert TOKEN not in shown, shown
    assert "repository_token = '***'" in " ".join(settings.describe().split())


def test_the_configured_repositorys_token_never_follows_an_index_url_elsewhere(
    private: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token configured for our repository; one install names another host with -i.
    monkeypatch.setenv("IPYDEPS_REPOSITORY_TOKEN", TOKEN)
    with gate(private.url, f"Bearer {TOKEN}") as ours, gate(private.url) as elsewhere:
        monkeypatch.setenv("IPYDEPS_REPOSITORY_URL", ours.url)
        result, _ = install(elsewhere.url, tmp_path)
        assert result.ok and len(result.installed) == 2
        assert elsewhere.seen and set(elsewhere.credentials_seen) == {None}
        # The same origin given with -i (another path) still gets it.
        result, _ = install(ours.url + "simple/", tmp_path)
        assert result.ok
        assert set(ours.credentials_seen) == {f"Bearer {TOKEN}"}


def test_netrc_supplies_basic_credentials_for_the_repository_host(
    private: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\n  login netrc-user\n  password {SECRET}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with gate(private.url, basic("netrc-user", SECRET)) as repository:
        result, output = install(repository.url, tmp_path)
    assert len(result.installed) == 2 and SECRET not in output
    assert set(repository.credentials_seen) == {basic("netrc-user", SECRET)}


def test_credentials_never_reach_the_upstream_index_or_another_port_on_redirect(
    private: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cred-dep's page redirects to another port; "upstream-only" is missing from the
    # repository (404), so the planner asks the upstream index, on that other port too.
    status, body = private.upload(make_wheel(tmp_path / "wheels", "upstream-only", "1.0"))
    assert status == 201, body
    with gate(private.url) as elsewhere:
        monkeypatch.setenv("IPYDEPS_UPSTREAM_URL", elsewhere.url + "simple/")
        redirects = {
            "/simple/cred-dep/": f"{elsewhere.url}simple/cred-dep/",
            "/simple/upstream-only/": "/missing/",
        }
        with gate(private.url, basic("reader", SECRET), redirects) as repository:
            port = repository.url.rsplit(":", 1)[1]
            make_venv(tmp_path / "env")
            result = ipydeps.pip(
                ["cred-pkg", "upstream-only"],
                index_url=f"http://reader:{SECRET}@127.0.0.1:{port}",
                upstream="allow",
                prefix=tmp_path / "env",
                stream=io.StringIO(),
            )
    assert {item.name for item in result.installed} == {"cred-pkg", "cred-dep", "upstream-only"}
    assert [item.route for item in result.installed if item.name == "upstream-only"] == ["upstream"]
    assert basic("reader", SECRET) in repository.credentials_seen
    asked = [path for path, _ in elsewhere.seen]
    assert "/simple/cred-dep/" in asked and "/simple/upstream-only/" in asked, asked
    assert set(elsewhere.credentials_seen) == {None}


def test_redact_hides_passwords_and_bare_tokens_in_any_text() -> None:
    text = "GET https://alice:pw%40x@repo.example.org/simple/ then http://TOKEN@h:8080/x"
    assert redact(text) == "GET https://alice:***@repo.example.org/simple/ then http://***@h:8080/x"
    assert redact("no url here, a@b.c") == "no url here, a@b.c"


def test_repository_access_strips_the_url_and_sends_only_to_its_origin() -> None:
    access = repository_access("https://alice:pw@Repo.Example.org/", token=TOKEN, environ={})
    assert access.url == "https://Repo.Example.org/" and access.source == "url"
    expected = {"Authorization": basic("alice", "pw")}
    assert access.headers_for("https://repo.example.org:443/simple/x/") == expected
    for elsewhere in (
        "http://repo.example.org/simple/x/",
        "https://repo.example.org:8443/x",
        "https://files.example.org/x.whl",
        "https://pypi.org/simple/x/",
    ):
        assert access.headers_for(elsewhere) == {}, elsewhere
    assert "pw" not in repr(access)


def test_config_errors_and_describe_never_show_url_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IPYDEPS_REPOSITORY_URL", f"ftp://reader:{SECRET}@host/")
    with pytest.raises(ConfigError) as error:
        ipydeps.config()
    assert SECRET not in str(error.value) and "ftp://reader:***@host/" in str(error.value)
    monkeypatch.setenv("IPYDEPS_REPOSITORY_URL", f"https://reader:{SECRET}@host/")
    described = ipydeps.config().describe()
    assert SECRET not in described and "https://reader:***@host/" in described


@pytest.mark.parametrize("page", ["json", "html"])
def test_links_on_a_redirected_page_resolve_against_the_host_that_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    # Issue 15, item 7: the repository (127.0.0.1) redirects a project page to a mirror on
    # another host (127.0.0.2) whose page links to its files relatively. The files are on
    # the mirror; the repository's token stays with the repository.
    monkeypatch.setenv("IPYDEPS_REPOSITORY_TOKEN", TOKEN)
    wheel = make_wheel(
        tmp_path, "moved-pkg", "1.0", files={"moved_pkg/__init__.py": "WHERE = 'mirror'\n"}
    )
    data = wheel.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    link = f"../../files/{wheel.name}"
    if page == "json":
        body = json.dumps(
            {
                "meta": {"api-version": "1.1"},
                "name": "moved-pkg",
                "files": [{"filename": wheel.name, "url": link, "hashes": {"sha256": sha256}}],
            }
        ).encode()
        listing = Scripted(body=body, content_type="application/vnd.pypi.simple.v1+json")
    else:
        listing = Scripted(
            body=f'<a href="{link}#sha256={sha256}">{wheel.name}</a>'.encode(),
            content_type="text/html",
        )
    mirror_routes = {
        "/mirror/simple/moved-pkg/": listing,
        f"/mirror/files/{wheel.name}": Scripted(body=data),
    }
    with scripted_server(routes=mirror_routes, host="127.0.0.2") as mirror:
        moved = Scripted(302, headers={"Location": f"{mirror.url}mirror/simple/moved-pkg/"})
        with scripted_server(routes={"/simple/moved-pkg/": moved}) as repository:
            make_venv(tmp_path / "env")
            result = ipydeps.pip(
                ["moved-pkg"],
                index_url=repository.url,
                upstream="deny",
                prefix=tmp_path / "env",
                stream=io.StringIO(),
            )
    assert [(item.name, item.source) for item in result.installed] == [
        ("moved-pkg", mirror.url.split("/")[2])
    ]
    assert repository.requests == ["/simple/moved-pkg/"]
    assert f"/mirror/files/{wheel.name}" in mirror.requests
    assert {headers.get("Authorization") for headers in repository.headers} == {f"Bearer {TOKEN}"}
    assert not any("Authorization" in headers for headers in mirror.headers)
    python = tmp_path / "env" / "bin" / "python"
    assert run_python(python, "import moved_pkg; print(moved_pkg.WHERE)").stdout == "mirror\n"
