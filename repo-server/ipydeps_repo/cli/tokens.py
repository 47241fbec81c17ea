"""``ipydeps-repo token create | list | revoke``: the bearer tokens of the upload API."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..store.layout import DataLayout
from ..web.auth import ALL_SCOPES, SCOPE_UPLOAD, TokenInfo, TokenStore
from ..web.token_scope import parse_expiry, parse_time
from .console import say, warn


def register(subparsers: Any) -> None:
    """Add ``token`` with its create, list and revoke actions."""
    token = subparsers.add_parser(
        "token",
        help="create, list or revoke publish tokens",
        description="Manage the bearer tokens of the upload API.",
    )
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_commands.add_parser(
        "create",
        help="create a token; it is printed once, as the last line",
        description="Create a publish token. Only its hash is stored: copy it now.",
    )
    create.add_argument("name", help="a name for the token, e.g. 'farm' or 'alice'")
    create.add_argument(
        "--no-force",
        action="store_true",
        help="the token may publish but never replace a file (force=1 gets 403)",
    )
    create.add_argument(
        "--project",
        action="append",
        default=None,
        metavar="NAME",
        help="limit the token to this project, or to a pattern such as 'acme-*' "
        "(repeat for more; default: every project)",
    )
    create.add_argument(
        "--expires",
        default=None,
        metavar="WHEN",
        help="when the token stops working: a duration (30d, 12h, 8w), a date "
        "(2027-01-31, UTC) or a date and time (default: never)",
    )
    create.set_defaults(func=run_token_create)
    listing = token_commands.add_parser("list", help="list tokens (never shows a token)")
    listing.set_defaults(func=run_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token (later use gets 403)")
    revoke.add_argument("name", help="the token's name")
    revoke.set_defaults(func=run_token_revoke)


def run_token_create(args: argparse.Namespace) -> int:
    """Print a new token as the last line of stdout.

    Raises:
        ValidationError: a bad name, project pattern or expiry. ConflictError: the name is taken.
    """
    scopes = (SCOPE_UPLOAD,) if args.no_force else ALL_SCOPES
    expires = None if args.expires is None else parse_expiry(args.expires, datetime.now(UTC))
    store = TokenStore(DataLayout(Path(args.data).absolute()).tokens_file)
    token = store.create(
        args.name,
        scopes=scopes,
        projects=None if args.project is None else tuple(args.project),
        expires=expires,
    )
    info = next(item for item in store.list() if item.name == args.name)
    limits = [", ".join(scopes), "projects " + ", ".join(info.projects or ("(all)",))]
    if info.expires:
        limits.append(f"expires {info.expires}")
    warn(f"created token {args.name!r} ({'; '.join(limits)}); it is shown only once:")
    say(token)
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    """Print one line per token: name, creation, last 4 characters, rights, limits, status."""
    tokens = TokenStore(DataLayout(Path(args.data).absolute()).tokens_file).list()
    if not tokens:
        say("no tokens (create one with 'ipydeps-repo token create NAME')")
        return 0
    now = datetime.now(UTC)
    say(
        f"{'NAME':<20} {'CREATED':<26} {'ENDS':<6} {'SCOPES':<13} {'PROJECTS':<16} "
        f"{'EXPIRES':<26} {'LAST USED':<26} STATUS"
    )
    for info in tokens:
        say(
            f"{info.name:<20} {info.created:<26} ...{info.last4:<3} "
            f"{','.join(info.scopes):<13} {','.join(info.projects or ('(all)',)):<16} "
            f"{info.expires or 'never':<26} {info.last_used or 'never':<26} "
            f"{token_status(info, now)}"
        )
    return 0


def token_status(info: TokenInfo, now: datetime) -> str:
    """Return ``active``, ``revoked <when>`` or ``expired``, as ``token list`` shows it."""
    if info.revoked:
        return f"revoked {info.revoked}"
    expires = parse_time(info.expires) if info.expires else None
    if info.expires and (expires is None or expires <= now):
        return "expired"
    return "active"


def run_token_revoke(args: argparse.Namespace) -> int:
    """Revoke a token by name.

    Raises:
        NotFoundError: no token has that name.
    """
    info = TokenStore(DataLayout(Path(args.data).absolute()).tokens_file).revoke(args.name)
    say(f"revoked token {info.name!r} at {info.revoked}")
    return 0
