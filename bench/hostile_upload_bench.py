"""What a hostile wheel upload costs the repository server: wall time and peak memory.

Starts ``ipydeps-repo serve`` on 127.0.0.1 (a fresh data directory in a temp folder),
uploads each wheel below once, and reports the HTTP status, the seconds until the answer,
the server's peak resident memory (``VmHWM`` of its process, read from /proc after each
upload, so a row includes the rows before it) and the bytes the upload left in the data
directory. Run from the repository root: ``python bench/hostile_upload_bench.py``.

- ``bomb-honest``: 1500 MiB of zeros in 1.5 MB, sizes told truthfully (the issue's bomb).
- ``bomb-split``: the same in two members of 750 MiB, each under the per-member limit.
- ``bomb-lying``: 1500 MiB whose directory entry says 1000 bytes.
- ``valid``: a 30 MB wheel of random bytes, for scale.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.hostile import hostile_wheel, replace, zero_bomb  # noqa: E402
from tests.support.server import start_server  # noqa: E402
from tests.support.wheels import make_wheel  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    """Return the process's peak resident set (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def data_bytes(data: Path) -> int:
    return sum(path.stat().st_size for path in data.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server_args", nargs="*", help="extra 'serve' arguments")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as scratch:
        work = Path(scratch)
        cases: list[tuple[str, Path]] = []
        for name, build in (
            ("bomb-honest", lambda d: hostile_wheel(d, [zero_bomb("demo/a.bin", 1500)])),
            (
                "bomb-split",
                lambda d: hostile_wheel(
                    d, [zero_bomb("demo/a.bin", 750), zero_bomb("demo/b.bin", 750)]
                ),
            ),
            (
                "bomb-lying",
                lambda d: hostile_wheel(
                    d, [replace(zero_bomb("demo/a.bin", 1500), central_size=1000, local_size=1000)]
                ),
            ),
            (
                "valid",
                lambda d: make_wheel(
                    d, "valid", "1.0", files={"valid/blob.bin": os.urandom(30 << 20)}
                ),
            ),
        ):
            folder = work / name
            folder.mkdir()
            cases.append((name, build(folder)))
        server = start_server(work / "data", *args.server_args)
        try:
            print(f"server at start: peak RSS {peak_rss_mb(server.process.pid):.0f} MB")
            print(
                f"{'case':<12} {'upload':>9} {'status':>6} {'seconds':>8} {'peak MB':>8} "
                f"{'left MB':>8}"
            )
            for name, wheel in cases:
                before = data_bytes(work / "data")
                started = time.perf_counter()
                status, _ = server.upload(wheel)
                seconds = time.perf_counter() - started
                left = data_bytes(work / "data") - before
                print(
                    f"{name:<12} {wheel.stat().st_size / 1e6:>7.1f}MB {status:>6} "
                    f"{seconds:>8.2f} {peak_rss_mb(server.process.pid):>8.0f} "
                    f"{left / 1e6:>8.1f}"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
