"""Our runtime on musl beside the same runtime on glibc: installed size and Jupyter start-up.

Run: ``python bench/musl_runtime_bench.py [--runs N] [--json FILE]``. Both venvs hold what
the runtime image ships (jupyter-server, ipykernel, ipydeps built from this checkout):

- ``glibc``: a venv of this interpreter (``bench_envs.runtime_env``, cached in .cache/bench/);
- ``musl``: a venv of the musl CPython harness (``scripts/musl_harness.py``, built once and
  cached in .cache/musl/, see ``tests/support/musl.py``), which installs musllinux wheels.

It reports each venv's site-packages and whole size (``size_bench.measure``), then the
medians of server start -> first /api/status and kernel start -> first cell reply
(``jupyter_bench.measure``: N runs after one warm-up, the two alternating in every round).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import asdict
from pathlib import Path

from bench_envs import runtime_env
from jupyter_bench import Subject, measure
from size_bench import MIB
from size_bench import measure as measure_size

from tests.support.musl import harness_python
from tests.support.musl import runtime_env as musl_runtime_env


def main() -> None:
    """Build or reuse both runtime venvs, print sizes and start-up medians side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per environment")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    options = parser.parse_args()
    print("==> building or reusing the musl harness and both runtime venvs", file=sys.stderr)
    envs = {"glibc": runtime_env(), "musl": musl_runtime_env(harness_python())}
    sizes = {name: measure_size(f"runtime on {name}", env) for name, env in envs.items()}
    subjects = [
        Subject(name, env, "jupyter_server", ("--ext=ipydeps",)) for name, env in envs.items()
    ]
    results = measure(subjects, options.runs)
    medians = {
        name: {key: statistics.median(values) for key, values in figures.items()}
        for name, figures in results.items()
    }
    print(
        f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; medians over "
        f"{options.runs} runs after one warm-up, 127.0.0.1"
    )
    print(
        f"  {'':6} {'site-packages':>14} {'whole venv':>11} {'server -> /api/status':>22}"
        f" {'kernel -> first cell':>21}"
    )
    for name in envs:
        size, figures = sizes[name], medians[name]
        print(
            f"  {name:6} {size.site_packages_bytes / MIB:>10.1f} MiB"
            f" {size.venv_bytes / MIB:>7.1f} MiB {figures['server']:>20.2f} s"
            f" {figures['kernel']:>19.2f} s"
        )
    if options.json:
        options.json.write_text(
            json.dumps(
                {
                    "sizes": {name: asdict(size) for name, size in sizes.items()},
                    "runs": results,
                    "medians": medians,
                    "load_average": os.getloadavg()[0],
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
