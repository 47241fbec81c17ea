"""An environment for child processes that is free of this machine's own pip defaults.

Development machines may set PIP_FIND_LINKS, a global pip.conf with constraints or
extra indexes. Tests that say where a package came from must not see them.
"""

from __future__ import annotations

import os


def clean_pip_env(**extra: str) -> dict[str, str]:
    """Return ``os.environ`` without any ``PIP_*``/``UV_*`` setting, with pip's config files off."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "UV_", "IPYDEPS_"))
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env.update(extra)
    return env
