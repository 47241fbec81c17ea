"""Time ipydeps.pip(), uv and pip installing the same wheels from a loopback repository.

Usage: python bench/ipydeps_install.py WHEEL_DIR [--tools ipydeps,uv,pip] [--runs 1]
Each run installs every project of WHEEL_DIR into a fresh venv, then imports MODULES,
and prints the wall time from "start installing" to "imports finished" (measured outside,
so ipydeps' includes starting Python and importing ipydeps), plus the CPU
seconds (user + system) of the child processes: on a shared, loaded machine the CPU
time is the steadier comparison.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from packaging.utils import parse_wheel_filename  # noqa: E402

from tests.support.pipenv import clean_pip_env  # noqa: E402
from tests.support.server import start_server  # noqa: E402

IMPORTS = "import numpy, scipy.linalg, pandas"


def fresh_venv(root: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = next((root / "lib").glob("python3.*/site-packages"))
    # The venv's own site-packages comes first; ipydeps and its deps come from ours after it.
    (site / "zz-ipydeps-bench.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n" + str(ROOT) + "\n"
    )
    return root / "bin" / "python"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(tool: str, names: list[str], url: str, work: Path) -> tuple[float, float, str]:
    """Install ``names`` with ``tool`` into a fresh venv, then import.

    Returns (wall seconds, CPU seconds, detail). The wall time is measured from outside,
    so it includes starting the interpreter (and, for ipydeps, importing it).
    """
    python = fresh_venv(work / f"env-{tool}")
    env = clean_pip_env()
    cpu = _child_cpu()
    started = time.perf_counter()
    if tool == "ipydeps":
        code = (
            f"import time, ipydeps; t = time.perf_counter(); "
            f"ipydeps.pip({names!r}, index_url={url!r}, upstream='deny', quiet=True); "
            f"t1 = time.perf_counter(); {IMPORTS}; t2 = time.perf_counter(); "
            f"print(f'{{t1 - t:.2f}} {{t2 - t1:.2f}}')"
        )
        out = subprocess.run(
            [str(python), "-c", code], env=env, check=True, capture_output=True, text=True
        ).stdout.split()
        wall = time.perf_counter() - started
        return wall, _child_cpu() - cpu, f"pip() {out[0]} s, imports {out[1]} s"
    if tool == "uv":
        command = [
            "uv",
            "pip",
            "install",
            "--python",
            str(python),
            "--no-cache",
            "--index-url",
            url + "simple/",
            *names,
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-cache-dir",
            "--index-url",
            url + "simple/",
            *names,
        ]
    subprocess.run(command, env=env, check=True, capture_output=True)
    installed = time.perf_counter() - started
    subprocess.run([str(python), "-c", IMPORTS], env=env, check=True)
    wall = time.perf_counter() - started
    return wall, _child_cpu() - cpu, f"install {installed:.2f} s, imports {wall - installed:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("wheels", type=Path)
    parser.add_argument("--tools", default="ipydeps,uv,pip")
    parser.add_argument("--runs", type=int, default=1)
    options = parser.parse_args()
    wheels = sorted(options.wheels.glob("*.whl"))
    names = sorted({str(parse_wheel_filename(w.name)[0]) for w in wheels})
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        server = start_server(work / "data")
        try:
            for wheel in wheels:
                status, body = server.upload(wheel)
                if status >= 300:
                    raise SystemExit(f"upload of {wheel.name} failed: {status} {body}")
            for number, tool in enumerate(options.tools.split(",") * options.runs):
                if tool == "uv" and shutil.which("uv") is None:
                    print("uv: not installed, skipped")
                    continue
                # A new directory per run: every run installs into a fresh, empty venv.
                wall, cpu, detail = run(tool, names, server.url, work / f"run-{number}")
                print(
                    f"{tool:8} run {number}: {wall:5.2f} s wall, {cpu:5.2f} s CPU ({detail})",
                    flush=True,
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
