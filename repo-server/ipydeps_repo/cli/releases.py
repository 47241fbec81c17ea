"""``ipydeps-repo yank | unyank | delete``: change published releases, remotely or in place.

With ``--url`` (or ``$IPYDEPS_REPO_URL``) the command asks a running server through the
API (``/api/v1/projects/...``) with ``--token``; without it, it changes the data
directory (``--data``) directly, under the same lock a server takes.
"""

from __future__ import annotations

import argparse
import os
import urllib.parse
from typing import Any

from ..errors import AuthenticationError
from ..net.publish import call_api
from .arguments import TOKEN_ENV, URL_ENV
from .console import say


def register(subparsers: Any) -> None:
    """Add yank, unyank and delete."""
    for action, help_text in (
        ("yank", "yank a release (PEP 592): pip and uv skip it unless pinned with =="),
        ("unyank", "undo a yank"),
        ("delete", "delete a release's files, their metadata, copies and optimized variants"),
    ):
        parser = subparsers.add_parser(
            action,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ". Remote with --url and "
            f"--token (or ${URL_ENV} and ${TOKEN_ENV}); else on --data directly.",
        )
        parser.add_argument("project", help="project name (any spelling; it is normalized)")
        parser.add_argument("version", help="the version, e.g. 1.2.0")
        parser.add_argument(
            "--file",
            default=None,
            metavar="NAME",
            help="only this file of the version (and its optimized variant)",
        )
        if action == "yank":
            parser.add_argument("--reason", default="", help="why, shown by pip and uv")
        parser.add_argument("--url", default=os.environ.get(URL_ENV), help="server base URL")
        parser.add_argument(
            "--token",
            default=os.environ.get(TOKEN_ENV),
            help="token (yank/unyank: upload right; delete: force right)",
        )
        parser.set_defaults(func=run_release_command, action=action)


def run_release_command(args: argparse.Namespace) -> int:
    """Run yank, unyank or delete and print one line per file it touched.

    Raises:
        ValidationError, NotFoundError, AuthenticationError, PermissionDeniedError, RepoError.
    """
    if args.url:
        if not args.token:
            raise AuthenticationError(f"{args.action} with --url needs --token or ${TOKEN_ENV}")
        body = _remote(args)
    else:
        body = _local(args)
    verb = {"yank": "yanked", "unyank": "unyanked", "delete": "deleted"}[args.action]
    for name in body.get("files", []):
        say(f"{verb} {body.get('project')}/{name}")
    return 0


def _local(args: argparse.Namespace) -> dict[str, Any]:
    from pathlib import Path

    from ..settings import stored_copies_enabled
    from ..store.layout import DataLayout
    from ..store.store import Store

    store = Store(DataLayout(Path(args.data).absolute()), stored_copies=stored_copies_enabled(None))
    if args.action == "delete":
        change = store.delete_files(args.project, args.version, filename=args.file)
    else:
        change = store.set_yanked(
            args.project,
            args.version,
            yanked=args.action == "yank",
            reason=getattr(args, "reason", ""),
            filename=args.file,
        )
    return change.to_json()


def _remote(args: argparse.Namespace) -> dict[str, Any]:
    base = args.url.rstrip("/") + "/api/v1/projects/"
    path = base + "/".join(
        urllib.parse.quote(part, safe="") for part in (args.project, args.version)
    )
    query = {
        key: value
        for key, value in (("file", args.file), ("reason", getattr(args, "reason", None)))
        if value
    }
    if args.action != "delete":
        path += "/yank"
    method = "POST" if args.action == "yank" else "DELETE"
    url = path + ("?" + urllib.parse.urlencode(query) if query else "")
    return call_api(method, url, args.token, subject=f"{args.project} {args.version}")
