"""Which proxy a request goes through, read from ``*_proxy`` variables as pip and urllib read them.

``http_proxy`` and ``https_proxy`` name the proxy of each scheme (a lower-case name wins
over the upper-case one); ``no_proxy`` lists hosts reached directly: ``*``, a name (which
also matches its subdomains, with or without a leading dot), or ``name:port``. Loopback is
always reached directly, as the ipydeps client does: no proxy can reach this machine.
"""

from __future__ import annotations

import base64
import ipaddress
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field


def basic_credentials(parts: urllib.parse.SplitResult) -> str:
    """Return the Basic credentials of a URL's ``user:password@`` part (percent-decoded)."""
    user, password = (urllib.parse.unquote(text or "") for text in (parts.username, parts.password))
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass(frozen=True)
class Proxies:
    """The proxy URL of each scheme, and the hosts that bypass them."""

    by_scheme: dict[str, str] = field(default_factory=dict)
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Proxies:
        """Read ``http_proxy``, ``https_proxy`` and ``no_proxy`` (either case) from ``environ``."""
        found: dict[str, str] = {}
        for lower_case in (False, True):
            for name, value in environ.items():
                lowered = name.lower()
                if value and lowered.endswith("_proxy") and (name == lowered) == lower_case:
                    found[lowered.removesuffix("_proxy")] = value
        bypass = tuple(
            entry.strip().lower() for entry in found.pop("no", "").split(",") if entry.strip()
        )
        return cls(
            {scheme: url for scheme, url in found.items() if scheme in ("http", "https")}, bypass
        )

    def for_url(self, scheme: str, host: str, port: int | None) -> str | None:
        """Return the proxy URL for a request to ``host``, or None to connect directly."""
        proxy = self.by_scheme.get(scheme)
        if not proxy or _is_loopback(host):
            return None
        host = host.lower()
        for entry in self.no_proxy:
            name, _, entry_port = (
                entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            )
            if entry_port and port is not None and entry_port != str(port):
                continue
            name = name.lstrip(".")
            if name == "*" or host == name or host.endswith("." + name):
                return None
        return proxy


def _is_loopback(host: str) -> bool:
    """Tell whether ``host`` is this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
