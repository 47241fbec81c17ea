"""Fetching from upstream indexes: the mirror, upload times, pip as resolver, the optimizer."""
