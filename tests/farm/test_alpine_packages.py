"""The recipes and Dockerfiles held to the package data of the Alpine branch they target.

``apkbuilds/alpine-packages/<branch>.tsv`` is names and versions only: taken from Alpine's
APKINDEX by ``scripts/alpine_packages.py`` where that index can be reached, and otherwise from
Alpine's package pages (the files say which, and list what that source did not show). The first
test is the project's check: every name a recipe's depends/makedepends/checkdepends or a
Dockerfile's ``apk add`` asks for exists in the target branch at a version the constraint
accepts, and the manifest's Python is the branch's. The rest show the check fails as it should,
on made-up data.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ipydeps_repo.apk.index import build_index
from ipydeps_repo.apk.keys import generate_key
from ipydeps_repo.errors import ConfigurationError, ValidationError
from ipydeps_repo.farm.alpine_packages import (
    BranchPackage,
    BranchPackages,
    PackageNeed,
    check_needs,
    dockerfile_needs,
    load_branch_packages,
    parse_branch_packages,
    recipe_needs,
    render_branch_packages,
    unverified_needs,
)
from ipydeps_repo.farm.manifest import load_manifest
from ipydeps_repo.farm.recipe import load_recipes

from ipydeps.formats.apkindex import ApkIndexRecord

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "apkbuilds" / "alpine-packages"
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))


def _project_needs() -> list[PackageNeed]:
    needs = recipe_needs(load_recipes(ROOT / "apkbuilds"))
    for dockerfile in DOCKERFILES:
        needs += dockerfile_needs(dockerfile)
    return needs


# What the recorded data could show neither way, per branch: the package pages it was read from
# (2026-12-06; Alpine's index was not reachable) had no page of these names for the branch.
# They are unverified, not known to exist. A refresh from the index empties the data's
# "unseen" list, and then this set must be emptied too; a new need that the data did not see
# fails below until it is looked up.
UNVERIFIED = {
    "v3.22": {
        "ca-certificates",
        "libffi-dev",
        "musl-dev",
        "openblas-dev",
        "pkgconf",
        "py3-dateutil",
        "py3-installer",
        "py3-narwhals",
        "py3-ply",
        "py3-threadpoolctl",
        "samurai",
    },
}


def test_recipes_and_dockerfiles_meet_the_target_branch() -> None:
    manifest = load_manifest(ROOT / "apkbuilds")
    alpine_targets = [t for t in manifest.targets.values() if t.kind == "alpine"]
    assert alpine_targets
    problems: list[str] = []
    for target in alpine_targets:
        data = load_branch_packages(DATA, target.branch)
        assert target.arch in data.arches or data.cross_arch, f"{data.branch} lacks {target.arch}"
        problems += check_needs(_project_needs(), data, target.arch)
        unverified = {need.name for need in unverified_needs(_project_needs(), data, target.arch)}
        if unverified != UNVERIFIED.get(data.branch, set()):
            problems.append(
                f"{target.name}: unverified {sorted(unverified)}, expected "
                f"{sorted(UNVERIFIED.get(data.branch, set()))}"
            )
        # The manifest's Python is the branch's python3 (paths usr/lib/python3.X follow it).
        pythons = {
            p.version.split(".")[0] + "." + p.version.split(".")[1]
            for p in data.candidates("python3", target.arch)
        }
        if pythons != {target.python}:
            problems.append(f"{target.name}: python {target.python}, {data.branch} has {pythons}")
    assert problems == []


def test_the_runtime_and_builder_images_name_the_manifest_branch() -> None:
    branches = {
        t.branch for t in load_manifest(ROOT / "apkbuilds").targets.values() if t.kind == "alpine"
    }
    assert len(branches) == 1
    (branch,) = branches
    for name in ("runtime.Dockerfile", "builder.Dockerfile"):
        text = (ROOT / "docker" / name).read_text()
        assert f"ARG ALPINE_VERSION={branch.removeprefix('v')}." in text, name
    runtime = (ROOT / "docker" / "runtime.Dockerfile").read_text()
    assert f"ARG IPYDEPS_APK_REPOSITORY={branch}/sci" in runtime


def test_every_recipe_and_dockerfile_name_is_found() -> None:
    names = {need.name for need in _project_needs()}
    # A few of each source, so a parser that drops a field or a Dockerfile fails here.
    assert {"openblas-dev", "python3-dev", "linux-headers", "py3-dateutil", "py3-pytest"} <= names
    assert {"abuild", "alpine-sdk", "tini", "doas", "python3-pyc", "musl-dev"} <= names
    assert "py3-numpy-dev" not in names  # built by our own recipe, not taken from the branch
    assert ".build-deps" not in names and "--no-cache" not in names


def _branch(*packages: tuple[str, str], asked: tuple[str, ...] = ()) -> BranchPackages:
    rows = tuple(BranchPackage("community", "x86_64", name, version) for name, version in packages)
    return BranchPackages(
        "v9.9", "2026-12-07", "test", frozenset(asked or [n for n, _ in packages]), rows
    )


def test_a_too_old_or_missing_package_fails_the_check() -> None:
    data = _branch(
        ("cython", "3.0.12-r0"), ("python3", "3.12.11-r0"), asked=("cython", "python3", "pythran")
    )
    needs = [
        PackageNeed("cython", ">=", "3.1.0", "py3-x/APKBUILD makedepends"),
        PackageNeed("pythran", "", "", "py3-x/APKBUILD makedepends"),
        PackageNeed("python3", "~", "3.12", "py3-x/APKBUILD depends"),
        PackageNeed("gfortran", "", "", "builder.Dockerfile"),
    ]
    problems = check_needs(needs, data, "x86_64")
    assert problems == [
        "py3-x/APKBUILD makedepends: needs cython>=3.1.0, Alpine v9.9 x86_64 has cython 3.0.12-r0",
        "py3-x/APKBUILD makedepends: pythran does not exist in Alpine v9.9 x86_64",
        "builder.Dockerfile: gfortran was not looked up when v9.9's data was taken (2026-12-07); "
        "rerun scripts/alpine_packages.py v9.9",
    ]
    newer = _branch(
        ("cython", "3.2.9-r0"),
        ("pythran", "0.19.0-r0"),
        ("python3", "3.12.12-r1"),
        ("gfortran", "15.2.0-r0"),
    )
    assert check_needs(needs, newer, "x86_64") == []
    assert check_needs(needs, newer, "aarch64")[0].endswith("does not exist in Alpine v9.9 aarch64")


def test_names_an_incomplete_source_did_not_show_are_unverified_not_missing() -> None:
    text = (
        "# branch: v9.9\n# taken: 2026-12-07\n# source: pages\n# asked: python3 openblas tini\n"
        "# cross-arch: yes\n# unseen: openblas\n"
        "repo\tarch\tname\tversion\tprovides\n"
        "main\ts390x\tpython3\t3.12.12-r0\t\n"
    )
    data = parse_branch_packages(text, "test")
    needs = [
        PackageNeed("python3", "~", "3.12", "r depends"),
        PackageNeed("openblas", "", "", "r depends"),
        PackageNeed("tini", "", "", "x.Dockerfile"),
    ]
    # python3 is shown on another arch: it stands for the branch; tini was looked for and
    # is not there; openblas the source did not show: unverified, not reported as missing.
    assert check_needs(needs, data, "x86_64") == [
        "x.Dockerfile: tini does not exist in Alpine v9.9 x86_64"
    ]
    assert [str(n) for n in unverified_needs(needs, data, "x86_64")] == ["openblas"]
    assert parse_branch_packages(render_branch_packages(data), "again") == data
    # Too old on another arch is still too old.
    needs[0] = PackageNeed("python3", ">=", "3.13", "r depends")
    assert check_needs(needs[:1], data, "aarch64") == [
        "r depends: needs python3>=3.13, Alpine v9.9 aarch64 has python3 3.12.12-r0"
    ]


def test_a_provided_name_counts(tmp_path: Path) -> None:
    text = (
        "# branch: v9.9\n# taken: 2026-12-07\n# source: test\n# asked: ninja samurai\n"
        "repo\tarch\tname\tversion\tprovides\n"
        "main\tx86_64\tsamurai\t1.2-r7\tninja\n"
    )
    data = parse_branch_packages(text, "test")
    assert check_needs([PackageNeed("ninja", "", "", "r")], data, "x86_64") == []
    assert render_branch_packages(data).endswith("main\tx86_64\tsamurai\t1.2-r7\tninja\n")
    assert parse_branch_packages(render_branch_packages(data), "again") == data


def test_the_recipe_parser_feeds_versioned_needs(tmp_path: Path) -> None:
    recipe = tmp_path / "py3-demo"
    recipe.mkdir()
    (recipe / "APKBUILD").write_text(
        'pkgname=py3-demo\npkgver=1.0\npkgrel=0\ndepends="python3 py3-other"\n'
        'makedepends="cython>=3.1.0 meson>=1.2.3 $pkgname-dev"\ncheckdepends="py3-pytest"\n'
        'subpackages="$pkgname-dev"\nsource="demo-1.0.tar.gz"\nsha512sums="\n'
        + "0" * 128
        + '  demo-1.0.tar.gz\n"\n'
    )
    needs = recipe_needs(load_recipes(tmp_path))
    assert [str(n) for n in needs] == [
        "python3",
        "py3-other",
        "cython>=3.1.0",
        "meson>=1.2.3",
        "py3-pytest",
    ]
    data = _branch(
        ("python3", "3.12.0-r0"),
        ("py3-other", "1-r0"),
        ("cython", "3.0.12-r0"),
        ("meson", "1.8.2-r0"),
        ("py3-pytest", "8.0-r0"),
    )
    assert check_needs(needs, data, "x86_64") == [
        "py3-demo/APKBUILD makedepends: needs cython>=3.1.0, Alpine v9.9 x86_64 has "
        "cython 3.0.12-r0"
    ]


def test_dockerfile_apk_add_lines_are_read(tmp_path: Path) -> None:
    dockerfile = tmp_path / "x.Dockerfile"
    dockerfile.write_text(
        "FROM alpine\n# apk add commented-out\nRUN set -eux; \\\n    apk add --no-cache \\\n"
        "        python3 \\\n    ; \\\n    apk add --no-cache --virtual .build-deps \\\n"
        "        gcc \\\n        musl-dev \\\n    ; \\\n    pip install numpy && apk add tini\n"
    )
    assert [str(n) for n in dockerfile_needs(dockerfile)] == ["python3", "gcc", "musl-dev", "tini"]


def test_missing_or_broken_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no package data for Alpine v9.9"):
        load_branch_packages(tmp_path, "v9.9")
    (tmp_path / "v9.9.tsv").write_text("# branch: v9.9\nmain\tx86_64\tpython3\tnot a version\n")
    with pytest.raises(ValidationError) as raised:
        load_branch_packages(tmp_path, "v9.9")
    assert "invalid apk version 'not a version'" in str(raised.value)
    assert "header '# taken:' is missing" in str(raised.value)


def test_the_refresh_script_reads_a_mirror(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    key = generate_key("test", bits=2048)
    rows = {
        "main": [("python3", "3.12.12-r0", ()), ("musl", "1.2.5-r10", ())],
        "community": [
            ("samurai", "1.2-r7", ("ninja=1.12.1", "cmd:samu=1.2-r7")),
            ("cython", "3.2.4-r0", ()),
        ],
    }
    for repo, packages in rows.items():
        records = [
            ApkIndexRecord(
                checksum="Q1" + "A" * 27 + "=",
                name=name,
                version=version,
                arch="x86_64",
                provides=provides,
            )
            for name, version, provides in packages
        ]
        folder = mirror / "v9.9" / repo / "x86_64"
        folder.mkdir(parents=True)
        (folder / "APKINDEX.tar.gz").write_bytes(build_index(records, key, arch="x86_64"))
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "alpine_packages.py"),
            "v9.9",
            "--mirror",
            mirror.as_uri(),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    data = load_branch_packages(tmp_path / "out", "v9.9")
    # Only names the project uses are kept (musl is not one); samurai is kept as ninja's provider.
    assert {(p.repo, p.name, p.version, p.provides) for p in data.packages} == {
        ("main", "python3", "3.12.12-r0", ()),
        ("community", "samurai", "1.2-r7", ("ninja",)),
        ("community", "cython", "3.2.4-r0", ()),
    }
    assert {"python3", "cython", "openblas-dev", "abuild"} <= data.asked
    assert data.source == f"{mirror.as_uri()}/v9.9/{{main,community}}/{{x86_64}}/APKINDEX.tar.gz"
