"""JupyterHub configuration of the hub tests and bench (``jupyterhub -f`` loads this file).

Everything specific to a run is in the JSON file named by ``IPYDEPS_HUB_SETTINGS`` (written by
``tests.support.hub.start_hub``): loopback URLs with ports the OS picked, the proxy command,
the shared test password, and one spawn profile per user name (the command, its arguments
and environment), which a pre-spawn hook applies. The spawner is
``SimpleLocalProcessSpawner``: every user's server runs as the hub's own system user, with
its home under the run's directory (JupyterHub's local-process spawner for tests; the
setuid one needs a system account per hub user).
"""

import json
import os
from pathlib import Path
from typing import Any

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - injected by traitlets

settings = json.loads(Path(os.environ["IPYDEPS_HUB_SETTINGS"]).read_text())
work = Path(settings["work"])

c.JupyterHub.bind_url = settings["public_url"]
c.JupyterHub.hub_bind_url = settings["hub_url"]
c.ConfigurableHTTPProxy.api_url = settings["proxy_api_url"]
c.ConfigurableHTTPProxy.command = settings["proxy_command"]
c.ConfigurableHTTPProxy.pid_file = str(work / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{work / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(work / "cookie_secret")
c.JupyterHub.log_level = "INFO"

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = settings["password"]
c.Authenticator.allowed_users = set(settings["profiles"])

c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(work / "home" / "{username}")
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180


def apply_profile(spawner: Any) -> None:
    """Give the user's server the command, arguments and environment of its profile."""
    profile = settings["profiles"][spawner.user.name]
    spawner.cmd = profile["cmd"]
    spawner.args = profile["args"]
    spawner.environment = profile["environment"]


c.Spawner.pre_spawn_hook = apply_profile
