"""The legacy upload's rules that need no request: Basic credentials, form fields, reason phrases.

PyPI's upload API sends the token as the password of HTTP Basic credentials, and the
distribution's name, version and file type as form fields, which must agree with the file.
"""

from __future__ import annotations

import base64
import binascii

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ..errors import AuthenticationError


def token_header(authorization: str | None) -> str | None:
    """Turn ``Basic base64(user:token)`` into ``Bearer token``; leave anything else alone.

    Raises:
        AuthenticationError: a Basic header that does not decode, or has no password.
    """
    if not authorization:
        return authorization
    kind, _, value = authorization.partition(" ")
    if kind.lower() != "basic":
        return authorization
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError(
            "the Basic credentials do not decode",
            hint="send user name '__token__' and the token as password",
        ) from None
    _user, separator, password = decoded.partition(":")
    if not separator or not password:
        raise AuthenticationError(
            "no token in the password of the Basic credentials",
            hint="use user name '__token__' and a token from 'ipydeps-repo token create'",
        )
    return f"Bearer {password}"


def reason_phrase(message: str) -> str:
    """Return ``message`` as an HTTP reason phrase: one line of printable ASCII, not too long."""
    text = " ".join(message.split()).encode("ascii", "replace").decode("ascii")
    return text[:300] or "Error"


def parse_distribution_name(filename: str) -> tuple[str, str, Version] | None:
    """Return (filetype, project, version) from a wheel or sdist name; None if it won't parse."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return "bdist_wheel", str(name), version
        name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return "sdist", str(name), version


def name_problems(
    filename: str, name: str | None, version: str | None, filetype: str | None
) -> list[str]:
    """Return how the form's name, version and filetype disagree with the file name."""
    if not filename.endswith((".whl", ".tar.gz", ".zip")):
        return [f"{filename!r} is not a wheel (.whl) or sdist (.tar.gz, .zip)"]
    parsed = parse_distribution_name(filename)
    if parsed is None:
        return []  # the store's validation names this problem
    expected_type, file_name, file_version = parsed
    problems = []
    if filetype is not None and filetype != expected_type:
        problems.append(f"'filetype' {filetype!r} does not match the file ({expected_type})")
    if not name:
        problems.append("the form has no 'name'")
    elif canonicalize_name(name) != file_name:
        problems.append(f"'name' {name!r} does not match the file name's {str(file_name)!r}")
    if not version:
        problems.append("the form has no 'version'")
    else:
        try:
            same = Version(version) == file_version
        except InvalidVersion:
            same = False
        if not same:
            problems.append(
                f"'version' {version!r} does not match the file name's {str(file_version)!r}"
            )
    return problems
