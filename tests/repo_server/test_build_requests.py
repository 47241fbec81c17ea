"""The build-request endpoint on the real server (issue 21, item 3): auth, limits, hostile names.

A notebook asks the farm for a build of a project our repository lacks for its platform.
Only a token with the ``request`` right may ask; the token and the rate limits are checked
from the headers before the body; the body is small, bounded and validated; requests land
deduplicated in ``state/build-requests.json``, which survives a restart.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from ipydeps_repo.errors import ConfigurationError
from ipydeps_repo.store.build_requests import BuildRequestQueue
from ipydeps_repo.store.layout import DataLayout
from ipydeps_repo.validation.build_request import BuildRequest
from ipydeps_repo.web.rate_limit import SlidingWindow

from tests.support.pipenv import clean_pip_env
from tests.support.server import READY_PREFIX, RunningServer, repo_cli, start_server
from tests.support.wheels import make_wheel

SKLEARN = {"project": "scikit-learn", "platform_tag": "musllinux_1_2_x86_64", "python": "3.12"}


def request_token(data: Path, name: str, *extra: str) -> str:
    done = repo_cli("token", "create", name, "--request-only", *extra, data=data)
    return done.stdout.strip().splitlines()[-1]


def post(
    server: RunningServer,
    body: object,
    token: str | None,
    *,
    raw: bytes | None = None,
    chunked: bool = False,
) -> tuple[int, dict[str, str], dict[str, object]]:
    address = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode()
    try:
        if chunked:
            connection.request(
                "POST",
                "/api/v1/build-requests",
                body=iter([data]),
                headers=headers,
                encode_chunked=True,
            )
        else:
            connection.request("POST", "/api/v1/build-requests", body=data, headers=headers)
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status, headers, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def serve_again(data: Path) -> RunningServer:
    """Start the server on a data directory that has its keys and tokens already."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ipydeps_repo", "serve", "--data", str(data), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_pip_env(),
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(READY_PREFIX):
            url = line[len(READY_PREFIX) :].strip().rstrip("/") + "/"
            return RunningServer(url=url, data=data, token="", process=process)
    raise AssertionError(f"the server did not start again: {process.wait()}")


def queue_file(server: RunningServer) -> list[dict[str, object]]:
    path = server.data / "state" / "build-requests.json"
    if not path.exists():
        return []
    requests: list[dict[str, object]] = json.loads(path.read_text())["requests"]
    return requests


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path / "data",
        "--build-requests-per-token",
        "3",
        "--build-requests-per-hour",
        "5",
        "--max-build-requests",
        "4",
    )
    try:
        yield running
    finally:
        running.stop()


def test_only_a_request_token_may_ask_and_a_request_is_queued_once(
    server: RunningServer, tmp_path: Path
) -> None:
    status, headers, body = post(server, SKLEARN, None)
    assert status == 401 and "Bearer" in headers["www-authenticate"]
    # The publishing token has no business queueing builds, and the reverse.
    status, _, body = post(server, SKLEARN, server.token)
    assert status == 403 and "may not request" in str(body["error"])
    notebook = request_token(server.data, "notebook")
    status, _, body = post(server, SKLEARN, notebook)
    assert status == 201 and body["created"] is True
    assert body["request"] == {
        **SKLEARN,
        "version": "",
        "state": "queued",
        "note": "",
        "requested": body["request"]["requested"],  # type: ignore[index]
        "updated": body["request"]["updated"],  # type: ignore[index]
    }
    # The same request, spelled otherwise: one entry, counted twice.
    status, _, body = post(server, {**SKLEARN, "project": "Scikit_Learn"}, notebook)
    assert status == 200 and body["created"] is False
    [entry] = queue_file(server)
    assert entry["project"] == "scikit-learn" and entry["count"] == 2
    assert entry["requesters"] == ["notebook"]
    # Anyone may read where it stands; nobody learns who asked.
    status, _, raw = server.get("/api/v1/build-requests/Scikit-Learn")
    document = json.loads(raw)
    assert status == 200 and document["project"] == "scikit-learn"
    assert [item["state"] for item in document["requests"]] == ["queued"]
    assert "requesters" not in raw.decode() and "notebook" not in raw.decode()
    # A request-only token publishes nothing.
    wheel = make_wheel(tmp_path, "demo", "1.0")
    status, upload = server.upload(wheel, token=notebook)
    assert status == 403 and "may not upload" in str(upload["error"])
    # A token limited to projects asks for those only.
    acme = request_token(server.data, "acme", "--project", "acme-*")
    status, _, body = post(server, SKLEARN, acme)
    assert status == 403 and "may not act on project 'scikit-learn'" in str(body["error"])


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({**SKLEARN, "project": "../../etc/passwd"}, "a project name is 1-100 ASCII"),
        ({**SKLEARN, "project": "a\x00b"}, "a project name is 1-100 ASCII"),
        ({**SKLEARN, "project": "scikit-learn\n"}, "a project name is 1-100 ASCII"),
        ({**SKLEARN, "project": "sci\u212akit"}, "a project name is 1-100 ASCII"),
        ({**SKLEARN, "project": "a" * 101}, "a project name is 1-100 ASCII"),
        ({**SKLEARN, "project": ""}, "a project name is 1-100 ASCII"),
        ({**SKLEARN, "project": ["numpy"]}, "it must be a string"),
        ({**SKLEARN, "version": "1.0; rm -rf /"}, "is not a PEP 440 version"),
        ({**SKLEARN, "platform_tag": "win_amd64"}, "platform_tag must be a Linux wheel"),
        ({**SKLEARN, "python": "3.12; x"}, "python must be a Python version"),
        ({**SKLEARN, "extra": "x"}, "unknown key 'extra'"),
        (["scikit-learn"], "it must be a JSON object"),
    ],
)
def test_a_hostile_request_is_refused_and_nothing_is_queued(
    server: RunningServer, body: object, problem: str
) -> None:
    notebook = request_token(server.data, "notebook")
    status, _, answer = post(server, body, notebook)
    assert status == 400, answer
    assert problem in str(answer["error"])
    assert queue_file(server) == []
    status, _, _ = server.get("/api/v1/build-requests/..%2F..%2Fetc")
    assert status in (400, 404)


def test_a_body_over_4_kib_is_refused_before_or_while_it_arrives(server: RunningServer) -> None:
    notebook = request_token(server.data, "notebook")
    padded = json.dumps({**SKLEARN, "version": "1" + " " * 5000}).encode()
    status, _, answer = post(server, None, notebook, raw=padded)
    assert status == 413 and "limit of 4096 bytes" in str(answer["error"])
    status, _, answer = post(server, None, notebook, raw=padded, chunked=True)
    assert status == 413
    # Without a token the body is never read: 401 whatever its size.
    status, _, _ = post(server, None, None, raw=padded)
    assert status == 401
    assert queue_file(server) == []


def test_rate_limits_answer_429_with_retry_after(server: RunningServer) -> None:
    first, second = request_token(server.data, "first"), request_token(server.data, "second")
    for version in ("1.0", "1.1", "1.2"):
        assert post(server, {**SKLEARN, "version": version}, first)[0] == 201
    status, headers, answer = post(server, {**SKLEARN, "version": "1.3"}, first)
    assert status == 429
    assert 1 <= int(headers["retry-after"]) <= 3600
    assert "more than 3 build requests" in str(answer["error"])
    # Another token still may, until the limit of all tokens together (5 an hour).
    assert post(server, {**SKLEARN, "version": "1.3"}, second)[0] == 201
    assert post(server, {**SKLEARN, "version": "1.4"}, second)[0] == 429  # 4 full; open max
    status, headers, answer = post(server, {**SKLEARN, "version": "1.5"}, second)
    assert status == 429 and "more than 5 build requests" in str(answer["error"])
    assert int(headers["retry-after"]) >= 1
    assert len(queue_file(server)) == 4


def test_the_queue_is_bounded_and_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, "--max-build-requests", "2")
    try:
        notebook = request_token(data, "notebook")
        assert post(server, SKLEARN, notebook)[0] == 201
        assert post(server, {**SKLEARN, "project": "numba"}, notebook)[0] == 201
        status, headers, answer = post(server, {**SKLEARN, "project": "xgboost"}, notebook)
        assert status == 429 and "queue is full (2 open requests)" in str(answer["error"])
        assert "retry-after" in headers
        # One already queued is still counted, not refused.
        assert post(server, SKLEARN, notebook)[0] == 200
    finally:
        server.stop()
    assert not list((data / "state").glob(".tmp-*"))  # atomic writes leave no temp file
    server = serve_again(data)
    try:
        status, _, raw = server.get("/api/v1/build-requests/numba")
        assert status == 200 and json.loads(raw)["requests"][0]["state"] == "queued"
    finally:
        server.stop()


def test_a_sliding_window_frees_a_slot_as_the_oldest_request_ages_out() -> None:
    now = [1000.0]
    window = SlidingWindow(2, window=3600, clock=lambda: now[0])
    assert window.wait_for("a") == 0
    now[0] += 600
    assert window.wait_for("a") == 0
    assert window.wait_for("a") == 3000  # the first leaves the window at 1000 + 3600
    assert window.wait_for("b") == 0  # keys are counted apart
    now[0] += 3000
    assert window.wait_for("a") == 0


def test_a_damaged_queue_file_is_an_error_that_keeps_it(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.build_requests_file.parent.mkdir(parents=True)
    layout.build_requests_file.write_text('{"requests": [{"project": 1}]}')
    queue = BuildRequestQueue(layout)
    with pytest.raises(ConfigurationError, match="build-request queue .* is damaged"):
        queue.add(BuildRequest("numba", "", "musllinux_1_2_x86_64", "3.12"), "nb")
    assert layout.build_requests_file.read_text() == '{"requests": [{"project": 1}]}'
