"""Credentials for reading a private repository, sent to that repository only.

Three sources, like pip's, first match wins: a user and password in the repository URL
(``https://user:pass@host/``), a token (``repository_token`` / ``IPYDEPS_REPOSITORY_TOKEN``,
sent as ``Authorization: Bearer``), and the ``~/.netrc`` entry (``$NETRC`` names another
file) for the repository's host.

They go to the repository's own origin (scheme, host and port) and nowhere else: not to
the upstream index, not to a files host its pages link to, not along a redirect to another
host or port. The URL the rest of ipydeps sees has its credentials taken out, and
``redact`` hides them in anything shown to people.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# What a 401/403 from a repository should make people try.
__all__ = [
    "CREDENTIALS_HINT",
    "RepositoryAccess",
    "origin",
    "redact",
    "repository_access",
    "token_for",
]

CREDENTIALS_HINT = (
    "the repository wants credentials: put them in its URL "
    "(https://user:password@host/), set IPYDEPS_REPOSITORY_TOKEN (sent as a "
    "Bearer token), or add the host to ~/.netrc"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# scheme://userinfo@ in any text: the userinfo ends at the last "@" before the host.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s@]*)@")


def redact(text: str) -> str:
    """Hide credentials in every URL in ``text``: ``user:***@``, or ``***@`` for a bare token."""

    def hide(match: re.Match[str]) -> str:
        user, colon, _ = match.group("userinfo").partition(":")
        shown = f"{user}:***" if colon and user else "***"
        return f"{match.group('scheme')}{shown}@"

    return _USERINFO.sub(hide, text)


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, lower-case host, port with the scheme's default filled in) of ``url``."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # not a number: matches no configured origin
        port = -1
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


@dataclass(frozen=True)
class RepositoryAccess:
    """The repository URL without credentials, and the Authorization header for its origin."""

    url: str | None
    source: str | None = None  # "url", "token" or "netrc": where the credentials came from
    _authorization: str | None = field(default=None, repr=False)

    def headers_for(self, url: str) -> dict[str, str]:
        """Return the headers to add to a request for ``url``: ours for our origin only."""
        if self._authorization is None or self.url is None or origin(url) != origin(self.url):
            return {}
        return {"Authorization": self._authorization}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _from_netrc(host: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """Return the login and password for ``host`` in the netrc file, as pip reads it."""
    import netrc  # only when a repository without other credentials is configured

    path = environ.get("NETRC") or (
        str(Path(environ["HOME"]) / ".netrc") if environ.get("HOME") else None
    )
    if not path or not Path(path).is_file():
        return None
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None  # as pip: an unreadable netrc is no credentials, not an error
    if entry is None:
        return None
    login, _, password = entry
    return login or "", password or ""


def token_for(token: str | None, url: str | None, *, configured: str | None) -> str | None:
    """Return ``token`` if it belongs to the repository at ``url``.

    A token configured beside a repository URL (``configured``) is that repository's: a
    ``url`` of another origin (``-i``, ``index_url``) does not get it, or one
    ``%pip install -i`` would hand it to any host. A token configured with no repository
    URL is for the one ``url`` names.
    """
    if token and url and configured and origin(configured) != origin(url):
        return None
    return token


def repository_access(
    url: str | None, *, token: str | None, environ: Mapping[str, str]
) -> RepositoryAccess:
    """Take the credentials out of ``url`` and pick the ones to send to its origin.

    URL credentials win over ``token``, which wins over the netrc entry for the host.
    """
    if not url:
        return RepositoryAccess(None)
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        clean = urllib.parse.urlunsplit(parts._replace(netloc=hostport))
        user, colon, password = userinfo.partition(":")
        user, password = urllib.parse.unquote(user), urllib.parse.unquote(password)
        if not colon and user:
            # https://TOKEN@host/: a token as the user name, sent as pip and git do.
            return RepositoryAccess(clean, "url", _basic(user, ""))
        return RepositoryAccess(clean, "url", _basic(user, password))
    if token:
        return RepositoryAccess(url, "token", f"Bearer {token}")
    found = _from_netrc(parts.hostname or "", environ)
    if found is not None:
        return RepositoryAccess(url, "netrc", _basic(*found))
    return RepositoryAccess(url)
