"""`ipydeps-repo farm ...`: build, order and check-updates, as thin edges over the farm library."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RepoError

if TYPE_CHECKING:
    from ..store.build_requests import QueuedBuild
    from .manifest import Manifest
    from .options import RecipeResult
    from .requests import Decision

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
        dest="farm_command", metavar="{build,order,check-updates,musl-gaps,queue}"
    )

    build = commands.add_parser("build", help="build recipes for targets, skip cached, publish")
    _common(build)
    build.add_argument(
        "--target", action="append", default=[], help="target name (repeatable; default: host)"
    )
    build.add_argument(
        "--recipe",
        action="append",
        default=[],
        help="recipe, and what it needs (repeatable; default: every recipe)",
    )
    build.add_argument(
        "--only",
        action="store_true",
        help="build just the --recipe ones, not what they need (default: off)",
    )
    build.add_argument(
        "--out",
        type=Path,
        default=Path("farm-out"),
        metavar="DIR",
        help="logs and summary.json (default: ./farm-out)",
    )
    build.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("IPYDEPS_FARM_CACHE", DEFAULT_CACHE)),
        metavar="DIR",
        help=f"built artifacts and farm-state.json (default: $IPYDEPS_FARM_CACHE, else "
        f"{DEFAULT_CACHE})",
    )
    build.add_argument("--jobs", type=int, default=2, help="compile jobs per build (default: 2)")
    build.add_argument(
        "--nice", type=int, default=19, help="nice level of the builds (default: 19)"
    )
    build.add_argument(
        "--python",
        default=sys.executable,
        help="Python the host target builds for (default: the Python running this command)",
    )
    build.add_argument(
        "--publish-url",
        metavar="URL",
        help="repository server base URL to upload to (default: none; with no --data either, "
        "nothing is published)",
    )
    build.add_argument(
        "--token",
        default=os.environ.get("IPYDEPS_REPO_TOKEN"),
        help="upload token for --publish-url (default: $IPYDEPS_REPO_TOKEN)",
    )
    # Its own dest: the main CLI fills ``args.data`` with a default for every command, and
    # the farm must publish only when asked to.
    build.add_argument(
        "--data",
        dest="publish_data",
        type=Path,
        metavar="DIR",
        help="publish straight into this data directory (default: none)",
    )
    build.add_argument(
        "--key",
        type=Path,
        help="private signing key, needed by Alpine builds and --apk-target (default: none)",
    )
    build.add_argument(
        "--apk-target",
        action="append",
        default=[],
        metavar="BRANCH/PYTHON/ARCH",
        help="also wrap each host wheel as an apk for this target, e.g. v3.22/3.11/x86_64 "
        "(repeatable; default: none)",
    )
    build.add_argument(
        "--requests",
        type=Path,
        metavar="DATA",
        help="also build the queued build requests of this repository data directory that "
        "have a recipe and a target (see 'farm queue'), and mark them built or failed "
        "(default: none)",
    )
    build.add_argument(
        "--no-build-isolation",
        action="store_true",
        help="host builds use the build Python's own build deps instead of fetching them "
        "(default: isolated builds)",
    )
    build.add_argument(
        "--builder-image",
        default="",
        metavar="TAG",
        help="builder image tag of Alpine targets (default: ipydeps-farm-builder:<alpine version>)",
    )
    build.add_argument(
        "--musl-python",
        type=Path,
        help="musl CPython the musl target builds on, of the target's X.Y (default: none; "
        "musl targets need it)",
    )
    build.set_defaults(func=_build)

    order = commands.add_parser("order", help="print the build order computed from the recipes")
    _common(order)
    order.add_argument(
        "--recipe",
        action="append",
        default=[],
        help="only these and what they need (repeatable; default: every recipe)",
    )
    order.set_defaults(func=_order)

    updates = commands.add_parser(
        "check-updates", help="compare recipes with PyPI (exit 10: updates)"
    )
    _common(updates)
    updates.add_argument(
        "--bump",
        action="store_true",
        help="rewrite pkgver/pkgrel/sha512sums of outdated recipes (default: only report)",
    )
    updates.set_defaults(func=_check_updates)

    gaps = commands.add_parser(
        "musl-gaps", help="which watched projects lack musllinux wheels (the musl work list)"
    )
    _common(gaps)
    gaps.add_argument(
        "--file", type=Path, help="the table (default: musl-gaps.tsv in the --apkbuilds folder)"
    )
    gaps.add_argument(
        "--refresh",
        action="store_true",
        help="re-read every project from PyPI (default: show the table as it is)",
    )
    gaps.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="PROJECT",
        help="watch this project too (repeatable; default: none)",
    )
    gaps.add_argument(
        "--python", default="3.12", help="runtime Python to report for (default: 3.12)"
    )
    gaps.set_defaults(func=_musl_gaps)

    queue = commands.add_parser(
        "queue", help="show the build requests of a repository (--data) and the farm's decision"
    )
    _common(queue)
    queue.add_argument(
        "--decide",
        action="store_true",
        help="write each open request's decision (scheduled, no recipe, declined) to the queue",
    )
    queue.set_defaults(func=_queue)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--apkbuilds",
        type=Path,
        default=None,
        metavar="DIR",
        help="the folder of the recipes and manifest.toml (default: the apkbuilds folder of "
        "the checkout this is run in: found from this folder or the nearest parent having "
        "apkbuilds/manifest.toml)",
    )
    parser.add_argument(
        "--pypi-api",
        default="https://pypi.org/pypi",
        metavar="URL",
        help="PyPI JSON API base (default: https://pypi.org/pypi)",
    )


def _apkbuilds(args: argparse.Namespace) -> Path:
    """Return ``--apkbuilds``, or the checkout's apkbuilds folder found from here.

    Raises:
        ConfigurationError: not given and not found; says where it looked.
    """
    from .manifest import locate_apkbuilds

    given: Path | None = args.apkbuilds
    return given if given is not None else locate_apkbuilds(Path.cwd())


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
        manifest = load_manifest(_apkbuilds(args))
        publisher: Publisher | None = None
        if args.publish_url:
            publisher = HttpPublisher(args.publish_url, args.token)
        elif args.publish_data:
            # The store's .stored copies follow $IPYDEPS_REPO_STORED_COPIES, as the server's do.
            publisher = StorePublisher(
                args.publish_data, stored_copies=stored_copies_enabled(None, os.environ)
            )
        targets = tuple(args.target or ["host"])
        requested = _requested(args.requests, manifest, targets) if args.requests else []
        if args.requests and not requested and not args.recipe:
            _say("farm: no queued build request has a recipe and a target in this run")
            return EXIT_OK
        options = FarmOptions(
            cache_dir=args.cache,
            out_dir=args.out,
            targets=targets,
            recipes=tuple(dict.fromkeys([*args.recipe, *(d.recipe for _, d in requested)])),
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
        if args.requests:
            _record_outcomes(args.requests, requested, results)
    except DockerUnavailableError as error:
        return _fail(str(error), EXIT_NO_DOCKER)
    except RepoError as error:
        return _fail(str(error), EXIT_FAILED)
    summary = write_summary(args.out, results)
    _say(render_table(results))
    _say(f"summary: {summary}")
    return EXIT_OK if all(r.status in SUCCEEDED for r in results) else EXIT_FAILED


def _requested(
    data: Path, manifest: Manifest, targets: tuple[str, ...]
) -> list[tuple[QueuedBuild, Decision]]:
    """Return the queued requests this run builds (scheduled on one of ``targets``)."""
    from ..store.build_requests import BuildRequestQueue
    from ..store.layout import DataLayout
    from .requests import scheduled

    queue = BuildRequestQueue(DataLayout(data.absolute()))
    picked = []
    for entry, decision in scheduled(queue.entries(), manifest):
        queue.decide(entry.key, decision.state, decision.note)
        if decision.target in targets:
            picked.append((entry, decision))
            _say(f"farm: build request {entry.project} -> {decision.note}")
    return picked


def _record_outcomes(
    data: Path,
    requested: list[tuple[QueuedBuild, Decision]],
    results: list[RecipeResult],
) -> None:
    from ..store.build_requests import BuildRequestQueue
    from ..store.layout import DataLayout
    from .requests import outcomes

    queue = BuildRequestQueue(DataLayout(data.absolute()))
    for entry, state, note in outcomes(requested, results):
        queue.decide(entry.key, state, note)


def _order(args: argparse.Namespace) -> int:
    from .manifest import load_manifest
    from .order import build_order, dependencies_of

    try:
        manifest = load_manifest(_apkbuilds(args))
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
        report = check_updates(_apkbuilds(args), api=args.pypi_api, bump=args.bump, progress=_say)
    except RepoError as error:
        return _fail(str(error), EXIT_FAILED)
    _say(render_updates(report))
    if any(entry.outdated for entry in report) and not args.bump:
        return EXIT_UPDATES
    return EXIT_OK


def _musl_gaps(args: argparse.Namespace) -> int:
    from .musl_gaps import load_gaps, refresh, render_gaps, render_report

    try:
        path = args.file or _apkbuilds(args) / "musl-gaps.tsv"
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


def _queue(args: argparse.Namespace) -> int:
    from ..store.build_requests import BuildRequestQueue
    from ..store.layout import DataLayout
    from .manifest import load_manifest
    from .requests import decide, render_queue

    try:
        queue = BuildRequestQueue(DataLayout(Path(args.data).absolute()))
        manifest = load_manifest(args.apkbuilds)
        rows = []
        for entry in queue.entries():
            closed = entry.state in ("built", "failed")
            decision = None if closed else decide(entry, manifest)
            if decision is not None and args.decide:
                queue.decide(entry.key, decision.state, decision.note)
            rows.append((entry, decision))
    except RepoError as error:
        return _fail(str(error), EXIT_FAILED)
    _say(render_queue(rows))
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
