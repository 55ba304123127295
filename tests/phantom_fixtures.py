"""Shared pytest fixtures of the phantom tests."""
