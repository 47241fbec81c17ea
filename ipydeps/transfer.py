"""Which file to fetch for a wheel: the wheel itself, or the repository's stored copy of it.

A stored copy (``ipydeps.models.StoredCopy``) holds the same files uncompressed: about 3x
the bytes of a compiled package's wheel, and no inflating, which is most of the CPU an
install takes (see wheelstream.py). So the copy pays only where the network is faster than
this machine can inflate. Measured on 2 cores with NumPy, SciPy and pandas (208 MB in
stored copies, 65 MB in wheels) over a shaped loopback link, the install took 1.72 s from
the copies against 0.83 s from the wheels at 1 Gbit/s, the same at 3 Gbit/s, and 0.38 s
against 0.52 s at 6 Gbit/s and above.

An address says little about bandwidth (a private address may be the container next door
or an office network at 1 Gbit/s), so ``stored_copies = "auto"`` fetches the copy on trial
from a repository at a loopback, private (RFC 1918, RFC 4193) or link-local address, and
keeps it only while the transfer shows that the network outpaces the install: see
``BacklogProbe``. Other repositories get the wheel; ``always`` and ``never`` decide alone.
``stream_stored_copy`` installs a copy as it arrives (wheelstream.py) and, when the copy
cannot be streamed or the trial finds the network slower, leaves the wheel to the caller.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import logging
import math
import socket
import threading
import urllib.parse
from collections.abc import Callable

from .installers.transaction import WheelTransaction
from .installers.wheelstream import StreamingUnsupported
from .models import Candidate
from .protocols import StreamingFetcher
from .settings_values import StoredCopies

__all__ = [
    "BacklogProbe",
    "CopyChoice",
    "Trial",
    "describe_choice",
    "stored_copy_choice",
    "stream_stored_copy",
]

_log = logging.getLogger(__name__)


class CopyChoice(enum.Enum):
    """What to fetch for a wheel that has a stored copy."""

    WHEEL = "wheel"
    STORED = "stored"
    TRIAL = "trial"  # the stored copy, for as long as a BacklogProbe does not object


# Why stored_copy_choice decided as it did, for the debug log.
_CHOICE_WHY = {
    CopyChoice.WHEEL: "the wheel (stored copies are off, or the repository is not on this "
    "machine or a private network)",
    CopyChoice.STORED: "the stored copy (stored_copies = always)",
    CopyChoice.TRIAL: "the stored copy on trial (the repository is on this machine or a "
    "private network)",
}


def describe_choice(choice: CopyChoice) -> str:
    """Say what ``choice`` fetches and why ``stored_copy_choice`` made it."""
    return _CHOICE_WHY[choice]


def stored_copy_choice(url: str, setting: StoredCopies) -> CopyChoice:
    """Decide what to fetch for the stored copy at ``url`` under ``stored_copies = setting``."""
    if setting == "always":
        return CopyChoice.STORED
    if setting != "auto":
        return CopyChoice.WHEEL
    host = urllib.parse.urlsplit(url).hostname
    return CopyChoice.TRIAL if host is not None and _is_near(host.lower()) else CopyChoice.WHEEL


@functools.lru_cache(maxsize=64)
def _is_near(host: str) -> bool:
    """Tell whether every address of ``host`` is loopback, private or link-local."""
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return False  # unknown: the download itself will say what is wrong
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}
    return bool(addresses) and all(
        address.is_loopback or address.is_private or address.is_link_local for address in addresses
    )


class BacklogProbe:
    """Tells, from the first reads of a download, whether the network outpaces the install.

    Fed after each read with two signs of it. ``ahead``: how many reads' worth of bytes were
    already waiting in the socket. When the install is the slower side, the sender fills
    the receive buffer while a read is being written out, and the next read finds more than
    half of it there; when the network is the slower side, the reader drains the buffer
    and waits. Measured over a shaped loopback link on 2 cores against our Python server:
    the median was above 1.2 at 6 Gbit/s and unshaped, 0.6-1.4 at 3 Gbit/s (where copy and
    wheel take the same time) and at most 0.3 at 1 Gbit/s. But the buffer only shows what
    the sender put in it: nginx's sendfile, the read path we ship, keeps 0.05-0.3 reads'
    worth there on an unshaped loopback, and on ``ahead`` alone the wheels were chosen in 5
    of 6 installs through it, 2-2.5x slower. So also ``pace``: the seconds the read took
    over the seconds the install took to write it out. A read that waits on a slower
    network takes longer than the writing; one the network keeps ahead of returns sooner,
    whatever the buffer holds. Measured the same way: 0.1-0.9 unshaped (nginx and the
    Python server), medians 0.8-1.3 at 3 Gbit/s, 0.7-11 with medians of 3.0-3.2 at 1 Gbit/s.

    A read counts as ahead when ``ahead`` reaches ``threshold`` or ``pace`` is under
    ``pace_limit``; the copy is kept when at least half of the ``window`` reads after the
    first ``skipped`` (TCP slow start) were ahead. A few stalls (another thread held the
    CPU) do not decide, and the error it makes near the limit (3 Gbit/s) costs nothing:
    there copy and wheel take the same time.
    """

    def __init__(
        self,
        *,
        skipped: int = 2,
        window: int = 6,
        threshold: float = 0.5,
        pace_limit: float = 1.0,
    ) -> None:
        self._skipped = skipped
        self._window = window
        self._threshold = threshold
        self._pace_limit = pace_limit
        self._samples: list[bool] = []
        self._seen = 0
        self.verdict: bool | None = None  # True: keep the copy; False: take the wheel

    def add(self, ahead: float, pace: float = math.inf) -> bool | None:
        """Record one read's backlog and pace; return the verdict once there is one, else None."""
        if self.verdict is None:
            self._seen += 1
            if self._seen > self._skipped:
                self._samples.append(ahead >= self._threshold or pace < self._pace_limit)
                if len(self._samples) >= self._window:
                    self.verdict = 2 * sum(self._samples) >= len(self._samples)
        return self.verdict


class _NotWorthIt(Exception):
    """A stored copy on trial arrives slower than the install could take it: use the wheel."""


class Trial:
    """The verdict on stored copies fetched on trial, shared by one install's downloads.

    The first copy to reach a verdict settles it for all: they come from one repository
    over one network, and the wheel's fewer bytes only pay while that network is slow.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.verdict: bool | None = None

    def settle(self, verdict: bool) -> bool:
        """Record ``verdict`` unless one is already in; return the verdict in force."""
        with self._lock:
            if self.verdict is None:
                self.verdict = verdict
                _log.debug(
                    "stored copies on trial: %s",
                    "the network outpaces the install, the copies are kept"
                    if verdict
                    else "the install outpaces the network, the wheels are fetched from now on",
                )
            return self.verdict

    def backlog_listener(self) -> Callable[[float, float], None]:
        """Return what a copy's download tells about its reads; it raises ``_NotWorthIt``."""
        probe = BacklogProbe()

        def listen(ahead: float, pace: float) -> None:
            verdict = self.verdict
            if verdict is None:
                heard = probe.add(ahead, pace)
                verdict = None if heard is None else self.settle(heard)
            if verdict is False:
                raise _NotWorthIt()

        return listen


def stream_stored_copy(
    candidate: Candidate,
    fetcher: StreamingFetcher,
    transaction: WheelTransaction,
    report: Callable[[int, int | None], None],
    verified: Callable[[], None],
    *,
    trial: Trial | None,
) -> int | None:
    """Install ``candidate`` from its stored copy as it downloads; return the bytes fetched.

    ``report`` hears the bytes as they come, ``verified`` once the copy is verified: by
    its outline sha256 when the index gives one (the stager checks it, and the fetcher
    hashes nothing: each byte is hashed once), else by the whole file's sha256. Returns
    None when the candidate has no stored copy, when the copy turns out to be something
    wheelstream.py does not take, or, on ``trial``, when the network turns out slower than
    the install (before or while this copy downloads): what it staged is gone, and the
    caller installs the wheel itself. A copy whose sha256 does not match is an error like
    a wheel's, never a reason to fall back.
    """
    stored = candidate.stored
    if stored is None:
        return None
    if trial is not None and trial.verdict is False:
        _log.debug(
            "%s: the trial found the network slower than the install: the wheel instead",
            candidate.name,
        )
        return None
    listener = trial.backlog_listener() if trial is not None and trial.verdict is None else None
    outline = stored.outline_sha256
    stager = transaction.stream_stager(
        candidate.filename, stored.size, expected_outline=outline, url=stored.url
    )
    try:
        size = fetcher.stream(
            stored.url,
            sha256=None if outline else stored.sha256,
            open_sink=stager.restart,
            progress=report,
            backlog=listener,
            size=stored.size,
        )
        if outline is None:
            verified()
        staged = stager.finish()  # checks the outline first, when there is one
        if outline is not None:
            verified()
        transaction.add(staged)
    except (StreamingUnsupported, _NotWorthIt) as reason:
        stager.discard()
        _log.debug(
            "%s: %s: the wheel instead",
            candidate.name,
            f"the stored copy cannot be installed as it streams ({reason})"
            if isinstance(reason, StreamingUnsupported)
            else "the network is slower than the install",
        )
        return None
    except BaseException:
        stager.discard()
        raise
    return size
