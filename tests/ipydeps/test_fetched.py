"""Without PEP 658 metadata each wheel is downloaded once: planning's copy is what installs."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest

import ipydeps
from tests.support.loopback import Scripted, scripted_server
from tests.support.venvs import make_venv, run_python
from tests.support.wheels import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(autouse=True)
def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPYDEPS_RETRIES", "1")
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)


def _routes_without_metadata(*wheels: Path, html: bool = False) -> dict[str, Scripted]:
    """A PEP 691 (or 503) index of ``wheels`` that serves no ``.metadata`` file (404s)."""
    routes: dict[str, Scripted] = {}
    for wheel in wheels:
        data = wheel.read_bytes()
        project = wheel.name.split("-")[0].replace("_", "-")
        sha256 = hashlib.sha256(data).hexdigest()
        routes[f"/files/{wheel.name}"] = Scripted(body=data)
        if html:
            page = (f'<a href="/files/{wheel.name}#sha256={sha256}">{wheel.name}</a>').encode()
            routes[f"/simple/{project}/"] = Scripted(body=page, content_type="text/html")
            continue
        entry = {
            "filename": wheel.name,
            "url": f"/files/{wheel.name}",
            "hashes": {"sha256": sha256},
            "size": len(data),
        }
        body = json.dumps({"meta": {"api-version": "1.1"}, "name": project, "files": [entry]})
        routes[f"/simple/{project}/"] = Scripted(body=body.encode(), content_type=JSON)
    return routes


@pytest.mark.parametrize("page", ["json", "html"])
def test_each_wheel_is_downloaded_once_without_pep_658_metadata(tmp_path: Path, page: str) -> None:
    python = make_venv(tmp_path / "env")
    app = make_wheel(
        tmp_path,
        "fetch-app",
        "1.0",
        requires=["fetch-lib>=1"],
        files={"fetch_app/__init__.py": "from fetch_lib import VALUE\n"},
    )
    lib = make_wheel(
        tmp_path, "fetch-lib", "2.0", files={"fetch_lib/__init__.py": "VALUE = 'lib 2.0'\n"}
    )
    with scripted_server(routes=_routes_without_metadata(app, lib, html=page == "html")) as server:
        result = ipydeps.pip(
            ["fetch-app"],
            index_url=server.url + "simple/",
            upstream="deny",
            prefix=tmp_path / "env",
            stream=io.StringIO(),
        )
    assert [(item.name, item.version) for item in result.installed] == [
        ("fetch-lib", "2.0"),
        ("fetch-app", "1.0"),
    ]
    asked = Counter(server.requests)
    # Planning reads each wheel for its dependencies; the install takes that copy.
    assert asked[f"/files/{app.name}"] == 1
    assert asked[f"/files/{lib.name}"] == 1
    assert run_python(python, "import fetch_app; print(fetch_app.VALUE)").stdout == "lib 2.0\n"


def test_a_dry_run_reads_each_wheel_once_and_keeps_nothing(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    lib = make_wheel(tmp_path, "fetch-lib", "2.0")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with (
        scripted_server(routes=_routes_without_metadata(lib)) as server,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("TMPDIR", str(scratch))
        import tempfile

        patch.setattr(tempfile, "tempdir", None)  # the standard library's cache of TMPDIR
        ipydeps.pip(
            ["fetch-lib"],
            index_url=server.url + "simple/",
            upstream="deny",
            prefix=tmp_path / "env",
            stream=io.StringIO(),
            dry_run=True,
        )
        assert list(scratch.iterdir()) == []  # the copy read for planning is gone
    assert Counter(server.requests)[f"/files/{lib.name}"] == 1
