"""A streaming ``multipart/form-data`` parser: bytes in, part events out, nothing buffered whole.

The legacy upload API (twine, ``uv publish``, poetry, flit) sends the distribution as one
part of a form. Tornado only parses forms it has buffered completely, so a 100 MB wheel
would sit in memory; this parser is fed the body chunk by chunk and hands out the part
data as it goes, keeping at most one delimiter's length of bytes back between chunks.
It is pure (no I/O): the handler decides where each part's bytes go.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value

MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 200


class MultipartError(ValueError):
    """The body is not well-formed ``multipart/form-data``; the message says where."""


@dataclass(frozen=True)
class PartStart:
    """A part begins: its form field name and, for a file, the file name the client sent."""

    name: str
    filename: str | None


@dataclass(frozen=True)
class PartData:
    """The next bytes of the current part."""

    data: bytes


@dataclass(frozen=True)
class PartEnd:
    """The current part is complete."""


Event = PartStart | PartData | PartEnd

_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _BODY, _DONE = range(5)


def boundary_of(content_type: str | None) -> bytes:
    """Return the boundary of a ``multipart/form-data`` Content-Type header.

    Raises:
        MultipartError: another media type, or no usable boundary.
    """
    message = BytesHeaderParser(policy=compat32).parsebytes(
        b"Content-Type: " + (content_type or "").encode("latin-1", "replace") + b"\r\n\r\n"
    )
    if message.get_content_type() != "multipart/form-data":
        raise MultipartError(
            f"the body must be multipart/form-data, not {content_type or 'unspecified'!r}"
        )
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200:
        raise MultipartError("the multipart/form-data Content-Type has no valid boundary")
    return boundary.encode("latin-1", "replace")


class MultipartParser:
    """Feed the body in chunks with ``feed``; call ``close`` at its end.

    Each call returns the events the new bytes completed. Part data may arrive in any
    number of ``PartData`` events, never one for a whole large part.
    """

    def __init__(self, boundary: bytes) -> None:
        self._dash_boundary = b"--" + boundary
        # Inside a part, the delimiter is always preceded by CRLF (RFC 2046).
        self._delimiter = b"\r\n" + self._dash_boundary
        self._buffer = bytearray()
        self._state = _PREAMBLE
        self._parts = 0

    @property
    def complete(self) -> bool:
        """Whether the closing delimiter has been seen."""
        return self._state == _DONE

    def feed(self, chunk: bytes) -> list[Event]:
        """Consume ``chunk`` and return the events it completed.

        Raises:
            MultipartError: the bytes cannot be a multipart/form-data body.
        """
        if self._state == _DONE:
            return []  # the epilogue is ignored, as RFC 2046 says
        self._buffer += chunk
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def close(self) -> None:
        """Check that the body ended after its closing delimiter.

        Raises:
            MultipartError: the body stopped early (a truncated upload).
        """
        if self._state != _DONE:
            raise MultipartError("the multipart body ends before its closing boundary")

    def _step(self, events: list[Event]) -> bool:
        """Advance one state if the buffer allows; return whether it did."""
        if self._state == _PREAMBLE:
            return self._preamble()
        if self._state == _AFTER_DELIMITER:
            return self._after_delimiter()
        if self._state == _HEADERS:
            return self._headers(events)
        if self._state == _BODY:
            return self._body(events)
        return False

    def _preamble(self) -> bool:
        # The first delimiter may open the body (no CRLF before it) or follow a preamble.
        buffer = self._buffer
        if buffer.startswith(self._dash_boundary):
            del buffer[: len(self._dash_boundary)]
            self._state = _AFTER_DELIMITER
            return True
        index = buffer.find(self._delimiter)
        if index < 0:
            if len(buffer) > MAX_HEADER_BYTES:
                raise MultipartError("no multipart boundary at the start of the body")
            return False
        del buffer[: index + len(self._delimiter)]
        self._state = _AFTER_DELIMITER
        return True

    def _after_delimiter(self) -> bool:
        buffer = self._buffer
        if len(buffer) < 2:
            return False
        if buffer[:2] == b"--":
            self._state = _DONE
            buffer.clear()
            return False
        line_end = buffer.find(b"\r\n")
        if line_end < 0:
            if len(buffer) > 256:
                raise MultipartError("a multipart boundary is not followed by a line end")
            return False
        if buffer[:line_end].strip(b" \t"):
            raise MultipartError("a multipart boundary is followed by other text")
        del buffer[: line_end + 2]
        self._state = _HEADERS
        return True

    def _headers(self, events: list[Event]) -> bool:
        buffer = self._buffer
        if buffer.startswith(b"\r\n"):
            end, skip = 0, 2  # a part without headers
        else:
            end, skip = buffer.find(b"\r\n\r\n"), 4
        if end < 0:
            if len(buffer) > MAX_HEADER_BYTES:
                raise MultipartError("the headers of a multipart part are too long")
            return False
        events.append(_part_start(bytes(buffer[:end])))
        del buffer[: end + skip]
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise MultipartError(f"the form has more than {MAX_PARTS} parts")
        self._state = _BODY
        return True

    def _body(self, events: list[Event]) -> bool:
        buffer = self._buffer
        index = buffer.find(self._delimiter)
        if index >= 0:
            if index:
                events.append(PartData(bytes(buffer[:index])))
            events.append(PartEnd())
            del buffer[: index + len(self._delimiter)]
            self._state = _AFTER_DELIMITER
            return True
        # Keep what could be the start of a delimiter split across chunks.
        safe = len(buffer) - len(self._delimiter) + 1
        if safe > 0:
            events.append(PartData(bytes(buffer[:safe])))
            del buffer[:safe]
        return False


def _part_start(header_block: bytes) -> PartStart:
    message = BytesHeaderParser(policy=compat32).parsebytes(header_block + b"\r\n\r\n")
    disposition = message.get("Content-Disposition")
    if disposition is None or not str(disposition).lower().startswith("form-data"):
        raise MultipartError("a multipart part has no 'Content-Disposition: form-data' header")
    raw_name = message.get_param("name", header="content-disposition")
    name = collapse_rfc2231_value(raw_name) if raw_name else ""
    if not name:
        raise MultipartError("a multipart part has no field name")
    raw_filename = message.get_param("filename", header="content-disposition")
    filename = collapse_rfc2231_value(raw_filename) if raw_filename is not None else None
    return PartStart(name=name, filename=filename)
