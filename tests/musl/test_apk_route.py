"""The apk route's content on musl: apks wrapped from the musllinux wheels, resolved, used.

``ipydeps-repo wrap`` makes apks of the NumPy, SciPy and pandas wheels that ``mirror``
seeded for musllinux (and of their dependencies); the real server indexes them. Our own
APKINDEX reader (``ipydeps.formats.apkindex``) and the planner's apk resolver
(``ipydeps.apkclosure``, which the plan table uses to show what apk adds) resolve
py3-numpy, py3-scipy and py3-pandas as apk would (provides, versioned-provide conflicts,
dependencies): they co-install, and no file belongs to two of them.
The chosen apks are then laid out under a system site-packages (a copy of the harness's
CPython prefix, as /usr on Alpine), which a musl venv made with ``--system-site-packages``
sees: imported and used, listed by pip, read by importlib.metadata. Fails when the harness
cannot be built; skips only with IPYDEPS_SKIP_MUSL=1.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipydeps.apkclosure import ApkConflict, InstalledApks, resolve_apks
from ipydeps.formats.apkindex import ApkIndexRecord, parse_apkindex, read_apkindex_archive
from tests.support.musl import link_copy, python_version
from tests.support.pipenv import clean_pip_env
from tests.support.server import RunningServer, repo_cli

# The first test builds the harness (a few minutes: downloads from PyPI and Debian, compiling)
# in its fixtures.
pytestmark = [pytest.mark.musl, pytest.mark.e2e, pytest.mark.network, pytest.mark.timeout(1800)]

WANTED = ("py3-numpy", "py3-scipy", "py3-pandas")
BASE_SYSTEM = {"so:libc.musl-x86_64.so.1"}  # with python3~X.Y: what Alpine's main provides


@dataclass(frozen=True)
class ApkRepository:
    files: dict[str, Path]  # package name -> .apk
    records: list[ApkIndexRecord]
    version: str  # X.Y of the harness


def _members(apk: Path) -> list[tarfile.TarInfo]:
    with (
        gzip.open(apk) as stream,
        tarfile.open(fileobj=stream, mode="r|", ignore_zeros=True) as archive,
    ):
        return list(archive)


@pytest.fixture(scope="module")
def apk_repository(
    musl_python: Path, musl_repository: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> ApkRepository:
    version = python_version(musl_python)
    out = tmp_path_factory.mktemp("apks")
    for wheel in sorted((musl_repository.data / "tree" / "files").glob("*/*.whl")):
        repo_cli(
            "wrap", str(wheel), "--python", version, "--output", str(out), data=musl_repository.data
        )
    files = {}
    for apk in sorted(out.glob("*.apk")):
        status, body = musl_repository.upload(apk, query="branch=v3.22&repo=sci")
        assert status == 201, body
        files[apk.name.rsplit("-", 2)[0]] = apk
    status, _, index = musl_repository.get("alpine/v3.22/sci/x86_64/APKINDEX.tar.gz")
    assert status == 200
    return ApkRepository(files, parse_apkindex(read_apkindex_archive(index)[1]), version)


@dataclass(frozen=True)
class Resolution:
    """What ``apk add`` of ``WANTED`` on a fresh root installs, leaves to the system, refuses."""

    chosen: dict[str, ApkIndexRecord]
    external: frozenset[str]
    conflicts: tuple[ApkConflict, ...]


def resolve(records: list[ApkIndexRecord], wanted: tuple[str, ...]) -> Resolution:
    """Resolve with the planner's own resolver (its unit tests show it finds conflicts)."""
    requested = {record.name: record for record in records if record.name in wanted}
    assert set(requested) == set(wanted), sorted(requested)
    resolution = resolve_apks([(name, "") for name in wanted], records, InstalledApks())
    chosen = dict(requested)
    chosen.update((a.record.name, a.record) for a in resolution.additions if a.record)
    external = frozenset(a.dependency for a in resolution.additions if a.record is None)
    return Resolution(chosen, external, resolution.conflicts)


def test_numpy_scipy_and_pandas_apks_co_install(apk_repository: ApkRepository) -> None:
    resolution: Resolution = resolve(apk_repository.records, WANTED)
    assert resolution.conflicts == ()
    assert set(WANTED) <= set(resolution.chosen)
    assert resolution.external == BASE_SYSTEM | {f"python3~{apk_repository.version}"}
    # apk also refuses two packages writing one file.
    owners: dict[str, str] = {}
    for name in resolution.chosen:
        for member in _members(apk_repository.files[name]):
            if member.isfile() and not member.name.startswith("."):
                assert member.name not in owners, (member.name, name, owners[member.name])
                owners[member.name] = name


def _lay_out(apk: Path, prefix: Path, version: str) -> None:
    """Extract an apk's files as apk would under /usr, with ``prefix`` standing for /usr."""
    with (
        gzip.open(apk) as stream,
        tarfile.open(fileobj=stream, mode="r|", ignore_zeros=True) as archive,
    ):
        for member in archive:
            if member.name.startswith(".") or member.name == "usr":
                continue  # .PKGINFO, .SIGN.*: apk's own; /usr exists
            assert member.name.startswith("usr/"), member.name
            member.name = member.name.removeprefix("usr/")
            archive.extract(member, prefix, filter="data")
    assert (prefix / "lib" / f"python{version}" / "site-packages").is_dir()


def test_laid_out_apks_import_and_show_in_pip_and_metadata(
    apk_repository: ApkRepository, musl_python: Path, tmp_path: Path
) -> None:
    resolution = resolve(apk_repository.records, WANTED)
    system = link_copy(musl_python.parent.parent, tmp_path / "usr")
    for name in resolution.chosen:
        _lay_out(apk_repository.files[name], system, apk_repository.version)
    venv = tmp_path / "venv"
    subprocess.run(
        [
            str(system / "bin" / "python3"),
            "-m",
            "venv",
            "--system-site-packages",
            "--without-pip",
            str(venv),
        ],
        check=True,
        env=clean_pip_env(),
    )
    python = str(venv / "bin" / "python")
    code = (
        "import json, numpy as np, scipy.linalg, pandas as pd, importlib.metadata as m\n"
        "x = scipy.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([9.0, 8.0]))\n"
        "frame = pd.DataFrame({'k': ['a', 'b', 'a'], 'v': [1.5, 2.0, 2.5]})\n"
        "print(json.dumps([x.round(6).tolist(), frame.groupby('k')['v'].mean().to_dict(),"
        " {d: m.version(d) for d in ('numpy', 'scipy', 'pandas')}, np.__file__]))"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=clean_pip_env())
    assert done.returncode == 0, done.stderr
    solved, means, versions, numpy_file = json.loads(done.stdout)
    assert solved == [2.0, 3.0] and means == {"a": 2.0, "b": 2.0}
    assert numpy_file.startswith(str(system / "lib"))
    for project in ("numpy", "scipy", "pandas"):
        record = resolution.chosen[f"py3-{project}"]
        assert record.version.startswith(versions[project] + "-r"), (record, versions)
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        check=True,
    ).stdout
    pip_sees = {entry["name"].lower(): entry["version"] for entry in json.loads(listed)}
    assert {p: pip_sees.get(p) for p in versions} == versions
    checked = subprocess.run(
        [python, "-m", "pip", "check"], capture_output=True, text=True, env=clean_pip_env()
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
