"""Fleet benchmark: N fresh environments install NumPy, SciPy and pandas at once, one repository.

Each environment is a fresh venv with ipydeps installed (untimed, as the runtime image ships
it) and a Python process standing for its notebook kernel (``install_bench.DRIVER``: ipydeps
imported, waiting for a go line). Once all N are waiting, all are told to go at the same
moment; each runs ``ipydeps.pip([...])`` then ``import numpy, scipy.linalg, pandas`` and
reports. The figure is the time from go until the last environment is ready, with the
median and slowest environment, the CPU the repository's processes used, the CPU all the
environments used, the bytes they fetched, and how many packages (summed over the
environments) were taken from the shared cache instead of downloaded.

Variants (``--variants``), each with a fresh set of environments:

- ``python``: every read from ``ipydeps-repo serve``.
- ``nginx``: reads from nginx with the shipped configuration (``docker/nginx/``) in front of
  the same server; the server's CPU then counts nginx's and the Python server's.
- ``python+cache`` / ``nginx+cache``: the same, with a shared cache of installed trees
  (``IPYDEPS_SHARED_CACHE``) in the same place, empty at go: whichever environment installs
  a package first fills it, the others link or copy from it once it is there.
- ``python+warm`` / ``nginx+warm``: the shared cache filled beforehand (untimed) by one
  install, as a host that ran the stack before has it.

    python bench/fleet_bench.py [--sizes 10,50] [--variants python,nginx,...] [--rounds 1]
                                [--where tmpfs|disk] [--json FILE]

Needs nginx (Debian: ``apt-get install nginx``). Every environment lives under one work
directory in the place asked for (tmpfs: about 210 MB each, so 50 need about 11 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import install_bench as bench

sys.path.insert(0, str(bench.REPO_ROOT))

from tests.support.nginx import start_nginx  # noqa: E402

VARIANTS = ("python", "nginx", "python+cache", "nginx+cache", "python+warm", "nginx+warm")


@dataclass
class Environment:
    """One waiting kernel stand-in."""

    work: Path
    process: subprocess.Popen[str]


def cpu_seconds(roots: list[int]) -> float:
    """User + system CPU of ``roots`` and their living descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, pending = 0, list(roots)
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def prepare(
    count: int,
    root: Path,
    uv: str,
    wheel: Path,
    setup_cache: Path,
    url: str,
    requirements: list[str],
    cache: Path | None,
) -> list[Environment]:
    """Make ``count`` venvs with ipydeps and start their kernels; return once all wait."""
    environments = []
    for number in range(count):
        work = root / f"env-{number}"
        venv = work / "venv"
        for folder in ("home", "tmp", "cache"):
            (work / folder).mkdir(parents=True)
        bench.run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        bench.run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--compile-bytecode",
                "--python",
                str(venv / "bin" / "python"),
                "--cache-dir",
                str(setup_cache),
                str(wheel),
            ]
        )
        extra = {"IPYDEPS_SHARED_CACHE": str(cache)} if cache is not None else {}
        env = bench.clean_env(
            HOME=str(work / "home"),
            TMPDIR=str(work / "tmp"),
            XDG_CACHE_HOME=str(work / "cache"),
            **extra,
        )
        spec = {
            "tool": "ipydeps",
            "import_check": bench.IMPORT_CHECK,
            "requirements": requirements,
            "index_url": f"{url}/simple",
        }
        process = subprocess.Popen(
            [str(venv / "bin" / "python"), "-c", bench.DRIVER, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=bench.OUTSIDE,
        )
        environments.append(Environment(work, process))
    for environment in environments:
        assert environment.process.stdout is not None
        line = environment.process.stdout.readline().strip()
        if line != bench.DRIVER_READY:
            out, err = environment.process.communicate()
            raise SystemExit(f"a kernel stand-in failed to start:\n{line}{out}{err}")
    return environments


def go(environments: list[Environment], server_pids: list[int]) -> dict[str, float]:
    """Say go to all at once; wait for every result; return the fleet's figures."""
    os.sync()
    server_before = cpu_seconds(server_pids)
    start = time.perf_counter()
    for environment in environments:
        assert environment.process.stdin is not None
        environment.process.stdin.write("go\n")
        environment.process.stdin.flush()
    results = []
    finished_at = []
    for environment in environments:
        out, err = environment.process.communicate()
        finished_at.append(time.perf_counter() - start)
        lines = [line for line in out.splitlines() if line.startswith(bench.DRIVER_RESULT)]
        if environment.process.returncode != 0 or not lines:
            raise SystemExit(
                f"an environment failed (exit {environment.process.returncode}):\n{out}{err}"
            )
        results.append(json.loads(lines[-1][len(bench.DRIVER_RESULT) :]))
    all_ready = time.perf_counter() - start
    totals = [result["total_s"] for result in results]
    return {
        "all_ready_s": all_ready,
        "median_ready_s": statistics.median(totals),
        "slowest_ready_s": max(totals),
        "server_cpu_s": cpu_seconds(server_pids) - server_before,
        "environments_cpu_s": sum(result["cpu_s"] for result in results),
        "fetched_mb": sum(result.get("fetched_bytes", 0.0) for result in results) / 1e6,
        "from_cache": sum(result.get("from_shared_cache", 0.0) for result in results),
        "load_average": os.getloadavg()[0],
    }


def warm(
    cache: Path,
    root: Path,
    uv: str,
    wheel: Path,
    setup_cache: Path,
    url: str,
    requirements: list[str],
) -> None:
    """Fill the shared cache with one install (untimed)."""
    (environment,) = prepare(1, root / "warm", uv, wheel, setup_cache, url, requirements, cache)
    assert environment.process.stdin is not None
    environment.process.stdin.write("go\n")
    environment.process.stdin.flush()
    out, err = environment.process.communicate()
    if environment.process.returncode != 0:
        raise SystemExit(f"warming the shared cache failed:\n{out}{err}")


def run_variant(
    variant: str,
    count: int,
    place: Path,
    servers: dict[str, tuple[list[int], str]],
    uv: str,
    wheel: Path,
    setup_cache: Path,
    requirements: list[str],
) -> dict[str, float]:
    front = variant.split("+")[0]
    pids, url = servers[front]
    root = Path(tempfile.mkdtemp(prefix=f"fleet-{variant}-{count}-", dir=place))
    try:
        cache = root / "shared-cache" if "+" in variant else None
        if cache is not None:
            cache.mkdir()
            if variant.endswith("+warm"):
                warm(cache, root, uv, wheel, setup_cache, url, requirements)
        environments = prepare(count, root, uv, wheel, setup_cache, url, requirements, cache)
        return go(environments, pids)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50", help="comma list of fleet sizes")
    parser.add_argument(
        "--variants", default="python,nginx", help=f"comma list of {', '.join(VARIANTS)}"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--where", choices=sorted(bench.ROOTS), default="tmpfs")
    parser.add_argument("--data", type=Path, help="repository data dir (install_bench.py's)")
    parser.add_argument("--requirements", nargs="+", default=["numpy", "scipy", "pandas"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    variants = [variant for variant in args.variants.split(",") if variant]
    unknown = [variant for variant in variants if variant not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}")
    sizes = [int(size) for size in args.sizes.split(",") if size]
    data = args.data or Path.home() / ".cache" / "ipydeps-bench" / "data-deflated"
    data.mkdir(parents=True, exist_ok=True)
    bench.seed(data, args.requirements, "deflated", True, bench.Target(sys.executable))
    uv = bench.ensure_uv()
    scratch = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    wheel = bench.build_ipydeps_wheel(scratch)
    server = bench.Server(data)
    nginx = start_nginx(data / "tree", upstream=server.url.split("//", 1)[1], workers="auto")
    # nginx's own processes and the Python server behind it both count for the nginx front.
    servers = {
        "python": ([server.process.pid], server.url),
        "nginx": ([nginx.process.pid, server.process.pid], nginx.url.rstrip("/")),
    }
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    info = {
        "cpu": bench.cpu_model(),
        "cores": str(os.cpu_count()),
        "date": time.strftime("%Y-%m-%d"),
        "where": args.where,
        "load_average_at_start": f"{os.getloadavg()[0]:.1f}",
    }
    try:
        for number in range(args.rounds):
            for size in sizes:
                order = variants if number % 2 == 0 else variants[::-1]
                for variant in order:
                    figures = run_variant(
                        variant,
                        size,
                        bench.ROOTS[args.where],
                        servers,
                        uv,
                        wheel,
                        scratch / "setup-cache",
                        args.requirements,
                    )
                    results.setdefault(str(size), {}).setdefault(variant, []).append(figures)
                    print(
                        f"round {number + 1}/{args.rounds} N={size:3} {variant:13} all ready "
                        f"{figures['all_ready_s']:6.1f} s  median "
                        f"{figures['median_ready_s']:5.1f} s  server cpu "
                        f"{figures['server_cpu_s']:5.1f} s  fetched {figures['fetched_mb']:7.0f}"
                        f" MB  from cache {figures['from_cache']:4.0f}  load "
                        f"{figures['load_average']:.1f}",
                        flush=True,
                    )
    finally:
        nginx.stop()
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print_summary(info, results)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": results}, indent=2) + "\n")


def print_summary(
    info: dict[str, str], results: dict[str, dict[str, list[dict[str, float]]]]
) -> None:
    print("\nmachine: " + "; ".join(f"{key}={value}" for key, value in info.items()))
    print(
        "medians over rounds; seconds from go; server cpu = the repository's processes; "
        "from cache = packages taken from the shared cache, summed over the environments"
    )
    print(
        f"{'N':>3} {'variant':13} {'all ready':>9} {'median':>7} {'slowest':>7} "
        f"{'server cpu':>10} {'envs cpu':>8} {'fetched MB':>10} {'from cache':>10} {'load':>5}"
    )
    for size, variants in results.items():
        for variant, runs in variants.items():

            def median(key: str, runs: list[dict[str, float]] = runs) -> float:
                return statistics.median(run[key] for run in runs)

            print(
                f"{size:>3} {variant:13} {median('all_ready_s'):9.1f} "
                f"{median('median_ready_s'):7.1f} {median('slowest_ready_s'):7.1f} "
                f"{median('server_cpu_s'):10.1f} {median('environments_cpu_s'):8.1f} "
                f"{median('fetched_mb'):10.0f} {median('from_cache'):10.0f} "
                f"{median('load_average'):5.1f}"
            )


if __name__ == "__main__":
    main()
