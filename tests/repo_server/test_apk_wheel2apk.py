"""Apk wheels: a wheel wrapped as an apk installs the same files pip would, with apk metadata."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from ipydeps_repo.apk.elf import read_elf
from ipydeps_repo.apk.index import build_index
from ipydeps_repo.apk.keys import SigningKey, generate_key, load_public_keys, save_key
from ipydeps_repo.apk.package import ApkPackage
from ipydeps_repo.apk.verify import verify_apk, verify_index
from ipydeps_repo.apk.wheel2apk import ApkTarget, wheel_to_apk
from ipydeps_repo.errors import ValidationError

from tests.support.elf import EM_AARCH64, make_elf
from tests.support.pipenv import clean_pip_env
from tests.support.wheels import make_wheel

TARGET = ApkTarget(branch="v3.22", python="3.12", arch="x86_64")
MUSL = "libc.musl-x86_64.so.1"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_key("wheel-test", 2048)


@pytest.fixture(scope="module")
def trusted(key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RSAPublicKey]:
    folder: Path = tmp_path_factory.mktemp("keys")
    save_key(key, folder)
    return load_public_keys(folder)


def wrap(
    wheel: Path, key: SigningKey, trusted: dict[str, RSAPublicKey], **options: object
) -> tuple[str, ApkPackage]:
    filename, data = wheel_to_apk(wheel, TARGET, key, builddate=1700000000, **options)  # type: ignore[arg-type]
    return filename, verify_apk(data, trusted)


def files_of(package: ApkPackage) -> dict[str, bytes]:
    return {e.path: e.data for e in package.entries if e.kind == "file"}


def pure_wheel(folder: Path) -> Path:
    return make_wheel(
        folder,
        "Hello-World",
        "2.0.0rc1",
        requires=[
            "numpy>=1.21,<3",
            "colorama; sys_platform == 'win32'",
            "pytest; extra == 'test'",
            "typing-extensions==4.*; python_version < '3.13'",
            "exceptiongroup; python_version < '3.11'",
            "pyzmq>=25; platform_machine == 'x86_64' and platform_system == 'Linux'",
        ],
        files={
            "hello_world/__init__.py": "x = 1\n",
            "hello_world_helpers.py": "y = 2\n",
            "hello_world-2.0.0rc1.dist-info/entry_points.txt": (
                "[console_scripts]\nhello = hello_world.cli:main\n"
            ),
            "hello_world-2.0.0rc1.data/scripts/hi": "#!python\nprint('hi')\n",
            "hello_world-2.0.0rc1.data/headers/hello.h": "int x;\n",
            "hello_world-2.0.0rc1.data/data/share/hello/readme.txt": "docs\n",
        },
    )


def test_pure_wheel(tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]) -> None:
    filename, package = wrap(pure_wheel(tmp_path), key, trusted)
    info = package.info
    assert filename == "py3-hello-world-2.0.0_rc1-r0.apk"
    assert (info.pkgname, info.pkgver, info.arch) == ("py3-hello-world", "2.0.0_rc1-r0", "noarch")
    assert info.depends == (
        "python3~3.12",
        "py3-numpy>=1.21",
        "py3-typing-extensions~4",
        "py3-pyzmq>=25",
    )
    assert info.provides == (
        "py3.12:hello_world=2.0.0_rc1-r0",
        "py3.12:hello_world_helpers=2.0.0_rc1-r0",
        "cmd:hello=2.0.0_rc1-r0",
        "cmd:hi=2.0.0_rc1-r0",
    )
    site = "usr/lib/python3.12/site-packages"
    files = files_of(package)
    assert set(files) == {
        f"{site}/hello_world/__init__.py",
        f"{site}/hello_world_helpers.py",
        f"{site}/hello_world-2.0.0rc1.dist-info/METADATA",
        f"{site}/hello_world-2.0.0rc1.dist-info/WHEEL",
        f"{site}/hello_world-2.0.0rc1.dist-info/entry_points.txt",
        f"{site}/hello_world-2.0.0rc1.dist-info/INSTALLER",
        f"{site}/hello_world-2.0.0rc1.dist-info/RECORD",
        "usr/bin/hello",
        "usr/bin/hi",
        "usr/include/python3.12/hello-world/hello.h",
        "usr/share/hello/readme.txt",
    }
    assert files[f"{site}/hello_world-2.0.0rc1.dist-info/INSTALLER"] == b"apk\n"
    assert files["usr/bin/hi"] == b"#!/usr/bin/python3.12\nprint('hi')\n"
    script = files["usr/bin/hello"].decode()
    assert script.startswith("#!/usr/bin/python3.12\n")
    assert "from hello_world.cli import main\n" in script and "sys.exit(main())" in script
    modes = {e.path: e.mode for e in package.entries}
    assert modes["usr/bin/hello"] == modes["usr/bin/hi"] == 0o755
    assert modes[f"{site}/hello_world/__init__.py"] == 0o644


def test_record_lists_every_installed_file(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    _, package = wrap(pure_wheel(tmp_path), key, trusted)
    site = "usr/lib/python3.12/site-packages"
    files = files_of(package)
    rows = list(
        csv.reader(io.StringIO(files[f"{site}/hello_world-2.0.0rc1.dist-info/RECORD"].decode()))
    )
    listed = {}
    for path, digest, size in rows:
        installed = str(Path("/", site, path).resolve()).lstrip("/")
        listed[installed] = (digest, size)
    assert set(listed) == set(files)
    for path, data in files.items():
        digest, size = listed[path]
        if path.endswith("/RECORD"):
            assert (digest, size) == ("", "")
            continue
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, size) == (f"sha256={expected}", str(len(data)))


def _install(package: ApkPackage, root: Path) -> Path:
    for entry in package.entries:
        target = root / entry.path
        if entry.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        elif entry.kind == "file":
            target.write_bytes(entry.data)
    return root / "usr/lib/python3.12/site-packages"


def test_pip_and_importlib_see_the_installed_apk(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    _, package = wrap(pure_wheel(tmp_path), key, trusted)
    site = _install(package, tmp_path / "root")
    (dist,) = importlib.metadata.distributions(path=[str(site)])
    assert (dist.metadata["Name"], dist.version) == ("Hello-World", "2.0.0rc1")
    assert dist.read_text("INSTALLER") == "apk\n"
    assert {str(f) for f in dist.files or []} >= {"hello_world/__init__.py", "../../../bin/hello"}
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--path", str(site), "--format", "json"],
        env=clean_pip_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert {"name": "Hello-World", "version": "2.0.0rc1"} in json.loads(listing.stdout)


def binary_wheel(folder: Path, tag: str, libraries: dict[str, bytes], name: str = "fast") -> Path:
    files: dict[str, bytes | str] = {f"{name}/__init__.py": "from ._core import *\n"}
    files.update(libraries)
    return make_wheel(folder, name, "1.2.3", files=files, tag=tag)


def test_musllinux_wheel_gets_so_depends_for_libraries_it_does_not_bundle(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    core = make_elf(needed=["libopenblas.so.3", "libgfortran-abc123.so.5.0.0", MUSL])
    bundled = make_elf(needed=[MUSL], soname="libgfortran-abc123.so.5.0.0")
    wheel = binary_wheel(
        tmp_path,
        "cp312-cp312-musllinux_1_2_x86_64",
        {
            "fast/_core.cpython-312-x86_64-linux-musl.so": core,
            "fast.libs/libgfortran-abc123.so.5.0.0": bundled,
        },
    )
    filename, package = wrap(wheel, key, trusted)
    assert filename == "py3-fast-1.2.3-r0.apk"
    assert package.info.arch == "x86_64"
    assert package.info.depends == ("python3~3.12", f"so:{MUSL}", "so:libopenblas.so.3")
    # The bundled copy is found through the extension's RPATH: no provide (see below).
    assert package.info.provides == ("py3.12:fast=1.2.3-r0",)
    so_path = "usr/lib/python3.12/site-packages/fast/_core.cpython-312-x86_64-linux-musl.so"
    assert {e.path: e.mode for e in package.entries}[so_path] == 0o755
    assert read_elf(files_of(package)[so_path]) is not None


def _auditwheel_like(folder: Path, name: str, requires: list[str]) -> Path:
    """A musllinux wheel bundling libgcc_s and libgfortran under ``<name>.libs/`` (auditwheel)."""
    gcc = "libgcc_s-0cd532bd.so.1"
    fortran = "libgfortran-040039e1.so.5.0.0"
    files: dict[str, bytes | str] = {
        f"{name}/__init__.py": "",
        f"{name}/_core.cpython-312-x86_64-linux-musl.so": make_elf(needed=[fortran, gcc, MUSL]),
        f"{name}.libs/{gcc}": make_elf(needed=[MUSL], soname=gcc),
        f"{name}.libs/{fortran}": make_elf(needed=[gcc, MUSL], soname=fortran),
    }
    return make_wheel(
        folder, name, "2.0", files=files, requires=requires, tag="cp312-cp312-musllinux_1_2_x86_64"
    )


def test_wheels_bundling_the_same_library_co_install(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    # apk treats a versioned provide as exclusive: if numpy, scipy and pandas each provided
    # so:libgcc_s-0cd532bd.so.1, apk could install only one of them ("conflicts").
    packages = [
        wrap(_auditwheel_like(tmp_path, name, requires), key, trusted)[1]
        for name, requires in [
            ("numpy", []),
            ("scipy", ["numpy>=1.26"]),
            ("pandas", ["numpy>=1.26"]),
        ]
    ]
    for package in packages:
        module = package.info.pkgname[len("py3-") :]
        assert package.info.provides == (f"py3.12:{module}=2.0-r0",)
        # What the package bundles is no dependency: nobody else provides those names.
        assert [d for d in package.info.depends if d.startswith("so:")] == [f"so:{MUSL}"]
    provided = [p.split("=")[0] for package in packages for p in package.info.provides]
    assert len(provided) == len(set(provided))
    _, records = verify_index(build_index(packages, key, arch="x86_64"), trusted)
    assert {r.name: r.depends for r in records}["py3-pandas"] == (
        "python3~3.12",
        "py3-numpy>=1.26",
        f"so:{MUSL}",
    )


def test_library_in_the_loader_path_is_provided(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    # A wheel's .data/data/lib/ lands in /usr/lib, where abuild would provide the soname.
    library = make_elf(needed=[MUSL], soname="libshared.so.2")
    wheel = binary_wheel(
        tmp_path,
        "cp312-cp312-musllinux_1_2_x86_64",
        {
            "fast/_core.abi3.so": make_elf(needed=["libshared.so.2", MUSL]),
            "fast-1.2.3.data/data/lib/libshared.so.2": library,
        },
    )
    _, package = wrap(wheel, key, trusted)
    assert "so:libshared.so.2=2" in package.info.provides
    assert package.info.depends == ("python3~3.12", f"so:{MUSL}")


def test_so_map_names_the_system_package(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    core = make_elf(needed=["libopenblas.so.3", MUSL])
    wheel = binary_wheel(tmp_path, "cp312-cp312-musllinux_1_1_x86_64", {"fast/_core.abi3.so": core})
    _, package = wrap(wheel, key, trusted, so_map={"libopenblas.so.3": "openblas"})
    assert package.info.depends == ("python3~3.12", f"so:{MUSL}", "openblas")


def test_abi3_wheel_for_older_python_is_accepted(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    wheel = binary_wheel(
        tmp_path, "cp39-abi3-musllinux_1_2_x86_64", {"fast/_core.abi3.so": make_elf(needed=[MUSL])}
    )
    assert wrap(wheel, key, trusted)[1].info.arch == "x86_64"


def _refusal(wheel: Path, key: SigningKey, target: ApkTarget = TARGET) -> str:
    with pytest.raises(ValidationError) as caught:
        wheel_to_apk(wheel, target, key)
    return "\n".join(caught.value.problems)


def test_manylinux_wheel_is_refused(tmp_path: Path, key: SigningKey) -> None:
    wheel = binary_wheel(
        tmp_path,
        "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
        {"fast/_core.so": make_elf(needed=["libc.so.6"])},
    )
    problems = _refusal(wheel, key)
    assert (
        "is built for glibc (manylinux2014_x86_64, manylinux_2_17_x86_64); Alpine uses musl"
        in problems
    )
    assert "needs libc.so.6: it was built against glibc, not musl" in problems


def test_linux_tag_with_glibc_binary_is_refused(tmp_path: Path, key: SigningKey) -> None:
    wheel = binary_wheel(
        tmp_path,
        "cp312-cp312-linux_x86_64",
        {"fast/_core.so": make_elf(needed=["libc.so.6", "libm.so.6"])},
    )
    assert "fast/_core.so needs libc.so.6: it was built against glibc" in _refusal(wheel, key)


def test_other_python_is_refused(tmp_path: Path, key: SigningKey) -> None:
    wheel = binary_wheel(
        tmp_path, "cp311-cp311-musllinux_1_2_x86_64", {"fast/_core.so": make_elf(needed=[MUSL])}
    )
    assert (
        "has no tag for CPython 3.12 on musllinux x86_64 (tags: cp311-cp311-musllinux_1_2_x86_64)"
        in _refusal(wheel, key)
    )


def test_other_arch_is_refused(tmp_path: Path, key: SigningKey) -> None:
    wheel = binary_wheel(
        tmp_path,
        "cp312-cp312-musllinux_1_2_x86_64",
        {"fast/_core.so": make_elf(needed=[MUSL], machine=EM_AARCH64)},
    )
    assert "fast/_core.so is machine code for ('aarch64',)" in _refusal(wheel, key)


def test_requires_python_is_checked(tmp_path: Path, key: SigningKey) -> None:
    wheel = make_wheel(tmp_path, "old", "1.0", requires_python="<3.10")
    assert "Requires-Python <3.10 excludes Python 3.12" in _refusal(wheel, key)


def test_epoch_version_is_refused(tmp_path: Path, key: SigningKey) -> None:
    wheel = make_wheel(tmp_path, "epoch", "1!2.0")
    assert "apk has no epochs" in _refusal(wheel, key)


def test_tampered_wheel_is_refused(tmp_path: Path, key: SigningKey) -> None:
    wheel = make_wheel(tmp_path, "tampered", "1.0")
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("tampered/extra.py", "import os\n")
    assert "'tampered/extra.py' is not listed in RECORD" in _refusal(wheel, key)


def test_a_wheel_of_another_wheel_version_is_refused(tmp_path: Path, key: SigningKey) -> None:
    # What the client refuses to install is not wrapped for apk to install either.
    source = make_wheel(tmp_path, "future", "1.0")
    wheel = tmp_path / "next" / source.name
    wheel.parent.mkdir()
    with zipfile.ZipFile(source) as original:
        entries = {info.filename: original.read(info) for info in original.infolist()}
    dist = "future-1.0.dist-info"
    entries[f"{dist}/WHEEL"] = entries[f"{dist}/WHEEL"].replace(
        b"Wheel-Version: 1.0", b"Wheel-Version: 2.0"
    )
    digest = base64.urlsafe_b64encode(hashlib.sha256(entries[f"{dist}/WHEEL"]).digest())
    rows = [
        row
        for row in entries[f"{dist}/RECORD"].splitlines(keepends=True)
        if not row.startswith(f"{dist}/WHEEL,".encode())
    ]
    entries[f"{dist}/RECORD"] = (
        b"".join(rows)
        + (
            f"{dist}/WHEEL,sha256={digest.rstrip(b'=').decode()},{len(entries[f'{dist}/WHEEL'])}\n"
        ).encode()
    )
    with zipfile.ZipFile(wheel, "w") as copy:
        for name, data in entries.items():
            copy.writestr(name, data)
    assert "unsupported Wheel-Version '2.0'" in _refusal(wheel, key)


def test_unsafe_wheel_path_is_refused(tmp_path: Path, key: SigningKey) -> None:
    wheel = make_wheel(
        tmp_path, "unsafe", "1.0", files={"../../etc/evil": "x", "unsafe/__init__.py": ""}
    )
    assert "unsafe path '../../etc/evil'" in _refusal(wheel, key)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"python": "312"}, "python '312' must look like '3.12'"),
        ({"arch": "amd64"}, "arch 'amd64' is not one of"),
        ({"branch": "3.22"}, "branch '3.22' must look like 'v3.22' or 'edge'"),
    ],
)
def test_bad_target(fields: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ApkTarget(**{"branch": "v3.22", "python": "3.12", "arch": "x86_64", **fields})


def test_wrapped_apks_index_together(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    _, pure = wrap(pure_wheel(tmp_path), key, trusted)
    wheel = binary_wheel(
        tmp_path, "cp312-cp312-musllinux_1_2_x86_64", {"fast/_core.so": make_elf(needed=[MUSL])}
    )
    _, binary = wrap(wheel, key, trusted)
    _, records = verify_index(build_index([pure, binary], key, arch="x86_64"), trusted)
    assert [(r.name, r.arch) for r in records] == [
        ("py3-fast", "x86_64"),
        ("py3-hello-world", "x86_64"),
    ]


def test_name_map_names_other_apks(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    wheel = make_wheel(tmp_path, "needs", "1.0", requires=["PyYAML>=6", "python-dateutil"])
    _, package = wrap(
        wheel, key, trusted, name_map={"pyyaml": "py3-yaml", "Python_Dateutil": "py3-dateutil"}
    )
    assert package.info.depends == ("python3~3.12", "py3-yaml>=6", "py3-dateutil")


def test_one_dependency_per_project(
    tmp_path: Path, key: SigningKey, trusted: dict[str, RSAPublicKey]
) -> None:
    # apk keeps one dependency per name: the stricter lower bound of the two must win.
    requires = [
        "numpy>=1.21; python_version < '3.13'",
        "numpy>=1.26; python_version >= '3.12'",
        "numpy",
    ]
    _, package = wrap(make_wheel(tmp_path, "twice", "1.0", requires=requires), key, trusted)
    assert package.info.depends == ("python3~3.12", "py3-numpy>=1.26")
