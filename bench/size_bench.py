"""Installed size of our runtime environment against the Docker Stacks scipy-notebook set.

Run: ``python bench/size_bench.py [--top N] [--json FILE]``. Builds both venvs once (cached
in ``.cache/bench/``, see ``bench_envs.py``), then reports, for each, the bytes on disk of
its site-packages and of every installed distribution (from its RECORD), the largest
distributions first, and the ratio baseline / runtime.

``--single-user`` instead reports what JupyterHub's single-user server costs the image: in
venvs of the image's package set (``tests/support/runtime.py``, pinned, the hub's web assets
removed as in the image), headless and with JupyterLab, the distributions that only
``jupyterhub`` requires (what ``JUPYTERHUB_VERSION=""`` leaves out), with their bytes.

Installed size is deterministic for a given set of wheels, so "several runs" would print
the same number: each environment is measured once, and a rebuild from scratch (``--fresh``)
reproduces it.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_envs import CACHE, baseline_env, env_python, runtime_env
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.runtime import build_runtime

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
        check=True,
        capture_output=True,
        text=True,
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
    print(
        f"\n{size.name}: {len(size.distributions)} distributions, "
        f"site-packages {size.site_packages_bytes / MIB:.1f} MiB, "
        f"whole venv {size.venv_bytes / MIB:.1f} MiB"
    )
    for dist in size.distributions[:top]:
        print(f"  {dist.bytes / MIB:8.2f} MiB  {dist.name} {dist.version}")
    rest = size.distributions[top:]
    if rest:
        print(f"  {sum(d.bytes for d in rest) / MIB:8.2f} MiB  ({len(rest)} others)")


def _requirements_graph(site: Path) -> dict[str, set[str]]:
    """Each installed distribution's name -> the names it requires (markers evaluated here)."""
    graph: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions(path=[str(site)]):
        needs = set()
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                needs.add(canonicalize_name(requirement.name))
        graph[canonicalize_name(dist.metadata["Name"])] = needs
    return graph


def _closure(graph: dict[str, set[str]], roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in graph and name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def single_user_cost(env: Path) -> tuple[DistributionSize, ...]:
    """The distributions in the venv ``env`` that only ``jupyterhub`` requires (and itself)."""
    site = _site_packages(env)
    graph = _requirements_graph(site)
    required = set().union(*graph.values())
    others = {name for name in graph if name not in required} - {"jupyterhub"}
    only_hub = _closure(graph, {"jupyterhub"}) - _closure(graph, others)
    return tuple(
        size for size in _distribution_sizes(site) if canonicalize_name(size.name) in only_hub
    )


def report_single_user() -> None:
    """Print what jupyterhub adds to the headless and the JupyterLab runtime venvs."""
    python = Path(sys.executable)
    for label, uis in (("headless (UI=none)", ()), ("JupyterLab (UI=lab)", ("lab",))):
        env = build_runtime(python, CACHE / f"hub-runtime-{uis[0] if uis else 'none'}", uis)
        cost = single_user_cost(env)
        print(
            f"\n{label}: jupyterhub and what only it requires, "
            f"{len(cost)} distributions, {sum(d.bytes for d in cost) / MIB:.1f} MiB "
            f"(of site-packages {_tree_bytes(_site_packages(env)) / MIB:.1f} MiB)"
        )
        for dist in cost:
            print(f"  {dist.bytes / MIB:8.2f} MiB  {dist.name} {dist.version}")


def main() -> None:
    """Build or reuse both environments, print their sizes and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="distributions listed per env")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--fresh", action="store_true", help="rebuild both venvs first")
    parser.add_argument(
        "--single-user",
        action="store_true",
        help="report what JupyterHub's single-user server adds instead",
    )
    options = parser.parse_args()
    if options.single_user:
        report_single_user()
        return
    if options.fresh:
        shutil.rmtree(CACHE / "runtime", ignore_errors=True)
        shutil.rmtree(CACHE / "baseline", ignore_errors=True)
    runtime = measure("runtime (jupyter-server + ipykernel + ipydeps)", runtime_env())
    baseline = measure("baseline (Docker Stacks scipy-notebook set)", baseline_env())
    for size in (runtime, baseline):
        _report(size, options.top)
    ratio = baseline.site_packages_bytes / runtime.site_packages_bytes
    print(
        f"\nsite-packages: runtime {runtime.site_packages_bytes / MIB:.1f} MiB, "
        f"baseline {baseline.site_packages_bytes / MIB:.1f} MiB, "
        f"baseline/runtime = {ratio:.1f}x"
    )
    if options.json:
        options.json.write_text(
            json.dumps(
                {"runtime": asdict(runtime), "baseline": asdict(baseline), "ratio": ratio}, indent=1
            )
        )


if __name__ == "__main__":
    main()
