"""Install prebuilt packages into the running Jupyter kernel: ``ipydeps.pip(['scipy'])``."""

from __future__ import annotations

__version__ = "0.1.0"
