"""Multipart parse throughput: the legacy upload's form parser fed a large form in chunks.

Builds the form twine posts (a few fields, then a ``content`` part of ``--mb`` MB of random
bytes) and feeds it to the parser in chunks of ``--chunk-kb`` KiB (tornado hands a
streaming handler 64 KiB at a time), ``--runs`` times; prints MB/s of each run and the
median, and checks every run got the file back whole.

    python bench/multipart_bench.py [--mb 100] [--chunk-kb 64] [--runs 7]
                                    [--module ipydeps_repo.web.multipart]

``--module`` names the module with ``MultipartParser``, ``PartStart``, ``PartData`` and
``PartEnd`` (the parser moved in issue 16; give the old path to time a checkout from before).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import statistics
import time

BOUNDARY = b"----multipart-bench-8f1c2a"


def form(content: bytes) -> bytes:
    """Return a multipart/form-data body with twine's fields and ``content`` as the file."""
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "demo",
        "version": "1.0",
        "filetype": "bdist_wheel",
    }
    parts = [
        b"--"
        + BOUNDARY
        + b'\r\nContent-Disposition: form-data; name="'
        + key.encode()
        + b'"\r\n\r\n'
        + value.encode()
        + b"\r\n"
        for key, value in fields.items()
    ]
    parts.append(
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="content"; '
        b'filename="demo-1.0-py3-none-any.whl"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n"
    )
    parts.append(b"--" + BOUNDARY + b"--\r\n")
    return b"".join(parts)


def parse_once(module: object, body: bytes, chunk: int) -> tuple[float, str]:
    """Feed ``body`` in chunks; return (seconds, sha256 of the content part's bytes)."""
    parser = module.MultipartParser(BOUNDARY)  # type: ignore[attr-defined]
    digest = hashlib.sha256()
    current = None
    started = time.perf_counter()
    for start in range(0, len(body), chunk):
        for event in parser.feed(body[start : start + chunk]):
            if isinstance(event, module.PartStart):  # type: ignore[attr-defined]
                current = event.name
            elif isinstance(event, module.PartData) and current == "content":  # type: ignore[attr-defined]
                digest.update(event.data)
    parser.close()
    return time.perf_counter() - started, digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the file part in MB")
    parser.add_argument("--chunk-kb", type=int, default=64, help="chunk size fed at a time")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--module", default="ipydeps_repo.web.multipart")
    args = parser.parse_args()
    module = importlib.import_module(args.module)
    content = os.urandom(args.mb << 20)
    expected = hashlib.sha256(content).hexdigest()
    body = form(content)
    rates = []
    for run in range(args.runs):
        seconds, got = parse_once(module, body, args.chunk_kb << 10)
        if got != expected:
            raise SystemExit(f"run {run}: the content part came out different")
        rates.append(len(body) / seconds / 1e6)
        print(f"run {run + 1}: {rates[-1]:.0f} MB/s", flush=True)
    print(
        f"{args.module}: median {statistics.median(rates):.0f} MB/s "
        f"(min {min(rates):.0f}, max {max(rates):.0f}), {args.mb} MB in "
        f"{args.chunk_kb} KiB chunks, load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
