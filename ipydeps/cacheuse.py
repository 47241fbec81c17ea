"""How an install uses the shared cache: take wheels from it, then add what it installed.

``take_from_cache`` runs where a download would: it replays a cached stored copy through a
``WheelStreamStager`` made exactly as for a download of that copy (same size bound, same
expected outline sha256 from the index), so every check a download gets applies, and any
failure leaves nothing staged and the download goes ahead (see ``ipydeps.sharedcache``).
``fill_jobs`` says, once the install has committed, what ``cachefill.fill`` keeps.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .cachefill import FillJob
from .errors import CancelledError, IpydepsError
from .installers.transaction import WheelTransaction
from .installers.wheelstream import StreamingUnsupported
from .models import Candidate, Step
from .sharedcache import SharedCache, UnusableEntry, outline_members, replay

__all__ = ["CacheUse", "fill_jobs", "take_from_cache"]

_log = logging.getLogger(__name__)
_EMPTY = hashlib.sha256(b"").hexdigest()  # the object of every empty member


class CacheUse(enum.Enum):
    """What the shared cache did for one wheel."""

    TAKEN = "taken"  # staged from the cache: nothing is downloaded
    ABSENT = "absent"  # no entry: downloaded, then kept
    UNCACHEABLE = "uncacheable"  # the index gives no outline sha256 to check an entry by
    UNUSABLE = "unusable"  # an entry that failed its checks: downloaded, then put right


def take_from_cache(
    cache: SharedCache, candidate: Candidate, transaction: WheelTransaction
) -> CacheUse:
    """Stage ``candidate`` from the cache when it holds a copy that checks out.

    Only a wheel whose index entry gives its stored copy's outline sha256 can be taken:
    that sha256, from the index, is what the cached bytes are checked against.
    """
    stored = candidate.stored
    if stored is None or not stored.outline_sha256:
        return CacheUse.UNCACHEABLE
    outline_hex = stored.outline_sha256
    try:
        # An outline holds at most about twice the copy's bytes (32 for each member of
        # 31 bytes or more); more is refused unread.
        outline = cache.read_outline(outline_hex, bound=2 * stored.size + 4096)
    except (UnusableEntry, OSError) as why:
        _unusable(cache, candidate, why)
        return CacheUse.UNUSABLE
    if outline is None:
        _log.debug("%s: not in the shared cache %s", candidate.name, cache.root)
        return CacheUse.ABSENT
    stager = transaction.stream_stager(
        candidate.filename,
        stored.size,
        expected_outline=outline_hex,
        url=f"{cache.outline_path(outline_hex)} (shared cache)",
    )
    try:
        replay(outline, cache, stager.restart())
        staged = stager.finish()
    except CancelledError:
        stager.discard()
        raise
    except (UnusableEntry, StreamingUnsupported, IpydepsError, OSError) as why:
        stager.discard()  # nothing from this entry stays
        _unusable(cache, candidate, why)
        return CacheUse.UNUSABLE
    except BaseException:
        stager.discard()
        raise
    transaction.add(staged)
    _log.debug(
        "%s: taken from the shared cache %s, every byte checked against the index's outline sha256",
        candidate.name,
        cache.root,
    )
    return CacheUse.TAKEN


def _unusable(cache: SharedCache, candidate: Candidate, why: BaseException) -> None:
    reason = getattr(why, "message", None) or str(why) or type(why).__name__
    _log.debug(
        "%s: the shared cache %s holds an entry that is not used (%s): downloaded instead; "
        "this install puts the entry right if it can write there",
        candidate.name,
        cache.root,
        reason,
    )


def fill_jobs(
    transaction: WheelTransaction, steps: Sequence[Step], uses: Mapping[str, CacheUse]
) -> list[FillJob]:
    """Return what to keep of the wheels ``transaction`` committed from stored copies.

    Only those whose index entry gives the outline sha256 the stager found (a reader looks
    entries up by it), and not those taken from the cache. ``uses``: what the cache did
    for each project; an entry it found unusable is replaced, not left as it is.
    """
    wanted = {
        step.candidate.filename: step.candidate
        for step in steps
        if uses.get(step.candidate.name) is not CacheUse.TAKEN
    }
    jobs = []
    for stager in transaction.committed_stagers():
        candidate = wanted.get(stager.filename)
        stored = candidate.stored if candidate is not None else None
        if candidate is None or stored is None or stored.outline_sha256 != stager.outline_sha256:
            continue
        staged = stager.staged
        lib = staged.targets[staged.lib_category]
        files = tuple(
            (Path(os.path.normpath(lib / installed)), sha256_hex, size)
            for installed, sha256_hex, size in stager.written_members
        )
        blobs = (*stager.kept_members, (_EMPTY, b""))
        outline = stager.outline_bytes
        wanted_objects = {member.digest.hex() for member in outline_members(outline)[0]}
        missing = wanted_objects - {item[1] for item in files} - {item[0] for item in blobs}
        if missing:
            # A member neither installed nor kept (a RECORD signature file): its bytes are
            # gone, and an entry without them could never be used.
            _log.debug(
                "%s: not kept in the shared cache: not all its members are at hand",
                candidate.name,
            )
            continue
        repair = uses.get(candidate.name) is CacheUse.UNUSABLE
        jobs.append(FillJob(stager.filename, outline, stager.outline_sha256, files, blobs, repair))
    return jobs
