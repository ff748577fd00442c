"""Breakout bar parameter set (spec 2.9)."""

from __future__ import annotations


def get_params() -> dict:
    """The engine parameters of breakout bar, exactly the spec 2.9 table."""
    return {
        "lookback": 14,
        "direction_opt": "Up",
        "bar_type_opt": "New High or Outside Bar",
        "spread_opt": "Wide",
        "spread_std": 0.5,
        "spread_abnormal_std": 4.0,
        "momentum_opt": "Wide",
        "momentum_std": 0.5,
        "volume_opt": "High",
        "volume_std": 0.5,
        "volume_abnormal_std": 3.0,
        "close_opt": "In Highs",
        "use_volume_pct": True,
        "volume_pct_threshold": 0.50,
        "use_spread_pct": False,
        "spread_pct_threshold": 0.10,
        "macro_opt": "Macro Low",
        "macro_method": "Combined (Strict)",
        "v1_macro_short_lookback": 7,
        "v1_macro_medium_lookback": 23,
        "v1_macro_long_lookback": 50,
        "v1_macro_percentile": 10.0,
        "v2_macro_short_lookback": 8,
        "v2_macro_medium_lookback": 28,
        "v2_macro_long_lookback": 48,
        "v2_macro_percentile": 25.0,
        "use_breakout_close": True,
        "breakout_close_percent": 30.0,
        "use_arctangent_ratio": False,
        "arctangent_ratio_threshold": 1.0,
        "use_high_breakout": True,
        "high_breakout_lookback": 10,
        "high_breakout_count_percent": 10,
    }
