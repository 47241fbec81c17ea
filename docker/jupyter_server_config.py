"""Jupyter server settings of the runtime image (/etc/jupyter/jupyter_server_config.py).

Token auth stays on: set JUPYTER_TOKEN, or the server generates one and prints the URL with
it. An empty JUPYTER_TOKEN would switch auth off, so it is refused here.
"""

import os
import sys

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - injected by traitlets

if os.environ.get("JUPYTER_TOKEN") == "":
    sys.exit(
        "JUPYTER_TOKEN is set but empty, which would turn authentication off.\n"
        "Unset it to get a generated token (printed below), or set a long random one."
    )

# Listen on every interface inside the container; the port is published by docker/compose.
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = int(os.environ.get("JUPYTER_PORT", "8888"))
c.ServerApp.port_retries = 0
c.ServerApp.open_browser = False
c.ServerApp.root_dir = os.environ.get("NOTEBOOK_DIR", os.path.expanduser("~/work"))
# Behind a hub or proxy the base URL is set there; never trust cross-origin requests.
c.ServerApp.allow_origin = ""
c.ServerApp.allow_remote_access = True
# Kernels talk to the server over Unix sockets in the private (0700) runtime directory, not
# TCP on 127.0.0.1: ipykernel warns on every start that loopback TCP is plain text (any
# local user may connect to those ports and read a kernel's output). ipc is the transport
# it recommends; the server's own port is unaffected.
c.KernelManager.transport = "ipc"
# Ephemeral containers: shut idle kernels down, so a forgotten tab does not pin memory.
c.MappingKernelManager.cull_idle_timeout = int(os.environ.get("KERNEL_CULL_IDLE_SECONDS", "3600"))
c.MappingKernelManager.cull_interval = 300
