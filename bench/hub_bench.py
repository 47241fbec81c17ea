"""JupyterHub: from "start server" to the first executed cell, our runtime against Docker Stacks.

Run: ``python bench/hub_bench.py [--runs N] [--json FILE]`` (needs node and npm, like the
hub tests). One real hub on 127.0.0.1 (JupyterHub from this venv, configurable-http-proxy
from npm, a local-process spawner; ``tests/support/hub.py``) serves one user per subject:

- ``runtime``: the runtime image's package set with JupyterLab (``tests/support/runtime.py``:
  jupyter-server, ipykernel, ipydeps, jupyterhub at the Dockerfile's JUPYTERHUB_VERSION,
  jupyterlab; pinned by docker/runtime-constraints.txt; the hub's web assets removed),
  started by ``docker/start-jupyter`` with the image's settings (kernels load ipydeps);
- ``stacks``: what the Docker Stacks base-notebook and minimal-notebook images install
  (jupyterlab, notebook, jupyterhub at the same version, nbclassic; ``bench_envs.py``),
  started with ``jupyterhub-singleuser`` as their start-singleuser.py does;
- ``runtime+scipy`` (``--install``): the runtime, with ``ipydeps.pip(['scipy'])`` and a
  ``scipy.linalg.solve`` as the first cell, from a repository on 127.0.0.1 seeded by
  ``ipydeps-repo mirror numpy scipy`` (a fresh kernel env per run, made before the timer).

Each run, timed with the bench's clock: POST /hub/api/users/<user>/server, the hub's
progress events until "ready", POST api/kernels through the proxy, the first cell over the
kernel's websocket until the kernel is idle again; then the server is stopped (not timed).
Subjects alternate within every round after one warm-up round (each round starting with
the next subject), so load drifts and the order hit all alike. Prints min / median / max
per subject and the ratio stacks / runtime, round by round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_envs import CACHE, stacks_singleuser_env

from tests.support.hub import (
    SpawnProfile,
    host_repository,
    runtime_profile,
    start_hub,
    write_kernel_spec,
)
from tests.support.hubclient import HubUser, ServerClient
from tests.support.musl import link_copy
from tests.support.runtime import build_runtime, dockerfile_default, throwaway_kernel_env
from tests.support.server import start_server

FIRST_CELL = "print(6 * 7)"
SCIPY_CELL = (
    "import ipydeps\nipydeps.pip(['scipy'])\nimport numpy as np, scipy.linalg\n"
    "print(scipy.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]),"
    " np.array([9.0, 8.0])).round(6).tolist())"
)


@dataclass(frozen=True)
class Timing:
    """One run, in seconds from the start request: server ready, kernel started, cell done."""

    ready: float
    kernel: float
    first_cell: float


def stacks_profile(env: Path, work: Path, runtime_dir: Path) -> SpawnProfile:
    """The Docker Stacks way: ``jupyterhub-singleuser`` from the venv, default settings."""
    for directory in ("config", "data", "ipython"):
        (work / directory).mkdir(parents=True, exist_ok=True)
    environment = {
        "PATH": f"{env / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": str(env),
        "JUPYTER_CONFIG_DIR": str(work / "config"),
        "JUPYTER_DATA_DIR": str(work / "data"),
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "IPYTHONDIR": str(work / "ipython"),
    }
    args = ["--allow-root"] if os.geteuid() == 0 else []
    return SpawnProfile([str(env / "bin" / "jupyterhub-singleuser")], args, environment)


def one_run(user: HubUser, code: str) -> Timing:
    """Start the user's server, run ``code`` as the first cell, stop it; the timings."""
    started = time.perf_counter()
    server = ServerClient(user.start_server(), user.token)
    ready = time.perf_counter() - started
    kernel_id = server.start_kernel()
    kernel = time.perf_counter() - started
    channel = server.channel(kernel_id)
    try:
        cell = channel.execute(code, timeout=600)
    finally:
        channel.close()
    first_cell = time.perf_counter() - started
    if cell.output.error is not None:
        raise RuntimeError(f"the first cell failed for {user.name}: {cell.output.text}")
    user.stop_server()
    return Timing(ready, kernel, first_cell)


def _machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            model,
        )
    return (
        f"{model}, {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"
    )


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f})"


def run_rounds(
    hub_url: str, password: str, names: list[str], runs: int, runtime: Path, kernel_env: Path
) -> dict[str, list[Timing]]:
    """Log every subject's user in, then ``runs`` rounds after a warm-up, subjects in turn."""
    users = {name: HubUser.login(hub_url, name, password) for name in names}
    for user in users.values():
        user.request_token()
    timings: dict[str, list[Timing]] = {name: [] for name in names}
    for round_number in range(runs + 1):  # round 0 is the warm-up
        # Each round starts with the next subject, so none always follows the same one.
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            user = users[name]
            code = FIRST_CELL
            if name == "runtime-scipy":
                throwaway_kernel_env(runtime, kernel_env)  # as a new container: no SciPy
                code = SCIPY_CELL
            timing = one_run(user, code)
            if round_number:
                timings[name].append(timing)
    return timings


def report(timings: dict[str, list[Timing]], header: str) -> None:
    """Print min / median / max per subject and measure, and the stacks / runtime ratios."""
    print(header)
    for name, runs in timings.items():
        print(f"\n{name}:")
        print(f"  start -> ready           {_summary([t.ready for t in runs])}")
        print(f"  start -> kernel started  {_summary([t.kernel for t in runs])}")
        print(f"  start -> first cell done {_summary([t.first_cell for t in runs])}")
    pairs = list(zip(timings["stacks"], timings["runtime"], strict=True))
    cell = [stacks.first_cell / runtime.first_cell for stacks, runtime in pairs]
    ready = [stacks.ready / runtime.ready for stacks, runtime in pairs]
    print(
        f"\nstacks / runtime, round by round: first cell {statistics.median(cell):.2f} "
        f"(min {min(cell):.2f}, max {max(cell):.2f}); ready {statistics.median(ready):.2f} "
        f"(min {min(ready):.2f}, max {max(ready):.2f})"
    )


def main() -> int:
    """Build or reuse the environments, start the hub, run the rounds, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="counted rounds (default 5)")
    parser.add_argument(
        "--install",
        action="store_true",
        help="also time the runtime with ipydeps.pip(['scipy']) as first cell",
    )
    parser.add_argument("--json", type=Path, help="also write every run's timings here")
    options = parser.parse_args()

    runtime = build_runtime(Path(sys.executable), CACHE / "hub-runtime-lab", ("lab",))
    stacks = stacks_singleuser_env(dockerfile_default("JUPYTERHUB_VERSION"))
    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    sockets = Path(tempfile.mkdtemp(prefix="hub-"))
    repository = None
    settings = {"IPYDEPS_UPSTREAM": "deny", "IPYDEPS_APK": "never"}
    if options.install:
        repository = start_server(link_copy(host_repository(), work / "repo-data"))
        settings["IPYDEPS_REPOSITORY_URL"] = repository.url
    profiles = {
        "runtime": runtime_profile(
            runtime,
            work / "runtime",
            ui="lab",
            runtime_dir=sockets / "runtime",
            kernel_spec_path=None,
            settings=settings,
        ),
        "stacks": stacks_profile(stacks, work / "stacks", sockets / "stacks"),
    }
    if options.install:
        specs = write_kernel_spec(work / "specs", work / "kernel-env" / "bin" / "python")
        profiles["runtime-scipy"] = runtime_profile(
            runtime,
            work / "runtime-scipy",
            ui="lab",
            runtime_dir=sockets / "scipy",
            kernel_spec_path=specs,
            settings=settings,
        )
    load_before = os.getloadavg()[0]
    hub = start_hub(work / "hub", profiles)
    try:
        timings = run_rounds(
            hub.url, hub.password, list(profiles), options.runs, runtime, work / "kernel-env"
        )
    finally:
        hub.stop()
        if repository is not None:
            repository.stop()
        shutil.rmtree(sockets, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()[0]
    report(
        timings,
        f"{_machine()}; {options.runs} rounds after a warm-up; load average "
        f"{load_before:.1f} before, {load_after:.1f} after",
    )
    if options.json:
        options.json.write_text(
            json.dumps(
                {
                    "machine": _machine(),
                    "load": [load_before, load_after],
                    "runs": {name: [asdict(t) for t in runs] for name, runs in timings.items()},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
