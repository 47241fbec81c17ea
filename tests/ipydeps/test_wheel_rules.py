"""Both client readers (a wheel file, a stored copy's stream) apply the shared wheel rules alike.

The rules are ``ipydeps.formats``' and the server's upload check applies the same ones:
a ``.dist-info`` of another project or version, an invalid entry point or script name, a
malformed RECORD or a missing WHEEL are refused before anything is installed, and a RECORD
in sha384 or sha512 (the spec's "sha256 or better") is checked and accepted.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ipydeps.environment import InstallScheme, install_scheme
from ipydeps.errors import InvalidWheelError, RecordMismatchError
from ipydeps.installers.transaction import WheelTransaction
from tests.ipydeps.test_wheelstream import stored_copy
from tests.support.venvs import make_venv, run_python, snapshot

Install = Callable[[InstallScheme, Path], None]


def from_wheel(scheme: InstallScheme, wheel: Path) -> None:
    with WheelTransaction(scheme) as transaction:
        transaction.stage(wheel)
        transaction.commit()


def from_stream(scheme: InstallScheme, wheel: Path) -> None:
    data = stored_copy(wheel)
    with WheelTransaction(scheme) as transaction:
        stager = transaction.stream_stager(wheel.name)
        sink = stager.restart()
        try:
            for start in range(0, len(data), 4096):
                sink(data[start : start + 4096])
            transaction.add(stager.finish())
        except BaseException:
            stager.discard()
            raise
        transaction.commit()


READERS = pytest.mark.parametrize("install", [from_wheel, from_stream], ids=["wheel", "stream"])


def hostile_wheel(
    directory: Path,
    files: dict[str, bytes],
    *,
    filename: str = "demo_pkg-1.0",
    dist: str = "demo_pkg-1.0",
    algorithm: str = "sha256",
    record: bytes | None = None,
    wheel_file: bool = True,
) -> Path:
    """A wheel whose every part is given; RECORD lists everything with ``algorithm``."""
    entries = dict(files)
    entries[f"{dist}.dist-info/METADATA"] = b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n"
    if wheel_file:
        entries[f"{dist}.dist-info/WHEEL"] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
    if record is None:
        rows = []
        for path, data in entries.items():
            digest = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=")
            rows.append(f"{path},{algorithm}={digest.decode()},{len(data)}\n")
        record = ("".join(rows) + f"{dist}.dist-info/RECORD,,\n").encode()
    entries[f"{dist}.dist-info/RECORD"] = record
    path = directory / f"{filename}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def env(tmp_path: Path) -> Path:
    make_venv(tmp_path / "env")
    return tmp_path / "env"


@READERS
@pytest.mark.parametrize("algorithm", ["sha384", "sha512"])
def test_a_record_in_sha384_or_sha512_is_checked_and_accepted(
    install: Install, algorithm: str, tmp_path: Path, env: Path
) -> None:
    wheel = hostile_wheel(tmp_path, {"demo_pkg/__init__.py": b"VALUE = 7\n"}, algorithm=algorithm)
    install(install_scheme(env), wheel)
    assert (
        run_python(env / "bin" / "python", "import demo_pkg; print(demo_pkg.VALUE)").stdout == "7\n"
    )
    # The same RECORD with the module's bytes changed is refused.
    tampered = hostile_wheel(
        tmp_path,
        {"demo_pkg/__init__.py": b"VALUE = 8\n"},
        algorithm=algorithm,
        record=zipfile.ZipFile(wheel).read("demo_pkg-1.0.dist-info/RECORD"),
    )
    before = snapshot(env)
    with pytest.raises(RecordMismatchError, match=f"its RECORD says {algorithm}="):
        install(install_scheme(env), tampered)
    assert snapshot(env) == before


@READERS
@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("impostor", "the wheel's requests-1.0.dist-info names another project or version"),
        ("version", "the wheel's demo_pkg-2.0.dist-info names another project or version"),
        ("entry point", "entry point '../escape' = 'demo_pkg:main' is invalid"),
        ("weak hash", "RECORD uses 'md5' for 'demo_pkg/__init__.py'; expected sha256 or better"),
        ("bad row", "RECORD row ['demo_pkg/__init__.py', 'x'] does not have 3 fields"),
        ("no WHEEL", "WHEEL"),
    ],
)
def test_what_the_rules_refuse_is_refused_by_both_readers(
    install: Install, kind: str, problem: str, tmp_path: Path, env: Path
) -> None:
    module = {"demo_pkg/__init__.py": b"def main():\n    return 0\n"}
    wheel = {
        "impostor": lambda: hostile_wheel(tmp_path, module, dist="requests-1.0"),
        "version": lambda: hostile_wheel(tmp_path, module, dist="demo_pkg-2.0"),
        "entry point": lambda: hostile_wheel(
            tmp_path,
            {
                **module,
                "demo_pkg-1.0.dist-info/entry_points.txt": (
                    b"[console_scripts]\n../escape = demo_pkg:main\n"
                ),
            },
        ),
        "weak hash": lambda: hostile_wheel(
            tmp_path,
            module,
            record=(b"demo_pkg/__init__.py,md5=abc,27\ndemo_pkg-1.0.dist-info/RECORD,,\n"),
        ),
        "bad row": lambda: hostile_wheel(
            tmp_path, module, record=(b"demo_pkg/__init__.py,x\ndemo_pkg-1.0.dist-info/RECORD,,\n")
        ),
        "no WHEEL": lambda: hostile_wheel(tmp_path, module, wheel_file=False),
    }[kind]()
    before = snapshot(env)
    with pytest.raises(InvalidWheelError) as caught:
        install(install_scheme(env), wheel)
    assert problem in str(caught.value)
    assert snapshot(env) == before
