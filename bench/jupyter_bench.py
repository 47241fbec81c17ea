"""Jupyter responsiveness: our runtime environment against the Docker Stacks scipy-notebook set.

Run: ``python bench/jupyter_bench.py [--runs N]``. For each environment (built once and
cached by ``bench_envs.py``) it measures, over N runs after one discarded warm-up:

- server start: from spawning the server to the first 200 answer of ``/api/status``
  (runtime: ``python -m jupyter_server``, what our image runs; baseline: ``python -m
  jupyterlab``, what the Docker Stacks images run). Readiness is the server's own
  "is running at" line, then one request: nothing polls on a timer.
- kernel start: from starting an ipykernel (with the ipydeps extension loaded in the
  runtime env, as in our image) to the reply of its first executed cell.

Everything is on 127.0.0.1, with this machine's pip settings cleared and private
Jupyter/IPython directories. Prints medians and the ratios baseline / runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench_envs import baseline_env, env_python, runtime_env
from jupyter_client.manager import KernelManager

from tests.support.pipenv import clean_pip_env

URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/)")
TOKEN = "bench-token-not-secret"


@dataclass(frozen=True)
class Subject:
    """One environment under test: its venv, the server module it runs, kernel extras."""

    name: str
    env: Path
    server_module: str
    kernel_args: tuple[str, ...]


def _private_env(home: Path) -> dict[str, str]:
    return clean_pip_env(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PATH=str(home / "data"),
        IPYTHONDIR=str(home / "ipython"),
        JUPYTER_TOKEN=TOKEN,
    )


def _wait_for_status(url: str) -> None:
    """GET ``url`` until it answers 200.

    The server may log its URL a moment before its socket accepts (seen with port 0), and
    "first successful /api/status" is what is measured, so connection refusals are retried
    every 10 ms for up to 60 s. Raises ``RuntimeError`` after that.
    """
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                if response.status == 200:
                    return
        except urllib.error.URLError as error:
            if not isinstance(error.reason, ConnectionRefusedError):
                raise
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer 200 within 60 s")


def server_start_seconds(subject: Subject, home: Path) -> float:
    """Seconds from spawning the server to the first 200 from /api/status.

    Raises ``RuntimeError`` if the server exits before it listens.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            str(env_python(subject.env)),
            "-m",
            subject.server_module,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={home}",
            "--allow-root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_private_env(home),
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            match = URL_LINE.search(line)
            if match and "is running at" not in line:
                _wait_for_status(match.group(1) + "api/status")
                return time.perf_counter() - started
        raise RuntimeError(f"{subject.name}: the server exited before it listened")
    finally:
        process.terminate()
        process.wait(timeout=60)
        if process.stderr:
            process.stderr.close()


def kernel_first_cell_seconds(subject: Subject, home: Path) -> float:
    """Seconds from starting the kernel to the reply of its first executed cell.

    Raises ``RuntimeError`` if the cell does not run successfully.
    """
    spec_dir = home / "data" / "kernels" / "bench"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    str(env_python(subject.env)),
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                    *subject.kernel_args,
                ],
                "display_name": subject.name,
                "language": "python",
            }
        )
    )
    environment = _private_env(home)
    manager = KernelManager(kernel_name="bench")
    manager.kernel_spec_manager.kernel_dirs = [str(home / "data" / "kernels")]
    started = time.perf_counter()
    manager.start_kernel(env=environment)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive("x = 6 * 7", timeout=120)
        elapsed = time.perf_counter() - started
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{subject.name}: first cell failed: {reply['content']}")
        return elapsed
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def measure(subjects: list[Subject], runs: int) -> dict[str, dict[str, list[float]]]:
    """Run both measurements ``runs`` times per subject after one discarded warm-up each.

    Subjects alternate within every round, so a change in machine load hits both alike.
    """
    results: dict[str, dict[str, list[float]]] = {
        subject.name: {"server": [], "kernel": []} for subject in subjects
    }
    for attempt in range(runs + 1):
        for subject in subjects:
            with tempfile.TemporaryDirectory(prefix="jupyter-bench-") as directory:
                home = Path(directory)
                server = server_start_seconds(subject, home)
                kernel = kernel_first_cell_seconds(subject, home)
            if attempt:  # the first round warms the page cache and writes bytecode
                results[subject.name]["server"].append(server)
                results[subject.name]["kernel"].append(kernel)
            print(
                f"  {subject.name:8} run {attempt}{' (warm-up)' if not attempt else ''}: "
                f"server {server:.2f} s, kernel {kernel:.2f} s",
                flush=True,
            )
    return results


def main() -> None:
    """Build or reuse both environments, measure, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per environment")
    parser.add_argument("--json", type=Path, help="also write the raw figures as JSON here")
    options = parser.parse_args()
    subjects = [
        Subject("runtime", runtime_env(), "jupyter_server", ("--ext=ipydeps",)),
        Subject("baseline", baseline_env(), "jupyterlab", ()),
    ]
    results = measure(subjects, options.runs)
    load = os.getloadavg()[0]
    print(
        f"\nmedians over {options.runs} runs (after one warm-up), 127.0.0.1, "
        f"{os.cpu_count()} CPUs, load average {load:.1f}:"
    )
    print(f"  {'':8} {'server start -> /api/status':>28} {'kernel start -> first cell':>28}")
    medians = {
        name: {key: statistics.median(values) for key, values in figures.items()}
        for name, figures in results.items()
    }
    for name, figures in medians.items():
        print(f"  {name:8} {figures['server']:>26.2f} s {figures['kernel']:>26.2f} s")
    print(
        f"  {'ratio':8} {medians['baseline']['server'] / medians['runtime']['server']:>26.2f} x "
        f"{medians['baseline']['kernel'] / medians['runtime']['kernel']:>26.2f} x"
        "   (baseline / runtime)"
    )
    if options.json:
        options.json.write_text(json.dumps({"runs": results, "medians": medians}, indent=1))


if __name__ == "__main__":
    main()
