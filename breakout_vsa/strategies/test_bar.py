"""Test bar parameter set (spec 4): the formula has no parameters."""

from __future__ import annotations


def get_params() -> dict:
    """An empty set: test bar's formula (spec 4) has no tunable parameter."""
    return {}
