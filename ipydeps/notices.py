"""Notices about the configuration that people must not miss, said once per process.

Today there is one: no repository is configured, so every package comes from the
upstream index (PyPI by default), exactly as with plain pip, which is easy to miss.
"""

from __future__ import annotations

from typing import TextIO

from .settings import Settings

_already_said: set[str] = set()

HOW_TO_CONFIGURE = (
    "set IPYDEPS_REPOSITORY_URL, or repository_url in "
    "~/.config/ipydeps/config.toml (or /etc/ipydeps/config.toml)"
)


def no_repository(settings: Settings) -> str | None:
    """Return the notice for ``settings`` without a repository, or None when one is set."""
    if settings.repository_url:
        return None
    if settings.upstream_allowed:
        return (
            f"note: no ipydeps repository is configured, so every package comes from "
            f"the upstream index {settings.upstream_url} (as with plain pip); "
            f"to install from an ipydeps repository, {HOW_TO_CONFIGURE}"
        )
    return (
        f"note: no ipydeps repository is configured and upstream is 'deny', so there is "
        f"nowhere to install from; {HOW_TO_CONFIGURE}"
    )


def say_once(notice: str | None, stream: TextIO) -> None:
    """Write ``notice`` to ``stream`` unless it is None or was already said in this process."""
    if notice is None or notice in _already_said:
        return
    _already_said.add(notice)
    stream.write(notice + "\n")
    stream.flush()
