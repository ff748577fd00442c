"""Start bar parameter set (spec 3). Start bar has its own formula and does not use the engine."""

from __future__ import annotations


def get_params() -> dict:
    """Start bar's parameters, exactly the spec 3 table (volume_percentile is carried but unused)."""
    return {
        "lookback": 5,
        "volume_lookback": 30,
        "low_percentile": 75,
        "range_percentile": 75,
        "close_off_lows_percent": 50,
        "prev_close_range": 75,
        "volume_percentile": 50,
    }
