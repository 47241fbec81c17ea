"""The plan: what an install will do, printed as a table and shown as HTML in notebooks.

Built by ``ipydeps.plan.resolve``, carried out by ``ipydeps.execute``; its display is
``ipydeps.render``'s, which reads plans without importing this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .models import Route, Skipped, Step, Unsatisfiable
from .render import render_html, render_text

if TYPE_CHECKING:
    from .apkclosure import ApkAddition

__all__ = ["Plan"]


@dataclass(frozen=True)
class Plan:
    """The pure result of planning: printable, testable, and what the installers carry out.

    ``steps`` are in install order (dependencies first). A plan with any
    ``unsatisfiable`` entry must not be executed.
    """

    steps: tuple[Step, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    unsatisfiable: tuple[Unsatisfiable, ...] = ()
    notes: tuple[str, ...] = field(default=())
    # What `apk add` of the apk steps adds besides them (their apk dependencies that apk's
    # database does not satisfy), dependencies first; apk installs these, not ipydeps.
    apk_dependencies: tuple[ApkAddition, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every requirement can be satisfied."""
        return not self.unsatisfiable

    def by_route(self, route: Route) -> tuple[Step, ...]:
        """Return the steps that use ``route``, in plan order."""
        return tuple(step for step in self.steps if step.candidate.route is route)

    def __str__(self) -> str:
        """Render the plan as a text table (``ipydeps.render.render_text``) for ``print``."""
        return render_text(self)

    def _repr_html_(self) -> str:
        """Render the plan as escaped HTML for Jupyter (``ipydeps.render.render_html``)."""
        return render_html(self)
