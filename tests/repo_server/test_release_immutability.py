"""A published release is immutable: no second spelling, no new file without the force right."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, repo_cli
from tests.support.wheels import make_wheel

from .test_hostile_uploads import snapshot


def no_force_token(server: RunningServer) -> str:
    result = repo_cli("token", "create", "ci", "--no-force", data=server.data)
    return result.stdout.splitlines()[-1]


def listed(server: RunningServer, project: str) -> set[str]:
    _, _, page = server.get(f"simple/{project}/", accept="application/vnd.pypi.simple.v1+json")
    return {item["filename"] for item in json.loads(page)["files"]}


def test_other_spellings_of_a_release_are_refused(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    token = no_force_token(repo_server)
    (tmp_path / "good").mkdir()
    (tmp_path / "evil").mkdir()
    original = make_wheel(tmp_path / "good", "six", "1.17.0")
    assert repo_server.upload(original, token=token)[0] == 201
    evil = tmp_path / "evil"
    payload = {"six/__init__.py": "import os  # the attacker's code\n"}
    capitalized = make_wheel(evil, "six", "1.17.0", files=payload).rename(
        evil / "Six-1.17.0-py3-none-any.whl"
    )
    padded = make_wheel(evil, "six", "1.17.00", files=payload)
    build_tagged = make_wheel(evil, "six", "1.17.0", files=payload, tag="1-py3-none-any")
    other_tag = make_wheel(evil, "six", "1.17.0", files=payload, tag="py2.py3-none-any")
    before = snapshot(repo_server.data)

    status, body = repo_server.upload(capitalized, token=token)
    assert status == 400
    assert body["problems"] == [
        "the project is spelled 'Six'; a wheel's file name spells it 'six' (normalized, "
        "lower case, '_' for '-' and '.')"
    ]
    assert body["hint"] == "publish it as six-1.17.0-py3-none-any.whl"
    status, body = repo_server.upload(padded, token=token)
    assert status == 400
    assert body["problems"] == [
        "the version is spelled '1.17.00'; its normal form (PEP 440) is '1.17.0'"
    ]
    for wheel in (build_tagged, other_tag):
        status, body = repo_server.upload(wheel, token=token)
        assert status == 409, wheel.name
        assert body["error"] == (
            "six 1.17.0 is already published (six-1.17.0-py3-none-any.whl); a published "
            "release does not take new files"
        )
    assert snapshot(repo_server.data) == before
    assert listed(repo_server, "six") == {original.name}

    # What pip takes for six==1.17.0 is still the maintainer's file.
    download = tmp_path / "download"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--index-url",
            f"{repo_server.url}simple/",
            "-d",
            str(download),
            "six==1.17.0",
        ],
        check=True,
        capture_output=True,
        env=clean_pip_env(),
    )
    fetched = list(download.iterdir())
    assert [path.read_bytes() for path in fetched] == [original.read_bytes()]


def test_the_force_right_may_add_files_to_a_release(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    # The default token has the force scope: a second platform's wheel goes in, but
    # different bytes under a published name still need force=1.
    first = make_wheel(tmp_path, "demo", "1.0", tag="cp312-cp312-musllinux_1_2_x86_64")
    second = make_wheel(tmp_path, "demo", "1.0", tag="cp312-cp312-musllinux_1_2_aarch64")
    assert repo_server.upload(first)[0] == 201
    assert repo_server.upload(second)[0] == 201
    variant = make_wheel(tmp_path, "demo", "1.0", tag="1-cp312-cp312-musllinux_1_2_x86_64")
    assert repo_server.upload(variant, query="force=1")[0] == 201
    assert listed(repo_server, "demo") == {first.name, second.name, variant.name}


def test_same_bytes_again_stay_unchanged_for_any_token(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    token = no_force_token(repo_server)
    wheel = make_wheel(tmp_path, "demo", "1.0")
    assert repo_server.upload(wheel, token=token)[0] == 201
    status, body = repo_server.upload(wheel, token=token)
    assert (status, body["status"]) == (200, "unchanged")
    newer = make_wheel(tmp_path, "demo", "1.1")
    assert repo_server.upload(newer, token=token)[0] == 201


def test_maintainer_paths_publish_canonically_and_may_add_variants(tmp_path: Path) -> None:
    from ipydeps_repo.errors import ConflictError
    from ipydeps_repo.store.layout import DataLayout
    from ipydeps_repo.store.store import Store

    store = Store(DataLayout(tmp_path / "data"))
    (tmp_path / "up").mkdir()
    upstream = make_wheel(tmp_path / "up", "Jinja2", "3.1.2").rename(
        tmp_path / "up" / "Jinja2-3.1.2-py3-none-any.whl"
    )
    result = store.publish_file(upstream)
    assert result.path == "files/jinja2/jinja2-3.1.2-py3-none-any.whl"
    # What the mirror does: an optimized, build-tagged variant beside upstream's file.
    variant = make_wheel(
        tmp_path,
        "jinja2",
        "3.1.2",
        tag="1-py3-none-any",
        files={"jinja2/__init__.py": "# optimized\n"},
    )
    assert store.publish_file(variant).status == "created"
    # The store's upload path (what the HTTP API calls) refuses it without the right.
    other = make_wheel(tmp_path, "jinja2", "3.1.2", tag="2-py3-none-any")
    with pytest.raises(ConflictError, match="jinja2 3.1.2 is already published"):
        store.publish(store.stage_copy(other), other.name)
    assert sorted(path.name for path in (store.layout.tree / "files" / "jinja2").glob("*.whl")) == [
        "jinja2-3.1.2-1-py3-none-any.whl",
        "jinja2-3.1.2-py3-none-any.whl",
    ]
