"""Installed size of our runtime environment against the Docker Stacks scipy-notebook set.

Run: ``python bench/size_bench.py [--top N] [--json FILE]``. Builds both venvs once (cached
in ``.cache/bench/``, see ``bench_envs.py``), then reports, for each, the bytes on disk of
its site-packages and of every installed distribution (from its RECORD), the largest
distributions first, and the ratio baseline / runtime.

Installed size is deterministic for a given set of wheels, so "several runs" would print
the same number: each environment is measured once, and a rebuild from scratch (``--fresh``)
reproduces it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_envs import CACHE, baseline_env, env_python, runtime_env

MIB = 1024 * 1024


@dataclass(frozen=True)
class DistributionSize:
    """Bytes on disk of one installed distribution (files listed in its RECORD)."""

    name: str
    version: str
    bytes: int


@dataclass(frozen=True)
class EnvironmentSize:
    """Bytes on disk of a venv: site-packages in total, the whole venv, and per distribution."""

    name: str
    site_packages_bytes: int
    venv_bytes: int
    distributions: tuple[DistributionSize, ...]


def _tree_bytes(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for file in files:
            path = Path(directory, file)
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def _site_packages(env: Path) -> Path:
    output = subprocess.run(
        [str(env_python(env)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    )
    return Path(output.stdout.strip())


def _distribution_sizes(site: Path) -> tuple[DistributionSize, ...]:
    sizes = []
    for dist_info in sorted(site.glob("*.dist-info")):
        record = dist_info / "RECORD"
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
        total = 0
        if record.is_file():
            with record.open(newline="", encoding="utf-8") as file:
                for row in csv.reader(file):
                    path = (site / row[0]).resolve()
                    if row and path.is_file():
                        total += path.stat().st_size
        sizes.append(DistributionSize(name=name, version=version, bytes=total))
    return tuple(sorted(sizes, key=lambda size: size.bytes, reverse=True))


def measure(name: str, env: Path) -> EnvironmentSize:
    """Measure the venv at ``env``; raises ``subprocess.CalledProcessError`` if it is broken."""
    site = _site_packages(env)
    return EnvironmentSize(
        name=name,
        site_packages_bytes=_tree_bytes(site),
        venv_bytes=_tree_bytes(env),
        distributions=_distribution_sizes(site),
    )


def _report(size: EnvironmentSize, top: int) -> None:
    print(f"\n{size.name}: {len(size.distributions)} distributions, "
          f"site-packages {size.site_packages_bytes / MIB:.1f} MiB, "
          f"whole venv {size.venv_bytes / MIB:.1f} MiB")
    for dist in size.distributions[:top]:
        print(f"  {dist.bytes / MIB:8.2f} MiB  {dist.name} {dist.version}")
    rest = size.distributions[top:]
    if rest:
        print(f"  {sum(d.bytes for d in rest) / MIB:8.2f} MiB  ({len(rest)} others)")


def main() -> None:
    """Build or reuse both environments, print their sizes and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="distributions listed per env")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--fresh", action="store_true", help="rebuild both venvs first")
    options = parser.parse_args()
    if options.fresh:
        shutil.rmtree(CACHE / "runtime", ignore_errors=True)
        shutil.rmtree(CACHE / "baseline", ignore_errors=True)
    runtime = measure("runtime (jupyter-server + ipykernel + ipydeps)", runtime_env())
    baseline = measure("baseline (Docker Stacks scipy-notebook set)", baseline_env())
    for size in (runtime, baseline):
        _report(size, options.top)
    ratio = baseline.site_packages_bytes / runtime.site_packages_bytes
    print(f"\nsite-packages: runtime {runtime.site_packages_bytes / MIB:.1f} MiB, "
          f"baseline {baseline.site_packages_bytes / MIB:.1f} MiB, "
          f"baseline/runtime = {ratio:.1f}x")
    if options.json:
        options.json.write_text(json.dumps(
            {"runtime": asdict(runtime), "baseline": asdict(baseline), "ratio": ratio}, indent=1
        ))


if __name__ == "__main__":
    main()
