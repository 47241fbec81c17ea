"""What our repository server and the client say to each other over HTTP, defined once.

The server writes these and the client reads them: the simple index's media types (PEP 691),
the key of our stored copies in a PEP 691 file entry, and where a repository keeps its wheel
index and its apk repositories.
"""

from __future__ import annotations

__all__ = [
    "APK_INDEX_NAME",
    "APK_PATH",
    "OUTLINE_KEY",
    "SIMPLE_ACCEPT",
    "SIMPLE_HTML",
    "SIMPLE_HTML_PAGE",
    "SIMPLE_JSON_PAGE",
    "SIMPLE_JSON",
    "SIMPLE_LATEST_HTML",
    "SIMPLE_LATEST_JSON",
    "SIMPLE_PATH",
    "STORED_COPY_KEY",
    "TEXT_HTML",
]

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
# PEP 691: "latest" names whatever version the index serves (v1 here).
SIMPLE_LATEST_JSON = "application/vnd.pypi.simple.latest+json"
SIMPLE_LATEST_HTML = "application/vnd.pypi.simple.latest+html"
TEXT_HTML = "text/html"  # PEP 503 pages as older indexes serve them
# What the client asks for: JSON first, HTML from indexes that have nothing else.
SIMPLE_ACCEPT = f"{SIMPLE_JSON}, {SIMPLE_HTML};q=0.2, {TEXT_HTML};q=0.1"
# PEP 691 leaves keys starting with "_" to each index (pip and uv ignore them): ours holds a
# wheel's stored copy, {"url", "hashes": {"sha256"}, "size", "outline_sha256"}.
STORED_COPY_KEY = "_ipydeps-stored"
# Inside it: the copy's outline sha256 (``ipydeps.formats.outline``), which lets a client
# hash each byte once. Older servers leave it out: clients then check the whole file.
OUTLINE_KEY = "outline_sha256"
# A repository at <base>/ serves its wheel index at <base>/simple/ and its apk repositories
# at <base>/alpine/<branch>/<repo>/<arch>/APKINDEX.tar.gz.
SIMPLE_PATH = "simple"
# Each project's folder <base>/simple/<project>/ holds both pages as files, which a
# negotiating server chooses between; a static host of the tree serves them by these names.
SIMPLE_JSON_PAGE = "index.json"
SIMPLE_HTML_PAGE = "index.html"
APK_PATH = "alpine"
APK_INDEX_NAME = "APKINDEX.tar.gz"
