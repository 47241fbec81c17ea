"""Maintainer subcommands that work on files: wrap (wheel to apk), publish (HTTP client), index."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..errors import RepoError
from ..settings import build_inflate_limits, stored_copies_enabled
from ..store.layout import DataLayout
from .arguments import TOKEN_ENV, URL_ENV, add_inflate_arguments, add_stored_copies_argument
from .console import say, warn


def register(subparsers: Any) -> None:
    """Add wrap, publish and index."""
    wrap = subparsers.add_parser(
        "wrap",
        help="turn a wheel into a signed apk",
        description="Make an Alpine apk of a built wheel (files under "
        "usr/lib/pythonX.Y/site-packages, .dist-info kept), signed with the data directory's key.",
    )
    wrap.add_argument("wheel", type=Path, help="the wheel file")
    wrap.add_argument("--branch", default="v3.22", help="Alpine branch (default v3.22)")
    wrap.add_argument(
        "--python", default="3.12", help="Python version of the target (default 3.12)"
    )
    wrap.add_argument("--arch", default="x86_64", help="apk architecture (default x86_64)")
    wrap.add_argument("--pkgrel", type=int, default=0, help="apk release number (default 0)")
    wrap.add_argument(
        "--output",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where to write the apk (default: current directory)",
    )
    wrap.add_argument(
        "--so-map",
        type=_library_and_apk,
        action="append",
        default=[],
        metavar="LIB=APK",
        help="depend on APK instead of so:LIB, e.g. libc10.so=py3-torch for a library "
        "another wheel ships in site-packages (no apk provides those); repeatable",
    )
    wrap.set_defaults(func=run_wrap)

    publish = subparsers.add_parser(
        "publish",
        help="upload wheels/apks to a running server",
        description="Upload files with the upload API. The token may also come from "
        f"${TOKEN_ENV} and the URL from ${URL_ENV}.",
    )
    publish.add_argument(
        "files",
        type=Path,
        nargs="+",
        metavar="FILE",
        help=".whl, sdist (.tar.gz, .zip) or .apk files",
    )
    publish.add_argument("--url", default=os.environ.get(URL_ENV), help="server base URL")
    publish.add_argument("--token", default=os.environ.get(TOKEN_ENV), help="publish token")
    publish.add_argument("--branch", default=None, help="apk branch (default v3.22)")
    publish.add_argument("--repo", default=None, help="apk repository (default sci)")
    publish.add_argument("--arch", default=None, help="arch for noarch apks")
    publish.add_argument(
        "--force", action="store_true", help="replace different files of the same name"
    )
    publish.set_defaults(func=run_publish)

    index = subparsers.add_parser(
        "index",
        help="rebuild every index from the stored files (repair)",
        description="Re-hash every wheel, remake its .stored copy, rewrite every simple page "
        "and re-sign every APKINDEX.tar.gz from the files in the tree, after removing temp "
        "files that killed writers left behind. Safe while the server runs.",
    )
    add_stored_copies_argument(index)
    add_inflate_arguments(index)
    index.set_defaults(func=run_index)


def _library_and_apk(text: str) -> tuple[str, str]:
    library, equals, apk = text.partition("=")
    if not equals or not library.strip() or not apk.strip():
        raise argparse.ArgumentTypeError(f"expected LIB=APK, got {text!r}")
    return library.strip(), apk.strip()


def run_wrap(args: argparse.Namespace) -> int:
    """Write ``<name>-<ver>-r<rel>.apk`` for the wheel into --output.

    Raises:
        ConfigurationError: no signing key. ValidationError: the wheel cannot be wrapped.
    """
    from ..apk.wheel2apk import ApkTarget, wheel_to_apk
    from ..fileops import write_atomic
    from ..store.signing import load_signing_key

    key = load_signing_key(DataLayout(Path(args.data).absolute()))
    target = ApkTarget(branch=args.branch, python=args.python, arch=args.arch)
    filename, data = wheel_to_apk(
        args.wheel, target, key, pkgrel=args.pkgrel, so_map=dict(args.so_map)
    )
    path = args.output / filename
    write_atomic(path, data)
    say(str(path))
    return 0


def run_publish(args: argparse.Namespace) -> int:
    """Upload every file; report each; exit 1 if any failed."""
    from ..net.publish import publish

    if not args.url or not args.token:
        warn(f"error: --url and --token are required (or set ${URL_ENV} and ${TOKEN_ENV})")
        return 2
    failures = 0
    for path in args.files:
        try:
            reply = publish(
                args.url,
                args.token,
                path,
                branch=args.branch,
                repo=args.repo,
                arch=args.arch,
                force=args.force,
            )
        except RepoError as error:
            failures += 1
            warn(f"error: {error.message}")
            if error.hint:
                warn(f"hint: {error.hint}")
            continue
        say(f"{reply.status:<9} {reply.path} sha256={reply.sha256}")
        for warning in reply.warnings:
            warn(f"warning: {warning}")
    return 1 if failures else 0


def run_index(args: argparse.Namespace) -> int:
    """Rebuild every index, printing progress to stderr.

    Exit 1 if invalid files were left out or stored copies could not be written.

    Raises:
        ConfigurationError: apks are stored but there is no signing key, or a bad
            ``$IPYDEPS_REPO_STORED_COPIES``.
    """
    from ..store.store import Store

    layout = DataLayout(Path(args.data).absolute())
    store = Store(
        layout,
        stored_copies=stored_copies_enabled(args.stored_copies),
        inflate_limits=build_inflate_limits(
            args.max_inflated, args.max_member, args.max_inflate_ratio
        ),
    )

    removed = store.remove_leftovers()
    if removed.paths:
        warn(removed.describe())

    def progress(done: int, total: int, what: str) -> None:
        warn(f"[{done}/{total}] {what}")

    warnings: list[str] = []
    skipped = store.rebuild(progress=progress, warnings=warnings)
    for problem in skipped:
        warn(f"skipped: {problem}")
    for warning in warnings:
        warn(f"warning: {warning}")
    say(f"rebuilt every index in {layout.tree}")
    if skipped:
        warn(f"error: {len(skipped)} invalid file(s) in the tree were left out of the indexes")
    if warnings:
        warn(f"error: {len(warnings)} wheel(s) are listed without their stored copy")
    return 1 if skipped or warnings else 0
