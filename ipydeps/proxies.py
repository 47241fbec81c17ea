"""Forward proxies from the environment, as pip takes them: credentials, NO_PROXY, redaction.

``HTTP_PROXY``/``HTTPS_PROXY`` (either case) name the proxy for each scheme, e.g.
``http://user:secret@proxy.corp:3128``. Its credentials (percent-decoded) go to the proxy
only, as ``Proxy-Authorization: Basic``: on each request for a plain-http URL, and on the
``CONNECT`` that opens the tunnel for an https one (whose TLS is end to end with the
origin). The proxy itself is spoken to in plain HTTP, whatever scheme its URL names, as
Python's urllib does. ``NO_PROXY`` lists hosts reached directly: ``*``, domain names
(``example.org`` and ``.example.org`` match the domain and its subdomains), ``host:port``,
IP addresses and networks (``10.0.0.0/8``). Loopback is never proxied.

Nothing here shows a secret: ``Proxy``'s repr and ``describe_proxies`` hide it.
"""

from __future__ import annotations

import base64
import ipaddress
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from .credentials import redact

_DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Proxy:
    """One forward proxy: where it listens, and the header that authenticates us to it."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """The headers a request to (or a CONNECT through) this proxy carries."""
        return {} if self.authorization is None else {"Proxy-Authorization": self.authorization}


def parse_proxy(url: str) -> Proxy:
    """Read a proxy URL (``[scheme://][user[:password]@]host[:port]``) into a ``Proxy``.

    Raises ``ValueError`` (with the URL's credentials hidden) for one without a host or
    with a port that is not a number.
    """
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        raise ValueError(redact(f"the proxy URL {url!r} has a port that is not a number")) from None
    if not parts.hostname:
        raise ValueError(redact(f"the proxy URL {url!r} names no host"))
    authorization = None
    if parts.username is not None or parts.password is not None:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        authorization = f"Basic {token}"
    return Proxy(parts.hostname, port, authorization)


def bypasses_proxy(host: str, port: int | None, no_proxy: str) -> bool:
    """Tell whether ``host`` (at ``port``) is reached directly: loopback, or a NO_PROXY match."""
    host = host.lower().strip("[]")
    if host in LOOPBACK:
        return True
    address = _address(host)
    for entry in (item.strip().lower() for item in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry and address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, _, entry_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        if entry_port and str(port) != entry_port:
            continue
        name = name.strip("[]").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _has_port(entry: str) -> bool:
    """Tell whether a NO_PROXY entry ends in ``:port`` (not an IPv6 address's last group)."""
    head, colon, tail = entry.rpartition(":")
    return bool(colon) and tail.isdigit() and (head.endswith("]") or ":" not in head)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def describe_proxies(proxies: Mapping[str, str]) -> str:
    """Describe the proxies ipydeps uses, credentials hidden (``python -m ipydeps config``)."""
    used = {scheme: proxies[scheme] for scheme in ("http", "https") if proxies.get(scheme)}
    if not used:
        return "proxies: none (no HTTP_PROXY/HTTPS_PROXY in the environment)"
    lines = ["proxies (from the environment):"]
    for scheme, value in used.items():
        lines.append(
            f"  {scheme + ' URLs via':<15} {redact(value if '://' in value else f'http://{value}')}"
        )
    if proxies.get("no"):
        lines.append(f"  {'not for':<15} {proxies['no']}")
    return "\n".join(lines)
