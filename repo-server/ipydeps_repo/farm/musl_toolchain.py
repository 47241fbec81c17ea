"""The musl build toolchain: zig's C/C++ compilers from PyPI, and a build venv on a musl CPython.

No Alpine and no Docker: a musl CPython (the project's musl harness, or an Alpine python3) runs
the build as a native one, pip builds each sdist in it, and the compilers are ``zig cc`` /
``zig c++ -target <arch>-linux-musl`` from the ``ziglang`` wheel. Meson, setuptools and make
take them from ``CC``/``CXX``, so no cross file is needed; pkg-config finds the shared OpenBLAS.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError

# The tools a build calls by name, and the zig sub-command behind each.
_TOOLS = {"cc": "cc", "c++": "c++", "ar": "ar", "ranlib": "ranlib"}
_COMPILERS = ("cc", "c++")
PIP_REQUIREMENT = "pip>=23.1"


@dataclass(frozen=True)
class MuslToolchain:
    """Wrapper scripts around one zig binary, for one target triple (``x86_64-linux-musl``)."""

    zig: Path
    bin_dir: Path
    cache_dir: Path
    triple: str
    zig_version: str

    def tool(self, name: str) -> str:
        """Return the path of a wrapper (``cc``, ``c++``, ``ar``, ``ranlib``)."""
        return str(self.bin_dir / name)

    def environment(
        self,
        base: Mapping[str, str],
        *,
        pkg_config_path: Sequence[Path] = (),
        pkg_config_libdir: Path | None = None,
    ) -> dict[str, str]:
        """Return ``base`` with the compilers, archiver and zig's cache set for a build.

        ``LDSHARED``/``LDCXXSHARED`` are for setuptools, which otherwise links with the
        interpreter's own ``gcc -shared``. pkg-config sees only ``pkg_config_path`` (the shared
        OpenBLAS) and ``pkg_config_libdir`` (the musl Python's own ``.pc`` files): never the
        build machine's glibc libraries and Python headers.
        """
        env = dict(base)
        cc, cxx = self.tool("cc"), self.tool("c++")
        env.update(
            {
                "CC": cc,
                "CXX": cxx,
                "AR": self.tool("ar"),
                "RANLIB": self.tool("ranlib"),
                "LDSHARED": f"{cc} -shared",
                "LDCXXSHARED": f"{cxx} -shared",
                "ZIG_GLOBAL_CACHE_DIR": str(self.cache_dir),
                "ZIG_LOCAL_CACHE_DIR": str(self.cache_dir),
            }
        )
        env["PKG_CONFIG_PATH"] = os.pathsep.join(str(path) for path in pkg_config_path)
        if pkg_config_libdir is not None:
            env["PKG_CONFIG_LIBDIR"] = str(pkg_config_libdir)
        return env

    @property
    def identity(self) -> str:
        """What decides the machine code: part of every musl build key."""
        return f"zig-{self.zig_version}-{self.triple}"


def find_zig() -> Path:
    """Return the zig binary of the installed ``ziglang`` wheel.

    Raises:
        BuildError: ``ziglang`` is not installed in the farm's environment.
    """
    try:
        import ziglang  # type: ignore[import-untyped]
    except ImportError as error:
        raise BuildError(
            "the musl target needs zig's compilers, and ziglang is not installed",
            hint="pip install 'ipydeps-repo[musl]' (or: pip install ziglang)",
        ) from error
    zig = Path(ziglang.__file__).parent / "zig"
    if not zig.is_file():
        raise BuildError(f"the ziglang package has no zig binary at {zig}")
    return zig


def find_strip() -> str:
    """Return binutils' ``strip`` (it strips ELF files of any libc; zig's objcopy cannot yet).

    Raises:
        BuildError: there is none.
    """
    strip = shutil.which("strip")
    if strip is None:
        raise BuildError(
            "the musl target strips what it builds and finds no strip",
            hint="install binutils (apt-get install binutils)",
        )
    return strip


def wrapper_script(zig: Path, tool: str, triple: str) -> str:
    """Return the shell script that runs ``zig <tool>`` (compilers: for ``triple``). Pure."""
    command = [str(zig), _TOOLS[tool]]
    if tool in _COMPILERS:
        command += ["-target", triple]
    return "#!/bin/sh\nexec " + " ".join(shlex.quote(part) for part in command) + ' "$@"\n'


def prepare_toolchain(directory: Path, *, zig: Path, triple: str) -> MuslToolchain:
    """Write the wrapper scripts under ``directory/bin`` and return the toolchain.

    Raises:
        BuildError: zig does not run.
    """
    # Absolute: make -C and meson run the wrappers from other directories.
    directory = directory.resolve()
    try:
        version = subprocess.run(
            [str(zig), "version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        raise BuildError(f"cannot run {zig}: {error}") from error
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in _TOOLS:
        path = bin_dir / tool
        script = wrapper_script(zig, tool, triple)
        # Rewritten only when it changes: another farm run may be compiling with it right now.
        if not path.is_file() or path.read_text(encoding="utf-8") != script:
            partial = path.with_name(f".{tool}.partial")
            partial.write_text(script, encoding="utf-8")
            partial.chmod(0o755)
            os.replace(partial, path)
    cache = directory / "zig-cache"
    cache.mkdir(exist_ok=True)
    return MuslToolchain(zig, bin_dir, cache, triple, version)


@dataclass(frozen=True)
class MuslPython:
    """A musl CPython and the build venv made from it."""

    interpreter: Path
    version: str  # X.Y
    venv_python: Path
    include_dir: Path  # its Python.h

    def write_pkgconfig(self, directory: Path) -> Path:
        """Write ``python3.pc`` and ``python-X.Y.pc`` (and ``-embed``) for this interpreter.

        Meson asks pkg-config for ``python3`` (its Cython sanity check, ``py.dependency()``);
        the interpreter's own .pc files name the prefix it was built for, not where it lies.
        Returns the folder, for ``PKG_CONFIG_LIBDIR``.
        """
        directory.mkdir(parents=True, exist_ok=True)
        text = (
            f"Name: Python\nDescription: musl CPython {self.version} (build interpreter)\n"
            f"Version: {self.version}\nCflags: -I{self.include_dir}\nLibs:\n"
        )
        for name in ("python3", f"python-{self.version}"):
            for suffix in ("", "-embed"):
                (directory / f"{name}{suffix}.pc").write_text(text, encoding="utf-8")
        return directory

    @property
    def cpython_tag(self) -> str:
        """``cp311`` for 3.11."""
        return "cp" + self.version.replace(".", "")


def musl_build_python(interpreter: Path, directory: Path, *, env: Mapping[str, str]) -> MuslPython:
    """Check that ``interpreter`` is a musl CPython and make (once) a build venv from it.

    ``env`` is the environment of the pip that upgrades the venv's own pip (the farm's pip
    settings cleared, see ``host.pip_environment``).

    Raises:
        BuildError: it does not run, is not linked against musl, or the venv cannot be made.
    """
    code = (
        "import sys, sysconfig;"
        "print('%d.%d' % sys.version_info[:2], sysconfig.get_config_var('EXT_SUFFIX'),"
        " sysconfig.get_paths()['include'])"
    )
    try:
        version, suffix, include = subprocess.run(
            [str(interpreter), "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError, ValueError) as error:
        raise BuildError(f"cannot run the musl Python {interpreter}: {error}") from error
    if "musl" not in suffix:
        raise BuildError(
            f"{interpreter} is not a musl CPython (its extension suffix is {suffix})",
            hint="pass --musl-python: the harness built by scripts/musl_harness.py, or Alpine's",
        )
    venv = directory / f"venv-{version}"
    venv_python = venv / "bin" / "python"
    ready = venv / ".farm-ready"
    if not ready.is_file():
        # The interpreter's bundled pip may predate -C (config settings, pip 23.1): upgrade it.
        for command in (
            [str(interpreter), "-m", "venv", "--clear", str(venv)],
            [str(venv_python), "-m", "pip", "install", "--quiet", PIP_REQUIREMENT],
        ):
            try:
                subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            except subprocess.CalledProcessError as error:
                raise BuildError(
                    f"cannot make the build venv of {interpreter}: {error.stderr[-2000:]}"
                ) from error
        ready.write_text(PIP_REQUIREMENT + "\n", encoding="utf-8")
    return MuslPython(interpreter, version, venv_python, Path(include))
