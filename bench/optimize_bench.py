"""Measure what optimizing wheels buys: size, extraction time and first-import time.

For each variant (upstream, optimized+deflated, optimized+stored) the wheels are
extracted into a fresh directory (tmpfs and/or disk) as an installer would, then
``python -c "import numpy, scipy.linalg, pandas"`` runs once with that directory first on
sys.path: the first import is where missing bytecode gets compiled.

    python bench/optimize_bench.py WHEEL_DIR [--runs 3] [--where tmpfs,disk] [--json out.json]
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
import zipfile
from pathlib import Path

from ipydeps_repo.upstream.optimize import OptimizeOptions, optimize_wheel

IMPORT = (
    "import numpy, scipy.linalg, pandas; numpy.linalg.inv(numpy.eye(3)); "
    "pandas.DataFrame({'a': [1, 2]}).sum()"
)
ROOTS = {"tmpfs": Path("/dev/shm"), "disk": Path(tempfile.gettempdir())}


def extract(wheels: list[Path], target: Path) -> tuple[float, float]:
    """Return (wall, CPU) seconds to extract every wheel into ``target``."""
    start, cpu = time.perf_counter(), time.process_time()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
    # No sync: installers do not fsync either, and a global sync would time the
    # write-back of every other process on a shared machine.
    return time.perf_counter() - start, time.process_time() - cpu


def first_import(target: Path) -> float:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = str(target)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORT], check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheels", type=Path, help="directory of upstream wheels")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--where", default="tmpfs,disk")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    upstream = sorted(args.wheels.glob("*.whl"))
    work = Path(tempfile.mkdtemp(prefix="optimize-bench-"))
    variants = {"upstream": upstream}
    for compression in ("deflated", "stored"):
        out = work / compression
        variants[f"optimized-{compression}"] = [
            optimize_wheel(wheel, out, OptimizeOptions(compression=compression)).output
            for wheel in upstream
        ]
    results = []
    for where in args.where.split(","):
        for variant, wheels in variants.items():
            extract_times, extract_cpu, import_times = [], [], []
            for _ in range(args.runs):
                target = Path(tempfile.mkdtemp(prefix="site-", dir=ROOTS[where]))
                wall, cpu = extract(wheels, target)
                extract_times.append(wall)
                extract_cpu.append(cpu)
                import_times.append(first_import(target))
                shutil.rmtree(target)
            row = {
                "where": where,
                "variant": variant,
                "size_mb": round(sum(w.stat().st_size for w in wheels) / 1e6, 1),
                "extract_s": round(statistics.median(extract_times), 2),
                "extract_cpu_s": round(statistics.median(extract_cpu), 2),
                "first_import_s": round(statistics.median(import_times), 2),
            }
            results.append(row)
            print(
                f"{where:6} {variant:20} {row['size_mb']:7.1f} MB  extract "
                f"{row['extract_s']:5.2f} s (cpu {row['extract_cpu_s']:5.2f} s)  first import "
                f"{row['first_import_s']:5.2f} s",
                flush=True,
            )
    shutil.rmtree(work)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
