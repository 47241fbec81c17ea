"""Re-record the index responses the index parsing tests read (needs network access to PyPI).

Run from the repository root: ``python tests/ipydeps/data/regenerate.py``. It saves the
PEP 691 JSON and PEP 503 HTML project pages of ``six`` exactly as PyPI serves them.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = "six"
RESPONSES = {
    f"pypi-{PROJECT}.json": "application/vnd.pypi.simple.v1+json",
    f"pypi-{PROJECT}.html": "application/vnd.pypi.simple.v1+html",
}


def record(filename: str, accept: str) -> None:
    """Fetch the project page with ``accept`` and save the body as ``filename``."""
    request = urllib.request.Request(
        f"https://pypi.org/simple/{PROJECT}/", headers={"Accept": accept}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    (HERE / filename).write_bytes(body)
    print(f"{filename}: {len(body)} bytes ({response.headers.get('Content-Type')})")


if __name__ == "__main__":
    for name, accept in RESPONSES.items():
        record(name, accept)
