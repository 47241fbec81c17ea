"""Install a repository's stored copy of a wheel straight from the socket, as it arrives.

Our repository offers beside each wheel a stored copy: the same members, uncompressed
(see ``ipydeps.models.StoredCopy``). A zip file written by the usual tools gives each
member's sizes and CRC in the local header in front of its data, so the copy can be read
front to back: every member's bytes go from the download buffer to their file in staging
as they arrive, with no inflating and no copy of the archive on disk. That is what makes
it cheap: inflating the 208 MB NumPy, SciPy and pandas unpack to costs more CPU than
anything else an install does.

Nothing here is trusted before the end. Files go into this wheel's staging directories
only (wheel.py), every path is checked before anything is written, and a problem found in
the content (unsafe path, corrupt member) is held back until the download is verified, so
tampering is reported as a hash mismatch, not as its symptom. The download is verified
one of two ways. When the index gives the copy's outline sha256 (``formats/outline.py``),
the stager checks it in ``finish``, before anything else: every data byte is hashed once,
for RECORD and the outline both, and the fetcher hashes nothing. Otherwise the fetcher
checks the whole file's sha256, and the stager's outline is only exposed (for a cache).
After a content problem the stager still walks the rest of the stream, writing nothing,
so that the outline is complete when it is checked. When the stream ends, the central
directory must list exactly the members that were written, at the offsets where they were
and with the same sizes and CRCs: installers that read the central directory (pip, uv,
``zipfile``) would install the same files (``streamed.py``).

An archive this reader does not take (a compressed member, sizes in a data descriptor,
zip64, a ``.data`` or lib layout it did not expect) raises ``StreamingUnsupported`` from
``finish``; the caller discards what was staged and installs the wheel itself instead.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from ..environment import InstallScheme
from ..errors import CancelledError, HashMismatchError, InvalidWheelError
from ..formats.outline import TAIL_SIGNATURES, OutlineHasher, stored_member_problem
from ..formats.records import UNHASHED_NAMES, parse_record, record_hash
from ..formats.ziplayout import LOCAL_HEADER, LOCAL_SIGNATURE, LocalHeader, decode_name
from .members import INFLATER, MAX_IN_MEMORY
from .staging import StagedWheel, StagingDestination
from .streamed import (
    StreamingUnsupported,
    StreamMember,
    check_central_directory,
    check_metadata,
    check_record,
    refused,
)

__all__ = ["StreamingUnsupported", "WheelStreamStager"]

_KEPT_IN_DIST_INFO = ("WHEEL", "entry_points.txt")  # read at the end, and written too


class WheelStreamStager:
    """Consumes one stored copy's bytes in order and stages the wheel it holds.

    ``restart()`` (called by the fetcher before each attempt) returns the function that
    takes the bytes; ``finish()`` returns the ``StagedWheel`` once the download is
    verified: by the fetcher's whole-file sha256 before it is called or, given
    ``expected_outline`` (the index's outline sha256), by ``finish`` itself.
    ``discard()`` removes whatever was staged. After ``finish`` returned,
    ``outline_bytes``, ``outline_sha256`` and ``written_members`` describe the copy.
    """

    def __init__(
        self,
        filename: str,
        scheme: InstallScheme,
        staging_name: str,
        *,
        cancel: threading.Event,
        size: int | None = None,
        expected_outline: str | None = None,
        url: str | None = None,
    ) -> None:
        """``url`` names the copy in a hash mismatch (the file name when not given)."""
        try:
            name, version, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename as error:
            raise InvalidWheelError(f"{filename}: {error}") from None
        self.filename = filename
        self.scheme = scheme
        self.staging_name = staging_name
        self.cancel = cancel
        self._size = size  # what the index announced: more is refused at once
        self._expected_outline = expected_outline.lower() if expected_outline else None
        self._url = url or filename
        self._described: tuple[bytes, str, tuple[tuple[str, str, int], ...]] | None = None
        self._project = name
        self._version = str(version)
        # Pure wheels say Root-Is-Purelib: true, the others false; checked against WHEEL.
        self._lib = "purelib" if all(tag.platform == "any" for tag in tags) else "platlib"
        self.destination = self._new_destination()
        self._signature_step = self._on_signature  # one bound method: compared with ``is``
        self._reset()

    @property
    def staged(self) -> StagedWheel:
        """The wheel staged so far (complete once ``finish`` returned it)."""
        return self.destination.staged

    @property
    def outline_bytes(self) -> bytes:
        """The copy's outline (``formats/outline.py``); once ``finish`` returned."""
        return self._description()[0]

    @property
    def outline_sha256(self) -> str:
        """The hex sha256 of ``outline_bytes``; once ``finish`` returned."""
        return self._description()[1]

    @property
    def written_members(self) -> tuple[tuple[str, str, int], ...]:
        """``(installed path, hex sha256, size)`` of each member written to a staged file.

        The installed path is the member's path in the installed RECORD (scripts, written
        by ``finish`` with a new shebang, are not among them). Once ``finish`` returned.
        """
        return self._description()[2]

    @property
    def kept_members(self) -> tuple[tuple[str, bytes], ...]:
        """``(hex sha256, bytes)`` of each member kept in memory but not written to a file.

        The wheel's own RECORD and its scripts (whose installed files differ from them): with
        ``written_members`` all a shared cache needs to give the copy back (ipydeps.cachefill).
        Once ``finish`` returned.
        """
        self._description()
        return tuple(
            (member.digest.hexdigest(), self._kept[member.name])
            for member in self._members
            if member.destination is None and member.name in self._kept
        )

    def _description(self) -> tuple[bytes, str, tuple[tuple[str, str, int], ...]]:
        if self._described is None:
            raise RuntimeError("the stager describes the copy only once finish() returned")
        return self._described

    # -- the byte stream --------------------------------------------------------------------

    def restart(self) -> Callable[[bytes], None]:
        """Forget a previous attempt (its staged files too) and return the byte sink."""
        self.discard()
        self.destination = self._new_destination()
        self._reset()
        return self._feed

    def _new_destination(self) -> StagingDestination:
        return StagingDestination(
            self.scheme,
            self.staging_name,
            name=self._project,
            version=self._version,
            lib_category=self._lib,
            stage_key=f"{self._project}-{self._version}",
        )

    def _reset(self) -> None:
        self._position = 0  # stream offset of the next byte
        self._need = 4
        self._pending = bytearray()
        self._on_full: Callable[[bytes], None] = self._signature_step
        self._current: StreamMember | None = None
        self._members: list[StreamMember] = []
        self._kept: dict[str, bytes] = {}
        self._tail = bytearray()
        self._tail_offset: int | None = None
        self._problem: BaseException | None = None  # held back until verified
        self._lost = False  # the stream broke the stored-copy rules: no outline to check
        self._outline = OutlineHasher(keep=True)
        self._described = None
        self._data_dir: str | None = None
        self._made: set[str] = set()

    def _feed(self, chunk: bytes) -> None:
        if self.cancel.is_set():
            raise CancelledError()
        if self._size is not None and self._position + len(chunk) > self._size:
            # Not held back like other problems: what arrives past the end piles up in memory.
            raise InvalidWheelError(
                f"Refused {self.filename}: the server sent more than the {self._size} bytes "
                "its index announced",
                hint="the repository is misconfigured or tampered with",
            )
        if self._lost:
            self._position += len(chunk)
            return  # keep reading (the fetcher may hash everything), stop walking
        try:
            self._consume(memoryview(chunk))
        except Exception as problem:  # noqa: BLE001 - raised by finish(), after the hash check
            # Only the walk itself raises here (content problems are held where found).
            self._hold(problem)
            self._lost = True

    def _hold(self, problem: BaseException) -> None:
        """Keep the first problem for ``finish``; write nothing more from now on."""
        if self._problem is None:
            self._problem = problem
        self._close_current()

    def _consume(self, view: memoryview) -> None:
        while view:
            if self._tail_offset is not None:
                self._outline.frame(view)
                self._tail += view
                self._position += len(view)
                return
            member = self._current
            if member is not None:
                take = min(len(view), member.size - member.written)
                self._take(member, view[:take])
                self._position += take
                view = view[take:]
                if member.written == member.size:
                    self._member_done(member)
                continue
            if (
                not self._pending
                and self._on_full is self._signature_step
                and len(view) >= LOCAL_HEADER.size
                and view[:4] == LOCAL_SIGNATURE
            ):
                # The common case, a whole local header and name in this chunk: read in
                # place (thousands of members, under the GIL), no buffering.
                header = LocalHeader._make(LOCAL_HEADER.unpack_from(view))
                whole = header.length
                if len(view) >= whole:
                    self._check_stored(header)
                    self._outline.frame(view[:whole])
                    offset = self._position
                    self._position += whole
                    name = bytes(view[LOCAL_HEADER.size : LOCAL_HEADER.size + header.name_length])
                    view = view[whole:]
                    self._start_member(name, header, offset)
                    continue
            take = min(len(view), self._need - len(self._pending))
            self._pending += view[:take]
            self._position += take
            view = view[take:]
            if len(self._pending) == self._need:
                block, self._pending = bytes(self._pending), bytearray()
                self._outline.frame(block)
                self._on_full(block)

    def _expect(self, count: int, then: Callable[[bytes], None]) -> None:
        self._need, self._on_full = count, then

    def _on_signature(self, signature: bytes) -> None:
        if signature == LOCAL_SIGNATURE:
            self._expect(LOCAL_HEADER.size - len(LOCAL_SIGNATURE), self._on_local_header)
        elif signature in TAIL_SIGNATURES:
            self._tail_offset = self._position - 4
            self._tail += signature
        else:
            raise StreamingUnsupported(f"unexpected bytes at offset {self._position - 4}")

    def _on_local_header(self, rest: bytes) -> None:
        header = LocalHeader._make(LOCAL_HEADER.unpack(LOCAL_SIGNATURE + rest))
        self._check_stored(header)
        offset = self._position - LOCAL_HEADER.size

        def on_name(block: bytes) -> None:
            self._start_member(block, header, offset)

        names = header.name_length + header.extra_length
        if names:
            self._expect(names, on_name)
        else:
            on_name(b"")

    @staticmethod
    def _check_stored(header: LocalHeader) -> None:
        problem = stored_member_problem(header)
        if problem is not None:  # the walk's rules (formats/outline.py): not a stored copy
            raise StreamingUnsupported(problem)

    # -- members ----------------------------------------------------------------------------

    def _start_member(self, names: bytes, header: LocalHeader, offset: int) -> None:
        """Start the member whose header (name first in ``names``) began at ``offset``."""
        member = StreamMember("", offset, header.crc, header.size, None, False)
        self._members.append(member)
        if self._problem is None:
            try:
                if not header.name_length:
                    raise InvalidWheelError(f"{self.filename}: a member has no name")
                member.name = decode_name(names[: header.name_length], header.flags)
                self._plan(member)
                if member.destination is not None:
                    member.handle = os.open(
                        member.destination,
                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                        0o644,
                    )
            except Exception as problem:  # noqa: BLE001 - raised by finish(), once verified
                self._hold(problem)
        self._expect(4, self._signature_step)
        self._current = member
        if not header.size:
            self._member_done(member)

    def _plan(self, member: StreamMember) -> None:
        """Decide where ``member`` goes (or that it is only kept); refuse unsafe paths."""
        self._plan_place(member)
        if member.keep and member.size > MAX_IN_MEMORY:
            raise self._refused(
                f"{member.name!r} declares {member.size} bytes, more than the "
                f"{MAX_IN_MEMORY} a metadata file or script may hold"
            )

    def _plan_place(self, member: StreamMember) -> None:
        name = member.name
        if name.endswith("/"):
            return  # a directory entry: directories are made for the files inside them
        top, _, rest = name.partition("/")
        if top.endswith(".dist-info") and "/" not in rest:
            if rest in UNHASHED_NAMES:
                member.keep = rest == "RECORD"
                return
            member.keep = rest in _KEPT_IN_DIST_INFO
        if top.endswith(".data") and self._data_dir is None:
            self._data_dir = top
        if top == self._data_dir:
            destination = self._data_destination(member, top)
        else:
            destination = self._lib_destination(name)
            member.installed = name  # RECORD paths are relative to the lib directory
        if destination is None:
            return
        parent = destination.rpartition("/")[0]
        if parent not in self._made:
            # Its parent is usually made already: one mkdir, not makedirs' walk up the path.
            try:
                os.mkdir(parent)
            except FileNotFoundError:
                os.makedirs(parent, exist_ok=True)
            except FileExistsError:
                pass  # a file in the way: opening the member fails and says so
            self._made.add(parent)
        member.destination = destination

    def _lib_destination(self, name: str) -> str:
        # Most members go here: plain string work, since it runs under the GIL for each
        # of thousands of members while the other downloads wait for it.
        problem = self.destination.name_problem(name)
        if problem is not None:
            raise self._refused(problem)
        return self.destination.lib_path(name)

    def _data_destination(self, member: StreamMember, data_dir: str) -> str | None:
        placed = self.destination.place(member.name, data_dir)
        if isinstance(placed, str):
            raise self._refused(placed)
        if placed.category == "scripts":
            member.keep = True  # shebangs are rewritten once the whole script is here
            member.script = placed.relative
            return None
        member.installed = placed.installed
        return str(placed.path)

    def _refused(self, reason: str) -> InvalidWheelError:
        return refused(self.filename, reason)

    def _take(self, member: StreamMember, data: memoryview) -> None:
        # The one sha256 of these bytes: for RECORD, the installed RECORD and the outline.
        member.digest.update(data)
        member.written += len(data)
        if self._problem is not None:
            return  # only the outline is still wanted
        member.running_crc = INFLATER.crc32(data, member.running_crc)
        if member.keep:
            member.parts.append(bytes(data))
        if member.handle >= 0:
            try:
                while data:
                    data = data[os.write(member.handle, data) :]
            except OSError as problem:
                self._hold(problem)

    def _member_done(self, member: StreamMember) -> None:
        self._current = None
        self._outline.member(member.digest.digest())
        if self._problem is not None:
            return
        self._close_current(member)
        if member.running_crc != member.crc:
            self._hold(
                InvalidWheelError(f"{self.filename}: {member.name!r} is corrupt (CRC mismatch)")
            )
        elif member.keep:
            self._kept[member.name] = b"".join(member.parts)
            member.parts = []

    def _close_current(self, member: StreamMember | None = None) -> None:
        member = member or self._current
        if member is not None and member.handle >= 0:
            os.close(member.handle)
            member.handle = -1

    # -- the end ----------------------------------------------------------------------------

    def finish(self) -> StagedWheel:
        """Return the staged wheel, once everything is written and checks out.

        Call once every byte was fed; without an expected outline, only after the
        fetcher's whole-file sha256 matched. Raises ``HashMismatchError`` (first, before
        any other check) when the outline sha256 is not the expected one,
        ``InvalidWheelError`` for an archive that breaks the wheel spec,
        ``StreamingUnsupported`` for one to install from the wheel itself, and
        ``OSError`` when a file could not be written.
        """
        ended = not self._lost and self._current is None and self._tail_offset is not None
        self._check_outline(ended)
        if self._problem is not None:
            raise self._problem
        if not ended:
            raise InvalidWheelError(f"{self.filename}: the archive ends in the middle")
        executable = check_central_directory(
            self.filename, bytes(self._tail), self._tail_offset, self._members
        )
        dist_info = check_metadata(
            self.filename,
            self._members,
            self._kept,
            self.destination,
            data_dir=self._data_dir,
            lib=self._lib if self.scheme.purelib != self.scheme.platlib else None,
        )
        for member in self._members:
            if member.destination is not None and member.name in executable:
                os.chmod(member.destination, 0o755)
        record = self._kept.get(f"{dist_info}/RECORD")
        if record is None:
            raise self._refused(f"it has no {dist_info}/RECORD")
        check_record(self.filename, parse_record(record, dist_info), self._members, self._kept)
        scripts: list[tuple[str, bytes]] = []
        for member in self._members:
            if member.script is not None:
                scripts.append((member.script.name, self._kept[member.name]))
            elif member.destination is not None:
                self.destination.add_record(
                    member.installed, member.record or record_hash(member.digest), member.size
                )
        self.destination.write_scripts(scripts, self._kept.get(f"{dist_info}/entry_points.txt"))
        self._described = self._describe()
        return self.destination.finish(
            sum(member.size for member in self._members if member.destination is not None)
        )

    def _check_outline(self, ended: bool) -> None:
        """Raise ``HashMismatchError`` unless the outline is the expected one (if any)."""
        if self._expected_outline is None:
            return
        actual = self._outline.hexdigest()
        if not ended or actual != self._expected_outline:
            # A stream the walk could not finish is not the copy the index outlined.
            raise HashMismatchError(
                self._url,
                self._expected_outline,
                actual if ended else f"{actual} (an unfinished walk)",
                kind="outline sha256",
            )

    def _describe(self) -> tuple[bytes, str, tuple[tuple[str, str, int], ...]]:
        written = tuple(
            (member.installed, member.digest.hexdigest(), member.size)
            for member in self._members
            if member.destination is not None
        )
        return self._outline.outline(), self._outline.hexdigest(), written

    def discard(self) -> None:
        """Remove everything staged for this wheel (after a failure, or before a fallback)."""
        self._close_current()
        for stage_dir in list(self.staged.anchors):
            shutil.rmtree(stage_dir, ignore_errors=True)
