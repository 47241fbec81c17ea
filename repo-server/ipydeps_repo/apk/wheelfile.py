"""Read a wheel for wrapping: name, tags, metadata and files, checked against its RECORD."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    parse_wheel_filename,
)
from packaging.version import Version

from ipydeps.formats.wheel import read_wheel_file

from ..errors import ValidationError
from ..validation.wheel import dist_info_problems, read_core_metadata
from ..validation.wheel_archive import InflateLimits, check_archive


@dataclass(frozen=True)
class WheelContents:
    """A wheel's identity, metadata and files (zip path -> bytes)."""

    filename: str
    name: NormalizedName
    version: Version
    tags: frozenset[Tag]
    dist_info: str  # "<name>-<version>.dist-info"
    purelib: bool  # Root-Is-Purelib
    metadata: Message = field(repr=False)
    files: dict[str, bytes] = field(repr=False)

    @property
    def data_dir(self) -> str:
        """The ``<name>-<version>.data`` directory name."""
        return self.dist_info[: -len(".dist-info")] + ".data"

    def metadata_values(self, key: str) -> list[str]:
        """Return every value of a METADATA header (e.g. ``Requires-Dist``)."""
        return [str(value) for value in self.metadata.get_all(key) or []]


def read_wheel(path: Path | str) -> WheelContents:
    """Open a wheel and check its name, layout, METADATA and RECORD.

    Raises:
        ValidationError: listing every problem: bad file name, unsafe member paths,
            missing, mismatched or misnamed .dist-info, files that do not match RECORD,
            zip bombs.
    """
    wheel_path = Path(path)
    subject = wheel_path.name
    try:
        name, version, _build, tags = parse_wheel_filename(wheel_path.name)
    except InvalidWheelFilename as error:
        raise ValidationError(subject, [f"not a wheel file name: {error}"]) from None
    # The server's upload check, streaming and bounded: paths, duplicates, headers against
    # the central directory, every member against RECORD, the inflate limits.
    try:
        with wheel_path.open("rb") as stream:
            facts = check_archive(stream, wheel_path.stat().st_size, InflateLimits())
    except OSError as error:
        raise ValidationError(subject, [f"cannot open the wheel: {error}"]) from None
    if facts.problems or facts.dist_info is None:
        raise ValidationError(subject, list(facts.problems) or ["no .dist-info directory"])
    dist_info = facts.dist_info
    with zipfile.ZipFile(wheel_path) as archive:
        files = {
            info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()
        }
    metadata_bytes = facts.kept["METADATA"]
    metadata = HeaderParser().parsestr(metadata_bytes.decode("utf-8", "replace"))
    wheel_file = read_wheel_file(facts.kept["WHEEL"])
    problems = read_core_metadata("METADATA", metadata_bytes, name, version).problems
    problems += dist_info_problems(dist_info, name, version)
    problems += [wheel_file.problem] if wheel_file.problem else []
    if problems:
        raise ValidationError(subject, problems)
    return WheelContents(
        filename=wheel_path.name,
        name=name,
        version=version,
        tags=frozenset(tags),
        dist_info=dist_info,
        purelib=wheel_file.root_category == "purelib",
        metadata=metadata,
        files=files,
    )
