"""check-updates: recipe versions against PyPI (recorded responses), exit codes and --bump."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ipydeps_repo.errors import BuildError, ValidationError
from ipydeps_repo.farm.freshness import check_updates, compare, rewrite_recipe
from ipydeps_repo.farm.recipe import load_recipe
from ipydeps_repo.farm.upstream import Release, choose_host_release, newest_release, parse_releases

from tests.farm.helpers import make_sdist, write_json_api, write_recipes

ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).resolve().parent / "data" / "pypi"


def _recorded(project: str) -> tuple[list[Release], str]:
    data = json.loads((RECORDED / project / "json").read_text())
    return parse_releases(project, data, f"https://pypi.org/pypi/{project}/json"), data["info"][
        "version"
    ]


def _farm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipydeps_repo.farm", *args], capture_output=True, text=True
    )


@pytest.mark.parametrize("project", ["numpy", "scipy", "pandas"])
def test_newest_final_release_matches_pypi_own_answer(project: str) -> None:
    releases, pypi_says = _recorded(project)
    check = compare(f"py3-{project}", project, "0.1", releases)
    assert check.newest == pypi_says
    assert check.outdated
    assert not compare(f"py3-{project}", project, pypi_says, releases).outdated


def test_prereleases_and_yanked_are_skipped() -> None:
    def release(version: str) -> Release:
        return Release("demo", version, f"demo-{version}.tar.gz", "u", "0" * 64, "")

    releases = [release("1.0"), release("1.1"), release("2.0rc1"), release("2.0.dev3")]
    check = compare("py3-demo", "demo", "1.0", releases)
    assert (check.newest, check.outdated) == ("1.1", True)
    assert not compare("py3-demo", "demo", "1.1", releases).outdated
    data = {
        "releases": {
            "3.0": [
                {
                    "packagetype": "sdist",
                    "filename": "demo-3.0.tar.gz",
                    "url": "x",
                    "digests": {"sha256": "0"},
                    "yanked": True,
                }
            ]
        }
    }
    assert parse_releases("demo", data, "https://pypi.org/pypi/demo/json") == []


def test_requires_python_picks_the_newest_release_for_an_older_python() -> None:
    releases, _ = _recorded("numpy")
    newest_for_311 = newest_release(releases, python_version="3.11")
    assert newest_for_311 is not None
    assert newest_for_311.supports_python("3.11")
    newer = [r for r in releases if r.version > newest_for_311.version and "rc" not in r.version]
    assert all(not r.supports_python("3.11") for r in newer)


def test_relative_file_urls_are_resolved() -> None:
    releases, _ = _recorded("numpy")
    assert all(r.sdist_url.startswith("https://") for r in releases)


def test_rewrite_recipe_changes_version_release_and_checksum(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "apkbuilds" / "py3-numpy", tmp_path / "py3-numpy")
    path = tmp_path / "py3-numpy" / "APKBUILD"
    before = load_recipe(tmp_path / "py3-numpy").sha512sums
    pinned_tools = {name: sha for name, sha in before.items() if name.endswith(".whl")}
    assert pinned_tools, "the recipe pins its build tools (cython, meson-python) in source="
    text = rewrite_recipe(path.read_text(), "9.9.9", "ab" * 64, "numpy-9.9.9.tar.gz")
    path.write_text(text)
    recipe = load_recipe(tmp_path / "py3-numpy")
    assert (recipe.pkgver, recipe.pkgrel) == ("9.9.9", 0)
    # The sdist's line is replaced; the pinned build tools' lines are kept as they were.
    assert recipe.sha512sums == {"numpy-9.9.9.tar.gz": "ab" * 64, **pinned_tools}
    assert f"{'ab' * 64}  numpy-9.9.9.tar.gz\n" in text
    with pytest.raises(ValidationError, match="but PyPI's sdist is numpy_x-9.9.9.tar.gz"):
        rewrite_recipe(path.read_text(), "9.9.9", "ab" * 64, "numpy_x-9.9.9.tar.gz")


def test_check_updates_exit_codes_against_recorded_api(tmp_path: Path) -> None:
    apkbuilds = tmp_path / "apkbuilds"
    shutil.copytree(ROOT / "apkbuilds", apkbuilds)
    api = RECORDED.as_uri()
    current = _farm("check-updates", "--apkbuilds", str(apkbuilds), "--pypi-api", api)
    # Our committed recipes track the recording (re-record + bump together).
    assert current.returncode == 0, current.stdout + current.stderr
    assert "UPDATE" not in current.stdout
    recipe = apkbuilds / "py3-scipy" / "APKBUILD"
    recipe.write_text(rewrite_recipe(recipe.read_text(), "1.0.0", "cd" * 64, "scipy-1.0.0.tar.gz"))
    stale = _farm("check-updates", "--apkbuilds", str(apkbuilds), "--pypi-api", api)
    assert stale.returncode == 10
    line = next(row for row in stale.stdout.splitlines() if row.startswith("py3-scipy"))
    assert line.split() == ["py3-scipy", "scipy", "1.0.0", _recorded("scipy")[1], "UPDATE"]


def test_bump_rewrites_the_recipe_with_the_new_sdist_checksum(tmp_path: Path) -> None:
    old = make_sdist(tmp_path / "dist", "farmdemo", "1.0")
    new = make_sdist(tmp_path / "dist", "farmdemo", "1.1")
    write_json_api(tmp_path / "api", "farmdemo", {"1.0": old, "1.1": new})
    apkbuilds = tmp_path / "apkbuilds"
    write_recipes(apkbuilds, {"py3-farmdemo": ("farmdemo", old, "")})
    api = (tmp_path / "api").as_uri()
    bumped = _farm("check-updates", "--bump", "--apkbuilds", str(apkbuilds), "--pypi-api", api)
    assert bumped.returncode == 0, bumped.stderr
    assert "py3-farmdemo: bumped to 1.1" in bumped.stdout
    recipe = load_recipe(apkbuilds / "py3-farmdemo")
    assert (recipe.pkgver, recipe.pkgrel) == ("1.1", 0)
    assert recipe.sha512sums == {
        "farmdemo-1.1.tar.gz": hashlib.sha512(new.read_bytes()).hexdigest()
    }
    again = _farm("check-updates", "--apkbuilds", str(apkbuilds), "--pypi-api", api)
    assert again.returncode == 0 and "current" in again.stdout


def test_bump_refuses_a_tampered_sdist(tmp_path: Path) -> None:
    old = make_sdist(tmp_path / "dist", "farmdemo", "1.0")
    new = make_sdist(tmp_path / "dist", "farmdemo", "1.1")
    write_json_api(tmp_path / "api", "farmdemo", {"1.0": old, "1.1": new})
    new.write_bytes(new.read_bytes() + b"tampered")
    apkbuilds = tmp_path / "apkbuilds"
    write_recipes(apkbuilds, {"py3-farmdemo": ("farmdemo", old, "")})
    before = (apkbuilds / "py3-farmdemo" / "APKBUILD").read_text()
    result = _farm(
        "check-updates",
        "--bump",
        "--apkbuilds",
        str(apkbuilds),
        "--pypi-api",
        (tmp_path / "api").as_uri(),
    )
    assert result.returncode == 1
    assert "farmdemo-1.1.tar.gz: sha256" in result.stderr and "differs from PyPI's" in result.stderr
    assert (apkbuilds / "py3-farmdemo" / "APKBUILD").read_text() == before


@pytest.mark.network
def test_real_pypi_newest_versions() -> None:
    checks = check_updates(ROOT / "apkbuilds", progress=lambda line: None)
    report = {check.project: check.newest for check in checks}
    print("newest on PyPI:", report)
    assert set(report) == {"numpy", "scipy", "pandas", "scikit-learn", "biopython", "ecos"}
    for check in checks:
        assert check.newest and not any(tag in check.newest for tag in ("rc", "a", "b", "dev"))


def test_host_builds_the_recipe_version_or_the_newest_its_python_supports() -> None:
    releases, newest = _recorded("numpy")
    supported = choose_host_release(releases, "2.4.2", "3.11")
    assert supported.version == "2.4.2"
    fallback = choose_host_release(releases, newest, "3.11")
    best_for_311 = newest_release(releases, python_version="3.11")
    assert best_for_311 is not None and fallback == best_for_311
    assert choose_host_release(releases, newest, "3.12").version == newest
    modern = [r for r in releases if not r.supports_python("3.11")]
    with pytest.raises(BuildError, match="no release of numpy with an sdist supports Python 3.11"):
        choose_host_release(modern, newest, "3.11")
