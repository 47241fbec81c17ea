"""What the allowed sources offer per project: read lazily, fastest route first, ahead in threads.

A project that our repository has is never looked up upstream unless the planner
needs a fallback (a version conflict, a specifier our files do not meet): this is
faster, and it tells the upstream index nothing about what we install.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future

from packaging.utils import NormalizedName

from .models import Candidate
from .sources import PackageSource

File = tuple[PackageSource, Candidate]
Tier = tuple[PackageSource, ...]


class Catalog:
    """Caches ``source.candidates(name)`` per source; reads ahead with an executor.

    Only the resolver's thread touches the caches; worker threads only call sources and
    hand their results back through futures, so no lock is needed.
    """

    def __init__(
        self,
        sources: Sequence[PackageSource],
        *,
        executor: Executor | None,
        usable: Callable[[Candidate], bool],
        warm: Callable[[NormalizedName, Sequence[File]], None],
    ) -> None:
        tiers: dict[int, list[PackageSource]] = {}
        for source in sources:
            tiers.setdefault(source.route.rank, []).append(source)
        self.tiers: tuple[Tier, ...] = tuple(tuple(tiers[rank]) for rank in sorted(tiers))
        self._executor = executor
        self._usable = usable
        self._warm = warm
        self._read: dict[tuple[int, NormalizedName], tuple[Candidate, ...]] = {}
        self._pending: dict[NormalizedName, Future[dict[int, tuple[Candidate, ...]]]] = {}

    def _take_pending(self, name: NormalizedName) -> None:
        future = self._pending.pop(name, None)
        if future is not None:
            for key, found in future.result().items():
                self._read.setdefault((key, name), found)

    def tier_files(self, name: NormalizedName, tier: Tier) -> list[File]:
        """Return the files the sources of one tier offer for ``name`` (read once)."""
        self._take_pending(name)
        files: list[File] = []
        for source in tier:
            key = (id(source), name)
            if key not in self._read:
                self._read[key] = tuple(source.candidates(name))
            files += [(source, candidate) for candidate in self._read[key]]
        return files

    def files(self, name: NormalizedName) -> list[File]:
        """Return every file every source offers for ``name`` (reads all tiers)."""
        return [file for tier in self.tiers for file in self.tier_files(name, tier)]

    def _read_ahead(self, name: NormalizedName) -> dict[int, tuple[Candidate, ...]]:
        """Read tiers in order until one offers a usable file (runs in a worker thread)."""
        found: dict[int, tuple[Candidate, ...]] = {}
        for tier in self.tiers:
            files = []
            for source in tier:
                found[id(source)] = tuple(source.candidates(name))
                files += [(source, candidate) for candidate in found[id(source)]]
            if any(self._usable(candidate) for _, candidate in files):
                self._warm(name, files)
                break
        return found

    def prefetch(self, names: Iterable[NormalizedName]) -> None:
        """Start reading the pages of ``names`` in worker threads (no-op without an executor)."""
        if self._executor is None:
            return
        for name in names:
            known = any((id(source), name) in self._read for tier in self.tiers for source in tier)
            if not known and name not in self._pending:
                self._pending[name] = self._executor.submit(self._read_ahead, name)
