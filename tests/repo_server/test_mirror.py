"""``ipydeps-repo mirror``: import a dependency closure from an upstream index into the store."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest
from ipydeps_repo.optimize import MARKER_NAME

from tests.support.server import RunningServer, repo_cli
from tests.support.wheels import make_wheel


def publish_upstream(server: RunningServer, tmp_path: Path) -> None:
    """Make a tiny upstream index: alpha needs beta; beta ships a test suite."""
    wheels = tmp_path / "upstream-wheels"
    wheels.mkdir()
    alpha = make_wheel(wheels, "alpha", "1.0", requires=["beta>=2"])
    beta_old = make_wheel(wheels, "beta", "1.0")
    beta = make_wheel(wheels, "beta", "2.0", files={
        "beta/__init__.py": "VERSION = 2\n",
        "beta/tests/test_beta.py": "def test_it():\n    pass\n",
    })
    for wheel in (alpha, beta_old, beta):
        status, body = server.upload(wheel)
        assert status == 201, body


def mirrored_wheels(data: Path) -> list[str]:
    return sorted(path.name for path in (data / "tree" / "files").glob("*/*.whl"))


@pytest.mark.e2e
def test_mirror_imports_the_closure_optimized_and_a_second_run_is_a_no_op(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    publish_upstream(repo_server, tmp_path)
    data = tmp_path / "mirror-data"
    index = f"{repo_server.url}simple/"

    first = repo_cli("mirror", "alpha", "--index-url", index, data=data)

    assert mirrored_wheels(data) == ["alpha-1.0-py3-none-any.whl", "beta-2.0-py3-none-any.whl"]
    assert "resolved 2 wheel(s): 2 to import, 0 already in the store" in first.stdout
    assert "mirrored 2 wheel(s): 2 imported" in first.stdout
    with zipfile.ZipFile(data / "tree" / "files" / "beta" / "beta-2.0-py3-none-any.whl") as wheel:
        assert "beta/tests/test_beta.py" not in wheel.namelist()
        marker = json.loads(wheel.read(f"beta-2.0.dist-info/{MARKER_NAME}"))
    assert marker["removed_tests"]["directories"] == ["beta/tests"]
    assert marker["source"]["filename"] == "beta-2.0-py3-none-any.whl"
    page = (data / "tree" / "simple" / "beta" / "index.html").read_text()
    assert "beta-2.0-py3-none-any.whl" in page
    assert "beta-1.0" not in page
    published = {name: (data / "tree" / "files" / name.split("-")[0] / name).stat().st_mtime_ns
                 for name in mirrored_wheels(data)}

    second = repo_cli("mirror", "alpha", "--index-url", index, data=data)

    assert "resolved 2 wheel(s): 0 to import, 2 already in the store" in second.stdout
    assert "0 imported" in second.stdout
    assert {name: (data / "tree" / "files" / name.split("-")[0] / name).stat().st_mtime_ns
            for name in mirrored_wheels(data)} == published


@pytest.mark.e2e
def test_mirror_without_optimize_keeps_upstream_bytes(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    publish_upstream(repo_server, tmp_path)
    data = tmp_path / "mirror-data"
    repo_cli("mirror", "beta==1.0", "--no-optimize", "--index-url",
             f"{repo_server.url}simple/", data=data)
    name = "beta-1.0-py3-none-any.whl"
    assert (data / "tree" / "files" / "beta" / name).read_bytes() == (
        tmp_path / "upstream-wheels" / name
    ).read_bytes()


@pytest.mark.e2e
def test_mirror_for_another_python_ships_no_bytecode(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    publish_upstream(repo_server, tmp_path)
    data = tmp_path / "mirror-data"
    other = f"{sys.version_info[0]}.{sys.version_info[1] + 1}"
    done = repo_cli("mirror", "beta", "--python-version", other, "--index-url",
                    f"{repo_server.url}simple/", data=data)
    assert f"for cp{other} this host" in done.stdout
    with zipfile.ZipFile(data / "tree" / "files" / "beta" / "beta-2.0-py3-none-any.whl") as wheel:
        assert not any(name.endswith(".pyc") for name in wheel.namelist())
        assert "beta/tests/test_beta.py" not in wheel.namelist()
        assert json.loads(wheel.read(f"beta-2.0.dist-info/{MARKER_NAME}"))["bytecode"] is None


@pytest.mark.e2e
def test_unknown_project_fails_with_pips_reason(
    repo_server: RunningServer, tmp_path: Path
) -> None:
    data = tmp_path / "mirror-data"
    failed = repo_cli("mirror", "no-such-project", "--index-url", f"{repo_server.url}simple/",
                      data=data, check=False)
    assert failed.returncode == 1
    assert "error: pip could not resolve no-such-project" in failed.stderr
    assert "No matching distribution found for no-such-project" in failed.stderr
    assert ("hint: check the requirement names, the target and --index-url; only wheels are "
            "mirrored, never sdists") in failed.stderr
    assert mirrored_wheels(data) == []


def test_bad_requirement_strings_are_all_reported_and_nothing_runs(tmp_path: Path) -> None:
    data = tmp_path / "mirror-data"
    # An unreachable index: if pip ran at all, the error would be a pip error instead.
    failed = repo_cli("mirror", "six>>1", "numpy", "bad req!", "--index-url",
                      "http://127.0.0.1:9/simple/", data=data, check=False)
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert lines[0].startswith("error: the requirement list is invalid: 'six>>1': ")
    assert "'bad req!': " in lines[0]
    assert "'numpy'" not in lines[0]
    assert lines[1] == "hint: use PEP 508 strings such as 'numpy' or 'scipy>=1.13'"
    assert "resolving" not in failed.stdout


def test_bad_python_version_is_refused(tmp_path: Path) -> None:
    failed = repo_cli("mirror", "six", "--python-version", "3", data=tmp_path / "data",
                      check=False)
    assert failed.returncode == 1
    assert "'3' is not MAJOR.MINOR, e.g. 3.12" in failed.stderr


@pytest.mark.network
def test_mirror_from_pypi_for_another_target_and_again(tmp_path: Path) -> None:
    data = tmp_path / "mirror-data"
    first = repo_cli("mirror", "six", "packaging", "--python-version", "3.12",
                     "--platform", "manylinux_2_28_x86_64", data=data)
    names = mirrored_wheels(data)
    assert [name.split("-")[0] for name in names] == ["packaging", "six"]
    assert "for cp3.12 manylinux_2_28_x86_64 from https://pypi.org/simple" in first.stdout
    with zipfile.ZipFile(data / "tree" / "files" / "six" / names[1]) as wheel:
        marker = json.loads(wheel.read(f"six-{names[1].split('-')[1]}.dist-info/{MARKER_NAME}"))
        # Bytecode is version-specific: none is shipped for a Python other than the mirror's.
        if sys.version_info[:2] != (3, 12):
            assert marker["bytecode"] is None
            assert not any(name.endswith(".pyc") for name in wheel.namelist())
    second = repo_cli("mirror", "six", "packaging", "--python-version", "3.12",
                      "--platform", "manylinux_2_28_x86_64", data=data)
    assert "0 to import, 2 already in the store" in second.stdout
