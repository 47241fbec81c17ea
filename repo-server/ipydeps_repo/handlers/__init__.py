"""HTTP handlers of the repository server."""
