"""Installing a stored copy of a wheel as it streams in: same result as the wheel, or refused."""

from __future__ import annotations

import io
import os
import struct
import threading
import zipfile
from pathlib import Path

import pytest

from ipydeps.environment import InstallScheme, install_scheme
from ipydeps.errors import CancelledError, InvalidWheelError
from ipydeps.installers.transaction import WheelTransaction
from ipydeps.installers.wheelstream import StreamingUnsupported
from tests.support.venvs import make_venv, real_pip, run_python, snapshot
from tests.support.wheels import make_wheel

ENTRY_POINTS = "[console_scripts]\ndemo-tool = demo_pkg.cli:main\n"


def stored_copy(
    wheel: Path, *, rename: dict[str, str] | None = None, descriptor: bool = False
) -> bytes:
    """The repository's stored copy of ``wheel``: same members, order and modes, uncompressed.

    ``rename`` changes member names (a hostile copy); ``descriptor`` writes to an
    unseekable stream, which puts sizes in data descriptors instead of local headers.
    """
    buffer = io.BytesIO()
    target: io.RawIOBase | io.BytesIO = buffer
    if descriptor:

        class Unseekable(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, data: bytes) -> int:  # type: ignore[override]
                return buffer.write(data)

        target = Unseekable()
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as copy:  # type: ignore[arg-type]
        for info in source.infolist():
            data = source.read(info)
            clone = zipfile.ZipInfo(
                (rename or {}).get(info.filename, info.filename), info.date_time
            )
            clone.external_attr = info.external_attr
            clone.compress_type = zipfile.ZIP_STORED
            copy.writestr(clone, data)
    return buffer.getvalue()


def demo_wheel(directory: Path, **extra: str | bytes) -> Path:
    files: dict[str, str | bytes] = {
        "demo_pkg/__init__.py": "__version__ = '1.0'\n",
        "demo_pkg/cli.py": "def main():\n    print('demo tool ran')\n    return 0\n",
        "demo_pkg/big.bin": os.urandom(300_000),
        "demo_pkg/empty.txt": "",
        "demo_pkg-1.0.dist-info/entry_points.txt": ENTRY_POINTS,
        "demo_pkg-1.0.data/scripts/demo-script": "#!python\nimport demo_pkg\n"
        "print('script', demo_pkg.__version__)\n",
        "demo_pkg-1.0.data/data/share/demo/readme.txt": "data file\n",
        **extra,
    }
    wheel = make_wheel(directory, "demo-pkg", "1.0", files=files)
    # An executable data file: its mode is only in the central directory.
    with zipfile.ZipFile(wheel, "a") as archive:
        info = zipfile.ZipInfo("demo_pkg/tool.sh", (2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        archive.writestr(info, "#!/bin/sh\necho tool\n")
    return wheel


def stream_install(
    scheme: InstallScheme,
    filename: str,
    data: bytes,
    chunk: int = 65536,
) -> None:
    with WheelTransaction(scheme) as transaction:
        stager = transaction.stream_stager(filename)
        sink = stager.restart()
        try:
            for start in range(0, len(data), chunk):
                sink(data[start : start + chunk])
            transaction.add(stager.finish())
        except BaseException:
            stager.discard()
            raise
        transaction.commit()


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file below ``root``: relative path -> (mode bits, bytes with root's path masked)."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            data = path.read_bytes().replace(str(root).encode(), b"ENV")
            if path.name == "RECORD":  # scripts' hashes cover their shebang: root's path
                data = b"".join(
                    line.split(b",")[0] + b"\n" if b"/bin/" in line else line + b"\n"
                    for line in data.splitlines()
                )
            found[str(path.relative_to(root))] = (path.stat().st_mode & 0o777, data)
    return found


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_a_stored_copy_installs_exactly_what_the_wheel_installs(tmp_path: Path, chunk: int) -> None:
    wheel = demo_wheel(tmp_path)
    classic, streamed = tmp_path / "a" / "env", tmp_path / "b" / "env"
    make_venv(classic)
    make_venv(streamed)
    with WheelTransaction(install_scheme(classic)) as transaction:
        transaction.stage(wheel)
        transaction.commit()
    stream_install(install_scheme(streamed), wheel.name, stored_copy(wheel), chunk)
    installed = tree(streamed)
    assert installed == tree(classic)
    assert [mode for key, (mode, _) in installed.items() if key.endswith("demo_pkg/tool.sh")] == [
        0o755
    ]
    shown = run_python(streamed / "bin" / "python", "import demo_pkg; print(demo_pkg.__version__)")
    assert shown.stdout.strip() == "1.0"
    assert (
        "demo-pkg==1.0"
        in real_pip(streamed / "bin" / "python", "list", "--format=freeze").stdout.split()
    )


def test_a_corrupt_member_is_refused_and_nothing_stays(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = demo_wheel(tmp_path)
    data = bytearray(stored_copy(wheel))
    position = data.index(b"def main()")
    data[position] ^= 0xFF
    with pytest.raises(InvalidWheelError, match=r"'demo_pkg/cli.py' is corrupt"):
        stream_install(install_scheme(tmp_path / "env"), wheel.name, bytes(data))
    assert snapshot(tmp_path / "env") == before


def test_an_unsafe_path_is_refused_before_anything_is_written_outside(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = make_wheel(
        tmp_path, "evil", "1.0", files={"evil/__init__.py": "", "evil/x.py": "print('escaped')\n"}
    )
    data = stored_copy(wheel, rename={"evil/x.py": "../../../../../escape.py"})
    with pytest.raises(InvalidWheelError, match=r"unsafe path '../../../../../escape.py'"):
        stream_install(install_scheme(tmp_path / "env"), wheel.name, data)
    assert snapshot(tmp_path / "env") == before
    assert not list(tmp_path.rglob("escape.py"))


def test_a_central_directory_that_disagrees_with_the_members_is_refused(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = make_wheel(tmp_path, "sneaky", "1.0")
    data = bytearray(stored_copy(wheel))
    # Change the name in the central directory only: pip would install another file.
    central = data.index(b"PK\x01\x02")
    name_at = central + 46
    assert data[name_at : name_at + 6] == b"sneaky"
    data[name_at : name_at + 6] = b"sneakz"
    with pytest.raises(InvalidWheelError, match="central directory does not match"):
        stream_install(install_scheme(tmp_path / "env"), wheel.name, bytes(data))
    assert snapshot(tmp_path / "env") == before


@pytest.mark.parametrize("kind", ["deflated", "descriptor"])
def test_archives_it_cannot_stream_are_left_to_the_wheel_installer(
    tmp_path: Path, kind: str
) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = make_wheel(tmp_path, "plain", "1.0")
    data = wheel.read_bytes() if kind == "deflated" else stored_copy(wheel, descriptor=True)
    if kind == "descriptor":
        flags = struct.unpack_from("<H", data, 6)[0]
        assert flags & 0x8  # the helper really wrote a data descriptor
    with pytest.raises(StreamingUnsupported):
        stream_install(install_scheme(tmp_path / "env"), wheel.name, data)
    assert snapshot(tmp_path / "env") == before


def test_a_truncated_copy_is_refused(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = demo_wheel(tmp_path)
    data = stored_copy(wheel)
    with pytest.raises(InvalidWheelError, match="ends in the middle"):
        stream_install(install_scheme(tmp_path / "env"), wheel.name, data[: len(data) // 2])
    assert snapshot(tmp_path / "env") == before


def test_a_restarted_attempt_starts_from_nothing(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    wheel = demo_wheel(tmp_path)
    data = stored_copy(wheel)
    scheme = install_scheme(tmp_path / "env")
    with WheelTransaction(scheme) as transaction:
        stager = transaction.stream_stager(wheel.name)
        stager.restart()(data[: len(data) // 3])  # a connection that broke part way
        sink = stager.restart()
        sink(data)
        transaction.add(stager.finish())
        transaction.commit()
    shown = run_python(
        tmp_path / "env" / "bin" / "python", "import demo_pkg; print(demo_pkg.__version__)"
    )
    assert shown.stdout.strip() == "1.0"


def test_cancelling_stops_the_stream(tmp_path: Path) -> None:
    make_venv(tmp_path / "env")
    before = snapshot(tmp_path / "env")
    wheel = demo_wheel(tmp_path)
    cancel = threading.Event()
    with (
        pytest.raises(CancelledError, match="cancelled"),
        WheelTransaction(install_scheme(tmp_path / "env"), cancel=cancel) as transaction,
    ):
        stager = transaction.stream_stager(wheel.name)
        sink = stager.restart()
        cancel.set()
        sink(stored_copy(wheel))
    assert snapshot(tmp_path / "env") == before


def test_a_lib_layout_it_did_not_expect_is_left_to_the_wheel_installer(tmp_path: Path) -> None:
    # Separate purelib and platlib (as on Fedora or Debian's system Python): the copy's
    # files go where the wheel's tags point, and WHEEL says otherwise at the end.
    make_venv(tmp_path / "env")
    base = install_scheme(tmp_path / "env")
    platlib = tmp_path / "env" / "lib64" / "site-packages"
    platlib.mkdir(parents=True)
    scheme = InstallScheme(
        purelib=base.purelib,
        platlib=platlib,
        scripts=base.scripts,
        data=base.data,
        headers=base.headers,
        python=base.python,
    )
    before = snapshot(tmp_path / "env")
    wheel = make_wheel(tmp_path, "oddly-tagged", "1.0", tag="py3-none-linux_x86_64")
    with pytest.raises(StreamingUnsupported, match="Root-Is-Purelib"):
        stream_install(scheme, wheel.name, stored_copy(wheel))
    assert snapshot(tmp_path / "env") == before
    with WheelTransaction(scheme) as transaction:  # the fallback puts it where WHEEL says
        transaction.stage(wheel)
        transaction.commit()
    assert (base.purelib / "oddly_tagged" / "__init__.py").is_file()
    assert not list(platlib.iterdir())
