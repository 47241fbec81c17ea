"""Install-optimized wheels: tests gone, bytecode shipped and valid, RECORD right, pip installs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from ipydeps_repo.errors import ValidationError
from ipydeps_repo.upstream.optimize import (
    MARKER_NAME,
    OptimizeOptions,
    is_optimized,
    optimize_wheel,
    optimized_filename,
    validate_record,
)
from packaging.utils import parse_wheel_filename

from tests.support.pipenv import clean_pip_env
from tests.support.wheels import make_wheel

TAG = sys.implementation.cache_tag
FILES = {
    "fixturepkg/__init__.py": (
        "from fixturepkg.core import answer\nfrom fixturepkg import testing\n"
    ),
    "fixturepkg/core.py": "def answer():\n    return 42\n",
    # A module named like a test helper but imported by the library: it must stay.
    "fixturepkg/testing.py": "HELPER = True\n",
    "fixturepkg/sub/__init__.py": "",
    "fixturepkg/sub/tests/__init__.py": "",
    "fixturepkg/sub/tests/test_sub.py": "def test_it():\n    assert True\n",
    "fixturepkg/tests/test_core.py": "from fixturepkg import answer\n",
    "fixturepkg/tests/data/sample.bin": b"\x00" * 1000,
    "fixturepkg/broken_py2.py": "print 'python 2 only'\n",
    "fixturepkg/native.so": b"\x7fELF not really",
}


def fixture_wheel(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return make_wheel(directory, "fixturepkg", "1.0", files=FILES)


def names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_optimized_wheel_drops_tests_ships_bytecode_and_keeps_everything_else(
    tmp_path: Path,
) -> None:
    source = fixture_wheel(tmp_path / "upstream")
    report = optimize_wheel(source, tmp_path / "optimized")

    # Upstream's name with a build tag: a file of its own beside upstream's, preferred by
    # installers when no hash pins upstream's.
    assert report.output == tmp_path / "optimized" / "fixturepkg-1.0-1ipydeps-py3-none-any.whl"
    entries = names(report.output)
    assert not any("/tests/" in name for name in entries)
    assert report.removed_files == 4
    assert report.removed_directories == ("fixturepkg/sub/tests", "fixturepkg/tests")
    assert "fixturepkg/testing.py" in entries
    assert f"fixturepkg/__pycache__/core.{TAG}.pyc" in entries
    assert f"fixturepkg/sub/__pycache__/__init__.{TAG}.pyc" in entries
    assert report.compile_failures == ("fixturepkg/broken_py2.py",)
    with zipfile.ZipFile(source) as upstream, zipfile.ZipFile(report.output) as optimized:
        for name in upstream.namelist():
            if "/tests/" not in name and not name.endswith(("RECORD", "WHEEL")):
                assert optimized.read(name) == upstream.read(name), name
        wheel_file = optimized.read("fixturepkg-1.0.dist-info/WHEEL").decode().splitlines()
        assert wheel_file[-2:] == ["Build: 1ipydeps", ""]
        assert [line for line in wheel_file if line and not line.startswith("Build:")] == [
            line
            for line in upstream.read("fixturepkg-1.0.dist-info/WHEEL").decode().splitlines()
            if line
        ]
        validate_record(report.output.name, optimized, "fixturepkg-1.0.dist-info")
        marker = json.loads(optimized.read(f"fixturepkg-1.0.dist-info/{MARKER_NAME}"))
        assert {info.compress_type for info in optimized.infolist()} == {zipfile.ZIP_DEFLATED}
    assert marker["bytecode"]["invalidation_mode"] == "unchecked-hash"
    assert marker["bytecode"]["compiled"] == report.compiled == 4
    assert marker["removed_tests"]["files"] == 4
    assert marker["source"]["filename"] == source.name


def test_the_variants_build_tag_ranks_above_upstreams() -> None:
    assert optimized_filename("numpy-2.1.0-cp312-cp312-manylinux_2_28_x86_64.whl") == (
        "numpy-2.1.0-1ipydeps-cp312-cp312-manylinux_2_28_x86_64.whl"
    )
    # An upstream build tag is kept and extended, so the variant still sorts after it.
    assert optimized_filename("torch-2.0-2-cp312-none-any.whl") == (
        "torch-2.0-2ipydeps-cp312-none-any.whl"
    )
    assert optimized_filename("x-1.0-1ipydeps-py3-none-any.whl") == (
        "x-1.0-1ipydeps-py3-none-any.whl"
    )
    for upstream in (
        "x-1.0-py3-none-any.whl",
        "x-1.0-2-py3-none-any.whl",
        "x-1.0-3a-py3-none-any.whl",
    ):
        assert (
            parse_wheel_filename(optimized_filename(upstream))[2]
            > parse_wheel_filename(upstream)[2]
        )
    with pytest.raises(ValidationError):
        optimized_filename("not-a-wheel.zip")


def test_shipped_pyc_is_unchecked_hash_bytecode_of_its_source(tmp_path: Path) -> None:
    report = optimize_wheel(fixture_wheel(tmp_path / "upstream"), tmp_path / "optimized")
    with zipfile.ZipFile(report.output) as archive:
        pyc = archive.read(f"fixturepkg/__pycache__/core.{TAG}.pyc")
        source = archive.read("fixturepkg/core.py")
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, source not checked
    assert pyc[8:16] == importlib.util.source_hash(source)


def test_other_target_python_gets_no_bytecode(tmp_path: Path) -> None:
    other = (sys.version_info[0], sys.version_info[1] + 1)
    report = optimize_wheel(
        fixture_wheel(tmp_path / "upstream"),
        tmp_path / "optimized",
        OptimizeOptions(target_python=other, compression="stored"),
    )
    assert report.compiled == 0
    assert not any(name.endswith(".pyc") for name in names(report.output))
    with zipfile.ZipFile(report.output) as archive:
        marker = json.loads(archive.read(f"fixturepkg-1.0.dist-info/{MARKER_NAME}"))
        assert archive.getinfo("fixturepkg/core.py").compress_type == zipfile.ZIP_STORED
    assert marker["bytecode"] is None


def test_optimizing_twice_changes_nothing(tmp_path: Path) -> None:
    first = optimize_wheel(fixture_wheel(tmp_path / "upstream"), tmp_path / "once")
    second = optimize_wheel(first.output, tmp_path / "twice")
    assert is_optimized(first.output)
    assert second.already_optimized
    assert second.output.read_bytes() == first.output.read_bytes()


def test_corrupted_upstream_wheel_is_refused_with_every_problem(tmp_path: Path) -> None:
    source = fixture_wheel(tmp_path / "upstream")
    tampered = tmp_path / "tampered" / source.name
    tampered.parent.mkdir()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(tampered, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            copy.writestr(
                info,
                b"def answer():\n    return 0\n" if info.filename == "fixturepkg/core.py" else data,
            )
        copy.writestr("fixturepkg/extra.py", "")
    with pytest.raises(ValidationError) as caught:
        optimize_wheel(tampered, tmp_path / "optimized")
    message = str(caught.value)
    assert "'fixturepkg/core.py' does not match its RECORD hash" in message
    assert "'fixturepkg/extra.py' is not listed in RECORD" in message
    assert not list(tmp_path.glob("optimized/*"))


@pytest.mark.e2e
def test_optimized_wheel_installs_with_pip_and_imports_from_shipped_bytecode(
    tmp_path: Path,
) -> None:
    report = optimize_wheel(fixture_wheel(tmp_path / "upstream"), tmp_path / "optimized")
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    # --no-compile: the bytecode that is there after install is the bytecode we shipped.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-index",
            "--no-compile",
            "--no-deps",
            str(report.output),
        ],
        check=True,
        env=clean_pip_env(),
        capture_output=True,
        text=True,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    assert not (site / "fixturepkg" / "tests").exists()
    assert not (site / "fixturepkg" / "sub" / "tests").exists()
    shipped = site / "fixturepkg" / "__pycache__" / f"core.{TAG}.pyc"
    before = shipped.read_bytes()
    # -B would stop Python writing bytecode; with it, an import can only use what is there.
    probe = subprocess.run(
        [
            str(python),
            "-B",
            "-c",
            "import fixturepkg.core as c, sys; print(c.answer(), c.__cached__)",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.split() == ["42", str(shipped)]
    assert shipped.read_bytes() == before
    installed_record = (site / "fixturepkg-1.0.dist-info" / "RECORD").read_text()
    assert f"fixturepkg/__pycache__/core.{TAG}.pyc" in installed_record
    # Everything shipped is in RECORD, so uninstalling leaves nothing behind.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "uninstall", "--yes", "fixturepkg"],
        check=True,
        env=clean_pip_env(),
        capture_output=True,
        text=True,
    )
    assert not (site / "fixturepkg").exists()
