"""The musl target: each recipe's sdist built on a musl CPython with zig, against one OpenBLAS.

Per run: the zig toolchain, a build venv on the musl interpreter (``--musl-python``) and the
shared OpenBLAS (built once, cached by its build key, published as the ``openblas`` apk). Per
recipe: pip builds the wheel in that venv (build isolation: build deps are PyPI's musllinux
wheels), the wheel's links are checked, and it is published as an apk (``so:`` dependencies as
abuild writes them) and, when it needs nothing outside itself, as a ``musllinux_1_2`` wheel.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..apk.keys import SigningKey, load_key
from ..apk.wheel2apk import ApkTarget, wheel_to_apk
from ..errors import BuildError, ConfigurationError
from .host import HostBuild, build_wheel, pip_environment
from .manifest import Manifest, Target
from .musl_openblas import (
    DYNAMIC_LIST,
    OPENBLAS_PROJECT,
    SONAME,
    OpenBlasBuild,
    build_openblas,
    openblas_apk,
)
from .musl_toolchain import (
    MuslPython,
    MuslToolchain,
    find_strip,
    find_zig,
    musl_build_python,
    prepare_toolchain,
)
from .musl_wheels import check_links, musllinux_platform, retag_wheel, strip_wheel
from .options import FarmOptions, RecipeResult, built_result, cached_result, log_path
from .recipe import Recipe
from .state import Artifact, FarmState, build_key
from .upstream import (
    choose_host_release,
    download_sdist,
    fetch_releases,
    file_sha256,
    newest_release,
)

Progress = Callable[[str], None]
OPENBLAS = "openblas"
# Bump when what is done to a built wheel changes (stripping, tags, apk depends): a new key.
PACKAGING = "2"


@dataclass(frozen=True)
class MuslContext:
    """What every recipe of one musl target builds with (OpenBLAS once a recipe needs it)."""

    toolchain: MuslToolchain
    python: MuslPython
    apk_target: ApkTarget
    key: SigningKey
    openblas: OpenBlasBuild | None = None
    openblas_key: str = ""

    def identity(self, *, with_openblas: bool) -> str:
        """Return the target identity in build keys: Python ABI, compiler, OpenBLAS build."""
        python, compiler = self.python.cpython_tag, self.toolchain.identity
        blas = f"-openblas-{self.openblas_key}" if with_openblas else ""
        return f"musl-{python}-{compiler}{blas}-packaging-{PACKAGING}"


def needs_openblas(recipe: Recipe) -> bool:
    """Whether the recipe links BLAS/LAPACK: it makedepends on ``openblas-dev``, as in aports."""
    return "openblas-dev" in recipe.makedepends


def prepare(options: FarmOptions, target: Target) -> MuslContext:
    """Set up the zig toolchain and the build venv of the musl interpreter.

    Raises:
        ConfigurationError: no --musl-python or --key, or the interpreter's Python differs
            from the target's.
        BuildError: zig is missing or the interpreter is not a musl CPython.
    """
    if options.musl_python is None:
        raise ConfigurationError(
            f"target {target.name} needs --musl-python (a musl CPython {target.python})",
            hint="build one with scripts/musl_harness.py, or run the farm on Alpine",
        )
    if options.key_path is None:
        raise ConfigurationError(f"target {target.name} needs --key (it signs the apks)")
    work = options.cache_dir / "musl" / target.arch
    triple = f"{target.arch}-linux-musl"
    toolchain = prepare_toolchain(work / "toolchain", zig=find_zig(), triple=triple)
    env = pip_environment(dict(os.environ), jobs=options.jobs)
    python = musl_build_python(options.musl_python, work, env=env)
    if python.version != target.python:
        raise ConfigurationError(
            f"--musl-python is Python {python.version}; target {target.name} is for {target.python}"
        )
    apk_target = ApkTarget(target.branch, target.python, target.arch)
    return MuslContext(toolchain, python, apk_target, load_key(options.key_path))


def add_openblas(
    manifest: Manifest,
    options: FarmOptions,
    state: FarmState,
    target: Target,
    context: MuslContext,
    progress: Progress,
) -> tuple[MuslContext, RecipeResult]:
    """Build (or reuse) the shared OpenBLAS; return the context with it, and its result.

    The installed prefix (headers, pkg-config data) is kept under the cache even when the
    apk is cached, since the recipes link against it.

    Raises:
        BuildError: PyPI has no usable OpenBLAS source, or make fails.
    """
    release = newest_release(fetch_releases(OPENBLAS_PROJECT, api=options.pypi_api))
    if release is None:
        raise BuildError(f"{OPENBLAS_PROJECT} has no release with an sdist on PyPI")
    compiled = build_key(
        recipe_text=f"{OPENBLAS_PROJECT} NOFORTRAN=1 C_LAPACK=1 DYNAMIC_LIST={DYNAMIC_LIST}",
        source_sha256=release.sdist_sha256,
        target=f"{target.name}|{context.toolchain.identity}",
        builder_version=manifest.builder_version,
    )
    # The apk's key adds the packaging: a new packaging reuses the compiled prefix.
    key = build_key(
        recipe_text=f"openblas apk, packaging {PACKAGING}",
        source_sha256=compiled,
        target=target.name,
        builder_version=manifest.builder_version,
    )
    log = log_path(options.out_dir, OPENBLAS, target.name)
    started = time.monotonic()
    sdist = download_sdist(release, options.cache_dir / "sdists")
    openblas = build_openblas(
        sdist,
        release.version,
        context.toolchain,
        options.cache_dir / "musl" / target.arch / f"openblas-{compiled[:16]}",
        log,
        jobs=options.jobs,
        nice=options.nice,
        env=context.toolchain.environment(dict(os.environ)),
        progress=progress,
    )
    context = dataclasses.replace(context, openblas=openblas, openblas_key=compiled[:16])
    cached = state.finished(key)
    if cached is not None:
        progress(f"{OPENBLAS}: {release.version} cached for {target.name} (key {key[:12]})")
        return context, cached_result(OPENBLAS, target.name, release.version, key, cached, log)
    filename, data = openblas_apk(openblas, context.apk_target, context.key, strip=find_strip())
    folder = state.artifact_dir(key)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_bytes(data)
    artifact = _artifact(folder / filename, "apk", f"{target.branch}/{target.arch}")
    result = built_result(
        state, key, OPENBLAS, target.name, release.version, started, log, (artifact,)
    )
    progress(f"{OPENBLAS}: built {filename} in {result.duration_seconds:.0f}s")
    return context, result


def build_recipe(
    manifest: Manifest,
    options: FarmOptions,
    state: FarmState,
    target: Target,
    name: str,
    context: MuslContext,
    progress: Progress,
) -> RecipeResult:
    """Build one recipe for the musl target, or skip it when its build key is cached.

    Raises:
        BuildError: pip fails, the wheel links something no apk provides, or it cannot be
            wrapped as an apk.
    """
    recipe = manifest.recipes[name]
    settings = manifest.settings[name]
    release = choose_host_release(
        fetch_releases(settings.pypi, api=options.pypi_api), recipe.pkgver, context.python.version
    )
    if release.version != recipe.pkgver:
        progress(
            f"{name}: recipe pkgver {recipe.pkgver} does not support Python "
            f"{context.python.version}; building {release.version}, the newest release that does"
        )
    key = build_key(
        recipe_text=recipe.text + "\n" + "\n".join(settings.setup_args),
        source_sha256=release.sdist_sha256,
        target=context.identity(with_openblas=needs_openblas(recipe)),
        builder_version=manifest.builder_version,
    )
    log = log_path(options.out_dir, name, target.name)
    cached = state.finished(key)
    if cached is not None:
        progress(f"{name}: {release.version} cached for {target.name} (key {key[:12]}), skipped")
        return cached_result(name, target.name, release.version, key, cached, log)
    sdist = download_sdist(release, options.cache_dir / "sdists")
    started = time.monotonic()
    folder = state.artifact_dir(key)
    python_pc = context.python.write_pkgconfig(context.toolchain.bin_dir.parent / "pkgconfig")
    env = context.toolchain.environment(
        pip_environment(dict(os.environ), jobs=options.jobs),
        pkg_config_path=[context.openblas.pkgconfig_dir] if context.openblas else [],
        pkg_config_libdir=python_pc,
    )
    built = build_wheel(
        HostBuild(
            recipe=name,
            project=settings.pypi,
            sdist=sdist,
            setup_args=settings.setup_args,
            python=str(context.python.venv_python),
            jobs=options.jobs,
            nice=options.nice,
        ),
        folder,
        log,
        env=env,
        progress=progress,
    )
    artifacts = _package(built.path, context, target, folder)
    result = built_result(state, key, name, target.name, release.version, started, log, artifacts)
    made = ", ".join(artifact.filename for artifact in artifacts)
    progress(f"{name}: built {made} in {result.duration_seconds:.0f}s")
    return result


def _package(wheel: Path, context: MuslContext, target: Target, folder: Path) -> list[Artifact]:
    """Strip and check the wheel; return the apk, and the wheel when it is self-contained."""
    strip_wheel(wheel, find_strip())
    report = check_links(wheel, apk_libraries={SONAME: OPENBLAS})
    artifacts = []
    if report.self_contained:
        wheel = retag_wheel(wheel, musllinux_platform(target.arch))
        artifacts.append(_artifact(wheel, "wheel", musllinux_platform(target.arch)))
    # zig links libc as ``libc.so``: musl's loader answers that name itself; on Alpine it is
    # the ``musl`` package's so:libc.musl-<arch>.so.1, which is what the apk must depend on.
    so_map = {"libc.so": f"so:libc.musl-{target.arch}.so.1"}
    filename, data = wheel_to_apk(wheel, context.apk_target, context.key, so_map=so_map)
    (folder / filename).write_bytes(data)
    apk = _artifact(folder / filename, "apk", f"{target.branch}/{target.arch}")
    return [*artifacts, dataclasses.replace(apk, needed_libraries=report.from_apks)]


def _artifact(path: Path, kind: Literal["wheel", "apk"], platform_tag: str) -> Artifact:
    return Artifact(
        filename=path.name,
        sha256=file_sha256(path),
        size=path.stat().st_size,
        kind=kind,
        platform_tag=platform_tag,
    )
