"""Install benchmark: ipydeps vs uv vs pip installing numpy, scipy and pandas from our repository.

Every run installs into a fresh venv with fresh, empty cache, HOME and TMPDIR directories,
from the repository server this script starts on 127.0.0.1, and is timed until
``import numpy, scipy.linalg, pandas`` has finished. Each tool's setup (creating the venv;
for ipydeps, installing ipydeps itself, as the runtime image ships it) is not timed; after
it, and right before every timed run, ``os.sync()`` flushes the disk so no tool pays for the
writeback of the previous tool's files. Runs go both on tmpfs and on disk when asked
(``--where``), in one or both modes (``--modes``):

- ``cli``: the tool's command line (``VENV/bin/python -m ipydeps install``, ``uv pip
  install``, ``pip install``), then ``VENV/bin/python -c "import numpy, ..."``.
- ``kernel``: what the issue specifies. A Python process in the venv stands for the notebook
  kernel, already started (for ipydeps with the modules loaded that ``%load_ext ipydeps`` at
  kernel start imports); timed from the go signal: ``ipydeps.pip([...])`` in that process, or
  uv/pip run as its subprocess (as ``!uv pip install``/``%pip install`` would), then
  ``import numpy, scipy.linalg, pandas`` in that same process.

    python bench/install_bench.py [--runs 3] [--where tmpfs,disk] [--modes cli,kernel]
                                  [--python PATH|musl] [--data DIR] [--json FILE]

``--python`` makes every venv from another interpreter, and seeds the repository for its
platform and version: ``--python musl`` builds (once, cached) and uses the musl CPython of
``scripts/musl_harness.py``, so the three tools install musllinux wheels on musl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_server import RepositoryServer
from ipydeps_repo.store.stored_copy import stored_copy_path
from ipydeps_repo.store.variants import has_optimized_variant

REPO_ROOT = Path(__file__).resolve().parents[1]
IMPORT_CHECK = "import numpy, scipy.linalg, pandas"
TOOLS = ("ipydeps", "uv", "pip")
# Floors to measure against (not in the default --tools): "cp" copies the finished tree of
# the same install (cp -a of a site-packages uv filled, in the same place); "uv-link" and
# "uv-copy" are uv with a warm cache (filled beforehand, in the same place) that hardlinks
# or copies from it. None of them downloads a wheel; uv still reads the index pages.
FLOORS = ("cp", "uv-link", "uv-copy")
# ipydeps with a warm shared cache (IPYDEPS_SHARED_CACHE, filled beforehand by one ipydeps
# install in the same place): it reads the index pages, then replays every stored copy from
# the cache, each byte checked against the index as a download's are. Compare with uv-link.
WARM = ("ipydeps-warm",)
MODES = ("cli", "kernel")
DRIVER_READY = "ready"
DRIVER_RESULT = "RESULT "

# Run as ``VENV/bin/python -c DRIVER SPEC_JSON``: the stand-in for a running notebook kernel.
# Stdlib only (the fresh venvs of uv and pip have nothing else). Start-up is not timed: it says
# "ready" and waits for a line on stdin; the install and the import after it are.
DRIVER = r"""
import json, resource, subprocess, sys, time, traceback

def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

try:
    spec = json.loads(sys.argv[1])
    # What the runtime image's "%load_ext ipydeps" at kernel start does, for every tool: the
    # kernel is in the same state whatever the user then types. IPython's load_extension
    # imports the package ipydeps and calls ipydeps.load_ipython_extension(shell), which
    # loads the install machinery. The shell stands in for IPython's with the two things the
    # extension uses, so the venv needs no IPython.
    import ipydeps

    class Shell:
        input_transformers_cleanup = []

        def register_magic_function(self, function, magic_kind, magic_name):
            pass

    ipydeps.load_ipython_extension(Shell())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if not sys.stdin.readline():
        raise SystemExit("no go signal on stdin")
    cpu_before = cpu()
    start = time.perf_counter()
    fetched = {}
    if spec["tool"] == "ipydeps":
        outcome = ipydeps.pip(spec["requirements"], quiet=True, upstream="deny",
                              index_url=spec["index_url"])
        fetched = {"packages": len(outcome.installed),
                   "stored_copies": sum(item.stored_copy for item in outcome.installed),
                   "from_shared_cache": sum(item.from_shared_cache
                                            for item in outcome.installed),
                   "fetched_bytes": sum(item.bytes for item in outcome.installed)}
    else:
        subprocess.run(spec["command"], check=True)
    installed = time.perf_counter()
    install_cpu = cpu() - cpu_before
    exec(spec["import_check"], {})
    done = time.perf_counter()
    result = {"install_s": installed - start, "import_s": done - installed,
              "total_s": done - start, "cpu_s": cpu() - cpu_before,
              "install_cpu_s": install_cpu, **fetched}
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
except BaseException:
    traceback.print_exc()
    sys.exit(1)
"""
ROOTS = {"tmpfs": Path("/dev/shm"), "disk": Path("/var/tmp")}


def clean_env(**extra: str) -> dict[str, str]:
    """This machine's pip/uv defaults removed (same rule as tests/support/pipenv.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "IPYDEPS_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", UV_NO_CONFIG="1")
    env.update(extra)
    return env


# Every tool runs from here, not from the checkout: ``python -c`` and ``python -m`` put their
# working folder first on sys.path, and from the checkout's root ``import ipydeps`` would load
# its sources (compiled afresh each run) instead of the wheel installed in the venv.
OUTSIDE = tempfile.gettempdir()


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    finished = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=clean_env() if env is None else env,
        cwd=OUTSIDE,
    )
    if finished.returncode != 0:
        sys.stderr.write(f"command failed: {' '.join(command)}\n{finished.stdout}{finished.stderr}")
        raise SystemExit(1)
    return finished


# -- machine ---------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def storage_of(path: Path) -> str:
    """Filesystem type and device of ``path``, plus whether the disk is rotational."""
    best = ("", "?", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mountpoint, fstype = line.split()[:3]
        if str(path).startswith(mountpoint) and len(mountpoint) >= len(best[0]):
            best = (mountpoint, device, fstype)
    _, device, fstype = best
    kind = fstype
    block = Path("/sys/block") / Path(device).name / "queue" / "rotational"
    if block.exists():
        kind += ", rotational" if block.read_text().strip() == "1" else ", non-rotational"
    return f"{kind} ({device})"


def machine_info(roots: dict[str, Path], target: Target) -> dict[str, str]:
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "load_average_at_start": f"{os.getloadavg()[0]:.1f}",
        "python": f"{target.version} on {target.libc}"
        + ("" if target.python == sys.executable else " (given by --python)"),
        "system": platform.platform(),
        **{f"storage_{where}": f"{root}: {storage_of(root)}" for where, root in roots.items()},
    }


# -- target interpreter ---------------------------------------------------------------------


class Target:
    """The interpreter whose venvs the tools install into, and the wheel platform it takes."""

    def __init__(self, python: str) -> None:
        self.python = python
        code = (
            "import sys, platform; print('%d.%d' % sys.version_info[:2]); "
            "print(sys.implementation._multiarch); print(platform.machine())"
        )
        version, multiarch, machine = run([python, "-c", code]).stdout.split()
        self.version = version
        self.libc = "musl" if "musl" in multiarch else "glibc"
        # Seed wheels for this interpreter; None: the host's own (mirror's default).
        self.platform = f"musllinux_1_2_{machine}" if self.libc == "musl" else None


def resolve_python(option: str | None) -> str:
    """``--python``: None -> this interpreter; ``musl`` -> the harness (built if needed)."""
    if option is None:
        return sys.executable
    if option == "musl":
        script = REPO_ROOT / "scripts" / "musl_harness.py"
        print("building or reusing the musl harness (scripts/musl_harness.py)", flush=True)
        finished = subprocess.run(
            [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=clean_env()
        )
        if finished.returncode != 0:
            raise SystemExit("the musl harness could not be built (see its output above)")
        return finished.stdout.strip().splitlines()[-1]
    return option


# -- repository ------------------------------------------------------------------------------


def seed(
    data: Path, requirements: list[str], compression: str, optimize: bool, target: Target
) -> None:
    """Mirror the requirements for ``target`` into ``data`` (a no-op when already there)."""
    if not any(data.glob("keys/*.rsa")):
        run(
            [
                sys.executable,
                "-m",
                "ipydeps_repo",
                "keygen",
                "--name",
                "bench",
                "--bits",
                "2048",
                "--data",
                str(data),
            ]
        )
    command = [
        sys.executable,
        "-m",
        "ipydeps_repo",
        "mirror",
        *requirements,
        "--compression",
        compression,
        "--data",
        str(data),
    ]
    if not optimize:
        command.append("--no-optimize")
    if target.platform:
        command += ["--platform", target.platform, "--python-version", target.version]
    print(run(command).stdout.strip().splitlines()[-1], flush=True)
    wheels = list(data.glob("tree/files/*/*.whl"))
    names = {wheel.name for wheel in wheels}
    # Upstream's files beside their optimized variants get no copy (ipydeps takes the variant).
    if any(
        not stored_copy_path(wheel).is_file()
        for wheel in wheels
        if not has_optimized_variant(wheel.name, names)
    ):
        # A store seeded before stored copies existed: make them (once) and list them.
        run([sys.executable, "-m", "ipydeps_repo", "index", "--data", str(data)])
        print("made the stored copies of the seeded wheels", flush=True)


# Work directories on disk are removed only when the bench ends. Deleting thousands of files
# makes ext4 scan past the just-freed inodes for a while whenever it allocates new ones
# (perf: find_inode_bit, recently_deleted, find_get_block_common took 75% of an install's
# CPU), so a tool that ran right after another tool's tree was deleted paid for it.
KEPT_UNTIL_THE_END: list[Path] = []


class Server(RepositoryServer):
    """The repository server with this machine's pip and uv settings cleared."""

    def __init__(self, data: Path) -> None:
        super().__init__(data, env=clean_env())


# -- tools -------------------------------------------------------------------------------------


def ensure_uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent))
    if found is None:
        run([sys.executable, "-m", "pip", "install", "--quiet", "uv"])
        found = shutil.which("uv", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("uv could not be installed into the bench venv")
    return found


def ipydeps_available() -> bool:
    return (REPO_ROOT / "ipydeps" / "__main__.py").is_file()


def build_ipydeps_wheel(directory: Path) -> Path:
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(directory),
            str(REPO_ROOT),
        ]
    )
    return next(directory.glob("ipydeps_client-*.whl"))


class Reference:
    """Per place: a warm uv cache and the finished tree uv installed from it (for FLOORS).

    With ``ipydeps_wheel``, also an ipydeps shared cache filled by one install (for WARM).
    """

    def __init__(
        self,
        root: Path,
        url: str,
        uv: str,
        requirements: list[str],
        base_python: str,
        ipydeps_wheel: Path | None = None,
        setup_cache: Path | None = None,
    ) -> None:
        work = Path(tempfile.mkdtemp(prefix="bench-reference-", dir=root))
        KEPT_UNTIL_THE_END.append(work)
        self.cache = work / "warm-cache"
        venv = work / "venv"
        run([base_python, "-m", "venv", "--without-pip", str(venv)])
        run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                "--index-url",
                f"{url}/simple",
                "--cache-dir",
                str(self.cache),
                *requirements,
            ]
        )
        self.site = next((venv / "lib").glob("python3*/site-packages"))
        self.shared_cache = work / "shared-cache"
        if ipydeps_wheel is not None and setup_cache is not None:
            self._fill_shared_cache(
                work, url, uv, requirements, base_python, ipydeps_wheel, setup_cache
            )

    def _fill_shared_cache(
        self,
        work: Path,
        url: str,
        uv: str,
        requirements: list[str],
        base_python: str,
        ipydeps_wheel: Path,
        setup_cache: Path,
    ) -> None:
        venv = work / "ipydeps-venv"
        run([base_python, "-m", "venv", "--without-pip", str(venv)])
        python = str(venv / "bin" / "python")
        run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                python,
                "--cache-dir",
                str(setup_cache),
                str(ipydeps_wheel),
            ]
        )
        home = work / "ipydeps-home"
        home.mkdir()
        env = clean_env(HOME=str(home), IPYDEPS_SHARED_CACHE=str(self.shared_cache))
        command = [python, "-m", "ipydeps", "install", "--quiet", "--upstream", "deny"]
        run([*command, "--index-url", f"{url}/simple", *requirements], env=env)
        if not (self.shared_cache / "v1" / "outlines").is_dir():
            raise SystemExit("the ipydeps install that should fill the shared cache did not")


REFERENCES: dict[Path, Reference] = {}


def prepare_references(
    tools: list[str],
    roots: dict[str, Path],
    url: str,
    uv: str,
    requirements: list[str],
    base_python: str,
    ipydeps_wheel: Path | None = None,
    setup_cache: Path | None = None,
) -> None:
    """Untimed: a warm uv cache and a finished tree in each place, if a floor is measured.

    With a WARM tool, also a shared cache filled by one ipydeps install.
    """
    if not any(tool in (*FLOORS, *WARM) for tool in tools):
        return
    warm = any(tool in WARM for tool in tools)
    for root in roots.values():
        REFERENCES[root] = Reference(
            root,
            url,
            uv,
            requirements,
            base_python,
            ipydeps_wheel if warm else None,
            setup_cache,
        )


def timed_command(
    tool: str, venv: Path, url: str, cache: Path, uv: str, requirements: list[str]
) -> list[str]:
    # In kernel mode the driver runs this command with sys.executable == VENV/bin/python.
    python = str(venv / "bin" / "python")
    reference = REFERENCES.get(venv.parents[1])
    if tool == "cp" and reference is not None:
        site = next((venv / "lib").glob("python3*/site-packages"))
        return ["cp", "-a", f"{reference.site}/.", str(site)]
    if tool in ("uv-link", "uv-copy") and reference is not None:
        mode = "hardlink" if tool == "uv-link" else "copy"
        return [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            python,
            "--index-url",
            f"{url}/simple",
            "--cache-dir",
            str(reference.cache),
            "--link-mode",
            mode,
            *requirements,
        ]
    if tool == "pip":
        return [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            "--index-url",
            f"{url}/simple",
            "--cache-dir",
            str(cache),
            *requirements,
        ]
    if tool == "uv":
        return [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            python,
            "--index-url",
            f"{url}/simple",
            "--cache-dir",
            str(cache),
            *requirements,
        ]
    return [
        python,
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


def child_cpu_seconds() -> float:
    """User + system CPU time of all finished children: steadier than wall time under load."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_kernel(
    tool: str,
    venv: Path,
    url: str,
    cache: Path,
    uv: str,
    requirements: list[str],
    env: dict[str, str],
) -> dict[str, float]:
    """Kernel mode: start the driver (not timed), flush the disk, say go, read its timings."""
    spec: dict[str, object] = {
        "tool": "ipydeps" if tool.startswith("ipydeps") else tool,
        "import_check": IMPORT_CHECK,
    }
    if spec["tool"] == "ipydeps":
        spec.update(requirements=requirements, index_url=f"{url}/simple")
    else:
        spec["command"] = timed_command(tool, venv, url, cache, uv, requirements)
    command = [str(venv / "bin" / "python"), "-c", DRIVER, json.dumps(spec)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=OUTSIDE,
    )
    assert process.stdin is not None and process.stdout is not None
    early: list[str] = []
    for line in process.stdout:
        if line.strip() == DRIVER_READY:
            break
        early.append(line)
    else:
        out, err = process.communicate()
        sys.stderr.write(
            f"kernel driver for {tool} exited before ready\n{''.join(early)}{out}{err}"
        )
        raise SystemExit(1)
    os.sync()
    process.stdin.write("go\n")
    process.stdin.flush()
    out, err = process.communicate()
    results = [line for line in out.splitlines() if line.startswith(DRIVER_RESULT)]
    if process.returncode != 0 or not results:
        sys.stderr.write(
            f"kernel driver for {tool} failed (exit {process.returncode})\n"
            f"{''.join(early)}{out}{err}"
        )
        raise SystemExit(1)
    timing = json.loads(results[-1][len(DRIVER_RESULT) :])
    # For ipydeps also how many packages came from stored copies: under stored_copies=auto
    # it keeps them only while the network outpaces the install, so say what it did.
    keys = (
        "install_s",
        "import_s",
        "total_s",
        "cpu_s",
        "install_cpu_s",
        "packages",
        "stored_copies",
        "fetched_bytes",
        "from_shared_cache",
    )
    return {key: float(timing[key]) for key in keys if key in timing}


def one_run(
    mode: str,
    tool: str,
    root: Path,
    url: str,
    uv: str,
    setup_cache: Path,
    ipydeps_wheel: Path | None,
    requirements: list[str],
    base_python: str,
) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{mode}-{tool}-", dir=root))
    try:
        venv, cache, home, tmp = (work / "venv", work / "cache", work / "home", work / "tmp")
        for folder in (cache, home, tmp):
            folder.mkdir()
        run([base_python, "-m", "venv", "--without-pip", str(venv)])
        if (tool.startswith("ipydeps") or mode == "kernel") and ipydeps_wheel is not None:
            # Not timed: the runtime image ships ipydeps, with its bytecode compiled as an
            # image build does, and a kernel has it loaded whatever tool the user runs.
            # Its small deps come from PyPI once, then from setup_cache.
            # "ipydeps[fast]" as a tool name installs ipydeps with that extra.
            target = str(ipydeps_wheel)
            if "[" in tool:
                target = f"{tool} @ {ipydeps_wheel.as_uri()}"
            run(
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
                    target,
                ]
            )
        env = clean_env(HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(cache))
        if tool in WARM:
            env["IPYDEPS_SHARED_CACHE"] = str(REFERENCES[root].shared_cache)
        if mode == "kernel":
            return run_kernel(tool, venv, url, cache, uv, requirements, env)
        os.sync()  # no tool pays for the writeback of the previous tool's files
        cpu_before = child_cpu_seconds()
        start = time.perf_counter()
        run(timed_command(tool, venv, url, cache, uv, requirements), env=env)
        installed = time.perf_counter()
        install_cpu = child_cpu_seconds() - cpu_before
        run([str(venv / "bin" / "python"), "-c", IMPORT_CHECK], env=env)
        done = time.perf_counter()
        return {
            "install_s": installed - start,
            "import_s": done - installed,
            "total_s": done - start,
            "cpu_s": child_cpu_seconds() - cpu_before,
            "install_cpu_s": install_cpu,
        }
    finally:
        if root == ROOTS["disk"]:
            KEPT_UNTIL_THE_END.append(work)
        else:
            shutil.rmtree(work, ignore_errors=True)


# -- main --------------------------------------------------------------------------------------

Results = dict[str, dict[str, dict[str, list[dict[str, float]]]]]  # mode -> where -> tool


def summarize(results: Results) -> dict[str, dict[str, object]]:
    """Medians per (mode, place, tool); ratios of the median totals per (mode, place).

    Also, per pair of tools, the ratio of the totals within each run (the tools of one run
    ran back to back, so these pairs share the machine's phase of the moment) and in how
    many runs ipydeps was the faster, in total and in the install step alone (the first
    import after it is the same work whoever installed the files, and its run-to-run noise
    can be larger than the gap): a median ratio a little under 1 means little when the
    per-run ratios straddle 1.
    """
    table: dict[str, dict[str, object]] = {}
    for mode, places in results.items():
        table[mode] = {}
        for where, tools in places.items():
            rows = {
                tool: {
                    key: statistics.median(run[key] for run in runs)
                    for key in ("install_s", "import_s", "total_s", "cpu_s", "install_cpu_s")
                }
                for tool, runs in tools.items()
                if runs
            }
            ratios = {}
            paired = {}
            for mine in (tool for tool in rows if tool.startswith("ipydeps")):
                for other in ("uv", "pip", *FLOORS):
                    if other in rows:
                        name = f"{mine}/{other}"
                        ratios[name] = rows[mine]["total_s"] / rows[other]["total_s"]
                        # Not strict: a bench stopped part way leaves a tool one run ahead.
                        pairs = list(zip(tools[mine], tools[other], strict=False))
                        per_run = [a["total_s"] / b["total_s"] for a, b in pairs]
                        install_per_run = [a["install_s"] / b["install_s"] for a, b in pairs]
                        paired[name] = {
                            "per_run": per_run,
                            "install_ratio": statistics.median(install_per_run),
                            "install_per_run": install_per_run,
                            "faster_in": sum(ratio < 1 for ratio in per_run),
                            "install_faster_in": sum(
                                a["install_s"] < b["install_s"] for a, b in pairs
                            ),
                        }
            table[mode][where] = {"median": rows, "ratios": ratios, "paired": paired}
    return table


def print_table(
    info: dict[str, str], table: dict[str, dict[str, object]], runs: int, notes: list[str]
) -> None:
    print("\nmachine: " + "; ".join(f"{key}={value}" for key, value in info.items()))
    print(
        f"medians of {runs} run(s), seconds (install + first import = total; cpu = user+sys "
        "of the timed processes; icpu = the same for the install step alone)"
    )
    print(
        f"{'mode':6} {'where':6} {'tool':13} {'install':>8} {'import':>8} {'total':>8}"
        f" {'cpu':>8} {'icpu':>8}"
    )
    for mode, places in table.items():
        for where, entry in places.items():
            assert isinstance(entry, dict)
            for tool, row in entry["median"].items():
                print(
                    f"{mode:6} {where:6} {tool:13} {row['install_s']:8.2f}"
                    f" {row['import_s']:8.2f} {row['total_s']:8.2f} {row['cpu_s']:8.2f}"
                    f" {row['install_cpu_s']:8.2f}"
                )
            for name, ratio in entry["ratios"].items():
                paired = entry["paired"][name]
                per_run = paired["per_run"]
                print(
                    f"{mode:6} {where:6} ratio {name} (total) = {ratio:.2f}; per run "
                    f"{min(per_run):.2f}-{max(per_run):.2f}, ipydeps faster in "
                    f"{paired['faster_in']} of {len(per_run)} runs (its install step "
                    f"in {paired['install_faster_in']}); install step alone: median of the "
                    f"per-run ratios {paired['install_ratio']:.2f} "
                    f"({min(paired['install_per_run']):.2f}-"
                    f"{max(paired['install_per_run']):.2f})"
                )
    for note in notes:
        print("note: " + note)


def describe_sources(timing: dict[str, float]) -> str:
    """For an ipydeps run: how many packages came from stored copies and the shared cache."""
    if "packages" not in timing:
        return ""
    text = f"  stored copies {timing['stored_copies']:.0f} of {timing['packages']:.0f}"
    if "from_shared_cache" in timing:
        text += f"  from the shared cache {timing['from_shared_cache']:.0f}"
    return text


def known_tools(parser: argparse.ArgumentParser, option: str) -> list[str]:
    """Return ``--tools`` as a list; a name that is no tool is a usage error."""
    tools = [tool for tool in option.split(",") if tool]
    unknown = [
        tool
        for tool in tools
        if tool not in (*TOOLS, *FLOORS, *WARM) and not tool.startswith("ipydeps[")
    ]
    if unknown:
        parser.error(
            f"--tools: unknown {', '.join(unknown)}; choose from "
            f"{', '.join((*TOOLS, *FLOORS, *WARM))} or ipydeps[EXTRAS]"
        )
    return tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--where", default="tmpfs,disk", help="comma list of tmpfs, disk")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="comma list of cli (the tools' command lines), kernel "
        "(ipydeps.pip() / uv, pip as subprocesses in a running Python)",
    )
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help="comma list of ipydeps, ipydeps[EXTRAS] (e.g. ipydeps[fast]), uv, "
        "pip, and the floors cp (cp -a of the finished tree), uv-link, uv-copy (uv "
        "with a warm cache, hardlinking or copying), and ipydeps-warm (ipydeps with a "
        "shared cache filled beforehand)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="repository data dir (seeded if needed; "
        "default: a cache dir under ~/.cache/ipydeps-bench)",
    )
    parser.add_argument("--requirements", nargs="+", default=["numpy", "scipy", "pandas"])
    parser.add_argument("--compression", choices=["deflated", "stored"], default="deflated")
    parser.add_argument("--no-optimize", action="store_true", help="seed upstream wheels as is")
    parser.add_argument(
        "--python",
        help="base interpreter of the venvs, or 'musl' for the "
        "musl harness (default: this interpreter)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    wheres = [where for where in args.where.split(",") if where]
    roots = {where: ROOTS[where] for where in wheres}
    tools = known_tools(parser, args.tools)
    modes = [mode for mode in args.modes.split(",") if mode]
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes:
        parser.error(
            f"--modes: unknown {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(MODES)}"
        )
    notes = []
    if any(tool.startswith("ipydeps") for tool in tools) and not ipydeps_available():
        tools = [tool for tool in tools if not tool.startswith("ipydeps")]
        notes.append("ipydeps unavailable (no ipydeps/__main__.py): measured pip and uv only")
    target = Target(resolve_python(args.python))
    suffix = "upstream" if args.no_optimize else args.compression
    if target.platform:
        suffix += f"-{target.platform}-{target.version}"
    data = args.data or Path.home() / ".cache" / "ipydeps-bench" / f"data-{suffix}"
    data.mkdir(parents=True, exist_ok=True)
    info = machine_info(roots, target)
    seed(data, args.requirements, args.compression, not args.no_optimize, target)
    uv = ensure_uv()
    info["uv"] = run([uv, "--version"]).stdout.strip()
    info["pip"] = run([sys.executable, "-m", "pip", "--version"]).stdout.split(" from ")[0]
    info["wheels"] = "upstream" if args.no_optimize else f"optimized, {args.compression}"
    scratch = Path(tempfile.mkdtemp(prefix="install-bench-"))
    wanted = any(tool.startswith("ipydeps") for tool in tools) or "kernel" in modes
    ipydeps_wheel = build_ipydeps_wheel(scratch) if wanted else None
    server = Server(data)
    prepare_references(
        tools,
        roots,
        server.url,
        uv,
        args.requirements,
        target.python,
        ipydeps_wheel,
        scratch / "setup-cache",
    )
    results: Results = {m: {w: {t: [] for t in tools} for w in wheres} for m in modes}
    try:
        for number in range(args.runs):
            for where in wheres:
                # Rotate the order so no tool always runs right after another's page-cache churn.
                order = tools[number % len(tools) :] + tools[: number % len(tools)]
                for mode in modes:
                    for tool in order:
                        timing = one_run(
                            mode,
                            tool,
                            roots[where],
                            server.url,
                            uv,
                            scratch / "setup-cache",
                            ipydeps_wheel,
                            args.requirements,
                            target.python,
                        )
                        results[mode][where][tool].append(timing)
                        copies = describe_sources(timing)
                        print(
                            f"run {number + 1}/{args.runs} {mode:6} {where:5} {tool:13} "
                            f"install {timing['install_s']:6.2f} s  import "
                            f"{timing['import_s']:5.2f} s  total {timing['total_s']:6.2f} s"
                            f"  cpu {timing['cpu_s']:6.2f} s (install "
                            f"{timing['install_cpu_s']:.2f}){copies}  load "
                            f"{os.getloadavg()[0]:.1f}",
                            flush=True,
                        )
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        for work in KEPT_UNTIL_THE_END:
            shutil.rmtree(work, ignore_errors=True)
    table = summarize(results)
    print_table(info, table, args.runs, notes)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": info, "runs": results, "summary": table, "notes": notes}, indent=2
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
