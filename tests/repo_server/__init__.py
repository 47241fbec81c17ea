"""Tests of the repository server (ipydeps_repo)."""
