"""``ipydeps-repo mirror``: import upstream wheels and their dependency closure into the store."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..settings import stored_copies_enabled
from ..store.layout import DEFAULT_MAX_UPLOAD_BYTES, DataLayout
from ..store.store import Store
from ..upstream.mirror import DEFAULT_INDEX_URL, mirror
from ..upstream.pip import Target
from .arguments import add_stored_copies_argument


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
    parser.add_argument(
        "requirements",
        nargs="+",
        metavar="REQUIREMENT",
        help="PEP 508 requirement, e.g. numpy or 'scipy>=1.13'",
    )
    parser.add_argument(
        "--python-version", metavar="X.Y", help="target Python (default: this interpreter)"
    )
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="TAG",
        help="target platform tag, repeatable, e.g. manylinux_2_28_x86_64 (default: this host)",
    )
    parser.add_argument("--implementation", default="cp", help="implementation tag (default cp)")
    parser.add_argument(
        "--index-url",
        default=DEFAULT_INDEX_URL,
        metavar="URL",
        help=f"upstream simple index (default {DEFAULT_INDEX_URL})",
    )
    parser.add_argument(
        "--optimize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ship bytecode and drop test suites "
        "(default: on; see ipydeps_repo/upstream/optimize.py)",
    )
    parser.add_argument(
        "--compression",
        choices=["deflated", "stored"],
        default="deflated",
        help="zip compression of optimized wheels (default deflated)",
    )
    parser.add_argument(
        "--force", action="store_true", help="import again and replace wheels already in the store"
    )
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
        platforms=tuple(args.platform),
        implementation=args.implementation,
    )
    store = Store(
        DataLayout(Path(args.data).absolute()),
        max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES,
        stored_copies=stored_copies_enabled(args.stored_copies),
    )
    mirror(
        args.requirements,
        store,
        target=target,
        index_url=args.index_url,
        optimize=args.optimize,
        compression=args.compression,
        env=os.environ,
        force=args.force,
        progress=_print_line,
    )
    return 0
