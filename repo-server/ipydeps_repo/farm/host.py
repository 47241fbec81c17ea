"""Host builder: a wheel from an upstream sdist, compiled here against the system OpenBLAS."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError

# Progress of meson/ninja ("[123/1456] Compiling C object ...") and of setuptools builds.
_NINJA_PROGRESS = re.compile(r"^\s*\[(\d+)/(\d+)\]")
# glibc's own libraries: present on every glibc system, so not worth listing as a need.
_LIBC_FAMILY = re.compile(r"^(libc|libm|libdl|libpthread|librt|libutil|ld-linux[^.]*)\.so")
PROGRESS_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class HostBuild:
    """What to build: one sdist, the meson setup args, and how many compile jobs."""

    recipe: str
    project: str
    sdist: Path
    setup_args: tuple[str, ...]
    python: str = sys.executable
    jobs: int = 2
    nice: int = 19
    # PEP 517 build isolation: build deps from PyPI in a throwaway env (off: use the build
    # Python's own, e.g. offline or for tests).
    isolation: bool = True


@dataclass(frozen=True)
class WheelInfo:
    """A built wheel and what it honestly is: its platform tag and the system libraries it needs."""

    path: Path
    platform_tag: str
    needed_libraries: tuple[str, ...]

    @property
    def manylinux(self) -> bool:
        """Whether the tag claims manylinux/musllinux portability (our host wheels never do)."""
        return self.platform_tag.startswith(("manylinux", "musllinux"))


def pip_environment(base: Mapping[str, str], *, jobs: int) -> dict[str, str]:
    """Return the environment for the child pip: this machine's pip settings removed.

    Local find-links, constraints or extra indexes must not change what gets built; the TLS
    trust settings are kept, as they say how to reach PyPI, not what to take from it.
    """
    keep = {"PIP_CERT", "PIP_CLIENT_CERT"}
    env = {k: v for k, v in base.items() if not k.startswith(("PIP_", "UV_")) or k in keep}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    # numpy's and scipy's meson builds read this; setuptools builds read MAX_JOBS-style knobs.
    env["MAX_JOBS"] = str(jobs)
    env["NPY_NUM_BUILD_JOBS"] = str(jobs)
    env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(jobs)
    return env


def wheel_command(build: HostBuild, wheel_dir: Path) -> list[str]:
    """Return the argument list that builds ``build.sdist`` into ``wheel_dir`` (no shell)."""
    command = []
    if build.nice and shutil.which("nice"):
        command += ["nice", "-n", str(build.nice)]
    command += [
        build.python,
        "-m",
        "pip",
        "wheel",
        # Verbose, so the compiler output lands in the log and feeds the progress lines.
        "--verbose",
        "--progress-bar",
        "off",
        "--no-deps",
        "--no-binary",
        build.project,
        "--wheel-dir",
        str(wheel_dir),
        f"-Ccompile-args=-j{build.jobs}",
    ]
    if not build.isolation:
        command.append("--no-build-isolation")
    command += [f"-Csetup-args={arg}" for arg in build.setup_args]
    command.append(str(build.sdist))
    return command


def build_wheel(
    build: HostBuild,
    out_dir: Path,
    log_path: Path,
    *,
    env: Mapping[str, str],
    progress: Callable[[str], None],
) -> WheelInfo:
    """Build one wheel, writing the full build output to ``log_path``.

    ``progress`` receives a short line at most every 30 s (and at the start and end), so a
    30-minute SciPy build is visibly alive.

    Raises:
        BuildError: pip fails, or produces no wheel or more than one.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"farm-{build.recipe}-") as scratch:
        wheel_dir = Path(scratch) / "wheels"
        command = wheel_command(build, wheel_dir)
        started = time.monotonic()
        progress(f"{build.recipe}: building {build.sdist.name} (log: {log_path})")
        with log_path.open("w", encoding="utf-8") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            code = run_logged(command, env, log, build.recipe, started, progress)
        if code != 0:
            raise BuildError(
                f"{build.recipe}: pip wheel exited with {code}",
                hint=f"read the end of {log_path}",
            )
        wheels = sorted(wheel_dir.glob("*.whl"))
        if len(wheels) != 1:
            raise BuildError(f"{build.recipe}: expected one wheel, pip produced {len(wheels)}")
        target = out_dir / wheels[0].name
        shutil.move(str(wheels[0]), target)
    return inspect_wheel(target)


def run_logged(
    command: Sequence[str],
    env: Mapping[str, str],
    log: object,
    recipe: str,
    started: float,
    progress: Callable[[str], None],
) -> int:
    """Run ``command``, copying its output to ``log`` and a progress line to ``progress``.

    Returns the exit code. Ninja's ``[n/total]`` lines feed the progress line.
    """
    last_report = started
    with subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        text=True,
        errors="replace",
    ) as process:
        stdout = process.stdout
        if stdout is None:
            raise BuildError(f"{recipe}: could not read the build output")
        step = "preparing"
        for line in stdout:
            log.write(line)  # type: ignore[attr-defined]
            match = _NINJA_PROGRESS.match(line)
            if match:
                step = f"compile step {match[1]}/{match[2]}"
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_SECONDS:
                last_report = now
                progress(f"{recipe}: {_minutes(now - started)} {step}")
        return process.wait()


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def inspect_wheel(path: Path) -> WheelInfo:
    """Return the wheel's platform tag and the shared libraries its extensions need.

    Libraries shipped inside the wheel and glibc's own are left out: what remains (e.g.
    ``libopenblas.so.0``, ``libgfortran.so.5``) must come from the system.
    """
    platform_tag = path.name[: -len(".whl")].split("-")[-1]
    needed: set[str] = set()
    shipped: set[str] = set()
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as scratch:
        for member in archive.namelist():
            if ".so" not in member.rsplit("/", 1)[-1]:
                continue
            shipped.add(member.rsplit("/", 1)[-1])
            extracted = Path(archive.extract(member, scratch))
            needed.update(elf_needed(extracted))
    external = sorted(lib for lib in needed - shipped if not _LIBC_FAMILY.match(lib))
    return WheelInfo(path=path, platform_tag=platform_tag, needed_libraries=tuple(external))


def elf_needed(path: Path) -> list[str]:
    """Return the DT_NEEDED entries of an ELF file (``readelf -d``), or [] for non-ELF files."""
    readelf = shutil.which("readelf")
    if readelf is None:
        return []
    result = subprocess.run([readelf, "-d", str(path)], capture_output=True, text=True, check=False)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", result.stdout)
