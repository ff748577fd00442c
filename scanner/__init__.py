"""Crypto market scanner: registry, scan engine, results, alerts; ``scanner`` is its command."""

__version__ = "0.2.0"
