"""Install prebuilt packages into the running Jupyter kernel: ``ipydeps.pip(['scipy'])``.

Nothing is imported here: ``pip``, ``config``, ``Result`` and the IPython extension's hooks
load on first use (PEP 562), so ``import ipydeps`` and the shared package ``ipydeps.formats``
(the repository server's only way in) stay cheap. ``typing`` is not imported either: mypy
reads any ``TYPE_CHECKING`` name as true.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .api import config, pip
    from .build_requests import request_build
    from .magics import load_ipython_extension, unload_ipython_extension
    from .result import Result

__version__ = "0.1.0"
__all__ = [
    "Result",
    "config",
    "load_ipython_extension",
    "pip",
    "request_build",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> object:
    """Load a public name's module on first use and keep the name here (PEP 562)."""
    if name in ("config", "pip"):
        from . import api as home
    elif name == "Result":
        from . import result as home  # type: ignore[no-redef]
    elif name == "request_build":
        from . import build_requests as home  # type: ignore[no-redef]
    elif name in ("load_ipython_extension", "unload_ipython_extension"):
        from . import magics as home  # type: ignore[no-redef]
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(home, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
