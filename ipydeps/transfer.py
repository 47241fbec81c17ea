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
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import socket
import urllib.parse

from .settings_values import StoredCopies


class CopyChoice(enum.Enum):
    """What to fetch for a wheel that has a stored copy."""

    WHEEL = "wheel"
    STORED = "stored"
    TRIAL = "trial"  # the stored copy, for as long as a BacklogProbe does not object


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
        address.is_loopback or address.is_private or address.is_link_local
        for address in addresses)


class BacklogProbe:
    """Tells, from the first reads of a download, whether the network outpaces the install.

    Fed, after each read, with how many reads' worth of bytes were already waiting in the
    socket (``ahead``). When the install is the slower side, the sender fills the receive
    buffer while a read is being written out, and the next read finds more than half of
    it there; when the network is the slower side, the reader drains the buffer and waits.
    Measured over a shaped loopback link on 2 cores: the median was above 1.2 at 6 Gbit/s
    and unshaped, 0.6-1.4 at 3 Gbit/s (where copy and wheel take the same time) and at
    most 0.3 at 1 Gbit/s. The first ``skipped`` reads are left out (TCP slow start); the
    verdict comes after ``window`` more. The error it can make is the safe one: a receive
    buffer too small to show the backlog reads as a slow network, and the wheel is used.
    """

    def __init__(self, *, skipped: int = 2, window: int = 6, threshold: float = 0.5) -> None:
        self._skipped = skipped
        self._window = window
        self._threshold = threshold
        self._samples: list[float] = []
        self._seen = 0
        self.verdict: bool | None = None  # True: keep the copy; False: take the wheel

    def add(self, ahead: float) -> bool | None:
        """Record one read's backlog; return the verdict once there is one, else None."""
        if self.verdict is None:
            self._seen += 1
            if self._seen > self._skipped:
                self._samples.append(ahead)
                if len(self._samples) >= self._window:
                    self.verdict = _median(self._samples) >= self._threshold
        return self.verdict


def _median(values: list[float]) -> float:
    # Not statistics.median: importing statistics (fractions, decimal, random) costs more
    # start-up than this whole module.
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
