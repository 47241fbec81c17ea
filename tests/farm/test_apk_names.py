"""One apk name per Python project: the farm's APKBUILDs and ``ipydeps-repo wrap`` agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from ipydeps_repo.apk.keys import SigningKey, generate_key
from ipydeps_repo.apk.package import read_apk
from ipydeps_repo.apk.wheel2apk import ApkTarget, wheel_to_apk
from ipydeps_repo.farm.manifest import load_manifest
from ipydeps_repo.farm.recipe import dependency_name

from ipydeps.formats.apknames import (
    ALPINE_NAMES,
    SUBPACKAGE_SUFFIXES,
    apk_name_for,
    project_for_apk,
)
from tests.support.wheels import make_wheel

APKBUILDS = Path(__file__).resolve().parents[2] / "apkbuilds"
TARGET = ApkTarget(branch="v3.22", python="3.12", arch="x86_64")
# What each recipe's project requires (Requires-Dist of its musllinux wheels, no extras).
REQUIRES_DIST = {
    "numpy": [],
    "scipy": ["numpy<2.8,>=2.0.0"],
    "pandas": [
        'numpy>=2.0.2; python_version < "3.14"',
        'numpy>=2.3.3; python_version >= "3.14"',
        "python-dateutil>=2.9.0",
        'tzdata; sys_platform == "win32"',
        'tzdata; sys_platform == "emscripten"',
    ],
}


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("names-test", 2048)


def test_every_recipe_names_its_python_dependencies_as_wrap_does() -> None:
    manifest = load_manifest(APKBUILDS)
    for name, recipe in manifest.recipes.items():
        assert apk_name_for(manifest.settings[name].pypi) == name
        for depend in recipe.depends:
            project = project_for_apk(depend)
            if project is not None:
                assert apk_name_for(project) == depend, f"{name} depends on {depend}"


@pytest.mark.parametrize("recipe", sorted(REQUIRES_DIST))
def test_wrapped_wheel_depends_on_the_recipes_packages(
    recipe: str, key: SigningKey, tmp_path: Path
) -> None:
    manifest = load_manifest(APKBUILDS)
    settings = manifest.settings[f"py3-{recipe}"]
    wheel = make_wheel(tmp_path, settings.pypi, "1.0", requires=REQUIRES_DIST[recipe])
    filename, data = wheel_to_apk(wheel, TARGET, key, builddate=1700000000)
    info = read_apk(data).info
    assert filename.startswith(f"py3-{recipe}-")
    wrapped = {dependency_name(d) for d in info.depends if d.startswith("py3-")}
    # The recipe may add a Python apk the wheel leaves to other platforms (py3-tzdata for
    # pandas): every name wrap writes must be one the recipe uses.
    assert wrapped <= set(manifest.recipes[f"py3-{recipe}"].depends)


def test_dateutil_has_one_name_on_both_routes(key: SigningKey, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "python-dateutil", "2.9.0.post0", requires=["six>=1.5"])
    filename, _ = wheel_to_apk(wheel, TARGET, key, builddate=1700000000)
    assert filename == "py3-dateutil-2.9.0_p0-r0.apk"
    assert project_for_apk("py3-dateutil") == "python-dateutil"
    assert "py3-dateutil" in load_manifest(APKBUILDS).recipes["py3-pandas"].depends


def test_alpine_names_are_unique_and_never_a_subpackage() -> None:
    assert len(set(ALPINE_NAMES.values())) == len(ALPINE_NAMES)
    for project, apk in ALPINE_NAMES.items():
        assert not apk.endswith(SUBPACKAGE_SUFFIXES)
        assert project_for_apk(apk) == project
        assert apk_name_for(project) == apk


def test_overrides_win_over_alpine_names() -> None:
    assert apk_name_for("PyYAML") == "py3-yaml"
    assert apk_name_for("pyyaml", {"PyYAML": "py3-yaml-custom"}) == "py3-yaml-custom"
    assert project_for_apk("py3-yaml-custom", {"pyyaml": "py3-yaml-custom"}) == "pyyaml"
    assert project_for_apk("openblas") is None
