"""Upload times of upstream files, read from the upstream's PEP 691 JSON project pages (PEP 700).

pip's resolution report says which files to take but not when upstream received them.
The mirror keeps upstream's time (as the mirrored file's modification time, which is what
the store lists as ``upload-time``), so ``uv pip install --exclude-newer DATE`` picks the
same versions from the mirror as from upstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from ipydeps.formats.wire import SIMPLE_JSON as JSON_TYPE

from .. import __version__, jsonsafe
from ..errors import UpstreamError
from ..net.client import HttpClient, HttpError

ACCEPT = f"{JSON_TYPE}, text/html;q=0.1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_upload_time(text: str) -> int | None:
    """Return a PEP 700 ``upload-time`` as nanoseconds since the epoch, or None if malformed.

    Integer arithmetic keeps upstream's microseconds exact (a float would round them).
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def page_upload_times(body: bytes) -> dict[str, int] | None:
    """Return ``{filename: upload time in ns}`` of a PEP 691 page; None if it is not JSON.

    Files without a well-formed ``upload-time`` (API 1.0 pages) are left out.
    """
    try:
        page = jsonsafe.loads(body)
        files = page["files"]
    except (ValueError, KeyError, TypeError):
        return None
    times: dict[str, int] = {}
    for entry in files if isinstance(files, list) else []:
        if not isinstance(entry, dict):
            continue
        name, text = entry.get("filename"), entry.get("upload-time")
        if isinstance(name, str) and isinstance(text, str):
            moment = parse_upload_time(text)
            if moment is not None:
                times[name] = moment
    return times


def upload_times(
    index_url: str, projects: Iterable[str], *, env: Mapping[str, str]
) -> dict[str, int]:
    """Return ``{filename: upload time in ns}`` for the files on these projects' pages.

    ``projects`` are normalized names; ``env`` gives ``PIP_CERT`` (a CA bundle) and the
    proxies, as for pip. A page in HTML (PEP 503 has no upload time) contributes nothing.
    A ``user:password@`` in ``index_url`` is sent as Basic auth.

    Raises:
        UpstreamError: a page could not be read (the reason and the URL are named).
    """
    client = HttpClient(
        cafile=env.get("PIP_CERT") or None,
        environ=env,
        user_agent=f"ipydeps-repo/{__version__} mirror",
    )
    times: dict[str, int] = {}
    for project in sorted(set(projects)):
        url = f"{index_url.rstrip('/')}/{project}/"
        try:
            body = client.get(url, headers={"Accept": ACCEPT}).body
        except HttpError as error:
            raise UpstreamError(
                f"could not read the upload times of {project}: {error.message}",
                hint="the index answered pip a moment ago; run the mirror again",
            ) from None
        times.update(page_upload_times(body) or {})
    return times
