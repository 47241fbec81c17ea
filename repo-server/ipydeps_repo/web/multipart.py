"""The legacy upload's ``multipart/form-data`` parser: bytes in, part events out, nothing whole.

Twine, ``uv publish``, poetry and flit send the distribution as one part of a form; the
handler feeds the body chunk by chunk and writes the file part's bytes as they come. The
parsing is the maintained ``multipart`` package's push parser (it keeps at most a
delimiter's length back between chunks, and has limits of its own); this module gives its
events the names the handler uses and its errors our wording. It is pure (no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass

import multipart

MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 200
MAX_HEADERS_PER_PART = 8
# The library's messages that have a clearer wording here; any other is shown as it is.
_NO_DISPOSITION = "a multipart part has no 'Content-Disposition: form-data' header"
_WORDING = {
    "Unexpected bytes after boundary": "a multipart boundary is followed by other text",
    "Unexpected byte after first boundary": "a multipart boundary is followed by other text",
    "Unexpected end of multipart stream (parser closed)": (
        "the multipart body ends before its closing boundary"
    ),
    "Maximum segment count exceeded": f"the form has more than {MAX_PARTS} parts",
    "Maximum segment header length exceeded": "the headers of a multipart part are too long",
    "Maximum segment header count exceeded": "a multipart part has too many headers",
    "Missing Content-Disposition segment header": _NO_DISPOSITION,
    "Invalid Content-Disposition segment header: Wrong type": _NO_DISPOSITION,
}


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


def boundary_of(content_type: str | None) -> bytes:
    """Return the boundary of a ``multipart/form-data`` Content-Type header.

    Raises:
        MultipartError: another media type, or no usable boundary.
    """
    media_type, options = multipart.parse_options_header(content_type or "")
    if media_type != "multipart/form-data":
        raise MultipartError(
            f"the body must be multipart/form-data, not {content_type or 'unspecified'!r}"
        )
    boundary = options.get("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200 or "\n" in boundary:
        raise MultipartError("the multipart/form-data Content-Type has no valid boundary")
    return boundary.encode("latin-1", "replace")


class MultipartParser:
    """Feed the body in chunks with ``feed``; call ``close`` at its end.

    Each call returns the events the new bytes completed. Part data may arrive in any
    number of ``PartData`` events, never one for a whole large part. Bytes after the
    closing delimiter (the epilogue) are ignored, as RFC 2046 says.
    """

    def __init__(self, boundary: bytes) -> None:
        self._parser = multipart.PushMultipartParser(
            boundary,
            max_header_size=MAX_HEADER_BYTES,
            max_header_count=MAX_HEADERS_PER_PART,
            max_segment_count=MAX_PARTS,
        )

    def feed(self, chunk: bytes) -> list[Event]:
        """Consume ``chunk`` and return the events it completed.

        Raises:
            MultipartError: the bytes cannot be a multipart/form-data body.
        """
        if not chunk:
            return []
        events: list[Event] = []
        try:
            for event in self._parser.parse(chunk):
                if event is None:
                    events.append(PartEnd())
                elif isinstance(event, multipart.MultipartSegment):
                    events.append(_part_start(event))
                else:  # the library hands out bytes (a bytearray only if fed one)
                    events.append(PartData(event if isinstance(event, bytes) else bytes(event)))
        except multipart.MultipartError as error:
            raise _ours(error) from None
        return events

    def close(self) -> None:
        """Check that the body ended after its closing delimiter.

        Raises:
            MultipartError: the body stopped early (a truncated upload).
        """
        try:
            self._parser.close()
        except multipart.MultipartError as error:
            raise _ours(error) from None


def _part_start(segment: multipart.MultipartSegment) -> PartStart:
    if not segment.name:
        raise MultipartError("a multipart part has no field name")
    return PartStart(name=segment.name, filename=segment.filename)


def _ours(error: multipart.MultipartError) -> MultipartError:
    text = str(error.args[0]) if error.args else str(error)
    return MultipartError(_WORDING.get(text, f"the form is not well-formed: {text}"))
