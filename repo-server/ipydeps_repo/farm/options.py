"""What one farm run is asked to do, and what it reports per recipe and target.

The driver and the Alpine builder both take ``FarmOptions`` and return ``RecipeResult``;
they live here so neither imports the other for them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import BuildError
from .state import Artifact, BuildRecord, FarmState
from .upstream import DEFAULT_JSON_API

# built and skipped (a cached build) count as success, and so does excluded (the target cannot
# build that recipe by design, and the manifest says why); blocked: a recipe it needs failed.
RecipeStatus = Literal["built", "skipped", "failed", "blocked", "excluded"]
SUCCEEDED: tuple[RecipeStatus, ...] = ("built", "skipped", "excluded")


@dataclass(frozen=True)
class ApkTargetSpec:
    """``--apk-target v3.22/3.12/x86_64``: also wrap each host wheel as an apk for this place."""

    branch: str
    python: str
    arch: str

    @classmethod
    def parse(cls, text: str) -> ApkTargetSpec:
        """Parse ``<branch>/<python>/<arch>``.

        Raises:
            BuildError: the text does not have three non-empty parts.
        """
        parts = text.split("/")
        if len(parts) != 3 or not all(parts):
            raise BuildError(
                f"bad --apk-target {text!r}",
                hint="use <branch>/<python>/<arch>, e.g. v3.22/3.12/x86_64",
            )
        return cls(*parts)


@dataclass(frozen=True)
class FarmOptions:
    """Everything one farm run needs besides the manifest and the publisher."""

    cache_dir: Path
    out_dir: Path
    targets: tuple[str, ...]
    recipes: tuple[str, ...] = ()
    jobs: int = 2
    python: str = sys.executable
    pypi_api: str = DEFAULT_JSON_API
    apk_targets: tuple[ApkTargetSpec, ...] = ()
    key_path: Path | None = None
    builder_image: str = ""
    build_isolation: bool = True
    musl_python: Path | None = None
    # Build exactly ``recipes``, not what they need (their needs are built or served already).
    only: bool = False
    # Builds run under ``nice -n <nice>``: the farm shares its machine politely by default.
    nice: int = 19


@dataclass(frozen=True)
class RecipeResult:
    """The outcome of one recipe on one target, as the summary reports it."""

    recipe: str
    target: str
    status: RecipeStatus
    version: str = ""
    key: str = ""
    duration_seconds: float = 0.0
    artifacts: tuple[Artifact, ...] = ()
    published: dict[str, str] = field(default_factory=dict)
    log: str = ""
    message: str = ""


def cached_result(
    recipe: str, target: str, version: str, key: str, record: BuildRecord, log: Path
) -> RecipeResult:
    """Return the result of a recipe whose build under ``key`` is cached as ``record``."""
    return RecipeResult(
        recipe,
        target,
        "skipped",
        version,
        key,
        0.0,
        record.artifacts,
        log=str(log),
        message=f"cached build (took {record.duration_seconds:.0f}s)",
    )


def built_result(
    state: FarmState,
    key: str,
    recipe: str,
    target: str,
    version: str,
    started: float,
    log: Path,
    artifacts: list[Artifact] | tuple[Artifact, ...],
) -> RecipeResult:
    """Record a finished build in ``state`` (its duration from ``started``, a monotonic time)."""
    duration = round(time.monotonic() - started, 1)
    state.record(BuildRecord(key, recipe, target, version, duration, tuple(artifacts)))
    return RecipeResult(
        recipe, target, "built", version, key, duration, tuple(artifacts), log=str(log)
    )


def log_path(out_dir: Path, recipe: str, target: str) -> Path:
    """Return the path of a recipe's build log: ``<out>/logs/<recipe>-<target>.log``."""
    return out_dir / "logs" / f"{recipe}-{target}.log"
