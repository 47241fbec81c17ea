"""A fresh kernel opening the example notebook with its lock, against the install cell by hand.

Run from the repository root: ``python bench/restore_bench.py [--runs 3] [--where tmpfs,disk]``.
It serves a repository data directory seeded by ``install_bench.py`` (numpy, scipy, pandas;
``--data``) with ``ipydeps-repo serve`` on 127.0.0.1, copies ``examples/scipy-in-seconds.ipynb``
into a work directory and, untimed, writes its lock once: a kernel for that notebook runs
``ipydeps.pip(["scipy"])``. Then, for each run and place, in turn (the order rotates):

- ``restore``: a fresh venv (untimed); timed from starting a kernel for the notebook (the
  ipydeps extension loaded by its profile, as in the runtime image; ``JPY_SESSION_NAME``
  naming the notebook, as jupyter-server sets it) to the end of a first cell
  ``import scipy.linalg``, which waits for the restore;
- ``by hand``: the same with ``IPYDEPS_RESTORE_LOCK=0``, and the first cell runs the
  install cell, ``ipydeps.pip(["scipy"])``, then ``import scipy.linalg``: a user who runs
  the cell the moment the kernel is ready;
- ``no install``: the floor, the same kernel start with a first cell ``pass``.

Every kernel's venv sees ipykernel and ipydeps through a .pth file (tests/support/venvs.py),
so only numpy and scipy are installed in the timed part. Prints medians, each run, the load
average when each measurement started, the machine and the date.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_server import RepositoryServer  # noqa: E402

from tests.support.kernels import Kernel  # noqa: E402
from tests.support.pipenv import clean_pip_env  # noqa: E402
from tests.support.venvs import make_venv  # noqa: E402

PLACES = {"tmpfs": Path("/dev/shm"), "disk": Path("/var/tmp")}
NOTEBOOK = ROOT / "examples" / "scipy-in-seconds.ipynb"
DEFAULT_DATA = Path.home() / ".cache" / "ipydeps-bench" / "data-deflated"
MODES = ("restore", "by hand", "no install")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def kernel_env(url: str, home: Path, notebook: Path, restore: bool) -> dict[str, str]:
    profile = home / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["ipydeps"]\n'
    )
    return {
        "IPYDEPS_REPOSITORY_URL": url,
        "IPYDEPS_UPSTREAM": "deny",
        "IPYDEPS_APK": "never",
        "IPYDEPS_RESTORE_LOCK": "1" if restore else "0",
        "JPY_SESSION_NAME": str(notebook),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "IPYTHONDIR": str(home / "ipython"),
        "TMPDIR": str(home),
    }


def write_lock(url: str, work: Path, notebook: Path) -> Path:
    """Run the install cell once in a kernel for ``notebook``; return the lock it wrote."""
    home = work / "lock-writer"
    python = make_venv(home / "env", see_test_packages=True)
    kernel = Kernel(python, notebook.parent, kernel_env(url, home, notebook, restore=False))
    try:
        done = kernel.run('import ipydeps\n_ = ipydeps.pip(["scipy"])', timeout=600)
        if done.error:
            raise SystemExit(f"the install cell failed: {done.text}")
    finally:
        kernel.stop()
    lock = notebook.with_name("pylock.scipy-in-seconds.toml")
    if not lock.is_file():
        raise SystemExit("the install cell wrote no lock")
    return lock


def measure(url: str, work: Path, notebook: Path, mode: str, label: str) -> tuple[float, float]:
    """Seconds from starting a kernel to ``import scipy.linalg`` done; the load average then."""
    home = work / label
    python = make_venv(home / "env", see_test_packages=True)
    env = kernel_env(url, home, notebook, restore=mode == "restore")
    load = os.getloadavg()[0]
    started = time.perf_counter()
    kernel = Kernel(python, notebook.parent, env)
    try:
        if mode == "by hand":
            cell = kernel.run('import ipydeps\n_ = ipydeps.pip(["scipy"])', timeout=600)
            if cell.error:
                raise SystemExit(f"the install cell failed: {cell.text}")
        code = "import scipy.linalg\nprint(scipy.__version__)" if mode != "no install" else "pass"
        cell = kernel.run(code, timeout=600)
        seconds = time.perf_counter() - started
        if cell.error:
            raise SystemExit(f"import scipy failed ({mode}): {cell.text}")
        if mode == "restore" and "ipydeps: restored" not in cell.text:
            raise SystemExit(f"the first cell did not say the lock was restored: {cell.text}")
    finally:
        kernel.stop()
    return seconds, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--where", default="tmpfs,disk", help="tmpfs, disk or both")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a seeded data directory")
    options = parser.parse_args()
    if not any(options.data.glob("tree/files/scipy/*.whl")):
        raise SystemExit(f"{options.data} holds no scipy: run bench/install_bench.py once first")
    server = RepositoryServer(options.data, env=clean_pip_env())
    url = server.url + "/"
    places = [place.strip() for place in options.where.split(",")]
    results: dict[tuple[str, str], list[float]] = {}
    loads: list[float] = []
    works: list[Path] = []
    try:
        for place in places:
            work = Path(tempfile.mkdtemp(prefix="ipydeps-restore-bench-", dir=PLACES[place]))
            works.append(work)
            (work / "book").mkdir()
            notebook = work / "book" / NOTEBOOK.name
            shutil.copy(NOTEBOOK, notebook)
            write_lock(url, work, notebook)
            for run in range(options.runs):
                modes = MODES[run % 3 :] + MODES[: run % 3]
                for mode in modes:
                    label = f"run{run}-{mode.replace(' ', '-')}"
                    seconds, load = measure(url, work, notebook, mode, label)
                    results.setdefault((place, mode), []).append(seconds)
                    loads.append(load)
                    print(f"{place:<6} {mode:<8} run {run + 1}: {seconds:.2f} s (load {load:.2f})")
    finally:
        server.stop()
        for work in works:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}")
    print(f"{os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}")
    print(f"load average (1 min) at the measurements: {min(loads):.2f}-{max(loads):.2f}")
    print("kernel start -> `import scipy.linalg` done, median of", options.runs)
    for place in places:
        restore = statistics.median(results[(place, "restore")])
        by_hand = statistics.median(results[(place, "by hand")])
        floor = statistics.median(results[(place, "no install")])
        print(
            f"  {place:<6} restore {restore:.2f} s   install cell by hand {by_hand:.2f} s"
            f"   ratio {restore / by_hand:.2f}   (kernel start to a first cell `pass`:"
            f" {floor:.2f} s)"
        )


if __name__ == "__main__":
    main()
