"""Alpine builder: runs `abuild -r` for one recipe inside the builder image with Docker."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import BuildError, ConfigurationError
from .manifest import Manifest, Target
from .options import FarmOptions, RecipeResult, log_path
from .state import Artifact, BuildRecord, FarmState, build_key
from .upstream import file_sha256

DOCKERFILE = "docker/builder.Dockerfile"
BUILDER_HOME = "/home/builder"
# Docker platform for each Alpine arch; other arches run under QEMU (binfmt) in CI.
PLATFORMS = {"x86_64": "linux/amd64", "aarch64": "linux/arm64", "armv7": "linux/arm/v7"}


class DockerUnavailableError(BuildError):
    """The Alpine target needs a Docker engine and none answers here."""


def require_docker(docker: str = "docker") -> None:
    """Check that a Docker engine answers (``docker info``).

    Raises:
        DockerUnavailableError: no docker command, or ``docker info`` fails; the message
            says why and what to do instead.
    """
    hint = (
        "Alpine targets are built where Docker runs (the farm CI workflow does); "
        "on this machine use --target host"
    )
    command = shutil.which(docker)
    if command is None:
        raise DockerUnavailableError(
            f"cannot build Alpine targets: no {docker!r} command on this machine", hint=hint
        )
    result = subprocess.run(
        [command, "info"], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DockerUnavailableError(
            f"cannot build Alpine targets: `docker info` failed (no Docker engine): {reason}",
            hint=hint,
        )


def image_name(target: Target) -> str:
    """Return the builder image tag for a target (one image per Alpine version)."""
    return f"ipydeps-farm-builder:{target.alpine_version}"


def docker_run_command(
    *,
    image: str,
    target: Target,
    repo: str,
    recipe: str,
    workspace: Path,
    packages: Path,
    key_path: Path,
) -> list[str]:
    """Return the ``docker run`` argument list that builds one recipe with ``abuild -r``.

    The recipe copy and the package output are mounted read-write; the private key
    read-only; the public key goes to /etc/apk/keys so apk trusts the packages built
    earlier in the same run (py3-scipy installs our py3-numpy-dev from them).
    """
    key_name = key_path.name
    recipe_dir = f"{BUILDER_HOME}/aports/{repo}/{recipe}"
    command = ["docker", "run", "--rm"]
    if target.arch in PLATFORMS:
        command += ["--platform", PLATFORMS[target.arch]]
    command += [
        "--volume", f"{workspace.resolve()}:{recipe_dir}",
        "--volume", f"{packages.resolve()}:{BUILDER_HOME}/packages",
        "--volume", f"{key_path.resolve()}:{BUILDER_HOME}/.abuild/{key_name}:ro",
        "--volume", f"{key_path.resolve()}.pub:/etc/apk/keys/{key_name}.pub:ro",
        "--env", f"PACKAGER_PRIVKEY={BUILDER_HOME}/.abuild/{key_name}",
        "--env", f"REPODEST={BUILDER_HOME}/packages",
        "--workdir", recipe_dir,
        image,
        "abuild", "-r",
    ]  # fmt: skip
    return command


def build_recipe(
    manifest: Manifest,
    options: FarmOptions,
    state: FarmState,
    target: Target,
    name: str,
    progress: Callable[[str], None],
) -> RecipeResult:
    """Build one recipe for an Alpine target, or skip it when its build key is cached.

    Raises:
        ConfigurationError: no --key, or its .pub file is missing.
        BuildError: abuild fails (the log says why) or produces none of the expected apks.
    """
    recipe = manifest.recipes[name]
    sources = "\n".join(f"{sha}  {file}" for file, sha in sorted(recipe.sha512sums.items()))
    key = build_key(
        recipe_text=recipe.text,
        source_sha256=sources,
        target=target.name,
        builder_version=manifest.builder_version,
    )
    log = log_path(options.out_dir, name, target.name)
    cached = state.finished(key)
    if cached is not None:
        progress(f"{name}: {recipe.pkgver}-r{recipe.pkgrel} cached for {target.name}, skipped")
        version = f"{recipe.pkgver}-r{recipe.pkgrel}"
        return RecipeResult(
            name,
            target.name,
            "skipped",
            version,
            key,
            0.0,
            cached.artifacts,
            log=str(log),
            message=f"cached build (took {cached.duration_seconds:.0f}s)",
        )
    if options.key_path is None or not Path(f"{options.key_path}.pub").is_file():
        raise ConfigurationError(
            "Alpine builds need --key PATH.rsa with PATH.rsa.pub beside it",
            hint="abuild signs the apks and APKINDEX with it; CI writes it from APK_PRIVATE_KEY",
        )
    workspace = options.out_dir / "work" / target.name / name
    shutil.rmtree(workspace, ignore_errors=True)
    shutil.copytree(recipe.directory, workspace)
    packages = options.out_dir / "packages" / target.name
    packages.mkdir(parents=True, exist_ok=True)
    # The builder runs as a fixed non-root UID that differs from the host user's.
    for folder in (workspace, packages):
        folder.chmod(0o777)
    command = docker_run_command(
        image=options.builder_image or image_name(target),
        target=target,
        repo=manifest.apk_repo,
        recipe=name,
        workspace=workspace,
        packages=packages,
        key_path=options.key_path,
    )
    started = time.monotonic()
    progress(f"{name}: abuild -r for {target.name} (log: {log})")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        code = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
        ).returncode
    if code != 0:
        raise BuildError(f"{name}: abuild exited with {code} for {target.name}", hint=f"read {log}")
    built = packages / manifest.apk_repo / target.arch
    expected = [built / f"{pkg}-{recipe.pkgver}-r{recipe.pkgrel}.apk" for pkg in recipe.provides]
    found = [path for path in expected if path.is_file()]
    if not found:
        raise BuildError(f"{name}: abuild succeeded but no {name}-*.apk is in {built}")
    folder = state.artifact_dir(key)
    folder.mkdir(parents=True, exist_ok=True)
    artifacts = []
    for path in found:
        shutil.copy2(path, folder / path.name)
        artifacts.append(
            Artifact(
                filename=path.name,
                sha256=file_sha256(path),
                size=path.stat().st_size,
                kind="apk",
                platform_tag=f"{target.branch}/{target.arch}",
            )
        )
    duration = round(time.monotonic() - started, 1)
    version = f"{recipe.pkgver}-r{recipe.pkgrel}"
    state.record(BuildRecord(key, name, target.name, version, duration, tuple(artifacts)))
    return RecipeResult(
        name, target.name, "built", version, key, duration, tuple(artifacts), log=str(log)
    )
