"""Build tiny but valid wheels in code, for tests of every part."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name


def _record_hash(data: bytes, algorithm: str = "sha256") -> str:
    digest = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=")
    return f"{algorithm}={digest.decode()}"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    files: Mapping[str, bytes | str] | None = None,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    tag: str = "py3-none-any",
    summary: str = "A fixture package",
    record_algorithm: str = "sha256",
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` into ``directory`` and return its path.

    By default the wheel holds one module, ``<name>/__init__.py``, which sets
    ``__version__``, so ``import <name>`` proves the install worked. RECORD's hashes are
    made with ``record_algorithm``.
    """
    module = canonicalize_name(name).replace("-", "_")
    dist = f"{module}-{version}"
    if files is None:
        files = {f"{module}/__init__.py": f"__version__ = {version!r}\n"}
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {summary}",
    ]
    if requires_python:
        metadata.append(f"Requires-Python: {requires_python}")
    metadata += [f"Requires-Dist: {req}" for req in requires]
    entries: dict[str, bytes] = {
        path: (data.encode() if isinstance(data, str) else data) for path, data in files.items()
    }
    entries[f"{dist}.dist-info/METADATA"] = ("\n".join(metadata) + "\n").encode()
    entries[f"{dist}.dist-info/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: ipydeps-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    record_path = f"{dist}.dist-info/RECORD"
    record = "".join(
        f"{path},{_record_hash(data, record_algorithm)},{len(data)}\n"
        for path, data in entries.items()
    )
    record += f"{record_path},,\n"
    entries[record_path] = record.encode()
    path = Path(directory) / f"{module}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return path


def wheel_metadata(path: Path) -> bytes:
    """Return the METADATA bytes of a wheel (what PEP 658 serves beside it)."""
    with zipfile.ZipFile(path) as archive:
        for entry in archive.namelist():
            if entry.endswith(".dist-info/METADATA") and entry.count("/") == 1:
                return archive.read(entry)
    raise LookupError(f"{path} has no .dist-info/METADATA")
