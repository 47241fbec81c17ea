"""The wheel installer on real files in a throwaway venv: spec layout, pip interop, rollback."""

from __future__ import annotations

import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ipydeps.environment import InstallScheme, install_scheme
from ipydeps.errors import InstallError, InvalidWheelError
from ipydeps.installers.transaction import WheelTransaction
from tests.support.venvs import make_venv, real_pip, run_python, site_packages, snapshot
from tests.support.wheels import make_wheel

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = "[console_scripts]\ndemo-tool = demo_pkg.cli:main\n"


@pytest.fixture
def venv(tmp_path: Path) -> tuple[Path, InstallScheme]:
    python = make_venv(tmp_path / "env")
    return python, install_scheme(tmp_path / "env")


def demo_wheel(directory: Path, version: str, **extra: str) -> Path:
    files = {
        "demo_pkg/__init__.py": f"__version__ = {version!r}\n",
        "demo_pkg/cli.py": "def main():\n    print('demo tool ran')\n    return 0\n",
        f"demo_pkg-{version}.dist-info/entry_points.txt": ENTRY_POINTS,
        **extra,
    }
    return make_wheel(directory, "demo-pkg", version, files=files)


def install(scheme: InstallScheme, *wheels: Path) -> list[object]:
    with WheelTransaction(scheme) as transaction:
        for wheel in wheels:
            transaction.stage(wheel)
        return list(transaction.commit())


def test_installed_wheel_is_importable_and_visible_to_pip(
    tmp_path: Path, venv: tuple[Path, InstallScheme]
) -> None:
    python, scheme = venv
    wheel = demo_wheel(
        tmp_path,
        "1.0",
        **{
            "demo_pkg-1.0.data/scripts/demo-script": "#!python\nimport demo_pkg\n"
            "print('script', demo_pkg.__version__)\n",
            "demo_pkg-1.0.data/data/share/demo/readme.txt": "data file\n",
            "demo_pkg-1.0.data/headers/demo.h": "#define DEMO 1\n",
        },
    )
    install(scheme, wheel)
    shown = run_python(
        python,
        "import importlib.metadata as m, demo_pkg; "
        "print(demo_pkg.__version__, m.version('demo-pkg'))",
    )
    assert shown.stdout.split() == ["1.0", "1.0"]
    dist_info = site_packages(tmp_path / "env") / "demo_pkg-1.0.dist-info"
    assert (dist_info / "INSTALLER").read_text() == "ipydeps\n"
    record = (dist_info / "RECORD").read_text()
    assert "../../../bin/demo-tool,sha256=" in record
    assert "../../../share/demo/readme.txt,sha256=" in record
    assert (tmp_path / "env/share/demo/readme.txt").read_text() == "data file\n"
    assert (scheme.headers / "demo-pkg" / "demo.h").read_text() == "#define DEMO 1\n"
    listed = real_pip(python, "list", "--format=freeze")
    assert "demo-pkg==1.0" in listed.stdout.split()


def test_scripts_run_with_the_environments_python(
    tmp_path: Path, venv: tuple[Path, InstallScheme]
) -> None:
    python, scheme = venv
    install(
        scheme,
        demo_wheel(
            tmp_path,
            "1.0",
            **{
                "demo_pkg-1.0.data/scripts/demo-script": "#!python\nimport demo_pkg\n"
                "print('script', demo_pkg.__version__)\n"
            },
        ),
    )
    tool = tmp_path / "env/bin/demo-tool"
    script = tmp_path / "env/bin/demo-script"
    assert tool.read_text().startswith(f"#!{python}\n")
    assert script.read_text().startswith(f"#!{python}\n")
    assert subprocess.run([str(tool)], capture_output=True, text=True).stdout == "demo tool ran\n"
    assert subprocess.run([str(script)], capture_output=True, text=True).stdout == "script 1.0\n"


def test_pip_uninstall_removes_everything_we_installed(
    tmp_path: Path, venv: tuple[Path, InstallScheme]
) -> None:
    python, scheme = venv
    before = snapshot(tmp_path / "env")
    install(scheme, demo_wheel(tmp_path, "1.0"))
    assert snapshot(tmp_path / "env") != before
    removed = real_pip(python, "uninstall", "-y", "demo-pkg")
    assert removed.returncode == 0, removed.stderr
    assert snapshot(tmp_path / "env") == before


def test_upgrade_replaces_the_old_files(tmp_path: Path, venv: tuple[Path, InstallScheme]) -> None:
    python, scheme = venv
    old = demo_wheel(tmp_path / "", "1.0", **{"demo_pkg/old_only.py": "X = 1\n"})
    install(scheme, old)
    (tmp_path / "v2").mkdir()
    results = install(scheme, demo_wheel(tmp_path / "v2", "2.0"))
    site = site_packages(tmp_path / "env")
    assert results[0].removed_version == "1.0"  # type: ignore[attr-defined]
    assert not (site / "demo_pkg/old_only.py").exists()
    assert not (site / "demo_pkg-1.0.dist-info").exists()
    assert run_python(python, "import demo_pkg; print(demo_pkg.__version__)").stdout == "2.0\n"
    assert [p.name for p in site.iterdir() if p.name.startswith(".ipydeps")] == []


def test_failure_during_commit_restores_the_previous_install(
    tmp_path: Path, venv: tuple[Path, InstallScheme]
) -> None:
    python, scheme = venv
    install(scheme, demo_wheel(tmp_path, "1.0"))
    before = snapshot(tmp_path / "env")
    (tmp_path / "new").mkdir()
    upgrade = demo_wheel(tmp_path / "new", "2.0")
    other = make_wheel(tmp_path / "new", "other-pkg", "1.0")
    committed: list[str] = []

    def interrupt_second(staged: object) -> None:
        committed.append(staged.name)  # type: ignore[attr-defined]
        if len(committed) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), WheelTransaction(scheme) as transaction:
        transaction.stage(upgrade)
        transaction.stage(other)
        transaction.commit(order=["demo-pkg", "other-pkg"], before_each=interrupt_second)
    assert committed == ["demo-pkg", "other-pkg"]
    assert snapshot(tmp_path / "env") == before
    assert run_python(python, "import demo_pkg; print(demo_pkg.__version__)").stdout == "1.0\n"


def test_unsafe_paths_are_refused_before_anything_is_written(
    tmp_path: Path, venv: tuple[Path, InstallScheme]
) -> None:
    _, scheme = venv
    before = snapshot(tmp_path / "env")
    wheel = make_wheel(tmp_path, "evil", "1.0", files={"evil/__init__.py": ""})
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("../../../../escape.py", "print('escaped')\n")
    with pytest.raises(InvalidWheelError, match=r"unsafe path '../../../../escape.py'"):
        install(scheme, wheel)
    assert snapshot(tmp_path / "env") == before
    assert not (tmp_path / "escape.py").exists()


def test_cancelled_staging_changes_nothing(
    tmp_path: Path, venv: tuple[Path, InstallScheme]
) -> None:
    _, scheme = venv
    before = snapshot(tmp_path / "env")
    cancel = threading.Event()
    cancel.set()
    with (
        pytest.raises(InstallError, match="cancelled"),
        WheelTransaction(scheme, cancel=cancel) as transaction,
    ):
        transaction.stage(demo_wheel(tmp_path, "1.0"))
    assert snapshot(tmp_path / "env") == before


def test_corrupt_member_is_refused(tmp_path: Path, venv: tuple[Path, InstallScheme]) -> None:
    _, scheme = venv
    before = snapshot(tmp_path / "env")
    wheel = make_wheel(tmp_path, "broken", "1.0", files={"broken/__init__.py": "x = 1\n" * 100})
    data = bytearray(wheel.read_bytes())
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo("broken/__init__.py")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(InvalidWheelError, match=r"'broken/__init__.py' is corrupt"):
        install(scheme, wheel)
    assert snapshot(tmp_path / "env") == before


KILLED_MID_COMMIT = """
import os, sys
from pathlib import Path
from ipydeps.environment import install_scheme
from ipydeps.installers.transaction import WheelTransaction
scheme = install_scheme(Path(sys.argv[1]))
seen = []
def die_on_second(staged):
    seen.append(staged.name)
    if len(seen) == 2:
        os._exit(9)  # like SIGKILL: no exception handler, no rollback runs
transaction = WheelTransaction(scheme)
transaction.stage(Path(sys.argv[2]))
transaction.stage(Path(sys.argv[3]))
transaction.commit(order=["demo-pkg", "other-pkg"], before_each=die_on_second)
"""


def test_install_killed_mid_commit_is_undone_by_the_next_one(
    tmp_path: Path, venv: tuple[Path, InstallScheme]
) -> None:
    python, scheme = venv
    install(scheme, demo_wheel(tmp_path, "1.0"))
    before = snapshot(tmp_path / "env")
    (tmp_path / "new").mkdir()
    upgrade = demo_wheel(tmp_path / "new", "2.0")
    other = make_wheel(tmp_path / "new", "other-pkg", "1.0")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_COMMIT, str(tmp_path / "env"), str(upgrade), str(other)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert killed.returncode == 9, killed.stderr
    half = run_python(python, "import demo_pkg; print(demo_pkg.__version__)")
    assert half.stdout == "2.0\n"  # the first wheel was already renamed into place
    with WheelTransaction(scheme) as transaction:
        assert len(transaction.recovered) == 1
    assert snapshot(tmp_path / "env") == before
    assert run_python(python, "import demo_pkg; print(demo_pkg.__version__)").stdout == "1.0\n"


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """Mark paths immutable (chattr +i): even root cannot rename them; undone afterwards."""
    marked: list[Path] = []

    def mark(path: Path) -> None:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        marked.append(path)

    yield mark
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_disk_error_during_commit_restores_everything(
    tmp_path: Path, venv: tuple[Path, InstallScheme], immutable: Callable[[Path], None]
) -> None:
    python, scheme = venv
    install(scheme, demo_wheel(tmp_path, "1.0"))
    before = snapshot(tmp_path / "env")
    (tmp_path / "new").mkdir()
    upgrade = demo_wheel(tmp_path / "new", "2.0")
    other = make_wheel(tmp_path / "new", "other-pkg", "1.0")
    # The old package directory cannot be moved aside: the upgrade's commit fails half-way,
    # after other-pkg was already renamed into place.
    immutable(site_packages(tmp_path / "env") / "demo_pkg")
    with (
        pytest.raises(InstallError, match="Installing failed .*the environment was restored"),
        WheelTransaction(scheme) as transaction,
    ):
        transaction.stage(upgrade)
        transaction.stage(other)
        transaction.commit(order=["other-pkg", "demo-pkg"])
    assert snapshot(tmp_path / "env") == before
    assert run_python(python, "import other_pkg").returncode != 0


WITHOUT_ISAL = """
import sys
sys.modules["isal"] = None  # as on a system without the optional accelerator
from pathlib import Path
from ipydeps.environment import install_scheme
from ipydeps.installers import members
from ipydeps.installers.transaction import WheelTransaction
print(members.INFLATER.__name__)
with WheelTransaction(install_scheme(Path(sys.argv[1]))) as transaction:
    transaction.stage(Path(sys.argv[2]))
    transaction.commit()
"""


def test_plain_zlib_is_used_without_the_accelerator(
    tmp_path: Path, venv: tuple[Path, InstallScheme]
) -> None:
    python, _ = venv
    wheel = demo_wheel(tmp_path, "1.0", **{"demo_pkg/data.txt": "x" * 100_000})
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_ISAL, str(tmp_path / "env"), str(wheel)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "zlib\n"
    shown = run_python(
        python,
        "import demo_pkg, pathlib; "
        "print(len(pathlib.Path(demo_pkg.__file__).with_name('data.txt')"
        ".read_text()))",
    )
    assert shown.stdout == "100000\n"


def test_rollback_leaves_no_new_directories(
    tmp_path: Path, venv: tuple[Path, InstallScheme]
) -> None:
    _, scheme = venv
    before = snapshot(tmp_path / "env")
    assert not scheme.headers.exists()  # include/site/python3.X/<name> must be created
    wheel = demo_wheel(
        tmp_path,
        "1.0",
        **{
            "demo_pkg-1.0.data/headers/demo.h": "#define DEMO 1\n",
            "demo_pkg-1.0.data/data/share/demo/new/readme.txt": "data file\n",
        },
    )
    other = make_wheel(tmp_path, "other-pkg", "1.0")

    def interrupt_second(staged: object) -> None:
        if staged.name == "other-pkg":  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), WheelTransaction(scheme) as transaction:
        transaction.stage(wheel)
        transaction.stage(other)
        transaction.commit(order=["demo-pkg", "other-pkg"], before_each=interrupt_second)
    assert snapshot(tmp_path / "env") == before
    install(scheme, wheel)
    assert (scheme.headers / "demo-pkg" / "demo.h").read_text() == "#define DEMO 1\n"
    assert (tmp_path / "env/share/demo/new/readme.txt").read_text() == "data file\n"
