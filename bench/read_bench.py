"""Read benchmark: wrk against ``ipydeps-repo serve`` and against nginx serving the same tree.

nginx runs with the shipped configuration (``docker/nginx/``, started as the tests start
it: ``tests/support/nginx.py``), in front of the same Python server, on the tree of the
install benchmark's repository (seeded by ``install_bench.py``). Each case is a URL, an
``Accept`` header and a number of connections; each round runs every case against both
servers, the order alternating, and records wrk's requests per second and latency
percentiles, the CPU the server's processes used per request, and the load average.

    python bench/read_bench.py [--rounds 3] [--duration 10] [--cases simple-json-50,...]
                               [--workers N] [--data DIR] [--json FILE]

Needs ``wrk`` and ``nginx`` (Debian: ``apt-get install wrk nginx``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_server import RepositoryServer  # noqa: E402

from tests.support.nginx import start_nginx  # noqa: E402
from tests.support.pipenv import clean_pip_env  # noqa: E402

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; "
    "q=0.1, text/html; q=0.01"
)
DEFAULT_DATA = Path.home() / ".cache" / "ipydeps-bench" / "data-deflated"


@dataclass(frozen=True)
class Case:
    """One wrk workload: a path (or a file chosen by size), its Accept header, connections."""

    name: str
    path: str
    accept: str | None
    connections: int


def find_file(tree: Path, *, near: int) -> str:
    """Return the tree path of the file under files/ whose size is closest to ``near`` bytes."""
    files = [path for path in (tree / "files").glob("*/*") if path.is_file()]
    if not files:
        raise SystemExit(f"no files under {tree / 'files'}: seed it with bench/install_bench.py")
    best = min(files, key=lambda path: abs(path.stat().st_size - near))
    return "/" + best.relative_to(tree).as_posix()


def cases(tree: Path) -> list[Case]:
    small = find_file(tree, near=690_000)
    wheel = find_file(tree, near=35_800_000)
    return [
        Case("simple-json-50", "/simple/numpy/", PIP_ACCEPT, 50),
        Case("simple-json-200", "/simple/numpy/", PIP_ACCEPT, 200),
        Case("simple-html-200", "/simple/numpy/", None, 200),
        Case("root-json-200", "/simple/", PIP_ACCEPT, 200),
        Case("file-0.7MB-200", small, None, 200),
        Case("wheel-36MB-50", wheel, None, 50),
    ]


# -- processes -------------------------------------------------------------------------------


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """User + system CPU of ``root``'s process tree so far (living processes)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def python_server(data: Path, extra: list[str], source: Path | None = None) -> RepositoryServer:
    """``ipydeps-repo serve`` with ``extra``; ``source``: another checkout's code instead."""
    env = clean_pip_env()
    if source is not None:
        # Another checkout's code in this venv: its packages first on the path.
        paths = [str(source / "repo-server"), str(source), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return RepositoryServer(data, extra, env=env)


# -- wrk -------------------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, case: Case, duration: int, threads: int) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{case.connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "30s",
    ]
    if case.accept:
        command += ["-H", f"Accept: {case.accept}"]
    finished = subprocess.run(
        [*command, url + case.path], capture_output=True, text=True, check=True
    )
    out = finished.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    latency = {
        f"p{q}_s": _seconds(value)
        for q, value in re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.MULTILINE)
    }
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": requests,
        **latency,
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def measure(server_pid: int, url: str, case: Case, duration: int, threads: int) -> dict[str, float]:
    load = os.getloadavg()[0]
    before = cpu_seconds(server_pid)
    result = run_wrk(url, case, duration, threads)
    used = cpu_seconds(server_pid) - before
    result.update(
        load_average=load,
        server_cpu_s=used,
        server_cpu_us_per_request=1e6 * used / max(result["requests"], 1),
    )
    return result


# -- main ------------------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="repository data dir (default: install_bench.py's)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--cases", help="comma list of case names (default: all)")
    parser.add_argument("--servers", default="python,nginx", help="comma list: python, nginx")
    parser.add_argument("--workers", default="auto", help="nginx worker_processes")
    parser.add_argument("--serve-args", default="", help="extra 'ipydeps-repo serve' arguments")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="one more Python server named NAME with these serve arguments "
        "(e.g. p2='--processes 2'); repeatable",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="CHECKOUT",
        help="one more Python server, 'before', running the code of this checkout (a git "
        "worktree of an earlier commit) in this venv",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


def start_pythons(args: argparse.Namespace) -> dict[str, RepositoryServer]:
    """The Python servers by name: python, then before and the variants if asked for."""
    pythons = {"python": python_server(args.data, args.serve_args.split())}
    if args.before is not None:
        pythons["before"] = python_server(args.data, [], source=args.before.absolute())
    for variant in args.variant:
        name, _, extra = variant.partition("=")
        pythons[name] = python_server(args.data, extra.split())
    return pythons


def main() -> None:
    args = parse_arguments()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install wrk nginx)")
    tree = args.data / "tree"
    chosen = cases(tree)
    if args.cases:
        wanted = set(args.cases.split(","))
        chosen = [case for case in chosen if case.name in wanted]
    pythons = start_pythons(args)
    servers = [*args.servers.split(","), *(name for name in pythons if name != "python")]
    python = pythons["python"]
    nginx = start_nginx(tree, upstream=python.url.split("//", 1)[1], workers=args.workers)
    targets = {name: (server.process.pid, server.url) for name, server in pythons.items()}
    targets["nginx"] = (nginx.process.pid, nginx.url.rstrip("/"))
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        case.name: {server: [] for server in servers} for case in chosen
    }
    info = {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "date": time.strftime("%Y-%m-%d"),
        "load_average_at_start": f"{os.getloadavg()[0]:.1f}",
        "wrk": f"-t{args.threads} -d{args.duration}s",
        "nginx_workers": str(args.workers),
    }
    try:
        for number in range(args.rounds):
            for index, case in enumerate(chosen):
                # Each server first as often as last: the machine's load drifts.
                shift = (number + index) % len(servers)
                order = servers[shift:] + servers[:shift]
                for server in order:
                    pid, url = targets[server]
                    result = measure(pid, url, case, args.duration, args.threads)
                    results[case.name][server].append(result)
                    print(
                        f"round {number + 1}/{args.rounds} {case.name:16} {server:7} "
                        f"{result['rps']:9.0f} rps  p99 {1000 * result.get('p99_s', 0):7.1f} ms"
                        f"  cpu/req {result['server_cpu_us_per_request']:7.0f} us"
                        f"  load {result['load_average']:.1f}"
                        + (f"  NON-2XX {result['non_2xx']:.0f}" if result["non_2xx"] else ""),
                        flush=True,
                    )
    finally:
        nginx.stop()
        for server in pythons.values():
            server.stop()
    print_summary(info, chosen, results, servers)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": info, "cases": [case.__dict__ for case in chosen], "runs": results},
                indent=2,
            )
            + "\n"
        )


def print_summary(
    info: dict[str, str],
    chosen: list[Case],
    results: dict[str, dict[str, list[dict[str, float]]]],
    servers: list[str],
) -> None:
    print("\nmachine: " + "; ".join(f"{key}={value}" for key, value in info.items()))
    print("medians; ratio = python/nginx of the medians; load = median load average")
    header = f"{'case':16} {'path':34}"
    for server in servers:
        header += f" {server + ' rps':>11} {'p99 ms':>7} {'cpu us':>7}"
    print(header + f" {'ratio':>6} {'load':>5}")
    for case in chosen:
        line = f"{case.name:16} {case.path[-34:]:34}"
        medians = {}
        loads = []
        for server in servers:
            runs = results[case.name][server]
            medians[server] = statistics.median(run["rps"] for run in runs)
            p99 = statistics.median(run.get("p99_s", 0.0) for run in runs)
            cpu = statistics.median(run["server_cpu_us_per_request"] for run in runs)
            loads += [run["load_average"] for run in runs]
            line += f" {medians[server]:11.0f} {1000 * p99:7.1f} {cpu:7.0f}"
        ratio = (
            medians["python"] / medians["nginx"]
            if {"python", "nginx"} <= medians.keys() and medians["nginx"]
            else float("nan")
        )
        faster = ""
        if medians.get("before"):
            faster = "  x before: " + ", ".join(
                f"{name} {medians[name] / medians['before']:.2f}"
                for name in servers
                if name not in ("before", "nginx")
            )
        print(line + f" {ratio:6.3f} {statistics.median(loads):5.1f}{faster}")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
