"""``ipydeps-repo mirror``: a faithful copy of upstream's files plus optimized variants.

The upstream index is a static PEP 691 index on 127.0.0.1 (JSON pages with PEP 700 upload
times and PEP 658 metadata, as PyPI serves them); pip, uv and ipydeps then install from
the real repository server over the mirrored data directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ipydeps_repo.store.layout import DataLayout
from ipydeps_repo.store.store import Store
from ipydeps_repo.upstream.optimize import MARKER_NAME, OptimizeOptions, optimize_wheel
from packaging.utils import canonicalize_name

import ipydeps
from tests.support.loopback import Scripted, ScriptedServer, scripted_server
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, repo_cli, start_server
from tests.support.venvs import make_venv, real_pip, site_packages
from tests.support.wheels import make_wheel, wheel_metadata

JSON = "application/vnd.pypi.simple.v1+json"
ALPHA = "alpha-1.0-py3-none-any.whl"
BETA_1 = "beta-1.0-py3-none-any.whl"
BETA_2 = "beta-2.0-py3-none-any.whl"
BETA_2_OPTIMIZED = "beta-2.0-1ipydeps-py3-none-any.whl"
# Upstream's PEP 700 upload times: beta 2.0 came out after 2022, the others before.
UPLOADED = {
    ALPHA: "2021-03-04T05:06:07.123456Z",
    BETA_1: "2020-01-02T03:04:05Z",
    BETA_2: "2023-06-07T08:09:10.654321Z",
}


def upstream_wheels(directory: Path) -> dict[str, Path]:
    """Alpha needs beta>=2; beta 2.0 ships a test suite."""
    directory.mkdir()
    wheels = [
        make_wheel(directory, "alpha", "1.0", requires=["beta>=2"]),
        make_wheel(directory, "beta", "1.0"),
        make_wheel(
            directory,
            "beta",
            "2.0",
            files={
                "beta/__init__.py": "VERSION = 2\n",
                "beta/tests/test_beta.py": "def test_it():\n    pass\n",
            },
        ),
    ]
    return {wheel.name: wheel for wheel in wheels}


def upstream_routes(wheels: dict[str, Path], *, json_pages: bool = True) -> dict[str, Scripted]:
    """PyPI-like routes: /simple/<project>/ (JSON or HTML), files and their metadata."""
    routes: dict[str, Scripted] = {}
    pages: dict[str, list[dict[str, object]]] = {}
    links: dict[str, str] = {}
    for name, path in wheels.items():
        data, metadata = path.read_bytes(), wheel_metadata(path)
        routes[f"/files/{name}"] = Scripted(body=data)
        routes[f"/files/{name}.metadata"] = Scripted(body=metadata)
        project = canonicalize_name(name.split("-")[0])
        links[project] = links.get(project, "") + (
            f'<a href="/files/{name}#sha256={hashlib.sha256(data).hexdigest()}">{name}</a>\n'
        )
        pages.setdefault(project, []).append(
            {
                "filename": name,
                "url": f"/files/{name}",
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "size": len(data),
                "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
                "upload-time": UPLOADED[name],
            }
        )
    for project, files in pages.items():
        if json_pages:
            page = {"meta": {"api-version": "1.1"}, "name": project, "files": files}
            routes[f"/simple/{project}/"] = Scripted(
                body=json.dumps(page).encode(), content_type=JSON
            )
        else:
            routes[f"/simple/{project}/"] = Scripted(
                body=f"<!DOCTYPE html><html><body>{links[project]}</body></html>".encode(),
                content_type="text/html",
            )
    return routes


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[ScriptedServer, dict[str, Path]]]:
    wheels = upstream_wheels(tmp_path / "upstream-wheels")
    with scripted_server(routes=upstream_routes(wheels)) as server:
        yield server, wheels


def mirror(server: ScriptedServer, data: Path, *args: str, check: bool = True) -> tuple[str, str]:
    done = repo_cli("mirror", *args, "--index-url", f"{server.url}simple/", data=data, check=check)
    return done.stdout, done.stderr


def mirrored_wheels(data: Path) -> list[str]:
    return sorted(path.name for path in (data / "tree" / "files").glob("*/*.whl"))


def page_entries(data: Path, project: str) -> dict[str, dict[str, object]]:
    page = json.loads((data / "tree" / "simple" / project / "index.json").read_text())
    return {entry["filename"]: entry for entry in page["files"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.e2e
def test_mirror_keeps_upstreams_files_and_adds_optimized_variants(
    upstream: tuple[ScriptedServer, dict[str, Path]], tmp_path: Path
) -> None:
    server, wheels = upstream
    data = tmp_path / "mirror-data"

    first, _ = mirror(server, data, "alpha")

    assert mirrored_wheels(data) == [
        "alpha-1.0-1ipydeps-py3-none-any.whl",
        ALPHA,
        BETA_2_OPTIMIZED,
        BETA_2,
    ]
    assert "resolved 2 wheel(s): 2 to import, 0 already in the store" in first
    files = data / "tree" / "files" / "beta"
    # Upstream's file: same bytes, so the same sha256 any lock file holds.
    assert (files / BETA_2).read_bytes() == wheels[BETA_2].read_bytes()
    with zipfile.ZipFile(files / BETA_2_OPTIMIZED) as wheel:
        assert "beta/tests/test_beta.py" not in wheel.namelist()
        marker = json.loads(wheel.read(f"beta-2.0.dist-info/{MARKER_NAME}"))
        assert "Build: 1ipydeps" in wheel.read("beta-2.0.dist-info/WHEEL").decode()
    assert marker["source"] == {"filename": BETA_2, "sha256": sha256(wheels[BETA_2])}
    assert marker["removed_tests"]["directories"] == ["beta/tests"]
    entries = page_entries(data, "beta")
    assert entries[BETA_2]["hashes"] == {"sha256": sha256(wheels[BETA_2])}
    # Both carry upstream's PEP 700 upload time, to the microsecond.
    assert entries[BETA_2]["upload-time"] == UPLOADED[BETA_2]
    assert entries[BETA_2_OPTIMIZED]["upload-time"] == UPLOADED[BETA_2]
    assert page_entries(data, "alpha")[ALPHA]["upload-time"] == UPLOADED[ALPHA]
    # The variant has its PEP 658 metadata and its stored copy (ipydeps' fast path).
    assert (files / f"{BETA_2_OPTIMIZED}.metadata").read_bytes() == wheel_metadata(wheels[BETA_2])
    stored = entries[BETA_2_OPTIMIZED]["_ipydeps-stored"]
    assert isinstance(stored, dict)
    assert stored["hashes"] == {"sha256": sha256(files / f"{BETA_2_OPTIMIZED}.stored")}
    # ipydeps installs the variant, so upstream's file gets no stored copy (disk).
    assert "_ipydeps-stored" not in entries[BETA_2]
    assert not (files / f"{BETA_2}.stored").exists()
    html = (data / "tree" / "simple" / "beta" / "index.html").read_text()
    assert f"{BETA_2}#sha256={sha256(wheels[BETA_2])}" in html
    assert "beta-1.0" not in html
    published = {
        path.name: path.stat().st_mtime_ns for path in (data / "tree" / "files").glob("*/*.whl")
    }

    second, _ = mirror(server, data, "alpha")

    assert "resolved 2 wheel(s): 0 to import, 2 already in the store" in second
    assert "0 imported" in second
    assert {
        path.name: path.stat().st_mtime_ns for path in (data / "tree" / "files").glob("*/*.whl")
    } == published


@pytest.fixture
def mirrored(
    upstream: tuple[ScriptedServer, dict[str, Path]], tmp_path: Path
) -> Iterator[tuple[RunningServer, dict[str, Path]]]:
    """A repository server over a mirror of alpha (so beta 2.0) and of beta 1.0."""
    server, wheels = upstream
    data = tmp_path / "mirror-data"
    mirror(server, data, "alpha")
    mirror(server, data, "beta==1.0")
    repository = start_server(data)
    try:
        yield repository, wheels
    finally:
        repository.stop()


def installed_optimized(venv: Path, project: str, version: str) -> bool:
    """Whether the installed distribution came from the optimized variant (its marker)."""
    dist_info = site_packages(venv) / f"{project}-{version}.dist-info"
    assert dist_info.is_dir(), f"{project} {version} is not installed"
    return (dist_info / MARKER_NAME).is_file()


def pip_install(venv: Path, index: str, tmp_path: Path, *args: str) -> list[str]:
    """Install with real pip (machine defaults cleared); return the downloaded file names."""
    report = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    done = real_pip(
        venv / "bin" / "python",
        "install",
        "--no-cache-dir",
        "--index-url",
        index,
        "--report",
        str(report),
        *args,
    )
    assert done.returncode == 0, done.stderr
    return [
        item["download_info"]["url"].rsplit("/", 1)[-1]
        for item in json.loads(report.read_text())["install"]
    ]


@pytest.mark.e2e
def test_pip_takes_upstreams_file_with_hashes_and_the_optimized_one_without(
    mirrored: tuple[RunningServer, dict[str, Path]], tmp_path: Path
) -> None:
    repository, wheels = mirrored
    index = f"{repository.url}simple/"
    pinned = tmp_path / "pinned.txt"
    pinned.write_text(f"beta==2.0 --hash=sha256:{sha256(wheels[BETA_2])}\n")
    locked = tmp_path / "locked"
    make_venv(locked)

    assert pip_install(locked, index, tmp_path, "--require-hashes", "-r", str(pinned)) == [BETA_2]
    assert not installed_optimized(locked, "beta", "2.0")

    free = tmp_path / "free"
    make_venv(free)
    assert pip_install(free, index, tmp_path, "alpha") == [
        "alpha-1.0-1ipydeps-py3-none-any.whl",
        BETA_2_OPTIMIZED,
    ]
    assert installed_optimized(free, "beta", "2.0")


def uv_binary() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (it is in the test extras)")
    return found


def uv_install(venv: Path, index: str, *args: str) -> None:
    done = subprocess.run(
        [
            uv_binary(),
            "pip",
            "install",
            "--no-cache",
            "--python",
            str(venv / "bin" / "python"),
            "--index-url",
            index,
            *args,
        ],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.e2e
def test_uv_takes_upstreams_file_when_hashed_and_respects_upstreams_upload_time(
    mirrored: tuple[RunningServer, dict[str, Path]], tmp_path: Path
) -> None:
    repository, wheels = mirrored
    index = f"{repository.url}simple/"
    pinned = tmp_path / "pinned.txt"
    pinned.write_text(f"beta==2.0 --hash=sha256:{sha256(wheels[BETA_2])}\n")

    locked = tmp_path / "locked"
    make_venv(locked)
    uv_install(locked, index, "--require-hashes", "-r", str(pinned))
    assert not installed_optimized(locked, "beta", "2.0")
    # Hashes in the file without --require-hashes (as `uv pip sync` of a compiled lock).
    hashed = tmp_path / "hashed"
    make_venv(hashed)
    uv_install(hashed, index, "-r", str(pinned))
    assert not installed_optimized(hashed, "beta", "2.0")

    free = tmp_path / "free"
    make_venv(free)
    uv_install(free, index, "beta")
    assert installed_optimized(free, "beta", "2.0")

    # Upstream uploaded beta 2.0 in 2023: as of 2022 the newest beta is 1.0 (optimized).
    dated = tmp_path / "dated"
    make_venv(dated)
    uv_install(dated, index, "--exclude-newer", "2022-01-01T00:00:00Z", "beta")
    assert installed_optimized(dated, "beta", "1.0")
    assert not (site_packages(dated) / "beta-2.0.dist-info").exists()


@pytest.mark.e2e
def test_ipydeps_installs_the_optimized_variant_from_its_stored_copy(
    mirrored: tuple[RunningServer, dict[str, Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IPYDEPS_STORED_COPIES", raising=False)
    repository, _ = mirrored
    make_venv(tmp_path / "env")
    result = ipydeps.pip(
        ["beta"],
        index_url=f"{repository.url}simple/",
        upstream="deny",
        prefix=tmp_path / "env",
        stream=io.StringIO(),
    )
    assert [step.candidate.filename for step in result.plan.steps] == [BETA_2_OPTIMIZED]
    copy = repository.data / "tree" / "files" / "beta" / f"{BETA_2_OPTIMIZED}.stored"
    assert [(item.name, item.stored_copy, item.bytes) for item in result.installed] == [
        ("beta", True, copy.stat().st_size)
    ]
    assert installed_optimized(tmp_path / "env", "beta", "2.0")


@pytest.mark.e2e
def test_an_older_stores_optimized_bytes_under_upstreams_name_are_put_right(
    upstream: tuple[ScriptedServer, dict[str, Path]], tmp_path: Path
) -> None:
    server, wheels = upstream
    data = tmp_path / "mirror-data"
    # What mirror did before: optimized bytes published under upstream's file name.
    report = optimize_wheel(wheels[BETA_2], tmp_path / "old", OptimizeOptions())
    Store(DataLayout(data)).publish_file(report.output, filename=BETA_2)
    (tmp_path / "own").mkdir()
    foreign = make_wheel(
        tmp_path / "own", "alpha", "1.0", requires=["beta>=2"], summary="our own build"
    )
    Store(DataLayout(data)).publish_file(foreign)

    out, _ = mirror(server, data, "alpha")

    files = data / "tree" / "files"
    assert (files / "beta" / BETA_2).read_bytes() == wheels[BETA_2].read_bytes()
    assert (files / "beta" / BETA_2_OPTIMIZED).is_file()
    assert page_entries(data, "beta")[BETA_2]["upload-time"] == UPLOADED[BETA_2]
    # A file of upstream's name that the mirror did not make is the store's to keep.
    assert (files / "alpha" / ALPHA).read_bytes() == foreign.read_bytes()
    assert f"{ALPHA}: kept the store's own file, which is not upstream's" in out
    assert "resolved 2 wheel(s): 1 to import, 0 already in the store" in out


@pytest.mark.e2e
def test_no_optimize_publishes_upstreams_files_only_and_a_later_run_adds_variants(
    upstream: tuple[ScriptedServer, dict[str, Path]], tmp_path: Path
) -> None:
    server, wheels = upstream
    data = tmp_path / "mirror-data"
    # The first run reads an HTML index (no upload times), as a mirror from before did.
    with scripted_server(routes=upstream_routes(wheels, json_pages=False)) as html:
        mirror(html, data, "beta==1.0", "--no-optimize")
    files = data / "tree" / "files" / "beta"
    assert mirrored_wheels(data) == [BETA_1]
    assert (files / BETA_1).read_bytes() == wheels[BETA_1].read_bytes()
    assert (files / f"{BETA_1}.stored").is_file()
    assert page_entries(data, "beta")[BETA_1]["upload-time"] != UPLOADED[BETA_1]

    out, _ = mirror(server, data, "beta==1.0", "--compression", "stored")

    assert "1 to import" in out
    assert "0.0 MB downloaded" in out  # optimized from the store's own copy of upstream's file
    variant = files / "beta-1.0-1ipydeps-py3-none-any.whl"
    with zipfile.ZipFile(variant) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
    entries = page_entries(data, "beta")
    assert entries[variant.name]["upload-time"] == UPLOADED[BETA_1]
    # Upstream's file had the mirror's time: now it has upstream's.
    assert entries[BETA_1]["upload-time"] == UPLOADED[BETA_1]
    # The stored copy moved to the variant (a hard link: the variant is stored already).
    assert not (files / f"{BETA_1}.stored").exists()
    assert (files / f"{variant.name}.stored").stat().st_ino == variant.stat().st_ino


@pytest.mark.e2e
def test_an_old_style_upstream_name_is_stored_in_the_specs_spelling_with_upstreams_bytes(
    tmp_path: Path,
) -> None:
    (tmp_path / "up").mkdir()
    made = make_wheel(tmp_path / "up", "Gamma.Pkg", "1.0")
    # As PyYAML-6.0.2-... on PyPI: the project spelled as its author wrote it.
    upstream_file = made.rename(made.with_name("Gamma.Pkg-1.0-py3-none-any.whl"))
    UPLOADED[upstream_file.name] = "2019-05-06T07:08:09.100000Z"
    data = tmp_path / "mirror-data"
    try:
        with scripted_server(routes=upstream_routes({upstream_file.name: upstream_file})) as up:
            mirror(up, data, "gamma-pkg")
    finally:
        del UPLOADED[upstream_file.name]
    assert mirrored_wheels(data) == [
        "gamma_pkg-1.0-1ipydeps-py3-none-any.whl",
        "gamma_pkg-1.0-py3-none-any.whl",
    ]
    stored = data / "tree" / "files" / "gamma-pkg" / "gamma_pkg-1.0-py3-none-any.whl"
    assert stored.read_bytes() == upstream_file.read_bytes()
    assert page_entries(data, "gamma-pkg")[stored.name]["upload-time"] == (
        "2019-05-06T07:08:09.100000Z"
    )


@pytest.mark.e2e
def test_an_html_upstream_gives_no_upload_times_and_the_mirror_says_so(tmp_path: Path) -> None:
    wheels = upstream_wheels(tmp_path / "upstream-wheels")
    with scripted_server(routes=upstream_routes(wheels, json_pages=False)) as server:
        out, _ = mirror(server, tmp_path / "data", "beta==1.0")
    assert (
        "upstream lists no upload time for 1 wheel(s) (an HTML index?): they are listed "
        "with the time they were mirrored"
    ) in out
    assert mirrored_wheels(tmp_path / "data") == ["beta-1.0-1ipydeps-py3-none-any.whl", BETA_1]


@pytest.mark.e2e
def test_mirror_for_another_python_ships_no_bytecode(
    upstream: tuple[ScriptedServer, dict[str, Path]], tmp_path: Path
) -> None:
    server, _ = upstream
    data = tmp_path / "mirror-data"
    other = f"{sys.version_info[0]}.{sys.version_info[1] + 1}"
    out, _ = mirror(server, data, "beta", "--python-version", other)
    assert f"for cp{other} this host" in out
    with zipfile.ZipFile(data / "tree" / "files" / "beta" / BETA_2_OPTIMIZED) as wheel:
        assert not any(name.endswith(".pyc") for name in wheel.namelist())
        assert "beta/tests/test_beta.py" not in wheel.namelist()
        assert json.loads(wheel.read(f"beta-2.0.dist-info/{MARKER_NAME}"))["bytecode"] is None


@pytest.mark.e2e
def test_unknown_project_fails_with_pips_reason(
    upstream: tuple[ScriptedServer, dict[str, Path]], tmp_path: Path
) -> None:
    server, _ = upstream
    data = tmp_path / "mirror-data"
    failed = repo_cli(
        "mirror", "no-such-project", "--index-url", f"{server.url}simple/", data=data, check=False
    )
    assert failed.returncode == 1
    assert "error: pip could not resolve no-such-project" in failed.stderr
    assert "No matching distribution found for no-such-project" in failed.stderr
    assert (
        "hint: check the requirement names, the target and --index-url; only wheels are "
        "mirrored, never sdists"
    ) in failed.stderr
    assert mirrored_wheels(data) == []


def test_bad_requirement_strings_are_all_reported_and_nothing_runs(tmp_path: Path) -> None:
    data = tmp_path / "mirror-data"
    # An unreachable index: if pip ran at all, the error would be a pip error instead.
    failed = repo_cli(
        "mirror",
        "six>>1",
        "numpy",
        "bad req!",
        "--index-url",
        "http://127.0.0.1:9/simple/",
        data=data,
        check=False,
    )
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert lines[0].startswith("error: the requirement list is invalid: 'six>>1': ")
    assert "'bad req!': " in lines[0]
    assert "'numpy'" not in lines[0]
    assert lines[1] == "hint: use PEP 508 strings such as 'numpy' or 'scipy>=1.13'"
    assert "resolving" not in failed.stdout


def test_bad_python_version_is_refused(tmp_path: Path) -> None:
    failed = repo_cli("mirror", "six", "--python-version", "3", data=tmp_path / "data", check=False)
    assert failed.returncode == 1
    assert "'3' is not MAJOR.MINOR, e.g. 3.12" in failed.stderr


@pytest.mark.network
def test_mirror_from_pypi_keeps_pypis_hash_and_upload_time(tmp_path: Path) -> None:
    data = tmp_path / "mirror-data"
    first = repo_cli(
        "mirror",
        "six==1.17.0",
        "--python-version",
        "3.12",
        "--platform",
        "manylinux_2_28_x86_64",
        data=data,
    )
    assert "for cp3.12 manylinux_2_28_x86_64 from https://pypi.org/simple" in first.stdout
    assert mirrored_wheels(data) == [
        "six-1.17.0-1ipydeps-py2.py3-none-any.whl",
        "six-1.17.0-py2.py3-none-any.whl",
    ]
    entry = page_entries(data, "six")["six-1.17.0-py2.py3-none-any.whl"]
    # PyPI's own values for six 1.17.0 (tests/ipydeps/data/pypi-six.json).
    assert entry["hashes"] == {
        "sha256": "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
    }
    assert entry["upload-time"] == "2024-12-04T17:35:26.475808Z"
    second = repo_cli(
        "mirror",
        "six==1.17.0",
        "--python-version",
        "3.12",
        "--platform",
        "manylinux_2_28_x86_64",
        data=data,
    )
    assert "0 to import, 1 already in the store" in second.stdout
