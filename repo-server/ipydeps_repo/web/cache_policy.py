"""What caches may keep, by path in the tree: the same rules as the shipped nginx config.

Index pages (simple pages, APKINDEX, keys) change when a release is published, yanked or
deleted, so every cache must ask again; the ETag makes that a 304. Distribution files never
change under their name (replacing one takes a token with the force scope), and the
.metadata and .stored files are made from them: immutable for a year.
"""

from __future__ import annotations

import email.utils
import os
import re

REVALIDATE = "max-age=0, must-revalidate"
IMMUTABLE = "public, max-age=31536000, immutable"
# An answer that is not a file (404s and other errors): a file may appear there later.
NO_STORE = "no-store"
_APK_INDEX = "APKINDEX.tar.gz"


def cache_control(tree_path: str) -> str:
    """Return the Cache-Control for ``tree_path``, relative to the tree (``files/...``)."""
    if tree_path.startswith("files/"):
        return IMMUTABLE
    if tree_path.startswith("alpine/"):
        return REVALIDATE if os.path.basename(tree_path) == _APK_INDEX else IMMUTABLE
    return REVALIDATE


def etag_of(status: os.stat_result) -> str:
    """Return a strong ETag from the file's stat: mtime (ns) and size, like nginx's."""
    return f'"{status.st_mtime_ns:x}-{status.st_size:x}"'


_ENTITY_TAG = re.compile(r'\*|(?:W/)?"[^"]*"')


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Return True if ``If-None-Match`` names ``etag`` or is ``*`` (weak comparison, RFC 9110)."""
    tags = _ENTITY_TAG.findall(if_none_match)
    if not tags:
        return False
    if tags[0] == "*":
        return True
    return etag.removeprefix("W/") in (tag.removeprefix("W/") for tag in tags)


def http_date(seconds: float) -> str:
    """Format ``seconds`` since the epoch as an HTTP date (RFC 9110)."""
    return email.utils.formatdate(seconds, usegmt=True)


def not_modified_since(if_modified_since: str | None, mtime: float) -> bool:
    """Return True if the file's whole-second mtime is not after ``If-Modified-Since``."""
    if not if_modified_since:
        return False
    parsed = email.utils.parsedate_tz(if_modified_since)
    if parsed is None:
        return False
    return int(mtime) <= email.utils.mktime_tz(parsed)
