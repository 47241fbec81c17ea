"""The name of a wheel's optimized variant, which the mirror publishes beside upstream's file.

The store needs the rule too: a wheel listed beside its variant gets no stored copy (ipydeps
installs the variant), and deleting a wheel deletes its variant. The optimizer itself is
``upstream/optimize.py``.
"""

from __future__ import annotations

from collections.abc import Container

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from ..errors import ValidationError

# The optimized variant's build tag ends in this. PEP 427 compares build tags as (number,
# rest of the string), and a string with something appended sorts after it, so upstream's
# tag plus this suffix (or "1" plus it when upstream has none) always ranks above upstream's.
BUILD_SUFFIX = "ipydeps"


def optimized_filename(filename: str) -> str:
    """Return the file name of the optimized variant of the wheel ``filename``.

    The build tag becomes upstream's tag plus ``ipydeps`` (``1ipydeps`` when upstream has
    none), which PEP 427 ranks above upstream's; a name that already ends so is returned
    as it is. Raises ``ValidationError`` if ``filename`` is not a wheel file name.
    """
    try:
        parse_wheel_filename(filename)
    except InvalidWheelFilename as error:
        raise ValidationError(filename, [str(error)]) from error
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) == 6:
        if not parts[2].endswith(BUILD_SUFFIX):
            parts[2] += BUILD_SUFFIX
    else:
        parts.insert(2, "1" + BUILD_SUFFIX)
    return "-".join(parts) + ".whl"


def has_optimized_variant(filename: str, names: Container[str]) -> bool:
    """Tell whether ``names`` holds the optimized variant of the wheel ``filename`` (not itself)."""
    try:
        variant = optimized_filename(filename)
    except ValidationError:
        return False
    return variant != filename and variant in names
