"""The ipydeps repository: signed Alpine apk repositories and a PEP 503/691 wheel index."""

from __future__ import annotations

__version__ = "0.1.0"
