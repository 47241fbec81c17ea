"""What ``ipydeps.pip()`` returns: a ``Result`` of ``Installed`` rows, shown as a table.

Plain data and its display, apart from the install machinery in ``api``: the command line
reads a result's rows and problems, the notebook shows it (``_repr_html_``) once, in place
of the live display's table when that already shows it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .live import show_unless_shown
from .models import Skipped
from .plan_model import Plan
from .render import format_size
from .report import report_html, report_text

__all__ = ["Installed", "Result"]


@dataclass(frozen=True)
class Installed:
    """One package installed by ``pip()``: what, from where, how big, how long."""

    name: str
    version: str
    route: str  # "apk", "wheel" (our repository) or "upstream"
    source: str  # the host the file came from
    action: str  # "install", "upgrade" or "downgrade"
    replaced: str | None
    bytes: int
    seconds: float
    # True when the repository's stored (uncompressed) copy of the wheel was fetched.
    stored_copy: bool = False
    # Bytes of the installed files; an apk's from its index (I:); None: not known.
    on_disk: int | None = None
    # True when the wheel was staged from the shared cache (checked against the index's
    # outline sha256): nothing was downloaded for it.
    from_shared_cache: bool = False

    @property
    def fetched_from(self) -> str:
        """The host, and "stored copy" or "shared cache" when that is where it came from."""
        if self.from_shared_cache:
            return self.source + " (shared cache)"
        return self.source + (" (stored copy)" if self.stored_copy else "")


@dataclass(frozen=True)
class Result:
    """The outcome of ``ipydeps.pip()``; shown as a table in the notebook."""

    plan: Plan
    installed: tuple[Installed, ...]
    skipped: tuple[Skipped, ...]
    dry_run: bool
    seconds: float
    warnings: tuple[str, ...] = ()
    # The cell (In[n]) whose live display shows this result; None when none does.
    shown_in: int | None = dataclasses.field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """True when every requirement was (or, in a dry run, can be) satisfied."""
        return self.plan.ok

    def summary(self) -> str:
        """One line: what was installed (or would be), and how long it took."""
        if self.dry_run:
            # apk installs the apks' own dependencies too: count what will really be added.
            count = len(self.plan.steps) + len(self.plan.apk_dependencies)
            return f"Dry run: {count} package(s) would be installed; nothing was changed"
        if not self.installed:
            return "Nothing to install: all requirements are already satisfied"
        names = ", ".join(
            f"{item.name} {item.version} ({item.route} from {item.source})"
            for item in self.installed
        )
        total = sum(item.bytes for item in self.installed)
        disk = [item.on_disk for item in self.installed if item.on_disk is not None]
        # A total on disk only when every package's is known (an index may not say an apk's).
        sizes = f"downloaded {format_size(total)}" + (
            f", {format_size(sum(disk))} on disk" if len(disk) == len(self.installed) else ""
        )
        also = ", ".join(
            f"{added.name} {added.record.version}" if added.record else added.name
            for added in self.plan.apk_dependencies
        )
        return f"Installed {names} ({sizes}) in {self.seconds:.2f} s" + (
            f"; apk also added {also}" if also else ""
        )

    def installed_lines(self) -> list[str]:
        """Return the table of installed packages (a header, a row each), without the summary."""
        return report_text("", self.installed, (), ()).splitlines()[1:]

    def __repr__(self) -> str:
        return report_text(self.summary(), self.installed, self.skipped, self.warnings)

    def _repr_html_(self) -> str:
        return report_html(self.summary(), self.installed, self.skipped, self.warnings)

    def _ipython_display_(self) -> None:
        # The install's live display already shows this in the cell that made it: no Out[n].
        show_unless_shown(
            self.shown_in, {"text/plain": repr(self), "text/html": self._repr_html_()}
        )
