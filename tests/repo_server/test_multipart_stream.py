"""The streaming multipart parser gives the same parts however the body is cut into chunks."""

from __future__ import annotations

import pytest
from ipydeps_repo.web.multipart import (
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
)

BODY = (
    b"preamble\r\n--XyZ\r\n"
    b'Content-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="content"; filename="a-1.0.tar.gz"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
    b"--XyZ (no CRLF before it) and \r\n--XyQ are data\r\n--Xy\r\n"
    b"--XyZ--\r\nepilogue"
)
CONTENT = b"--XyZ (no CRLF before it) and \r\n--XyQ are data\r\n--Xy"


def parse(chunks: list[bytes]) -> list[tuple[str, str | None, bytes]]:
    parser = MultipartParser(b"XyZ")
    parts: list[tuple[str, str | None, bytes]] = []
    for chunk in chunks:
        for event in parser.feed(chunk):
            if isinstance(event, PartStart):
                parts.append((event.name, event.filename, b""))
            elif isinstance(event, PartData):
                name, filename, data = parts[-1]
                parts[-1] = (name, filename, data + event.data)
            else:
                assert isinstance(event, PartEnd)
    parser.close()
    return parts


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(BODY)])
def test_chunking_does_not_change_the_parts(size: int) -> None:
    chunks = [BODY[start : start + size] for start in range(0, len(BODY), size)]
    assert parse(chunks) == [
        (":action", None, b"file_upload"),
        ("content", "a-1.0.tar.gz", CONTENT),
    ]


def test_a_delimiter_followed_by_text_is_refused() -> None:
    # "CRLF--XyZ" followed by text is, by RFC 2046, a delimiter line with junk after it.
    with pytest.raises(MultipartError, match="followed by other text"):
        parse([BODY.replace(b"\r\n--XyQ", b"\r\n--XyZ", 1)])


def test_truncated_body_is_an_error() -> None:
    with pytest.raises(MultipartError, match="ends before its closing boundary"):
        parse([BODY[:60]])


@pytest.mark.parametrize("header", [None, "text/plain", "multipart/form-data"])
def test_content_type_needs_a_form_boundary(header: str | None) -> None:
    with pytest.raises(MultipartError):
        boundary_of(header)
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
