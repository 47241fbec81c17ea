"""Install prebuilt packages into the running Jupyter kernel: ``ipydeps.pip(['scipy'])``."""

from __future__ import annotations

from .api import Result, config, pip
from .magics import load_ipython_extension, unload_ipython_extension

__version__ = "0.1.0"
__all__ = ["Result", "config", "load_ipython_extension", "pip", "unload_ipython_extension"]
