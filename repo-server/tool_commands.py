"""Maintainer subcommands that work on files: wrap (wheel to apk), publish (HTTP client), index."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add wrap, publish and index."""
