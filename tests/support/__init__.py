"""Helpers shared by the test suites: fixture wheels made in code."""
