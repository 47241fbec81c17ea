"""Publish benchmark: what one publish costs, and how that grows with the projects in the store.

For each store size M (``--projects``) it seeds a fresh data directory with M projects of
one small wheel each, untimed. They are written into the tree as files, with no pages: a
rebuild (``ipydeps-repo index``) of thousands of projects took minutes before issue 16
(every project rewrote the root page), and what a publish into other projects costs does
not depend on their pages. Then it publishes into the store, timed one publish at a time,
after one untimed publish per API (it loads the modules, and lets a store build what it
keeps about the whole tree):

- ``small-new``: a small wheel of a project the store does not have yet;
- ``small-again``: the next version of that project (a project with files already);
- ``large``: a wheel of ``--large-mb`` MB of random bytes (incompressible), a new project.

Each through every API asked for (``--apis``):

- ``store``: ``Store.publish_file`` in this process (the CLI's and the farm's path);
- ``put``: ``PUT /api/v1/upload/<file>`` to ``ipydeps-repo serve`` on 127.0.0.1, port 0;
- ``legacy``: ``POST /legacy/`` with the multipart form twine sends, to the same server.

Per publish it records the wall seconds and the CPU seconds of whoever did the work (this
process for ``store``, the server process for the HTTP APIs, read from /proc): on a shared
machine CPU seconds move less than wall seconds. It prints the median, min and max of each
(API, case, M) and, per API and case, the median at the largest M over the median at M=0:
about 1 means publishing cost does not grow with the number of projects.

    python bench/publish_bench.py [--projects 0,300,3000] [--small 15] [--large 2]
                                  [--large-mb 30] [--apis store,put,legacy]
                                  [--where tmpfs,disk] [--json FILE]

Run from the repository root in a venv with both distributions installed. ``--where``
puts the data directories on tmpfs (``/dev/shm``) and/or disk (``/var/tmp``). Only
loopback traffic; the machine's pip settings play no part (nothing is installed).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ipydeps_repo.settings import DataLayout  # noqa: E402

from tests.support.server import RunningServer, start_server  # noqa: E402
from tests.support.wheels import make_wheel  # noqa: E402

PLACES = {"tmpfs": Path("/dev/shm"), "disk": Path("/var/tmp")}
APIS = ("store", "put", "legacy")
CASES = ("small-new", "small-again", "large")


def store_class() -> Any:
    """Return the Store class of the checkout on ``sys.path``.

    The store moved from ``ipydeps_repo.store.store`` to ``ipydeps_repo.store`` (issue 16); the
    bench times checkouts from before and after the move.
    """
    try:
        from ipydeps_repo.store import Store
    except ImportError:
        from ipydeps_repo.store.store import Store  # type: ignore[no-redef]
    return Store


def process_cpu_seconds(pid: int) -> float:
    """Return the CPU seconds the threads of process ``pid`` have run so far.

    Read from each thread's ``schedstat`` (nanoseconds; ``/proc/PID/stat`` counts in
    10 ms ticks, too coarse for a small publish). The server publishes in worker threads
    that live as long as it does, so no thread's time is lost when it ends.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1e9


def seed(data: Path, projects: int) -> float:
    """Fill ``data`` with ``projects`` projects of one small wheel each; return the seconds."""
    started = time.perf_counter()
    files = DataLayout(data).tree / "files"
    for number in range(projects):
        name = f"seed-{number:05d}"
        folder = files / name
        folder.mkdir(parents=True)
        make_wheel(folder, name, "1.0")
    return time.perf_counter() - started


def make_fixtures(
    folder: Path, api: str, small: int, large: int, large_mb: int
) -> list[tuple[str, Path]]:
    """Return the (case, wheel) list one API publishes, in the order it publishes them."""
    # Not timed: the first publish of a process loads the modules the others use.
    plan: list[tuple[str, Path]] = [("warmup", make_wheel(folder, f"{api}-warmup", "1.0"))]
    for number in range(small):
        name = f"{api}-new-{number}"
        plan.append(("small-new", make_wheel(folder, name, "1.0")))
        plan.append(("small-again", make_wheel(folder, name, "2.0")))
    for number in range(large):
        name = f"{api}-large-{number}"
        blob = {f"{name.replace('-', '_')}/blob.bin": os.urandom(large_mb << 20)}
        plan.append(("large", make_wheel(folder, name, "1.0", files=blob)))
    return plan


def multipart_form(wheel: Path, boundary: str) -> bytes:
    """Return the body twine posts for ``wheel``: the form fields, then the file."""
    name, version = wheel.name.split("-")[:2]
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "metadata_version": "2.1",
    }
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{wheel.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + wheel.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def http_send(
    server: RunningServer, method: str, path: str, body: bytes, headers: dict[str, str]
) -> int:
    """Send one request to the server and return its status (the body is read and dropped)."""
    parts = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def publisher(
    api: str, data: Path, server: RunningServer | None
) -> Callable[[Path], tuple[float, float]]:
    """Return a function that publishes one wheel through ``api``: (wall, CPU) seconds."""
    if api == "store":
        store = store_class()(DataLayout(data))

        def publish_in_process(wheel: Path) -> tuple[float, float]:
            cpu, wall = time.process_time(), time.perf_counter()
            store.publish_file(wheel)
            return time.perf_counter() - wall, time.process_time() - cpu

        return publish_in_process
    assert server is not None
    token = server.token

    def publish_over_http(wheel: Path) -> tuple[float, float]:
        if api == "put":
            body = wheel.read_bytes()
            path, headers = (
                f"/api/v1/upload/{wheel.name}",
                {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
            )
        else:
            boundary = "publish-bench-boundary"
            body = multipart_form(wheel, boundary)
            basic = base64.b64encode(f"__token__:{token}".encode()).decode()
            path, headers = (
                "/legacy/",
                {
                    "Authorization": f"Basic {basic}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
            )
        cpu, wall = process_cpu_seconds(server.process.pid), time.perf_counter()
        status = http_send(server, "PUT" if api == "put" else "POST", path, body, headers)
        elapsed = time.perf_counter() - wall
        if status not in (200, 201):
            raise SystemExit(f"{api} upload of {wheel.name} answered {status}")
        return elapsed, process_cpu_seconds(server.process.pid) - cpu

    return publish_over_http


def run_place(place: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Seed and publish for every store size on one filesystem; return one row per publish."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="publish-bench-", dir=PLACES[place]) as scratch:
        work = Path(scratch)
        for projects in args.projects:
            data = work / f"data-{projects}"
            seconds = seed(data, projects)
            print(f"{place}: seeded {projects} project(s) in {seconds:.1f} s", flush=True)
            server = start_server(data) if set(args.apis) & {"put", "legacy"} else None
            try:
                for api in args.apis:
                    fixtures = work / f"wheels-{projects}-{api}"
                    fixtures.mkdir()
                    plan = make_fixtures(fixtures, api, args.small, args.large, args.large_mb)
                    publish = publisher(api, data, server)
                    for case, wheel in plan:
                        wall, cpu = publish(wheel)
                        if case == "warmup":
                            continue
                        rows.append(
                            {
                                "place": place,
                                "projects": projects,
                                "api": api,
                                "case": case,
                                "wall_s": wall,
                                "cpu_s": cpu,
                            }
                        )
            finally:
                if server is not None:
                    server.stop()
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return median, min and max of wall and CPU seconds per (place, API, case, M)."""
    groups: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["place"], row["api"], row["case"], row["projects"])
        groups.setdefault(key, []).append(row)
    summary = []
    for (place, api, case, projects), items in groups.items():
        walls = [item["wall_s"] for item in items]
        cpus = [item["cpu_s"] for item in items]
        summary.append(
            {
                "place": place,
                "api": api,
                "case": case,
                "projects": projects,
                "n": len(items),
                "wall_median_ms": 1000 * statistics.median(walls),
                "wall_min_ms": 1000 * min(walls),
                "wall_max_ms": 1000 * max(walls),
                "cpu_median_ms": 1000 * statistics.median(cpus),
            }
        )
    return summary


def print_summary(summary: list[dict[str, Any]]) -> None:
    print(
        f"\n{'place':<6} {'api':<7} {'case':<12} {'M':>6} {'n':>3} {'wall med':>9} "
        f"{'min':>8} {'max':>8} {'cpu med':>8}   (ms per publish)"
    )
    for item in summary:
        print(
            f"{item['place']:<6} {item['api']:<7} {item['case']:<12} {item['projects']:>6} "
            f"{item['n']:>3} {item['wall_median_ms']:>9.1f} {item['wall_min_ms']:>8.1f} "
            f"{item['wall_max_ms']:>8.1f} {item['cpu_median_ms']:>8.1f}"
        )
    print("\ngrowth: median at the largest M / median at the smallest M (wall, cpu)")
    keys = {(item["place"], item["api"], item["case"]) for item in summary}
    for place, api, case in sorted(keys):
        items = sorted(
            (
                item
                for item in summary
                if (item["place"], item["api"], item["case"]) == (place, api, case)
            ),
            key=lambda item: item["projects"],
        )
        if len(items) < 2:
            continue
        first, last = items[0], items[-1]
        print(
            f"{place:<6} {api:<7} {case:<12} M {first['projects']} -> {last['projects']}: "
            f"{last['wall_median_ms'] / first['wall_median_ms']:.2f}x wall, "
            f"{last['cpu_median_ms'] / first['cpu_median_ms']:.2f}x cpu"
        )


def machine() -> dict[str, str]:
    """Return what the figures depend on: CPU, cores, load, Python, the checkout."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    source = Path(sys.modules[store_class().__module__].__file__ or ".").parent
    commit = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "load_average": " ".join(f"{value:.1f}" for value in os.getloadavg()),
        "store_module": store_class().__module__,
        "commit": commit or "?",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--projects",
        default="0,300,3000",
        help="store sizes M to publish into, comma-separated (default 0,300,3000)",
    )
    parser.add_argument(
        "--small",
        type=int,
        default=15,
        help="small projects published per API and M, each in two versions",
    )
    parser.add_argument("--large", type=int, default=2, help="large wheels per API and M")
    parser.add_argument("--large-mb", type=int, default=30, help="size of a large wheel in MB")
    parser.add_argument("--apis", default=",".join(APIS), help="store, put and/or legacy")
    parser.add_argument("--where", default="tmpfs", help="tmpfs and/or disk (default tmpfs)")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="FILE",
        help="write every publish and the summary to FILE",
    )
    args = parser.parse_args()
    args.projects = [int(text) for text in args.projects.split(",")]
    args.apis = [text for text in args.apis.split(",") if text]
    places = [text for text in args.where.split(",") if text]
    unknown = [api for api in args.apis if api not in APIS] + [
        place for place in places if place not in PLACES
    ]
    if unknown:
        raise SystemExit(f"unknown --apis/--where value(s): {', '.join(unknown)}")
    facts = machine()
    print(", ".join(f"{key}: {value}" for key, value in facts.items()), flush=True)
    rows = [row for place in places for row in run_place(place, args)]
    summary = summarize(rows)
    print_summary(summary)
    facts["load_average_at_end"] = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average at the end: {facts['load_average_at_end']}")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": facts, "rows": rows, "summary": summary}, indent=1)
        )


if __name__ == "__main__":
    main()
