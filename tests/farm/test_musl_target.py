"""The musl target's refusals, and targets that exclude a recipe (cheap: nothing compiled for musl).

The real musl builds are in tests/musl/test_musl_farm.py (a C extension, in CI) and
tests/musl/test_musl_science.py (OpenBLAS, NumPy, pandas, scikit-learn; slow).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.farm.helpers import make_sdist, write_json_api, write_recipes
from tests.support.pipenv import clean_pip_env

pytestmark = pytest.mark.e2e

MUSL_TARGET = (
    '\n[[targets]]\nname = "musl-cp311-x86_64"\nkind = "musl"\nbranch = "v3.22"\n'
    'python = "3.11"\narch = "x86_64"\n'
)


def _farm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipydeps_repo", "farm", *args],
        capture_output=True,
        text=True,
        env=clean_pip_env(),
        timeout=600,
    )


def _recipes(tmp_path: Path, *, extra_manifest: str = "", exclude: str = "") -> Path:
    first = make_sdist(tmp_path / "dist", "farmdemo", "1.0")
    second = make_sdist(tmp_path / "dist", "farmdemo-plus", "2.0")
    write_json_api(tmp_path / "api", "farmdemo", {"1.0": first})
    write_json_api(tmp_path / "api", "farmdemo-plus", {"2.0": second})
    apkbuilds = tmp_path / "apkbuilds"
    write_recipes(
        apkbuilds,
        {
            "py3-farmdemo": ("farmdemo", first, ""),
            "py3-farmdemo-plus": ("farmdemo-plus", second, "py3-farmdemo"),
        },
    )
    manifest = apkbuilds / "manifest.toml"
    text = manifest.read_text()
    if exclude:
        host = '[[targets]]\nname = "host"\nkind = "host"\n'
        text = text.replace(host, host + f"\n[targets.exclude]\n{exclude}\n")
    manifest.write_text(text + extra_manifest)
    return apkbuilds


def _common(tmp_path: Path, apkbuilds: Path) -> list[str]:
    return [
        "--apkbuilds", str(apkbuilds), "--pypi-api", (tmp_path / "api").as_uri(),
        "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
    ]  # fmt: skip


def test_an_excluded_recipe_is_reported_with_its_reason_and_blocks_nothing(tmp_path: Path) -> None:
    apkbuilds = _recipes(tmp_path, exclude='py3-farmdemo = "needs a Fortran compiler"')
    done = _farm("build", "--target", "host", *_common(tmp_path, apkbuilds),
                 "--no-build-isolation", "--jobs", "1")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "py3-farmdemo: not built for host: needs a Fortran compiler" in done.stdout
    results = json.loads((tmp_path / "out" / "summary.json").read_text())["results"]
    assert [(r["recipe"], r["status"], r["message"]) for r in results] == [
        ("py3-farmdemo", "excluded", "needs a Fortran compiler"),
        ("py3-farmdemo-plus", "built", ""),
    ]


def test_the_musl_target_needs_a_musl_python(tmp_path: Path) -> None:
    apkbuilds = _recipes(tmp_path, extra_manifest=MUSL_TARGET)
    key = tmp_path / "unused.rsa"
    missing = _farm("build", "--target", "musl-cp311-x86_64", *_common(tmp_path, apkbuilds),
                    "--key", str(key))  # fmt: skip
    assert missing.returncode == 1
    assert "target musl-cp311-x86_64 needs --musl-python (a musl CPython 3.11)" in missing.stderr
    glibc = _farm("build", "--target", "musl-cp311-x86_64", *_common(tmp_path, apkbuilds),
                  "--key", str(key), "--musl-python", sys.executable)  # fmt: skip
    assert glibc.returncode == 1
    assert f"{sys.executable} is not a musl CPython" in glibc.stderr
    assert "linux-gnu" in glibc.stderr
    assert not (tmp_path / "out" / "logs").exists()  # refused before building anything


def test_a_bad_exclude_table_is_refused(tmp_path: Path) -> None:
    apkbuilds = _recipes(tmp_path, exclude="py3-farmdemo = 3")
    done = _farm("order", "--apkbuilds", str(apkbuilds))
    assert done.returncode == 1
    assert "target host: exclude must map recipe names to reasons" in done.stderr


def test_only_builds_the_named_recipe_not_what_it_needs(tmp_path: Path) -> None:
    apkbuilds = _recipes(tmp_path)
    done = _farm("build", "--target", "host", *_common(tmp_path, apkbuilds),
                 "--recipe", "py3-farmdemo-plus", "--only", "--no-build-isolation",
                 "--jobs", "1")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "out" / "summary.json").read_text())["results"]
    assert [(r["recipe"], r["status"]) for r in results] == [("py3-farmdemo-plus", "built")]
