"""One shared OpenBLAS for musl: built from source with zig (C only), packaged once as an apk.

The source is upstream OpenBLAS with its C translation of LAPACK (``lapack-netlib/**/*.c``),
taken from PyPI's ``cmeel-openblas`` sdist: the only registry source here that carries the whole
tree (Debian repacks OpenBLAS without LAPACK; the ``scipy-openblas*`` projects publish no
sdist). ``NOFORTRAN=1 C_LAPACK=1`` builds BLAS, CBLAS, LAPACK and LAPACKE without a Fortran
compiler; ``DYNAMIC_ARCH`` with a short core list keeps it portable across x86-64 machines.
NumPy (and SciPy, where it can be built) link this library; the apks made of their wheels
depend on ``so:libopenblas.so.0``, which the ``openblas`` apk provides, as abuild writes it.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..apk.elf import read_elf
from ..apk.keys import SigningKey
from ..apk.package import ApkEntry, build_apk
from ..apk.pkginfo import PkgInfo
from ..apk.wheel2apk import ApkTarget
from ..errors import BuildError
from .host import run_logged
from .musl_toolchain import MuslToolchain

OPENBLAS_PROJECT = "cmeel-openblas"
SONAME = "libopenblas.so.0"
# x86-64 kernels built besides the baseline (PRESCOTT): what most machines in use run.
# Not SKYLAKEX: zig's clang driver refuses the flags OpenBLAS gives its AVX-512 kernels
# ("unknown CPU feature: 'avx512'"), so AVX-512 machines run the HASWELL (AVX2) kernels.
DYNAMIC_LIST = ("SANDYBRIDGE", "HASWELL", "ZEN")


@dataclass(frozen=True)
class OpenBlasBuild:
    """An installed OpenBLAS prefix: ``lib/libopenblas.so.0``, headers, ``lib/pkgconfig``."""

    version: str
    prefix: Path

    @property
    def library(self) -> Path:
        """The shared library every package links."""
        return self.prefix / "lib" / SONAME

    @property
    def pkgconfig_dir(self) -> Path:
        """Where ``openblas.pc`` lies (for PKG_CONFIG_PATH)."""
        return self.prefix / "lib" / "pkgconfig"


def make_arguments(toolchain: MuslToolchain, *, jobs: int, prefix: Path) -> list[str]:
    """Return the ``make`` variables of the build (also used for ``install``). Pure.

    ``HOSTCC`` builds OpenBLAS's ``getarch`` helper, which runs on the build machine.
    """
    return [
        f"-j{jobs}",
        f"CC={toolchain.tool('cc')}",
        "HOSTCC=gcc",
        f"AR={toolchain.tool('ar')}",
        f"RANLIB={toolchain.tool('ranlib')}",
        "NOFORTRAN=1",
        "C_LAPACK=1",
        "DYNAMIC_ARCH=1",
        f"DYNAMIC_LIST={' '.join(DYNAMIC_LIST)}",
        "TARGET=PRESCOTT",
        "USE_OPENMP=0",
        "USE_THREAD=1",
        "NUM_THREADS=64",
        "BINARY=64",
        "NO_STATIC=1",
        f"PREFIX={prefix}",
    ]


def unpack_source(sdist: Path, directory: Path) -> Path:
    """Unpack the sdist (safely) and return its ``OpenBLAS`` source folder.

    Raises:
        BuildError: the sdist holds no OpenBLAS tree with the C LAPACK.
    """
    with tarfile.open(sdist) as archive:
        archive.extractall(directory, filter="data")
    found = [path.parent for path in directory.glob("*/OpenBLAS/Makefile.system")]
    if len(found) != 1 or not any((found[0] / "lapack-netlib" / "SRC").glob("dgesv.c")):
        raise BuildError(
            f"{sdist.name} has no OpenBLAS source tree with lapack-netlib's C files",
            hint=f"check that {OPENBLAS_PROJECT} still ships OpenBLAS with its C LAPACK",
        )
    return found[0]


def build_openblas(
    sdist: Path,
    version: str,
    toolchain: MuslToolchain,
    work: Path,
    log_path: Path,
    *,
    jobs: int,
    nice: int = 19,
    env: Mapping[str, str],
    progress: Callable[[str], None],
) -> OpenBlasBuild:
    """Build and install OpenBLAS into ``work/prefix``; an existing install is reused.

    The source stays in ``work/src`` so an interrupted build resumes where make stopped.

    Raises:
        BuildError: make fails, or the library it installs is not a musl x86-64 ELF object.
    """
    work = work.resolve()  # make -C runs in the source folder
    prefix = work / "prefix"
    done = OpenBlasBuild(version, prefix)
    if done.library.is_file() and (done.pkgconfig_dir / "openblas.pc").is_file():
        return done
    source_root = work / "src"
    found = list(source_root.glob("*/OpenBLAS/Makefile.system"))
    source = found[0].parent if found else unpack_source(sdist, source_root)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    arguments = make_arguments(toolchain, jobs=jobs, prefix=prefix)
    started = time.monotonic()
    progress(f"openblas: building OpenBLAS {version} with zig (log: {log_path})")
    with log_path.open("a", encoding="utf-8") as log:
        for goal in (["libs", "netlib", "shared"], ["install"]):
            command = ["nice", "-n", str(nice), "make", "-C", str(source), *arguments, *goal]
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            code = run_logged(command, env, log, "openblas", started, progress)
            if code != 0:
                raise BuildError(
                    f"openblas: make {' '.join(goal)} exited with {code}",
                    hint=f"read the end of {log_path}",
                )
    info = read_elf(done.library.read_bytes(), str(done.library))
    if info is None or toolchain.triple.split("-")[0] not in info.arches:
        raise BuildError(f"{done.library} is not an {toolchain.triple} shared library")
    return done


def openblas_apk(
    build: OpenBlasBuild,
    target: ApkTarget,
    key: SigningKey,
    *,
    strip: str,
    builddate: int | None = None,
) -> tuple[str, bytes]:
    """Package the shared library, stripped, as the ``openblas`` apk; return (name, bytes).

    Like Alpine's own ``openblas``: the library only (headers and pkg-config data stay in
    the farm's build prefix), ``so:libopenblas.so.0=0`` provided and musl's libc depended on,
    as abuild writes them.

    Raises:
        BuildError: strip fails, or the library has another soname than the packages link.
    """
    with tempfile.TemporaryDirectory() as scratch:
        stripped = Path(scratch) / SONAME
        done = subprocess.run(
            [strip, "--strip-unneeded", "-o", str(stripped), str(build.library)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise BuildError(f"strip {build.library} failed: {done.stderr}")
        data = stripped.read_bytes()
    info = read_elf(data, str(build.library))
    if info is None or info.soname != SONAME:
        raise BuildError(f"{build.library} has soname {info and info.soname}, not {SONAME}")
    pkginfo = PkgInfo(
        pkgname="openblas",
        pkgver=f"{build.version}-r0",
        pkgdesc="Optimized BLAS and LAPACK (C LAPACK, built for musl with zig by the ipydeps farm)",
        url="https://www.openmathlib.org/OpenBLAS/",
        builddate=int(time.time()) if builddate is None else builddate,
        packager="ipydeps farm",
        arch=target.arch,
        license="BSD-3-Clause",
        depends=(f"so:libc.musl-{target.arch}.so.1",),
        provides=(f"so:{SONAME}=0",),
    )
    entry = ApkEntry.file(f"usr/lib/{SONAME}", data, mode=0o755)
    return pkginfo.filename, build_apk([entry], pkginfo, key)


def copy_library(build: OpenBlasBuild, folder: Path) -> Path:
    """Copy the library next to a build's artifacts (for size figures and the harness)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SONAME
    shutil.copy2(build.library, target)
    return target
