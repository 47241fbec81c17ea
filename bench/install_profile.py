"""Where an ipydeps install's CPU goes: perf samples of the install step, by category.

The same setup as ``install_bench.py`` (its repository, a fresh venv with ipydeps in the
place asked for, the machine's pip settings cleared), then the install of NumPy, SciPy and
pandas sampled by ``perf record -e cpu-clock -g`` (Debian: ``apt-get install linux-perf``;
as root, or with ``kernel.perf_event_paranoid`` at 1 or less). cpu-clock counts on-CPU time
only, user and kernel, of every thread of the process:

- ``kernel``: the stand-in for a notebook kernel (``install_bench.DRIVER``) is started with
  ipydeps imported; perf attaches, then ``ipydeps.pip([...])`` runs and is sampled.
- ``cli``: ``VENV/bin/python -m ipydeps install ...`` sampled from its start, so the
  interpreter's start and ``import ipydeps`` count.

Each sample goes to the first category whose markers appear in its call chain (kernel
frames name the system call, user frames the C function: OpenSSL's sha256 blocks, zlib's
crc32, the interpreter's eval loop). The repository server is another process on the same
cores; its CPU over the install is printed beside the table.

    python bench/install_profile.py [--mode kernel|cli] [--where tmpfs|disk] [--runs 3]
                                    [--frequency 999] [--keep DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import install_bench as bench

# (category, markers): a sample belongs to the first category one of whose markers is in one
# of its frames' symbols. Kernel work is named by the system call it serves.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    # Debian's libcrypto keeps no symbols for its assembly; hashing is all ipydeps asks of it.
    ("sha256", ("sha256_block", "sha256_", "SHA256", "libcrypto")),
    ("crc32", ("crc32", "_fold_128", "crc_")),
    ("inflate", ("inflate",)),
    ("write file data (kernel)", ("ksys_write", "__x64_sys_write", "vfs_write")),
    (
        "receive (kernel)",
        ("tcp_recvmsg", "__sys_recvfrom", "sock_recvmsg", "__x64_sys_recvfrom", "__x64_sys_read"),
    ),
    ("send (kernel)", ("tcp_sendmsg", "__sys_sendto")),
    (
        "create, stat, close files and dirs (kernel)",
        (
            "do_sys_openat2",
            "do_mkdirat",
            "__x64_sys_close",
            "__x64_sys_fchmod",
            "__x64_sys_chmod",
            "__x64_sys_newfstatat",
            "__x64_sys_statx",
            "__x64_sys_newfstat",
            "__x64_sys_newlstat",
            "__x64_sys_unlink",
            "__x64_sys_getdents64",
            "__x64_sys_fchmodat",
        ),
    ),
    ("rename (kernel)", ("__x64_sys_rename",)),
    ("page faults (memory)", ("asm_exc_page_fault", "exc_page_fault")),
    (
        "locks, threads, scheduling (kernel)",
        ("futex", "schedule", "__x64_sys_clone", "__x64_sys_sched_yield"),
    ),
    ("other kernel", ("[kernel.kallsyms]",)),
    ("memcpy (user)", ("memcpy", "memmove")),
    ("malloc (user)", ("malloc", "free", "_int_", "realloc")),
    ("garbage collector", ("gc_collect", "collect_main", "visit_")),
    ("Python interpreter", ("libpython", "python3.11", "python3")),
]
OTHER = "other"
_FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$")


def categorize(frames: list[str]) -> str:
    """The first category whose markers one of ``frames`` (``symbol (dso)``) contains."""
    for name, markers in CATEGORIES:
        for frame in frames:
            if any(marker in frame for marker in markers):
                return name
    return OTHER


def read_samples(path: Path) -> list[list[str]]:
    """Each sample's frames, innermost first, as ``symbol (dso)``, from ``perf script``."""
    script = subprocess.run(
        ["perf", "script", "-i", str(path), "-F", "ip,sym,dso"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    samples: list[list[str]] = []
    current: list[str] = []
    for line in script.splitlines():
        match = _FRAME.match(line)
        if match:
            current.append(f"{match.group(1)} ({match.group(2)})")
        elif not line.strip() and current:
            samples.append(current)
            current = []
    if current:
        samples.append(current)
    return samples


def record_kernel(
    python: Path,
    url: str,
    requirements: list[str],
    env: dict[str, str],
    output: Path,
    frequency: int,
    server_pid: int,
) -> float:
    spec = {
        "tool": "ipydeps",
        "import_check": "pass",
        "requirements": requirements,
        "index_url": f"{url}/simple",
    }
    process = subprocess.Popen(
        [str(python), "-c", bench.DRIVER, json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=bench.OUTSIDE,
    )
    assert process.stdin is not None and process.stdout is not None
    if process.stdout.readline().strip() != bench.DRIVER_READY:
        raise SystemExit(f"the kernel stand-in failed: {process.communicate()}")
    perf = subprocess.Popen(
        [
            "perf",
            "record",
            "-e",
            "cpu-clock",
            "-F",
            str(frequency),
            "-g",
            "-o",
            str(output),
            "-p",
            str(process.pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # perf says nothing once it has attached; the waiting kernel is idle
    os.sync()
    server_before = cpu_seconds(server_pid)
    process.stdin.write("go\n")
    process.stdin.flush()
    out, err = process.communicate()
    server_used = cpu_seconds(server_pid) - server_before
    perf.wait(timeout=60)
    if process.returncode != 0:
        raise SystemExit(f"the install failed:\n{out}{err}")
    return server_used


def record_cli(
    python: Path,
    url: str,
    requirements: list[str],
    env: dict[str, str],
    output: Path,
    frequency: int,
    server_pid: int,
) -> float:
    os.sync()
    command = [
        "perf",
        "record",
        "-e",
        "cpu-clock",
        "-F",
        str(frequency),
        "-g",
        "-o",
        str(output),
        "--",
        str(python),
        "-m",
        "ipydeps",
        "install",
        "--quiet",
        "--upstream",
        "deny",
        "--index-url",
        f"{url}/simple",
        *requirements,
    ]
    server_before = cpu_seconds(server_pid)
    finished = subprocess.run(command, capture_output=True, text=True, env=env, cwd=bench.OUTSIDE)
    if finished.returncode != 0:
        raise SystemExit(f"the install failed:\n{finished.stdout}{finished.stderr}")
    return cpu_seconds(server_pid) - server_before


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarize(samples: list[list[str]], frequency: int, runs: int, top: int) -> None:
    by_category: collections.Counter[str] = collections.Counter()
    by_leaf: collections.Counter[tuple[str, str]] = collections.Counter()
    for frames in samples:
        category = categorize(frames)
        by_category[category] += 1
        by_leaf[(category, frames[0] if frames else "?")] += 1
    total = sum(by_category.values()) or 1
    print(f"\n{total} samples = {total / frequency / runs:.2f} CPU-s per install")
    print(f"{'category':44} {'share':>6} {'CPU-s':>6}")
    for category, count in by_category.most_common():
        print(f"{category:44} {100 * count / total:5.1f}% {count / frequency / runs:6.3f}")
    print(f"\ninnermost frames (top {top}):")
    for (category, frame), count in by_leaf.most_common(top):
        print(f"{100 * count / total:5.1f}%  {category:30} {frame[:90]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["kernel", "cli"], default="kernel")
    parser.add_argument("--where", choices=sorted(bench.ROOTS), default="tmpfs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frequency", type=int, default=999, help="samples per second")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--data", type=Path, help="repository data dir (install_bench.py's)")
    parser.add_argument("--requirements", nargs="+", default=["numpy", "scipy", "pandas"])
    parser.add_argument("--keep", type=Path, help="keep the perf.data files here")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("perf is not installed (Debian: apt-get install linux-perf)")
    data = args.data or Path.home() / ".cache" / "ipydeps-bench" / "data-deflated"
    target = bench.Target(sys.executable)
    data.mkdir(parents=True, exist_ok=True)
    bench.seed(data, args.requirements, "deflated", True, target)
    uv = bench.ensure_uv()
    scratch = Path(tempfile.mkdtemp(prefix="install-profile-"))
    wheel = bench.build_ipydeps_wheel(scratch)
    server = bench.Server(data)
    samples: list[list[str]] = []
    server_cpu: list[float] = []
    root = bench.ROOTS[args.where]
    try:
        for number in range(args.runs):
            work = Path(tempfile.mkdtemp(prefix="profile-", dir=root))
            try:
                venv = work / "venv"
                for folder in ("home", "tmp", "cache"):
                    (work / folder).mkdir()
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
                        str(scratch / "setup-cache"),
                        str(wheel),
                    ]
                )
                env = bench.clean_env(
                    HOME=str(work / "home"),
                    TMPDIR=str(work / "tmp"),
                    XDG_CACHE_HOME=str(work / "cache"),
                )
                output = scratch / f"perf-{args.mode}-{args.where}-{number}.data"
                record = record_kernel if args.mode == "kernel" else record_cli
                server_cpu.append(
                    record(
                        venv / "bin" / "python",
                        server.url,
                        args.requirements,
                        env,
                        output,
                        args.frequency,
                        server.process.pid,
                    )
                )
                run_samples = read_samples(output)
                samples += run_samples
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(output, args.keep / output.name)
                print(
                    f"run {number + 1}/{args.runs}: {len(run_samples)} samples, server CPU "
                    f"{server_cpu[-1]:.2f} s, load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"\nmode={args.mode} where={args.where} runs={args.runs} frequency={args.frequency}/s; "
        f"server CPU per install {sorted(server_cpu)[len(server_cpu) // 2]:.2f} s (median)"
    )
    summarize(samples, args.frequency, args.runs, args.top)


if __name__ == "__main__":
    main()
