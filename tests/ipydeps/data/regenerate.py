"""Re-record the index responses the index parsing tests read.

Run from the repository root: ``python tests/ipydeps/data/regenerate.py [pypi] [ours]``.
``pypi`` (needs network access to PyPI) saves the PEP 691 JSON and PEP 503 HTML project
pages of ``six`` exactly as PyPI serves them. ``ours`` starts our repository server on
127.0.0.1, publishes two fixture wheels of ``demo-lib`` and saves its project pages and
the PEP 658 metadata of the newest wheel.
"""

from __future__ import annotations

import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PROJECT = "six"
ACCEPT = {
    "json": "application/vnd.pypi.simple.v1+json",
    "html": "application/vnd.pypi.simple.v1+html",
}


def record_pypi() -> None:
    """Fetch PyPI's ``six`` page in both formats and save them."""
    for suffix, accept in ACCEPT.items():
        request = urllib.request.Request(
            f"https://pypi.org/simple/{PROJECT}/", headers={"Accept": accept}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
        (HERE / f"pypi-{PROJECT}.{suffix}").write_bytes(body)
        print(f"pypi-{PROJECT}.{suffix}: {len(body)} bytes")


def record_ours() -> None:
    """Publish fixture wheels to a fresh loopback server and save what it serves."""
    sys.path.insert(0, str(ROOT))
    from tests.support.server import start_server
    from tests.support.wheels import make_wheel

    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(Path(scratch) / "data")
        try:
            server.upload(make_wheel(Path(scratch), "demo-lib", "1.0"))
            newest = make_wheel(
                Path(scratch), "demo-lib", "1.1", requires=["six>=1.5"], requires_python=">=3.9"
            )
            server.upload(newest)
            for suffix, accept in ACCEPT.items():
                status, _, body = server.get("simple/demo-lib/", accept=accept)
                if status != 200:
                    raise SystemExit(f"server answered {status} for the {suffix} page")
                (HERE / f"ours-demo-lib.{suffix}").write_bytes(body)
                print(f"ours-demo-lib.{suffix}: {len(body)} bytes")
            status, _, body = server.get(f"files/demo-lib/{newest.name}.metadata")
            if status != 200:
                raise SystemExit(f"server answered {status} for the metadata")
            (HERE / "ours-demo-lib-1.1.metadata").write_bytes(body)
        finally:
            server.stop()


if __name__ == "__main__":
    wanted = sys.argv[1:] or ["pypi", "ours"]
    if "pypi" in wanted:
        record_pypi()
    if "ours" in wanted:
        record_ours()
