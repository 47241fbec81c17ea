"""The build farm driver: recipes, build order, host builds, freshness checks."""
