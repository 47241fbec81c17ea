"""The APKBUILD reader: plain assignments only, never executed; all problems reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from ipydeps_repo.errors import ValidationError
from ipydeps_repo.farm.recipe import load_recipe, load_recipes, parse_assignments

ROOT = Path(__file__).resolve().parents[2]


def test_multiline_values_and_expansion() -> None:
    text = (
        "pkgname=py3-demo\n_pyname=demo\npkgver=1.2\npkgrel=3\n"
        'makedepends="\n\tcython\n\tpy3-numpy-dev\n\t"\n'
        'source="https://x.invalid/${_pyname}/$_pyname-$pkgver.tar.gz"\n'
        "options=!check # the reason\n"
        "literal='$pkgver'\n"
    )
    values = parse_assignments(text)
    assert values["makedepends"].split() == ["cython", "py3-numpy-dev"]
    assert values["source"] == "https://x.invalid/demo/demo-1.2.tar.gz"
    assert values["options"] == "!check"
    assert values["literal"] == "$pkgver"


def test_command_substitution_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f'pkgname="$(touch {marker})"\npkgver=`touch {marker}`\n'
    parse_assignments(text)
    assert not marker.exists()


def test_unterminated_quote_is_reported() -> None:
    with pytest.raises(ValidationError, match='unterminated " quote in the value of depends'):
        parse_assignments('pkgname=a\ndepends="py3-numpy\n')


def test_every_problem_of_a_recipe_is_listed(tmp_path: Path) -> None:
    folder = tmp_path / "py3-broken"
    folder.mkdir()
    (folder / "APKBUILD").write_text(
        'pkgname=py3-other\npkgver=1.0\npkgrel=x\nsource="https://x.invalid/a-1.0.tar.gz"\n'
    )
    with pytest.raises(ValidationError) as caught:
        load_recipe(folder)
    problems = caught.value.problems
    assert "sha512sums is not set" in problems
    assert "pkgname 'py3-other' differs from directory 'py3-broken'" in problems
    assert "pkgrel 'x' is not a number" in problems
    assert "source a-1.0.tar.gz has no sha512sum" in problems


def test_our_recipes_parse_with_their_dependencies() -> None:
    recipes = load_recipes(ROOT / "apkbuilds")
    assert set(recipes) >= {"py3-numpy", "py3-scipy", "py3-pandas"}
    numpy = recipes["py3-numpy"]
    assert "openblas-dev" in numpy.makedepends
    assert "py3-numpy-dev" in numpy.provides
    assert "py3-numpy-dev" in recipes["py3-scipy"].makedepends
    assert "py3-numpy" in recipes["py3-pandas"].depends
    for recipe in recipes.values():
        # sha512sums is last, as in aports; every source has a 128-hex checksum.
        assert (
            recipe.text.rstrip().endswith('"') and "sha512sums=" in recipe.text.split("\n}\n")[-1]
        )
        assert all(len(value) == 128 for value in recipe.sha512sums.values())
        assert f"{recipe.name}-pyc" in recipe.provides and f"{recipe.name}-tests" in recipe.provides


def test_recipes_use_the_system_openblas_and_test_through_lapack() -> None:
    for name in ("py3-numpy", "py3-scipy"):
        text = (ROOT / "apkbuilds" / name / "APKBUILD").read_text()
        assert '"-Dblas=openblas", "-Dlapack=openblas"' in text
        assert "--system-site-packages .testenv" in text
        assert "openblas" in text.split("check() {")[1].split("\n}\n")[0]
