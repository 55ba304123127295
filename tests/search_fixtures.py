"""Shared pytest fixtures of the search tests."""
