"""Build order from the recipes' own dependencies: a topological sort, never a hand-kept list."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ipydeps_repo.errors import ValidationError
from ipydeps_repo.farm.order import build_order
from ipydeps_repo.farm.recipe import load_recipes

from tests.support.help_text import option_texts
from tests.support.pipenv import clean_pip_env

ROOT = Path(__file__).resolve().parents[2]


def _recipe(root: Path, name: str, makedepends: str = "", subpackages: str = "") -> None:
    folder = root / name
    folder.mkdir()
    (folder / "APKBUILD").write_text(
        f'pkgname={name}\npkgver=1\npkgrel=0\nmakedepends="{makedepends}"\n'
        f'subpackages="{subpackages}"\nsource="https://x.invalid/{name}-1.tar.gz"\n'
        f'sha512sums="\n{"0" * 128}  {name}-1.tar.gz\n"\n'
    )


def test_our_recipes_build_numpy_first() -> None:
    order = build_order(load_recipes(ROOT / "apkbuilds"))
    assert order.index("py3-numpy") < order.index("py3-scipy")
    assert order.index("py3-numpy") < order.index("py3-pandas")


def test_subpackage_dependency_and_selection(tmp_path: Path) -> None:
    _recipe(tmp_path, "py3-c", makedepends="py3-b-dev>=2 gfortran")
    _recipe(tmp_path, "py3-b", makedepends="py3-a", subpackages="$pkgname-dev")
    _recipe(tmp_path, "py3-a")
    _recipe(tmp_path, "py3-z")
    recipes = load_recipes(tmp_path)
    assert build_order(recipes) == ["py3-a", "py3-z", "py3-b", "py3-c"]
    assert build_order(recipes, ["py3-c"]) == ["py3-a", "py3-b", "py3-c"]


def test_cycle_and_unknown_recipe_are_errors(tmp_path: Path) -> None:
    _recipe(tmp_path, "py3-a", makedepends="py3-b")
    _recipe(tmp_path, "py3-b", makedepends="py3-a")
    recipes = load_recipes(tmp_path)
    with pytest.raises(ValidationError, match="dependency cycle: py3-a needs"):
        build_order(recipes)
    with pytest.raises(ValidationError, match="no recipe named py3-nope"):
        build_order(recipes, ["py3-nope"])


def test_order_command_prints_the_order() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ipydeps_repo.farm",
            "order",
            "--apkbuilds",
            str(ROOT / "apkbuilds"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "1. py3-numpy"
    assert "py3-scipy  (after py3-numpy)" in result.stdout


def _farm_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", "farm", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env=clean_pip_env(COLUMNS="200"),
        timeout=300,
    )


@pytest.mark.parametrize(
    "folder", [".", "apkbuilds", "apkbuilds/py3-scipy", "repo-server/ipydeps_repo/farm"]
)
def test_order_finds_the_recipes_from_any_folder_of_the_checkout(folder: str) -> None:
    done = _farm_in(ROOT / folder, "order")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "1. py3-numpy"


@pytest.mark.parametrize("command", ["order", "check-updates", "musl-gaps", "build"])
def test_outside_a_checkout_the_farm_says_where_it_looked_and_how_to_point_it(
    tmp_path: Path, command: str
) -> None:
    done = _farm_in(tmp_path, command)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert (
        f"no farm manifest: looked for apkbuilds/manifest.toml in {tmp_path} and in every "
        "folder above it up to /"
    ) in done.stderr, done.stderr
    assert "pass --apkbuilds DIR" in done.stderr
    assert not list(tmp_path.iterdir())  # nothing was written where it looked


def test_farm_help_gives_every_options_default() -> None:
    for command in ("build", "order", "check-updates", "musl-gaps"):
        done = _farm_in(ROOT, command, "--help")
        assert done.returncode == 0, done.stderr
        texts = option_texts(done.stdout)
        del texts["-h"]
        assert "--apkbuilds" in texts and "--pypi-api" in texts
        missing = {option: text for option, text in texts.items() if "default" not in text}
        assert not missing, (command, missing)
