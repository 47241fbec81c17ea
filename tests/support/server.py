"""Start the real repository server on loopback for tests, and talk to it.

The server is a child process (``python -m ipydeps_repo serve --port 0``); it prints
one line ``ipydeps-repo serving http://127.0.0.1:PORT/`` once it listens, so the
fixture reads that line instead of polling.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .pipenv import clean_pip_env

READY_PREFIX = "ipydeps-repo serving "


def repo_cli(*args: str, data: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ipydeps-repo <args> --data <data>`` and return the finished process."""
    command = [sys.executable, "-m", "ipydeps_repo", *args, "--data", str(data)]
    return subprocess.run(
        command, capture_output=True, text=True, check=check, env=clean_pip_env(), timeout=600
    )


@dataclass
class RunningServer:
    """A repository server child process with its data directory and a publish token."""

    url: str
    data: Path
    token: str
    process: subprocess.Popen[str]

    def upload(
        self,
        path: Path,
        *,
        token: str | None = None,
        query: str = "",
        body: bytes | None = None,
    ) -> tuple[int, dict[str, object]]:
        """PUT ``path`` to the publish endpoint; return (status, JSON body)."""
        data = path.read_bytes() if body is None else body
        suffix = f"?{query}" if query else ""
        request = urllib.request.Request(
            f"{self.url}api/v1/upload/{path.name}{suffix}", data=data, method="PUT"
        )
        if token is None:
            token = self.token
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def get(self, path: str, *, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET ``path`` (relative to the server root); return (status, headers, body)."""
        request = urllib.request.Request(self.url + path.lstrip("/"))
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def start_server(data: Path, *extra_args: str) -> RunningServer:
    """Create keys and a token in ``data``, start the server on 127.0.0.1:0 and wait for it."""
    data.mkdir(parents=True, exist_ok=True)
    repo_cli("keygen", "--name", "test", "--bits", "2048", data=data)
    token = repo_cli("token", "create", "tests", data=data).stdout.strip().splitlines()[-1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ipydeps_repo",
            "serve",
            "--data",
            str(data),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *extra_args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_pip_env(),
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(READY_PREFIX):
            url = line[len(READY_PREFIX) :].strip()
            return RunningServer(url=url.rstrip("/") + "/", data=data, token=token, process=process)
    process.wait()
    raise RuntimeError("repository server exited before listening:\n" + "".join(seen))
