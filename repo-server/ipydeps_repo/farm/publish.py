"""Where the farm puts its artifacts: a server over the upload API, or a local data dir's store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import BuildError, RepoError
from ..net.publish import publish


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
        """Upload one file through ``net.publish`` (streamed, ``Expect: 100-continue``).

        Raises:
            BuildError: the server refuses the file or cannot be reached (its message kept).
        """
        try:
            reply = publish(
                self.base_url,
                self.token,
                path,
                branch=place.branch if place else None,
                repo=place.repo if place else None,
                arch=place.arch if place else None,
            )
        except RepoError as error:
            raise BuildError(
                f"upload to {self.base_url} failed: {error.message}",
                hint=error.hint or "check --token and the server log",
            ) from None
        return reply.status or "created"


class StorePublisher:
    """Publishes straight into a data directory's store (no server needed)."""

    def __init__(
        self, data_dir: Path, *, max_upload_bytes: int = 2 << 30, stored_copies: bool = True
    ) -> None:
        # Imported here: the store pulls in the index renderers, which `farm order` never needs.
        from ..store.layout import DataLayout
        from ..store.store import Store

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
