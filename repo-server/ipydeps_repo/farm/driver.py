"""The farm driver: build recipes per target in dependency order, skip cached builds, publish."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..errors import BuildError, RepoError
from . import alpine, musl
from .host import HostBuild, build_wheel, pip_environment
from .manifest import Manifest, Target
from .options import ApkTargetSpec, FarmOptions, RecipeResult, built_result, cached_result, log_path
from .order import build_order, dependencies_of
from .publish import ApkPlace, Publisher
from .state import Artifact, FarmState, build_key
from .upstream import (
    choose_host_release,
    download_sdist,
    fetch_releases,
    file_sha256,
)

Progress = Callable[[str], None]


def run_farm(
    manifest: Manifest,
    options: FarmOptions,
    *,
    publisher: Publisher | None,
    progress: Progress,
) -> list[RecipeResult]:
    """Build (or skip) every selected recipe for every selected target, then publish.

    A recipe whose build fails is reported as failed; recipes that need it are reported
    as blocked and not attempted; the others still build.

    Raises:
        ConfigurationError: an unknown target.
        ValidationError: an unknown recipe or a dependency cycle.
        DockerUnavailableError: an Alpine target was asked for and no Docker engine answers.
    """
    order = build_order(manifest.recipes, options.recipes)
    if options.only:
        order = [name for name in order if name in options.recipes]
    state = FarmState(options.cache_dir)
    results: list[RecipeResult] = []
    for target in [manifest.target(name) for name in options.targets]:
        if target.kind == "alpine":
            alpine.require_docker()
        context = musl.prepare(options, target) if target.kind == "musl" else None
        failed: set[str] = set()
        for name in order:
            reason = target.excluded(name)
            if reason is not None:
                # Not a failure: what needs it uses the package from another route (the reason).
                results.append(RecipeResult(name, target.name, "excluded", message=reason))
                progress(f"{name}: not built for {target.name}: {reason}")
                continue
            blockers = [dep for dep in dependencies_of(manifest.recipes, name) if dep in failed]
            if blockers:
                failed.add(name)
                results.append(
                    RecipeResult(
                        name, target.name, "blocked", message=f"needs {', '.join(blockers)}"
                    )
                )
                continue
            try:
                recipe = manifest.recipes[name]
                if context and context.openblas is None and musl.needs_openblas(recipe):
                    # The shared OpenBLAS, built once, before the first recipe that links it.
                    context, openblas = musl.add_openblas(
                        manifest, options, state, target, context, progress
                    )
                    results.append(_publish(openblas, state, publisher, target, manifest, progress))
                if context is not None:
                    result = musl.build_recipe(
                        manifest, options, state, target, name, context, progress
                    )
                else:
                    result = _run_one(manifest, options, state, target, name, progress)
                result = _publish(result, state, publisher, target, manifest, progress)
            except RepoError as error:
                failed.add(name)
                log = str(log_path(options.out_dir, name, target.name))
                result = RecipeResult(name, target.name, "failed", log=log, message=str(error))
                progress(f"{name}: FAILED: {error}")
            results.append(result)
    return results


def _run_one(
    manifest: Manifest,
    options: FarmOptions,
    state: FarmState,
    target: Target,
    name: str,
    progress: Progress,
) -> RecipeResult:
    if target.kind == "alpine":
        return alpine.build_recipe(manifest, options, state, target, name, progress)
    return _build_host(manifest, options, state, target, name, progress)


def host_identity(python: str) -> str:
    """Return the host target's identity for build keys, e.g. ``host-cp311-linux_x86_64``.

    Raises:
        BuildError: the build Python cannot be run.
    """
    code = (
        "import sys, sysconfig;"
        "print(f'cp{sys.version_info[0]}{sys.version_info[1]}',"
        " sysconfig.get_platform().replace('-', '_').replace('.', '_'),"
        " f'{sys.version_info[0]}.{sys.version_info[1]}')"
    )
    try:
        output = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError) as error:
        raise BuildError(f"cannot run the build Python {python}: {error}") from error
    return f"host-{output[0]}-{output[1]}|{output[2]}"


def _build_host(
    manifest: Manifest,
    options: FarmOptions,
    state: FarmState,
    target: Target,
    name: str,
    progress: Progress,
) -> RecipeResult:
    recipe = manifest.recipes[name]
    settings = manifest.settings[name]
    identity, python_version = host_identity(options.python).split("|")
    release = choose_host_release(
        fetch_releases(settings.pypi, api=options.pypi_api), recipe.pkgver, python_version
    )
    if release.version != recipe.pkgver:
        progress(
            f"{name}: recipe pkgver {recipe.pkgver} does not support Python {python_version}; "
            f"the host uses {release.version}, the newest release that does"
        )
    key = build_key(
        recipe_text=recipe.text,
        source_sha256=release.sdist_sha256,
        target=identity,
        builder_version=manifest.builder_version,
    )
    log = log_path(options.out_dir, name, target.name)
    cached = state.finished(key)
    if cached is not None:
        progress(f"{name}: {release.version} cached for {identity} (key {key[:12]}), skipped")
        return cached_result(name, target.name, release.version, key, cached, log)
    sdist = download_sdist(release, options.cache_dir / "sdists")
    started = time.monotonic()
    folder = state.artifact_dir(key)
    wheel = build_wheel(
        HostBuild(
            recipe=name,
            project=settings.pypi,
            sdist=sdist,
            setup_args=settings.setup_args,
            python=options.python,
            jobs=options.jobs,
            nice=options.nice,
            isolation=options.build_isolation,
        ),
        folder,
        log,
        env=pip_environment(_environ(), jobs=options.jobs),
        progress=progress,
    )
    artifacts = [
        Artifact(
            filename=wheel.path.name,
            sha256=file_sha256(wheel.path),
            size=wheel.path.stat().st_size,
            kind="wheel",
            needed_libraries=wheel.needed_libraries,
            platform_tag=wheel.platform_tag,
        )
    ]
    artifacts += [_wrap_apk(wheel.path, spec, options, folder) for spec in options.apk_targets]
    result = built_result(state, key, name, target.name, release.version, started, log, artifacts)
    took = f"{result.duration_seconds:.0f}s"
    progress(f"{name}: built {wheel.path.name} in {took}, needs {wheel.needed_libraries}")
    return result


def _wrap_apk(wheel: Path, spec: ApkTargetSpec, options: FarmOptions, folder: Path) -> Artifact:
    """Make an apk of a host wheel with wheel2apk (the apk route, tested from the host)."""
    if options.key_path is None:
        raise BuildError("--apk-target needs --key (the private key that signs the apk)")
    from ..apk.keys import load_key
    from ..apk.wheel2apk import ApkTarget, wheel_to_apk

    filename, data = wheel_to_apk(
        wheel, ApkTarget(spec.branch, spec.python, spec.arch), load_key(options.key_path)
    )
    path = folder / filename
    path.write_bytes(data)
    return Artifact(
        filename=filename,
        sha256=file_sha256(path),
        size=len(data),
        kind="apk",
        platform_tag=f"{spec.branch}/{spec.arch}",
    )


def _publish(
    result: RecipeResult,
    state: FarmState,
    publisher: Publisher | None,
    target: Target,
    manifest: Manifest,
    progress: Progress,
) -> RecipeResult:
    if publisher is None:
        return result
    statuses: dict[str, str] = {}
    for artifact in result.artifacts:
        # Skip only what this exact destination already has, byte for byte (by sha256).
        if state.is_published(publisher.destination, artifact):
            statuses[artifact.filename] = "already published"
            continue
        path = state.artifact_dir(result.key) / artifact.filename
        place = None
        if artifact.kind == "apk":
            branch, arch = (artifact.platform_tag.split("/") + [""])[:2]
            place = ApkPlace(branch or target.branch, manifest.apk_repo, arch or target.arch)
        statuses[artifact.filename] = publisher.publish(path, place)
        state.mark_published(publisher.destination, artifact)
        progress(f"{result.recipe}: published {artifact.filename} ({statuses[artifact.filename]})")
    return replace(result, published=statuses)


def _environ() -> dict[str, str]:
    return dict(os.environ)
