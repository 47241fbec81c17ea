"""Start Debian's nginx on loopback in front of a repository server, with the shipped config.

The server block is made here (loopback address, the test's tree, the server's address);
what it includes is ``docker/nginx/ipydeps-repo-http.conf`` and
``docker/nginx/ipydeps-repo-locations.conf`` as shipped, so the tests check the files
operators use. ``static`` mode is a plain static host instead (no negotiation, no Python
server behind it), the way S3-compatible storage or a CDN serves the same tree.

The listening socket is bound here, on port 0, and handed to nginx through its ``NGINX``
environment variable (how nginx passes sockets to a new binary on upgrade): no port is
guessed, and connections queue in the socket until nginx accepts them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "docker" / "nginx"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

_MAIN = """\
{user}worker_processes {workers};
daemon off;
master_process on;
pid {run}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    include {mime_types};
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    access_log off;
    absolute_redirect off;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
{body}
}}
"""

_REPO_BODY = """\
    include {shipped}/ipydeps-repo-http.conf;
    upstream ipydeps_repo_api {{
        server {upstream};
        keepalive 16;
    }}
    server {{
        listen {listen};
        root {tree};
        include {shipped}/ipydeps-repo-locations.conf;
    }}
"""

# A static host: files by their path, a folder's index.html for a URL ending in "/".
_STATIC_BODY = """\
    server {{
        listen {listen};
        root {tree};
        index index.html;
        types {{
            application/json json;
            text/html html;
            application/octet-stream whl stored apk;
            text/plain metadata;
            application/gzip gz;
        }}
    }}
"""


def nginx_available() -> bool:
    """Tell whether an nginx binary is installed (Debian: ``apt-get install nginx``)."""
    return NGINX is not None


@dataclass
class RunningNginx:
    """An nginx master process serving ``tree`` on ``url``."""

    url: str
    process: subprocess.Popen[bytes]
    run_dir: Path
    config: Path

    def stop(self) -> None:
        """Stop nginx (SIGQUIT would wait for keep-alive clients: SIGTERM is immediate)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def start_nginx(
    tree: Path, *, upstream: str | None = None, static: bool = False, workers: int | str = 1
) -> RunningNginx:
    """Start nginx on 127.0.0.1, port chosen by the kernel, serving ``tree``.

    ``upstream`` is the repository server's ``host:port`` (the shipped config proxies
    uploads, the API and misses to it); ``static`` serves the tree as a plain static host.
    """
    if NGINX is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    if not static and upstream is None:
        raise ValueError("the shipped config needs the repository server's address")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(511)
    port = listener.getsockname()[1]
    run_dir = Path(tempfile.mkdtemp(prefix="ipydeps-nginx-"))
    listen = f"127.0.0.1:{port}"
    body = (_STATIC_BODY if static else _REPO_BODY).format(
        shipped=SHIPPED, upstream=upstream, listen=listen, tree=tree
    )
    # As root, the workers would run as nobody, who cannot read pytest's private tmp dirs.
    user = "user root;\n" if os.geteuid() == 0 else ""
    config = run_dir / "nginx.conf"
    config.write_text(
        _MAIN.format(user=user, workers=workers, run=run_dir, body=body, mime_types=_mime_types())
    )
    env = {**os.environ, "NGINX": f"{listener.fileno()};"}
    try:
        process = subprocess.Popen(
            [NGINX, "-e", "stderr", "-p", str(run_dir), "-c", str(config)],
            env=env,
            pass_fds=(listener.fileno(),),
            stdin=subprocess.DEVNULL,
        )
    finally:
        listener.close()
    return RunningNginx(url=f"http://{listen}/", process=process, run_dir=run_dir, config=config)


def _mime_types() -> str:
    shipped = Path("/etc/nginx/mime.types")
    return str(shipped) if shipped.exists() else "/dev/null"
