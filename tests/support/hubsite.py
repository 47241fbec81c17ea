"""A hub site for the tests: JupyterHub, its users' runtime venvs, the repository they install from.

``open_site(work, users, repository)`` starts the hub (``tests.support.hub``) with one spawn
profile per user: the runtime image's start script from that user's runtime venv, with the
image's settings and the repository settings in the spawner's environment, as an operator
passes them. Users whose kernels install get a throwaway kernel env over their runtime's
packages (``fresh_kernel_env`` makes it anew, as a new container starts from the image);
the others' kernels run the runtime's own python, as in the image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .hub import (
    ROOT,
    HubSetupError,
    RunningHub,
    SpawnProfile,
    runtime_profile,
    start_hub,
    write_kernel_spec,
)
from .hubclient import HubError, HubUser, ServerClient
from .runtime import throwaway_kernel_env
from .server import RunningServer


@dataclass(frozen=True)
class SiteUser:
    """A hub user: the runtime venv their server runs, its UI, whether their kernels install."""

    runtime: Path
    ui: str
    installs: bool = False


@dataclass
class HubSite:
    """The running hub, the repository, and where each user's server and kernels live."""

    hub: RunningHub
    repository: RunningServer
    users: dict[str, SiteUser]
    work: Path
    sockets: Path  # a user's JUPYTER_RUNTIME_DIR is <sockets>/<user>

    def kernel_env(self, user: str) -> Path:
        """Where ``user``'s throwaway kernel env lives."""
        return _kernel_env(self.work, user)

    def fresh_kernel_env(self, user: str) -> Path:
        """Make ``user``'s kernel env anew (as a new container starts); return it."""
        throwaway_kernel_env(self.users[user].runtime, self.kernel_env(user))
        return self.kernel_env(user)

    def login(self, user: str) -> HubUser:
        """Log ``user`` in through the hub's form and get a token with their permissions."""
        logged_in = HubUser.login(self.hub.url, user, self.hub.password)
        logged_in.request_token()
        return logged_in

    def start(self, user: HubUser) -> ServerClient:
        """Start ``user``'s server through the REST API; on failure the hub's log says why."""
        try:
            return ServerClient(user.start_server(), user.token)
        except HubError as error:
            raise HubError(f"{error}\n--- hub log ---\n{self.hub.log_tail()}") from None

    def server_info(self, user: str) -> dict[str, object]:
        """The running server's own record (jpserver-<pid>.json in its runtime directory)."""
        record = next((self.sockets / user).glob("jpserver-*.json"))
        info: dict[str, object] = json.loads(record.read_text())
        return info

    def healthcheck(self, user: str) -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK command (docker/jupyter-healthcheck) beside user's server."""
        return subprocess.run(
            [
                str(self.users[user].runtime / "bin" / "python"),
                str(ROOT / "docker" / "jupyter-healthcheck"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={"JUPYTER_RUNTIME_DIR": str(self.sockets / user), "PATH": "/usr/bin:/bin"},
        )

    def close(self) -> None:
        """Stop the hub (with its proxy and servers) and the repository; remove the sockets."""
        try:
            self.hub.stop()
        finally:
            self.repository.stop()
            shutil.rmtree(self.sockets, ignore_errors=True)


def open_site(
    work: Path, users: dict[str, SiteUser], repository: RunningServer, **settings: str
) -> HubSite:
    """Start the hub for ``users`` against ``repository``; ``settings`` add IPYDEPS_* values.

    The spawner's environment holds IPYDEPS_REPOSITORY_URL (the repository),
    IPYDEPS_UPSTREAM=deny, IPYDEPS_APK=never and a 1 s JUPYTERHUB_ACTIVITY_INTERVAL (so that
    activity reports reach the hub within a test). Raises ``HubSetupError`` when the hub or
    its proxy cannot be set up; the repository is stopped then.
    """
    environment = {
        "IPYDEPS_REPOSITORY_URL": repository.url,
        "IPYDEPS_UPSTREAM": "deny",
        "IPYDEPS_APK": "never",
        "JUPYTERHUB_ACTIVITY_INTERVAL": "1",
        **settings,
    }
    # Kernels' ipc sockets live in the runtime directory: a Unix socket path has at most 107
    # bytes, so a short private directory rather than one under pytest's deep paths.
    sockets = Path(tempfile.mkdtemp(prefix="hub-"))
    profiles: dict[str, SpawnProfile] = {}
    for name, user in users.items():
        specs = None
        if user.installs:
            specs = write_kernel_spec(
                work / "kernel-specs" / name, _kernel_env(work, name) / "bin" / "python"
            )
        profiles[name] = runtime_profile(
            user.runtime,
            work / "profiles" / name,
            ui=user.ui,
            runtime_dir=sockets / name,
            kernel_spec_path=specs,
            settings=environment,
        )
    try:
        hub = start_hub(work / "hub", profiles)
    except HubSetupError:
        repository.stop()
        shutil.rmtree(sockets, ignore_errors=True)
        raise
    return HubSite(hub, repository, users, work, sockets)


def _kernel_env(work: Path, user: str) -> Path:
    return work / "kernel-envs" / user
