"""A distribution is what its file name says, and its metadata can be read (issue 15, items 2, 5).

``hx_meta-3.0-py3-none-any.whl`` carrying ``requests-3.0.dist-info/`` was published by
both upload APIs, and uv then installed it as ``requests 3.0``. Every way into the store
(PUT, the legacy form, the mirror, ``wrap``) now refuses a wheel whose one ``.dist-info``
folder names another project or version, and any distribution whose Requires-Python is
not a version specifier (uv took the whole project's page for broken).
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from ipydeps_repo.errors import ValidationError
from ipydeps_repo.store.layout import DataLayout
from ipydeps_repo.store.store import Store

from tests.support.loopback import Scripted, scripted_server
from tests.support.sdists import legacy_form, make_sdist
from tests.support.server import RunningServer, repo_cli
from tests.support.wheels import make_wheel

from .test_legacy_upload import post_form

JSON = "application/vnd.pypi.simple.v1+json"


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_with_dist_info(
    directory: Path, filename: str, dist_info: str, name: str, version: str
) -> Path:
    """A wheel that is valid in every other way: METADATA names the file name's project."""
    entries = {
        f"{name.replace('-', '_')}/__init__.py": b"",
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hostile\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in entries.items())
    entries[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    path = directory / filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in entries.items():
            archive.writestr(member, data)
    return path


def impostor(directory: Path) -> Path:
    return wheel_with_dist_info(
        directory, "hx_meta-3.0-py3-none-any.whl", "requests-3.0.dist-info", "hx-meta", "3.0"
    )


IMPOSTOR_PROBLEM = (
    "the wheel's requests-3.0.dist-info names another project or version than "
    "its file name (hx-meta 3.0)"
)


def test_both_upload_apis_refuse_a_wheel_that_names_another_project(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    wheel = impostor(tmp_path)
    status, body = repo_server.upload(wheel)
    assert status == 400
    assert any(IMPOSTOR_PROBLEM in problem for problem in body["problems"]), body
    form, content_type = legacy_form(wheel)
    status, reason, text = post_form(repo_server, form, content_type)
    assert (status, IMPOSTOR_PROBLEM in text) == (400, True), text
    assert not list((repo_server.data / "tree" / "files").rglob("*.whl"))


@pytest.mark.parametrize(
    ("filename", "dist_info", "name", "version"),
    [
        ("jinja2-3.1.2-py3-none-any.whl", "Jinja2-3.1.2.dist-info", "Jinja2", "3.1.2"),
        (
            "python_dateutil-2.9.0-py3-none-any.whl",
            "python_dateutil-2.9.0.dist-info",
            "python-dateutil",
            "2.9.0",
        ),
        (
            "zope_interface-6.0-py3-none-any.whl",
            "zope.interface-6.0.0.dist-info",
            "zope.interface",
            "6.0",
        ),
    ],
)
def test_other_spellings_of_the_same_name_and_version_are_accepted(
    tmp_path: Path, filename: str, dist_info: str, name: str, version: str
) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    wheel = wheel_with_dist_info(tmp_path, filename, dist_info, name, version)
    assert store.publish_file(wheel).status == "created"


@pytest.mark.parametrize(
    ("dist_info", "problem"),
    [
        ("hx_meta-3.1.dist-info", "hx_meta-3.1.dist-info names another project or version"),
        ("hx_meta.dist-info", "hx_meta.dist-info names another project or version"),
    ],
)
def test_a_wrong_version_or_no_version_in_the_folder_is_refused(
    tmp_path: Path, dist_info: str, problem: str
) -> None:
    store = Store(DataLayout(tmp_path / "data"))
    wheel = wheel_with_dist_info(
        tmp_path, "hx_meta-3.0-py3-none-any.whl", dist_info, "hx-meta", "3.0"
    )
    with pytest.raises(ValidationError, match=problem):
        store.publish_file(wheel)


def test_wrap_refuses_a_wheel_that_names_another_project(tmp_path: Path) -> None:
    data = tmp_path / "data"
    repo_cli("keygen", "--name", "test", "--bits", "2048", data=data)
    result = repo_cli(
        "wrap", str(impostor(tmp_path)), "--output", str(tmp_path / "out"), data=data, check=False
    )
    assert result.returncode == 1
    assert IMPOSTOR_PROBLEM in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.e2e
def test_the_mirror_refuses_a_wheel_that_names_another_project(tmp_path: Path) -> None:
    # pip (which the mirror resolves and downloads with) refuses it too, before the store;
    # either refusal will do, as long as nothing is kept.
    wheel = impostor(tmp_path)
    data = wheel.read_bytes()
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read("requests-3.0.dist-info/METADATA")
    page = {
        "meta": {"api-version": "1.1"},
        "name": "hx-meta",
        "files": [
            {
                "filename": wheel.name,
                "url": f"/files/{wheel.name}",
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
            }
        ],
    }
    routes = {
        "/simple/hx-meta/": Scripted(body=json.dumps(page).encode(), content_type=JSON),
        f"/files/{wheel.name}": Scripted(body=data),
        f"/files/{wheel.name}.metadata": Scripted(body=metadata),
    }
    with scripted_server(routes=routes) as upstream:
        result = repo_cli(
            "mirror",
            "hx-meta",
            "--no-optimize",
            "--index-url",
            f"{upstream.url}simple/",
            data=tmp_path / "mirror",
            check=False,
        )
    assert result.returncode == 1
    assert "requests-3.0.dist-info" in result.stderr
    assert not list((tmp_path / "mirror" / "tree" / "files").rglob("*.whl"))


def test_the_maintainer_publish_path_refuses_a_wheel_that_names_another_project(
    tmp_path: Path,
) -> None:
    # Store.publish_file: what the mirror and the farm's --data publisher call.
    store = Store(DataLayout(tmp_path / "data"))
    with pytest.raises(ValidationError) as caught:
        store.publish_file(impostor(tmp_path))
    assert IMPOSTOR_PROBLEM in caught.value.message
    assert not list((store.layout.tree / "files").rglob("*.whl"))


@pytest.mark.parametrize("requires_python", ["3.8", ">=3.6.*", "python>=3", ">=3.8;"])
def test_an_invalid_requires_python_is_refused(
    repo_server: RunningServer, tmp_path: Path, requires_python: str
) -> None:
    problem = (
        f"Requires-Python {requires_python!r} is not a valid version specifier "
        "(PEP 440, e.g. '>=3.9' or '>=3.9,<4')"
    )
    wheel = make_wheel(tmp_path, "ipd-rp", "1.0", requires_python=requires_python)
    status, body = repo_server.upload(wheel)
    assert (status, f"METADATA {problem}" in body["problems"]) == (400, True), body
    sdist = make_sdist(tmp_path, "ipd-rp", "1.0", requires_python=requires_python)
    status, body = repo_server.upload(sdist)
    assert (status, f"PKG-INFO {problem}" in body["problems"]) == (400, True), body
    form, content_type = legacy_form(sdist)
    status, _reason, text = post_form(repo_server, form, content_type)
    assert (status, problem in text) == (400, True), text
    assert repo_server.get("simple/ipd-rp/")[0] == 404
    # A valid one, with spaces and several clauses, is published as before.
    (tmp_path / "valid").mkdir()
    valid = make_wheel(tmp_path / "valid", "ipd-rp", "1.0", requires_python=">= 3.8, != 3.9.*, < 4")
    assert repo_server.upload(valid)[0] == 201
