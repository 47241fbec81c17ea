"""The notebook lock document: names, merging, TOML that packaging.pylock and tomllib accept."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock, is_valid_pylock_path
from packaging.utils import canonicalize_name

from ipydeps.lockfile import (
    LockedFile,
    LockedPackage,
    LockFileError,
    NotebookLock,
    lock_path_for,
    merge_lock,
    parse_lock,
    render_lock,
)


def _package(
    name: str, version: str, tag: str = "py3-none-any", top_level: tuple[str, ...] = ()
) -> LockedPackage:
    filename = f"{name.replace('-', '_')}-{version}-{tag}.whl"
    wheel = LockedFile(filename, f"http://127.0.0.1:9/files/{filename}", "ab" * 32, 123)
    index = "http://127.0.0.1:9/simple/"
    return LockedPackage(canonicalize_name(name), version, index, (wheel,), top_level)


@pytest.mark.parametrize(
    ("notebook", "lock"),
    [
        ("analysis.ipynb", "pylock.analysis.toml"),
        ("analysis.v2.ipynb", "pylock.analysis-v2.toml"),
        ("My notebook (copy).ipynb", "pylock.My-notebook-copy.toml"),
        ("...ipynb", "pylock.notebook.toml"),
        ("Análisis.ipynb", "pylock.An-lisis.toml"),
    ],
)
def test_lock_name_is_a_valid_pep_751_name_beside_the_notebook(notebook: str, lock: str) -> None:
    path = lock_path_for(Path("/work/books") / notebook)
    assert path == Path("/work/books") / lock
    assert is_valid_pylock_path(path)


def test_rendered_lock_is_valid_pep_751_and_reads_back() -> None:
    lock = NotebookLock(
        (_package("alpha-dep", "1.1", top_level=("alpha_dep",)), _package("alpha", "1.0")),
        repository="http://127.0.0.1:9/",
    )
    text = render_lock(lock)
    pylock = Pylock.from_dict(tomllib.loads(text))
    assert [package.name for package in pylock.packages] == ["alpha-dep", "alpha"]
    wheel = pylock.packages[0].wheels[0]  # type: ignore[index]
    assert wheel.hashes == {"sha256": "ab" * 32} and wheel.size == 123
    assert parse_lock(text, where="x") == lock


def test_strings_that_break_naive_toml_survive() -> None:
    hostile = 'http://127.0.0.1:9/files/x"]\n[tool]\x7f\x01é?q=\\'
    package = _package("alpha", "1.0")
    wheel = LockedFile(package.wheels[0].filename, hostile, "cd" * 32)
    lock = NotebookLock((LockedPackage(package.name, "1.0", hostile, (wheel,)),), hostile)
    assert parse_lock(render_lock(lock), where="x") == lock


def test_merge_unions_files_of_a_version_and_replaces_another_version() -> None:
    first = merge_lock(
        None, [_package("alpha", "1.0"), _package("beta", "2.0")], repository="http://r/"
    )
    linux = _package("alpha", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    second = merge_lock(first, [linux, _package("beta", "1.5")], repository="http://r/")
    alpha, beta = second.packages
    assert [wheel.filename for wheel in alpha.wheels] == [
        "alpha-1.0-py3-none-any.whl",
        "alpha-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    ]
    assert beta.version == "1.5" and len(beta.wheels) == 1  # the newest install wins
    Pylock.from_dict(tomllib.loads(render_lock(second)))


def test_merge_keeps_the_notebooks_opt_out() -> None:
    old = NotebookLock((_package("alpha", "1.0"),), restore=False)
    assert merge_lock(old, [_package("beta", "1.0")], repository=None).restore is False
    assert parse_lock(render_lock(old), where="x").restore is False


@pytest.mark.parametrize(
    "text",
    [
        "not toml [",
        'lock-version = "1.0"\n',  # no created-by, no packages
        'lock-version = "9.0"\ncreated-by = "x"\npackages = []\n',
        'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "Not Normalized"\n',
        "a = " + "[" * 5000 + "]" * 5000 + "\n",
    ],
)
def test_a_broken_lock_is_a_clear_error(text: str) -> None:
    with pytest.raises(LockFileError, match=r"pylock\.nb\.toml"):
        parse_lock(text, where="pylock.nb.toml")


def test_a_lock_whose_wheel_names_another_project_is_not_written() -> None:
    package = _package("alpha", "1.0")
    wrong = LockedPackage(
        package.name,
        "1.0",
        None,
        (LockedFile("beta-1.0-py3-none-any.whl", "http://r/b", "ab" * 32),),
    )
    with pytest.raises(LockFileError, match="not be valid PEP 751"):
        render_lock(NotebookLock((wrong,)))
