"""`ipydeps-repo farm ...`: build, order and check-updates, as thin edges over the farm library."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import RepoError

# Exit codes: documented in docs/farm.md.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_DOCKER = 3
EXIT_UPDATES = 10

DEFAULT_CACHE = "/var/cache/ipydeps-farm"


def register(subparsers: Any) -> None:
    """Add the ``farm`` command (with build / order / check-updates) to a subparsers object."""
    farm = subparsers.add_parser("farm", help="build, publish and refresh the scientific stack")
    farm.set_defaults(func=lambda args: _usage(farm))
    commands = farm.add_subparsers(
        dest="farm_command", metavar="{build,order,check-updates,musl-gaps}"
    )

    build = commands.add_parser("build", help="build recipes for targets, skip cached, publish")
    _common(build)
    build.add_argument(
        "--target", action="append", default=[], help="target name (repeatable; default: host)"
    )
    build.add_argument("--recipe", action="append", default=[], help="recipe (and what it needs)")
    build.add_argument(
        "--only", action="store_true", help="build just the --recipe ones, not what they need"
    )
    build.add_argument("--out", type=Path, default=Path("farm-out"), help="logs and summary.json")
    build.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("IPYDEPS_FARM_CACHE", DEFAULT_CACHE)),
        help="built artifacts and farm-state.json (env IPYDEPS_FARM_CACHE)",
    )
    build.add_argument("--jobs", type=int, default=2, help="compile jobs per build (default 2)")
    build.add_argument("--nice", type=int, default=19, help="nice level of the builds (19)")
    build.add_argument("--python", default=sys.executable, help="Python the host target builds for")
    build.add_argument("--publish-url", help="repository server base URL to upload to")
    build.add_argument("--token", default=os.environ.get("IPYDEPS_REPO_TOKEN"), help="upload token")
    # Its own dest: the main CLI fills ``args.data`` with a default for every command, and
    # the farm must publish only when asked to.
    build.add_argument(
        "--data", dest="publish_data", type=Path, help="publish straight into this data directory"
    )
    build.add_argument("--key", type=Path, help="private signing key (Alpine builds, --apk-target)")
    build.add_argument("--apk-target", action="append", default=[], help="branch/python/arch")
    build.add_argument(
        "--no-build-isolation",
        action="store_true",
        help="host builds use the build Python's own build deps instead of fetching them",
    )
    build.add_argument("--builder-image", default="", help="builder image tag (Alpine targets)")
    build.add_argument(
        "--musl-python", type=Path, help="musl CPython the musl target builds on (its X.Y)"
    )
    build.set_defaults(func=_build)

    order = commands.add_parser("order", help="print the build order computed from the recipes")
    _common(order)
    order.add_argument("--recipe", action="append", default=[], help="only these and their needs")
    order.set_defaults(func=_order)

    updates = commands.add_parser(
        "check-updates", help="compare recipes with PyPI (exit 10: updates)"
    )
    _common(updates)
    updates.add_argument("--bump", action="store_true", help="rewrite pkgver/pkgrel/sha512sums")
    updates.set_defaults(func=_check_updates)

    gaps = commands.add_parser(
        "musl-gaps", help="which watched projects lack musllinux wheels (the musl work list)"
    )
    _common(gaps)
    gaps.add_argument("--file", type=Path, help="the table (default: <apkbuilds>/musl-gaps.tsv)")
    gaps.add_argument("--refresh", action="store_true", help="re-read every project from PyPI")
    gaps.add_argument("--add", action="append", default=[], help="watch this project too")
    gaps.add_argument("--python", default="3.12", help="runtime Python to report for (3.12)")
    gaps.set_defaults(func=_musl_gaps)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--apkbuilds", type=Path, default=Path("apkbuilds"), help="recipes + manifest.toml folder"
    )
    parser.add_argument("--pypi-api", default="https://pypi.org/pypi", help="PyPI JSON API base")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _build(args: argparse.Namespace) -> int:
    from ..settings import stored_copies_enabled
    from .alpine import DockerUnavailableError
    from .driver import run_farm
    from .manifest import load_manifest
    from .options import SUCCEEDED, ApkTargetSpec, FarmOptions
    from .publish import HttpPublisher, Publisher, StorePublisher
    from .summary import render_table, write_summary

    if args.publish_url and args.publish_data:
        return _fail("choose one of --publish-url and --data", EXIT_USAGE)
    if args.publish_url and not args.token:
        return _fail("--publish-url needs --token (or IPYDEPS_REPO_TOKEN)", EXIT_USAGE)
    try:
        manifest = load_manifest(args.apkbuilds)
        publisher: Publisher | None = None
        if args.publish_url:
            publisher = HttpPublisher(args.publish_url, args.token)
        elif args.publish_data:
            # The store's .stored copies follow $IPYDEPS_REPO_STORED_COPIES, as the server's do.
            publisher = StorePublisher(
                args.publish_data, stored_copies=stored_copies_enabled(None, os.environ)
            )
        options = FarmOptions(
            cache_dir=args.cache,
            out_dir=args.out,
            targets=tuple(args.target or ["host"]),
            recipes=tuple(args.recipe),
            jobs=args.jobs,
            python=args.python,
            pypi_api=args.pypi_api,
            apk_targets=tuple(ApkTargetSpec.parse(text) for text in args.apk_target),
            key_path=args.key,
            builder_image=args.builder_image,
            build_isolation=not args.no_build_isolation,
            musl_python=args.musl_python,
            nice=args.nice,
            only=args.only,
        )
        if publisher is None:
            _say("farm: no --publish-url/--data given: building only, nothing is published")
        results = run_farm(manifest, options, publisher=publisher, progress=_say)
    except DockerUnavailableError as error:
        return _fail(str(error), EXIT_NO_DOCKER)
    except RepoError as error:
        return _fail(str(error), EXIT_FAILED)
    summary = write_summary(args.out, results)
    _say(render_table(results))
    _say(f"summary: {summary}")
    return EXIT_OK if all(r.status in SUCCEEDED for r in results) else EXIT_FAILED


def _order(args: argparse.Namespace) -> int:
    from .manifest import load_manifest
    from .order import build_order, dependencies_of

    try:
        manifest = load_manifest(args.apkbuilds)
        order = build_order(manifest.recipes, args.recipe)
    except RepoError as error:
        return _fail(str(error), EXIT_FAILED)
    for position, name in enumerate(order, start=1):
        needs = dependencies_of(manifest.recipes, name)
        _say(f"{position}. {name}" + (f"  (after {', '.join(needs)})" if needs else ""))
    return EXIT_OK


def _check_updates(args: argparse.Namespace) -> int:
    from .freshness import check_updates, render_updates

    try:
        report = check_updates(args.apkbuilds, api=args.pypi_api, bump=args.bump, progress=_say)
    except RepoError as error:
        return _fail(str(error), EXIT_FAILED)
    _say(render_updates(report))
    if any(entry.outdated for entry in report) and not args.bump:
        return EXIT_UPDATES
    return EXIT_OK


def _musl_gaps(args: argparse.Namespace) -> int:
    from .musl_gaps import load_gaps, refresh, render_gaps, render_report

    path = args.file or args.apkbuilds / "musl-gaps.tsv"
    try:
        rows = load_gaps(path)
        if args.refresh or args.add:
            projects = sorted({row.project for row in rows} | set(args.add))
            rows = refresh(projects, api=args.pypi_api)
            path.write_text(render_gaps(rows), encoding="utf-8")
            _say(f"farm: refreshed {len(rows)} projects from {args.pypi_api} into {path}")
    except RepoError as error:
        return _fail(str(error), EXIT_FAILED)
    if not rows:
        return _fail(f"no table at {path}: add projects with --add NAME", EXIT_USAGE)
    _say(render_report(rows, args.python))
    return EXIT_OK


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"ipydeps-repo farm: error: {message}\n")
    sys.stderr.flush()
    return code


def main(argv: list[str] | None = None) -> int:
    """Run ``farm`` on its own (``python -m ipydeps_repo.farm``), without the full CLI."""
    parser = argparse.ArgumentParser(prog="ipydeps-repo")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code
