"""Two ipydeps builds side by side: their install steps, interleaved, against ``cp -a``.

``install_bench.py`` compares tools within one invocation; comparing two versions of
ipydeps that way needs both in one run, on the same machine in the same mood. This takes
two interpreters that each import the ipydeps to measure (a venv with one checkout
installed, another with the other), starts this checkout's repository server on the
install bench's data, and per round installs NumPy + SciPy + pandas with each (the order
alternates) into a fresh venv, then ``cp -a`` of the finished site-packages into a fresh
folder in the same place: the floor. Only the install step is timed (no import after it).

- ``kernel``: a Python process of the interpreter loads the extension, as a kernel does at
  start (untimed), then runs ``ipydeps.pip([...], quiet=True)``; wall and CPU of that call.
- ``cli``: ``PYTHON -m ipydeps install --quiet ...`` as a whole (start and imports count).

    python bench/install_ab.py --before PYTHON --after PYTHON [--rounds 8]
                               [--mode kernel|cli] [--where tmpfs|disk] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import install_bench as bench

# Run as ``PYTHON -c KERNEL URL VENV REQUIREMENT...``: the kernel with the extension loaded.
KERNEL = r"""
import json, resource, sys, time
import ipydeps

class Shell:
    input_transformers_cleanup = []

    def register_magic_function(self, *args, **kwargs):
        pass

ipydeps.load_ipython_extension(Shell())

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

url, venv, requirements = sys.argv[1], sys.argv[2], sys.argv[3:]
before, start = cpu(), time.perf_counter()
ipydeps.pip(requirements, quiet=True, upstream="deny", index_url=url, prefix=venv)
print(json.dumps({"wall": time.perf_counter() - start, "cpu": cpu() - before}))
"""


def run(command: list[str], folder: Path) -> str:
    """Run ``command`` in ``folder``; return its output, or exit when it fails.

    Not from the bench's folder: ``python -c`` and ``python -m`` put the current folder
    first on ``sys.path``, and a checkout's ``ipydeps/`` there would be what both import.
    """
    finished = subprocess.run(
        command, capture_output=True, text=True, env=bench.clean_env(), cwd=folder
    )
    if finished.returncode != 0:
        sys.stderr.write(f"command failed: {' '.join(command)}\n{finished.stdout}{finished.stderr}")
        raise SystemExit(1)
    return finished.stdout


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def install(
    python: str, mode: str, url: str, venv: Path, requirements: list[str]
) -> dict[str, float]:
    """Install ``requirements`` into ``venv`` with the ipydeps of ``python``; wall and CPU."""
    run([python, "-m", "venv", "--without-pip", str(venv)], venv.parent)
    os.sync()
    if mode == "kernel":
        done = run([python, "-c", KERNEL, url, str(venv), *requirements], venv.parent)
        measured: dict[str, float] = json.loads(done.strip().splitlines()[-1])
        return measured
    command = [python, "-m", "ipydeps", "install", "--quiet", "--upstream", "deny"]
    command += ["--index-url", url, "--prefix", str(venv), *requirements]
    before, start = children_cpu(), time.perf_counter()
    run(command, venv.parent)
    return {"wall": time.perf_counter() - start, "cpu": children_cpu() - before}


def copy_tree(venv: Path, target: Path) -> dict[str, float]:
    """``cp -a`` the site-packages of ``venv`` into ``target``; wall and CPU."""
    site = next((venv / "lib").glob("python*/site-packages"))
    target.mkdir()
    os.sync()
    before, start = children_cpu(), time.perf_counter()
    bench.run(["cp", "-a", f"{site}/.", str(target)])
    return {"wall": time.perf_counter() - start, "cpu": children_cpu() - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="interpreter importing one ipydeps")
    parser.add_argument("--after", required=True, help="interpreter importing the other")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--mode", choices=["kernel", "cli"], default="kernel")
    parser.add_argument("--where", choices=sorted(bench.ROOTS), default="tmpfs")
    parser.add_argument("--data", type=Path, help="repository data dir (install_bench.py's)")
    parser.add_argument("--requirements", nargs="+", default=["numpy", "scipy", "pandas"])
    args = parser.parse_args()
    data = args.data or Path.home() / ".cache" / "ipydeps-bench" / "data-deflated"
    data.mkdir(parents=True, exist_ok=True)
    bench.seed(data, args.requirements, "deflated", True, bench.Target(sys.executable))
    pythons = {"before": args.before, "after": args.after}
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": [], "cp": []}
    work = Path(tempfile.mkdtemp(prefix="install-ab-", dir=bench.ROOTS[args.where]))
    server = bench.Server(data)
    url = server.url + "/simple/"
    try:
        for number in range(args.rounds):
            order = ["before", "after"] if number % 2 == 0 else ["after", "before"]
            for name in order:
                venv = work / f"{number}-{name}"
                results[name].append(
                    install(pythons[name], args.mode, url, venv, args.requirements)
                )
            results["cp"].append(copy_tree(venv, work / f"{number}-cp"))
            walls = {name: round(values[-1]["wall"], 3) for name, values in results.items()}
            print(f"round {number + 1}: {walls}, load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        server.stop()
        # Removed at the end only: see install_bench.KEPT_UNTIL_THE_END.
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.mode} on {args.where}, {args.rounds} rounds; medians, seconds:")
    for name, values in results.items():
        wall = statistics.median(value["wall"] for value in values)
        cpu = statistics.median(value["cpu"] for value in values)
        print(f"  {name:<7} install {wall:.3f}  cpu {cpu:.3f}")
    for name in ("before", "after"):
        ratios = [
            ours["wall"] / floor["wall"]
            for ours, floor in zip(results[name], results["cp"], strict=True)
        ]
        print(
            f"  {name}/cp per round: median {statistics.median(ratios):.2f} "
            f"({min(ratios):.2f}-{max(ratios):.2f})"
        )
    paired = [
        a["wall"] / b["wall"] for a, b in zip(results["after"], results["before"], strict=True)
    ]
    faster = sum(ratio < 1 for ratio in paired)
    print(
        f"  after/before per round: median {statistics.median(paired):.2f} "
        f"({min(paired):.2f}-{max(paired):.2f}), after faster in {faster} of {len(paired)}"
    )


if __name__ == "__main__":
    main()
