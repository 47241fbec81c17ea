"""Seed the store from an upstream index: requirements plus their dependency closure, as wheels.

``ipydeps-repo mirror numpy scipy pandas --data DIR`` runs real pip twice: once to
resolve (``pip install --dry-run --report``, which reads only PEP 658 metadata) and once to
download just the wheels the store does not have yet, pinned by the sha256 the
resolution reported. Each wheel is optimized (see ``optimize.py``) and published through
``Store.publish``, so indexes are regenerated and nothing is ever half-visible.

Optimizing is on by default (``--no-optimize`` keeps upstream's bytes): on numpy, scipy and
pandas it cut the CPU time of installing plus first import by 40 to 50 % for pip, uv and
ipydeps alike, at the same download size (bench/README.md has the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .cli import add_stored_copies_argument
from .errors import RepoError, ValidationError
from .optimize import Compression, OptimizeOptions, optimize_wheel
from .settings import DEFAULT_MAX_UPLOAD_BYTES, DataLayout, stored_copies_enabled
from .storage import Store, sha256_file

DEFAULT_INDEX_URL = "https://pypi.org/simple"
Progress = Callable[[str], None]


class UpstreamError(RepoError):
    """pip could not resolve or download from the upstream index; pip's own words follow."""

    status = 502


@dataclass(frozen=True)
class Target:
    """The interpreter and platforms wheels are chosen for; empty means this host."""

    python_version: tuple[int, int] | None = None
    platforms: tuple[str, ...] = ()
    implementation: str = "cp"

    def pip_arguments(self) -> list[str]:
        """Return pip's target options (``--python-version``, ``--platform``...)."""
        arguments: list[str] = []
        if self.python_version is not None:
            major, minor = self.python_version
            arguments += ["--python-version", f"{major}.{minor}"]
        for platform in self.platforms:
            arguments += ["--platform", platform]
        if self.python_version is not None or self.platforms:
            arguments += ["--implementation", self.implementation]
        return arguments

    def describe(self) -> str:
        """Return a short human description, e.g. ``cp3.12 manylinux_2_28_x86_64``."""
        major, minor = self.python_version or sys.version_info[:2]
        platforms = " ".join(self.platforms) or "this host"
        return f"{self.implementation}{major}.{minor} {platforms}"


@dataclass(frozen=True)
class UpstreamWheel:
    """One wheel of the resolved closure, as pip reported it."""

    project: str
    version: str
    filename: str
    url: str
    sha256: str


@dataclass(frozen=True)
class MirrorSummary:
    """What one mirror run did."""

    resolved: tuple[UpstreamWheel, ...]
    published: tuple[str, ...]
    present: tuple[str, ...]
    downloaded_bytes: int
    published_bytes: int
    seconds: float


def pip_environment(base: Mapping[str, str]) -> dict[str, str]:
    """Return ``base`` without pip/uv settings and with pip's config files off.

    A machine's find-links, constraints or extra indexes must not change what is mirrored;
    the TLS trust setting is kept, as it says how to reach the index, not what to take.
    """
    keep = {"PIP_CERT", "PIP_CLIENT_CERT"}
    env = {
        key: value for key, value in base.items()
        if not key.startswith(("PIP_", "UV_", "IPYDEPS_")) or key in keep
    }
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def parse_requirements(texts: Sequence[str]) -> list[Requirement]:
    """Parse PEP 508 strings; direct URLs are refused (the mirror pins by index hash).

    Raises ``ValidationError`` listing every bad string; nothing has run then.
    """
    problems: list[str] = []
    parsed: list[Requirement] = []
    for text in texts:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            # packaging's message carries a caret diagram on later lines; the first says why.
            problems.append(f"{text!r}: {str(error).splitlines()[0]}")
            continue
        if requirement.url:
            problems.append(f"{text!r}: direct URLs cannot be mirrored, name a project")
        parsed.append(requirement)
    if not texts:
        problems.append("no requirement given")
    if problems:
        raise ValidationError(
            "the requirement list", problems,
            hint="use PEP 508 strings such as 'numpy' or 'scipy>=1.13'",
        )
    return parsed


def _run_pip(arguments: list[str], env: Mapping[str, str], what: str) -> None:
    command = [sys.executable, "-m", "pip", *arguments]
    finished = subprocess.run(command, env=dict(env), capture_output=True, text=True)
    if finished.returncode != 0:
        # pip's last lines name the failing requirement (e.g. "No matching distribution").
        tail = "\n".join((finished.stderr or finished.stdout).strip().splitlines()[-6:])
        raise UpstreamError(f"pip could not {what}:\n{tail}",
                            hint="check the requirement names, the target and --index-url; "
                            "only wheels are mirrored, never sdists")


def resolve(
    requirements: Sequence[Requirement], *, target: Target, index_url: str,
    env: Mapping[str, str], workdir: Path,
) -> list[UpstreamWheel]:
    """Return the wheels of the requirements' dependency closure for ``target``.

    Raises ``UpstreamError`` when pip cannot resolve (with pip's reason).
    """
    report = workdir / "resolution.json"
    _run_pip(
        ["install", "--dry-run", "--ignore-installed", "--only-binary=:all:", "--quiet",
         "--index-url", index_url, *target.pip_arguments(), "--report", str(report),
         *[str(requirement) for requirement in requirements]],
        env, "resolve " + " ".join(str(requirement) for requirement in requirements),
    )
    wheels = []
    for item in json.loads(report.read_text(encoding="utf-8"))["install"]:
        url = item["download_info"]["url"]
        wheels.append(UpstreamWheel(
            project=canonicalize_name(item["metadata"]["name"]),
            version=item["metadata"]["version"],
            filename=unquote(urlsplit(url).path.rsplit("/", 1)[-1]),
            url=url,
            sha256=item["download_info"]["archive_info"]["hashes"]["sha256"],
        ))
    return wheels


def download(
    wheels: Sequence[UpstreamWheel], *, target: Target, index_url: str,
    env: Mapping[str, str], destination: Path,
) -> list[Path]:
    """Download exactly these wheels (pip's hash-checking mode) into ``destination``.

    Raises ``UpstreamError`` if pip fails or a file is missing afterwards.
    """
    pins = destination / "pins.txt"
    pins.write_text("".join(
        f"{wheel.project}=={wheel.version} --hash=sha256:{wheel.sha256}\n" for wheel in wheels
    ), encoding="utf-8")
    _run_pip(
        ["download", "--no-deps", "--only-binary=:all:", "--quiet", "--progress-bar", "off",
         "--index-url", index_url, *target.pip_arguments(), "--dest", str(destination),
         "--requirement", str(pins)],
        env, f"download {len(wheels)} wheel(s)",
    )
    paths = [destination / wheel.filename for wheel in wheels]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise UpstreamError(f"pip did not download {', '.join(missing)}")
    # pip's hash-checking mode already refused other bytes; checking again costs little.
    wrong = [wheel.filename for wheel, path in zip(wheels, paths, strict=True)
             if sha256_file(path) != wheel.sha256]
    if wrong:
        raise UpstreamError(f"{', '.join(wrong)}: sha256 differs from the resolved one",
                            hint="the upstream index changed files while mirroring; run again")
    return paths


def mirror(
    texts: Sequence[str], store: Store, *, target: Target = Target(),
    index_url: str = DEFAULT_INDEX_URL, optimize: bool = True,
    compression: Compression = "deflated", env: Mapping[str, str], force: bool = False,
    progress: Progress = lambda line: None,
) -> MirrorSummary:
    """Import the wheels of ``texts`` and their dependency closure for ``target`` into ``store``.

    Wheels whose file name is already in the store are skipped (not even downloaded)
    unless ``force``. ``env`` is the base environment for pip (pip settings are cleared).

    Raises:
        ValidationError: a bad requirement string (nothing ran) or an invalid upstream wheel.
        UpstreamError: pip could not resolve or download.
        ConflictError: ``force`` was needed to replace a different file of the same name.
    """
    started = time.monotonic()
    requirements = parse_requirements(texts)
    pip_env = pip_environment(env)
    with tempfile.TemporaryDirectory(prefix="mirror-", dir=store.layout.tmp) as scratch:
        workdir = Path(scratch)
        progress(f"resolving {', '.join(map(str, requirements))} for {target.describe()} "
                 f"from {index_url}")
        wheels = resolve(requirements, target=target, index_url=index_url, env=pip_env,
                         workdir=workdir)
        files = store.layout.tree / "files"
        present = [w for w in wheels if not force and (files / w.project / w.filename).is_file()]
        missing = [w for w in wheels if w not in present]
        progress(f"resolved {len(wheels)} wheel(s): {len(missing)} to import, "
                 f"{len(present)} already in the store")
        paths: list[Path] = []
        if missing:
            progress(f"downloading {len(missing)} wheel(s): "
                     + ", ".join(f"{wheel.project} {wheel.version}" for wheel in missing))
            (workdir / "upstream").mkdir()
            paths = download(missing, target=target, index_url=index_url, env=pip_env,
                             destination=workdir / "upstream")
        downloaded = sum(path.stat().st_size for path in paths)
        published_bytes = 0
        options = OptimizeOptions(target_python=target.python_version, compression=compression)
        for number, path in enumerate(paths, 1):
            line = f"[{number}/{len(paths)}] {path.name} {path.stat().st_size / 1e6:.1f} MB"
            if optimize:
                report = optimize_wheel(path, workdir / "optimized", options)
                line += (f" -> {report.size_after / 1e6:.1f} MB optimized ({report.compiled} pyc,"
                         f" {report.removed_files} test files dropped)")
                path = report.output
            result = store.publish_file(path, force=force)
            published_bytes += result.size
            progress(f"{line}: {result.status}")
    summary = MirrorSummary(
        resolved=tuple(wheels), published=tuple(path.name for path in paths),
        present=tuple(wheel.filename for wheel in present), downloaded_bytes=downloaded,
        published_bytes=published_bytes, seconds=time.monotonic() - started,
    )
    progress(f"mirrored {len(wheels)} wheel(s): {len(paths)} imported "
             f"({downloaded / 1e6:.1f} MB downloaded, {published_bytes / 1e6:.1f} MB published), "
             f"{len(present)} already present; {summary.seconds:.1f} s")
    return summary


def _python_version(text: str) -> tuple[int, int]:
    parts = text.split(".")
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ValidationError("--python-version", [f"{text!r} is not MAJOR.MINOR, e.g. 3.12"])
    return int(parts[0]), int(parts[1])


def register(subparsers: Any) -> None:
    """Add ``ipydeps-repo mirror`` to the parser."""
    parser = subparsers.add_parser(
        "mirror",
        help="import upstream wheels and their dependencies into the store",
        description="Resolve the requirements and their dependency closure for a target with "
        "pip, download the wheels the store lacks, optimize and publish them. Run it on a "
        "machine that reaches the upstream index to seed an air-gapped repository.",
    )
    parser.add_argument("requirements", nargs="+", metavar="REQUIREMENT",
                        help="PEP 508 requirement, e.g. numpy or 'scipy>=1.13'")
    parser.add_argument("--python-version", metavar="X.Y",
                        help="target Python (default: this interpreter)")
    parser.add_argument("--platform", action="append", default=[], metavar="TAG",
                        help="target platform tag, repeatable, e.g. manylinux_2_28_x86_64 "
                        "(default: this host)")
    parser.add_argument("--implementation", default="cp", help="implementation tag (default cp)")
    parser.add_argument("--index-url", default=DEFAULT_INDEX_URL, metavar="URL",
                        help=f"upstream simple index (default {DEFAULT_INDEX_URL})")
    parser.add_argument("--optimize", action=argparse.BooleanOptionalAction, default=True,
                        help="ship bytecode and drop test suites (default: on; see optimize.py)")
    parser.add_argument("--compression", choices=["deflated", "stored"], default="deflated",
                        help="zip compression of optimized wheels (default deflated)")
    parser.add_argument("--force", action="store_true",
                        help="import again and replace wheels already in the store")
    add_stored_copies_argument(parser)
    parser.set_defaults(func=run_mirror)


def _print_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_mirror(args: argparse.Namespace) -> int:
    """Run ``ipydeps-repo mirror``; print progress lines and a summary.

    Raises:
        ValidationError, UpstreamError, ConflictError: as ``mirror``.
        ConfigurationError: a bad ``$IPYDEPS_REPO_STORED_COPIES``.
    """
    target = Target(
        python_version=_python_version(args.python_version) if args.python_version else None,
        platforms=tuple(args.platform), implementation=args.implementation,
    )
    store = Store(DataLayout(Path(args.data).absolute()),
                  max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES,
                  stored_copies=stored_copies_enabled(args.stored_copies))
    mirror(args.requirements, store, target=target, index_url=args.index_url,
           optimize=args.optimize, compression=args.compression, env=os.environ,
           force=args.force, progress=_print_line)
    return 0
