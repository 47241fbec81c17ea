"""The store: the data directory and the repositories it owns (wheels and sdists, apks)."""
