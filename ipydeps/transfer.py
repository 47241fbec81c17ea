"""Which file to fetch for a wheel: the wheel itself, or the repository's stored copy of it.

A stored copy (``ipydeps.models.StoredCopy``) holds the same files uncompressed: about 3x
the bytes of a compiled package's wheel, and no inflating, which is most of the CPU an
install takes (see wheelstream.py). Near the repository (this machine, a cluster or office
network) bytes are cheap and CPU is what an install waits for; across the internet it is
the other way round. ``stored_copies = "auto"`` therefore takes the stored copy when the
repository's address is loopback, private (RFC 1918, RFC 4193) or link-local.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import urllib.parse


def wants_stored_copy(url: str, setting: str) -> bool:
    """Tell whether to fetch the stored copy at ``url`` under ``stored_copies = setting``."""
    if setting == "always":
        return True
    if setting != "auto":
        return False
    host = urllib.parse.urlsplit(url).hostname
    return host is not None and _is_near(host.lower())


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
