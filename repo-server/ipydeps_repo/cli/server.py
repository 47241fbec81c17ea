"""The server's own subcommands: serve, keygen, token, wrap, publish, index."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..settings import (
    DEFAULT_BUILD_REQUESTS_PER_HOUR,
    DEFAULT_BUILD_REQUESTS_PER_TOKEN,
    build_inflate_limits,
    build_settings,
)
from ..store.build_requests import DEFAULT_MAX_OPEN
from ..store.layout import DataLayout
from .arguments import add_inflate_arguments, add_stored_copies_argument
from .console import say, warn
from .workers import cores, run_workers


def register(subparsers: Any) -> None:
    """Add serve, keygen, token, wrap, publish and index to the ``ipydeps-repo`` parser."""
    serve = subparsers.add_parser(
        "serve",
        help="run the repository server",
        description="Serve the static tree, "
        "the /simple/ index and the upload API. Prints 'ipydeps-repo serving URL' once listening.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this host only)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port to listen on; 0 = any free port (default: 8080)",
    )
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
        "--body-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="cut off an upload that sends nothing for this long (default 60)",
    )
    serve.add_argument(
        "--build-requests-per-token",
        type=int,
        default=DEFAULT_BUILD_REQUESTS_PER_TOKEN,
        metavar="N",
        help="build requests one token may send an hour "
        f"(default {DEFAULT_BUILD_REQUESTS_PER_TOKEN})",
    )
    serve.add_argument(
        "--build-requests-per-hour",
        type=int,
        default=DEFAULT_BUILD_REQUESTS_PER_HOUR,
        metavar="N",
        help=f"build requests all tokens together may send an hour "
        f"(default {DEFAULT_BUILD_REQUESTS_PER_HOUR})",
    )
    serve.add_argument(
        "--max-build-requests",
        type=int,
        default=DEFAULT_MAX_OPEN,
        metavar="N",
        help=f"open entries the build-request queue may hold (default {DEFAULT_MAX_OPEN})",
    )
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the port, to use N cores for reads (0 = one per core; "
        "default 1)",
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


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM.

    Raises:
        ConfigurationError: bad settings.
    """
    import tornado.httpserver
    import tornado.netutil

    from ..store.store import Store
    from ..web.app import make_router
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
        build_request_limits=(
            args.build_requests_per_token,
            args.build_requests_per_hour,
            args.max_build_requests,
        ),
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
    removed = store.remove_leftovers()
    if removed.paths:
        warn(removed.describe())
    outlined = store.add_outlines()
    if outlined:
        say(f"added the outline sha256 of the stored copies of {len(outlined)} project(s)")
    if args.processes < 0:
        raise ConfigurationError(
            f"--processes {args.processes} is negative",
            hint="give a number of workers, or 0 for one per core",
        )
    processes = args.processes or cores()
    try:
        sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
    except OSError as error:
        raise ConfigurationError(
            f"cannot listen on {settings.host}:{settings.port}: {error.strerror}",
            hint="choose another --port, or 0 for any free port",
        ) from None
    port = sockets[0].getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host

    def announce() -> None:
        say(f"ipydeps-repo serving http://{host}:{port}/")

    async def serve(ready: Callable[[], None]) -> None:
        router = make_router(settings, store)
        # Every handler bounds its body itself from the headers (handlers/request_body.py)
        # and lifts this limit for the body it takes; it stays for anything else.
        server = tornado.httpserver.HTTPServer(
            router, max_body_size=SMALL_BODY_BYTES, idle_connection_timeout=300
        )
        server.add_sockets(sockets)
        ready()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        server.stop()
        await server.close_all_connections()

    if processes == 1:
        asyncio.run(serve(announce))
        return 0
    return run_workers(processes, lambda: asyncio.run(serve(lambda: None)), announce)


def run_keygen(args: argparse.Namespace) -> int:
    """Create the signing key and publish its public half.

    Raises:
        ConfigurationError: a key exists and --force was not given, or a bad prefix/size.
    """
    from ..apk.keys import generate_key, save_key
    from ..fileops import write_atomic

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
