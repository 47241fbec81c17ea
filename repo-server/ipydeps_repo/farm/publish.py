"""Where the farm puts its artifacts: a server over the upload API, or a local data dir's store."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import BuildError

# The whole file goes in one PUT; the server's own size limit decides what is too large.
UPLOAD_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class ApkPlace:
    """Where an apk goes in the tree: alpine/<branch>/<repo>/<arch>/."""

    branch: str
    repo: str
    arch: str


class Publisher(Protocol):
    """Makes one built file visible in a repository."""

    @property
    def destination(self) -> str:
        """A stable name of where files go (used to remember what is published)."""
        ...

    def publish(self, path: Path, place: ApkPlace | None) -> str:
        """Publish ``path`` (an apk needs ``place``); return the status (created/unchanged)."""
        ...


class HttpPublisher:
    """Publishes through ``PUT /api/v1/upload/<filename>`` with a bearer token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.token = token

    @property
    def destination(self) -> str:
        """The server's base URL."""
        return self.base_url

    def publish(self, path: Path, place: ApkPlace | None) -> str:
        """Upload one file; return the server's status for it.

        Raises:
            BuildError: the server refuses the file or cannot be reached (its message kept).
        """
        query = ""
        if place is not None:
            query = "?" + urllib.parse.urlencode(
                {"branch": place.branch, "repo": place.repo, "arch": place.arch}
            )
        url = urllib.parse.urljoin(
            self.base_url, "api/v1/upload/" + urllib.parse.quote(path.name) + query
        )
        request = urllib.request.Request(
            url,
            data=path.read_bytes(),
            method="PUT",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/octet-stream",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=UPLOAD_TIMEOUT_SECONDS) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            raise BuildError(
                f"upload of {path.name} refused: HTTP {error.code} {detail}",
                hint="check --token and the server log",
            ) from error
        except urllib.error.URLError as error:
            raise BuildError(f"could not reach {self.base_url}: {error.reason}") from error
        return str(body.get("status", "created")) if isinstance(body, dict) else "created"


class StorePublisher:
    """Publishes straight into a data directory's store (no server needed)."""

    def __init__(
        self, data_dir: Path, *, max_upload_bytes: int = 2 << 30, stored_copies: bool = True
    ) -> None:
        # Imported here: the store pulls in the index renderers, which `farm order` never needs.
        from ..settings import DataLayout
        from ..storage import Store

        self.data_dir = data_dir
        self.store = Store(
            DataLayout(data_dir), max_upload_bytes=max_upload_bytes, stored_copies=stored_copies
        )

    @property
    def destination(self) -> str:
        """The data directory."""
        return f"data:{self.data_dir.resolve()}"

    def publish(self, path: Path, place: ApkPlace | None) -> str:
        """Publish one file into the store; return created/unchanged/replaced.

        Raises:
            RepoError: whatever the store raises (invalid file, conflict, no signing key).
        """
        if place is None:
            return self.store.publish_file(path).status
        result = self.store.publish_file(
            path, branch=place.branch, repo=place.repo, arch=place.arch
        )
        return result.status
