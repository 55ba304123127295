"""Shared pytest fixtures of the indexer tests."""
