"""The server's own subcommands: serve, keygen, token, wrap, publish, index."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..settings import DataLayout, build_inflate_limits, build_settings
from ..web.auth import ALL_SCOPES, SCOPE_UPLOAD, TokenInfo, TokenStore
from ..web.token_scope import parse_expiry, parse_time
from .console import say, warn
from .main import add_inflate_arguments, add_stored_copies_argument


def register(subparsers: Any) -> None:
    """Add serve, keygen, token, wrap, publish and index to the ``ipydeps-repo`` parser."""
    serve = subparsers.add_parser(
        "serve",
        help="run the repository server",
        description="Serve the static tree, "
        "the /simple/ index and the upload API. Prints 'ipydeps-repo serving URL' once listening.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (0 = any free port)")
    serve.add_argument(
        "--max-upload",
        default=None,
        metavar="SIZE",
        help="largest accepted upload, e.g. 512M (default 512M)",
    )
    serve.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="URL clients use, shown on the landing page (default: request host)",
    )
    serve.add_argument(
        "--access-log", action="store_true", help="log every request to stderr (default: off)"
    )
    serve.add_argument(
        "--body-timeout", type=float, default=60.0, metavar="SECONDS",
        help="cut off an upload that sends nothing for this long (default 60)",
    )
    add_stored_copies_argument(serve)
    add_inflate_arguments(serve)
    serve.set_defaults(func=run_serve)

    keygen = subparsers.add_parser(
        "keygen",
        help="create the repository's signing key",
        description="Create the RSA key that signs APKINDEX files, in <data>/keys/ (mode "
        "0600), and publish its public half at <tree>/keys/<name>.rsa.pub.",
    )
    keygen.add_argument(
        "--name",
        required=True,
        metavar="PREFIX",
        help="key name prefix, e.g. your e-mail or 'ipydeps'",
    )
    keygen.add_argument("--bits", type=int, default=4096, help="RSA key size (default 4096)")
    keygen.add_argument(
        "--force",
        action="store_true",
        help="replace an existing key (its public key stays published)",
    )
    keygen.set_defaults(func=run_keygen)

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
        "--project", action="append", default=None, metavar="NAME",
        help="limit the token to this project, or to a pattern such as 'acme-*' "
        "(repeat for more; default: every project)",
    )
    create.add_argument(
        "--expires", default=None, metavar="WHEN",
        help="when the token stops working: a duration (30d, 12h, 8w), a date "
        "(2027-01-31, UTC) or a date and time (default: never)",
    )
    create.set_defaults(func=run_token_create)
    listing = token_commands.add_parser("list", help="list tokens (never shows a token)")
    listing.set_defaults(func=run_token_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token (later use gets 403)")
    revoke.add_argument("name", help="the token's name")
    revoke.set_defaults(func=run_token_revoke)

    from .files import register as register_tools

    register_tools(subparsers)


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM.

    Raises:
        ConfigurationError: bad settings.
    """
    import tornado.httpserver
    import tornado.netutil

    from ..store.leftovers import remove_leftovers
    from ..store.store import Store
    from ..web.app import make_app
    from ..web.request_body import SMALL_BODY_BYTES

    settings = build_settings(
        data=args.data,
        host=args.host,
        port=args.port,
        max_upload=args.max_upload,
        public_url=args.public_url,
        access_log=args.access_log,
        stored_copies=args.stored_copies,
        inflate_limits=build_inflate_limits(
            args.max_inflated, args.max_member, args.max_inflate_ratio
        ),
        body_timeout=args.body_timeout,
    )
    logging.basicConfig(
        level=logging.INFO if args.access_log else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    store = Store(
        settings.data,
        max_upload_bytes=settings.max_upload_bytes,
        stored_copies=settings.stored_copies,
        inflate_limits=settings.inflate_limits,
    )
    removed = remove_leftovers(store)
    if removed.paths:
        warn(removed.describe())

    async def serve() -> None:
        app = make_app(settings, store)
        # Every handler bounds its body itself from the headers (handlers/request_body.py)
        # and lifts this limit for the body it takes; it stays for anything else.
        server = tornado.httpserver.HTTPServer(
            app, max_body_size=SMALL_BODY_BYTES, idle_connection_timeout=300
        )
        try:
            sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
        except OSError as error:
            raise ConfigurationError(
                f"cannot listen on {settings.host}:{settings.port}: {error.strerror}",
                hint="choose another --port, or 0 for any free port",
            ) from None
        server.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        say(f"ipydeps-repo serving http://{host}:{port}/")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        server.stop()
        await server.close_all_connections()

    asyncio.run(serve())
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    """Create the signing key and publish its public half.

    Raises:
        ConfigurationError: a key exists and --force was not given, or a bad prefix/size.
    """
    from ..apk.keys import generate_key, save_key
    from ..store.store import write_atomic

    layout = DataLayout(Path(args.data).absolute())
    existing = sorted(layout.keys.glob("*.rsa")) if layout.keys.is_dir() else []
    if existing and not args.force:
        raise ConfigurationError(
            f"a signing key already exists: {existing[0]}",
            hint="keep it, or pass --force to replace it (then run 'ipydeps-repo index')",
        )
    key = generate_key(args.name, bits=args.bits)
    private_path, public_path = save_key(key, layout.keys)
    layout.keys.chmod(0o700)
    write_atomic(layout.public_keys / key.public_name, public_path.read_bytes())
    for old in existing:
        # The old public key stays in <tree>/keys so packages it signed still verify.
        old.unlink()
        old.with_name(old.name + ".pub").unlink(missing_ok=True)
    say(f"private key: {private_path}")
    say(f"public key:  {layout.public_keys / key.public_name} (served at /keys/{key.public_name})")
    say(key.name)
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    """Print a new token as the last line of stdout.

    Raises:
        ValidationError: a bad name, project pattern or expiry. ConflictError: the name is taken.
    """
    scopes = (SCOPE_UPLOAD,) if args.no_force else ALL_SCOPES
    expires = None if args.expires is None else parse_expiry(args.expires, datetime.now(UTC))
    store = TokenStore(DataLayout(Path(args.data).absolute()).tokens_file)
    token = store.create(args.name, scopes=scopes,
                         projects=None if args.project is None else tuple(args.project),
                         expires=expires)
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
    say(f"{'NAME':<20} {'CREATED':<26} {'ENDS':<6} {'SCOPES':<13} {'PROJECTS':<16} "
        f"{'EXPIRES':<26} {'LAST USED':<26} STATUS")
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
