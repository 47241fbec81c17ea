"""The ``ipydeps-repo`` command line (entry point ``ipydeps_repo.cli:main``)."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
