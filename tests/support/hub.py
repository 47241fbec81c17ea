"""A real JupyterHub with configurable-http-proxy on 127.0.0.1, for the hub tests and bench.

- ``proxy_command()`` installs (once, cached in ``.cache/hub/proxy``) configurable-http-proxy
  from the npm registry with the machine's ``npm`` and returns how to run it with ``node``.
  Without node or npm it raises ``HubSetupError`` saying how to install them.
- ``start_hub(work, profiles)`` starts ``jupyterhub`` (from this test venv) with
  ``tests/support/hub_config.py``: loopback ports picked by the OS, a shared test password,
  one spawn profile (command, arguments, environment) per user name. It returns once the hub
  logs that it is running; ``RunningHub.stop()`` stops it, its proxy and every server it
  started, by process id.
- ``runtime_profile(...)`` is the profile that runs the runtime image's start script
  (``docker/start-jupyter``) from a runtime venv, with the image's Jupyter and IPython
  settings and the repository settings an operator passes in the spawner's environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .pipenv import clean_pip_env

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "hub"
PROXY_PACKAGE = "configurable-http-proxy"
PROXY_VERSION = "5.3.0"
HUB_CONFIG = Path(__file__).with_name("hub_config.py")
RUNNING_LINE = "JupyterHub is now running at "
INSTALL_NODE = (
    "configurable-http-proxy, JupyterHub's proxy, is a Node.js program: install "
    "node and npm, e.g. `sudo apt-get install nodejs npm` on Debian/Ubuntu "
    "(.ci/run does this on a clean machine)"
)


class HubSetupError(RuntimeError):
    """The hub or its proxy could not be set up or started; the message says why and what to do."""


def proxy_command() -> list[str]:
    """``[node, <configurable-http-proxy script>]``, installing the proxy from npm once.

    Raises ``HubSetupError`` when node or npm is missing or ``npm install`` fails.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        raise HubSetupError(f"{missing} not found on PATH. {INSTALL_NODE}")
    prefix = CACHE / "proxy"
    package = prefix / "node_modules" / PROXY_PACKAGE
    manifest = package / "package.json"
    installed = json.loads(manifest.read_text()).get("version") if manifest.is_file() else None
    if installed != PROXY_VERSION:
        prefix.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-save",
                "--no-audit",
                "--no-fund",
                f"{PROXY_PACKAGE}@{PROXY_VERSION}",
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=600,
        )
        if result.returncode != 0:
            raise HubSetupError(
                f"npm install {PROXY_PACKAGE}@{PROXY_VERSION} failed "
                f"({result.returncode}):\n{result.stdout[-2000:]}"
                f"\n{result.stderr[-4000:]}"
            )
    return [node, str(package / "bin" / PROXY_PACKAGE)]


def host_repository(packages: tuple[str, ...] = ("numpy", "scipy")) -> Path:
    """Seed (once, cached) a repository data directory with ``packages`` for this host.

    Runs the real ``ipydeps-repo mirror`` (this interpreter's version and platform) into
    ``.cache/hub/repo-<tag>``; a finished one (``.mirrored`` holds the request) is reused.
    Raises ``HubSetupError`` with the mirror's output when it fails.
    """
    data = CACHE / f"repo-{sys.implementation.cache_tag}"
    request = json.dumps(packages)
    done = data / ".mirrored"
    if not (done.is_file() and done.read_text() == request):
        if data.exists():
            shutil.rmtree(data)
        result = subprocess.run(
            [sys.executable, "-m", "ipydeps_repo", "mirror", *packages, "--data", str(data)],
            capture_output=True,
            text=True,
            env=clean_pip_env(),
            stdin=subprocess.DEVNULL,
            timeout=1800,
        )
        if result.returncode != 0:
            raise HubSetupError(
                f"ipydeps-repo mirror {' '.join(packages)} failed:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        done.write_text(request)
    return data


def free_port() -> int:
    """A TCP port on 127.0.0.1 the OS reports free (for servers that cannot be given port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class SpawnProfile:
    """What the hub's spawner runs for one user: the command, its arguments, its environment."""

    cmd: list[str]
    args: list[str]
    environment: dict[str, str]


def runtime_profile(
    runtime: Path,
    work: Path,
    *,
    ui: str,
    runtime_dir: Path,
    kernel_spec_path: Path | None,
    settings: dict[str, str],
) -> SpawnProfile:
    """The runtime image's start script from the venv ``runtime``, configured like the image.

    ``docker/jupyter_server_config.py`` and ``docker/ipython_kernel_config.py`` are the server's
    and the kernels' settings (as in /etc/jupyter and /etc/ipython in the image); ``settings``
    (the IPYDEPS_* variables) go into the environment as a spawner passes them.
    ``kernel_spec_path`` is put first on JUPYTER_PATH (a ``python3`` kernel spec there
    replaces the runtime's own). ``runtime_dir`` holds the kernels' ipc sockets: a Unix socket
    path has at most 107 bytes, so it must be short (not under pytest's deep paths). As root
    (this sandbox) the server needs ``--allow-root``.
    """
    config = work / "jupyter-config"
    ipython = work / "ipython" / "profile_default"
    config.mkdir(parents=True, exist_ok=True)
    ipython.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "docker" / "jupyter_server_config.py", config)
    shutil.copy(ROOT / "docker" / "ipython_kernel_config.py", ipython)
    environment = {
        "PATH": f"{runtime / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": str(runtime),
        "IPYDEPS_UI": ui,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(work / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "IPYTHONDIR": str(ipython.parent),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **settings,
    }
    if kernel_spec_path is not None:
        environment["JUPYTER_PATH"] = str(kernel_spec_path)
    args = ["--allow-root"] if os.geteuid() == 0 else []
    return SpawnProfile([str(ROOT / "docker" / "start-jupyter")], args, environment)


def write_kernel_spec(path: Path, python: Path) -> Path:
    """Write a ``python3`` kernel spec running ``python`` in ``path``/kernels; return ``path``."""
    spec = path / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipydeps)",
                "language": "python",
            }
        )
    )
    return path


@dataclass
class RunningHub:
    """A running hub process: its public URL (the proxy), its password, its log so far."""

    url: str
    password: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def log_tail(self, lines: int = 80) -> str:
        """The hub's (and its proxy's and servers') latest log lines, for failure messages."""
        return "".join(self.log[-lines:])

    def stop(self) -> None:
        """Stop the hub (it stops its proxy and servers), then any of its children left."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(children, timeout=30)


def start_hub(work: Path, profiles: dict[str, SpawnProfile], *, timeout: float = 120) -> RunningHub:
    """Start JupyterHub and its proxy on 127.0.0.1; return once it says it is running.

    Raises ``HubSetupError`` (with the hub's log) when it exits or stays silent until
    ``timeout``, or when the proxy cannot be installed.
    """
    work.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    public = f"http://127.0.0.1:{free_port()}/"
    settings: dict[str, Any] = {
        "work": str(work),
        "password": password,
        "public_url": public,
        "hub_url": f"http://127.0.0.1:{free_port()}",
        "proxy_api_url": f"http://127.0.0.1:{free_port()}",
        "proxy_command": proxy_command(),
        "profiles": {
            name: {"cmd": profile.cmd, "args": profile.args, "environment": profile.environment}
            for name, profile in profiles.items()
        },
    }
    (work / "hub-settings.json").write_text(json.dumps(settings, indent=1))
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_pip_env(IPYDEPS_HUB_SETTINGS=str(work / "hub-settings.json")),
    )
    hub = RunningHub(url=public, password=password, process=process)
    lines: queue.Queue[str | None] = queue.Queue()
    # Drain the log all along (a full pipe would stall the hub) into the hub's log list.
    threading.Thread(target=_drain, args=(process, hub.log, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            break
        if line is None:
            break
        if RUNNING_LINE in line:
            return hub
    hub.stop()
    raise HubSetupError(
        f"JupyterHub did not start within {timeout:.0f} s "
        f"(exit status {process.poll()}):\n{hub.log_tail()}"
    )


def _drain(process: subprocess.Popen[str], log: list[str], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        log.append(line)
        lines.put(line)
    lines.put(None)
