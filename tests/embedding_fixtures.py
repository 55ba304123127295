"""Shared pytest fixtures of the embedding tests."""
