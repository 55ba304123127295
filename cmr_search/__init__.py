"""Shared settings and the ``cmr-search`` command line."""
