"""The repository server as a benchmark's child process: ``ipydeps-repo serve`` on 127.0.0.1.

One copy for every bench (the tests start theirs with keys and a token: tests/support/server.py).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

READY = "ipydeps-repo serving "  # what serve prints once it listens, then the URL


class RepositoryServer:
    """``ipydeps-repo serve --data DATA`` on 127.0.0.1, on a port the kernel chooses.

    ``env`` is the bench's environment for it (this machine's pip settings cleared, or
    another checkout first on PYTHONPATH); ``extra`` goes after the serve arguments.
    ``url`` has no trailing slash.
    """

    def __init__(self, data: Path, extra: Sequence[str] = (), *, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "ipydeps_repo", "serve", "--data", str(data)]
        self.process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        self.url = ""
        for line in self.process.stdout:
            if line.startswith(READY):
                self.url = line[len(READY) :].strip().rstrip("/")
                break
        if not self.url:
            raise SystemExit("the repository server exited before listening")
        # Keep reading its log so a full pipe never blocks the server.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
