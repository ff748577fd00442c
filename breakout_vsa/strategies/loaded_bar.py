"""Loaded bar parameter set (spec 2.9)."""

from __future__ import annotations


def get_params() -> dict:
    """The engine parameters of loaded bar, exactly the spec 2.9 table (absent keys use defaults)."""
    return {
        "lookback": 50,
        "direction_opt": "None",
        "bar_type_opt": "None",
        "spread_opt": "Narrow",
        "spread_std": 0.5,
        "spread_abnormal_std": 2.0,
        "momentum_opt": "None",
        "momentum_std": 0.5,
        "volume_opt": "Abnormal",
        "volume_std": 2.0,
        "volume_abnormal_std": 3.0,
        "close_opt": "Off Lows",
        "use_volume_pct": False,
        "use_spread_pct": False,
        "macro_opt": "None",
        "macro_method": "Count Based (V2)",
        "v1_macro_short_lookback": 7,
        "v1_macro_medium_lookback": 23,
        "v1_macro_long_lookback": 50,
        "v1_macro_percentile": 10.0,
        "v2_macro_short_lookback": 8,
        "v2_macro_medium_lookback": 28,
        "v2_macro_long_lookback": 48,
        "v2_macro_percentile": 25.0,
        "use_breakout_close": False,
        "breakout_close_percent": 30.0,
        "use_arctangent_ratio": False,
        "arctangent_ratio_threshold": 1.0,
        "use_high_breakout": False,
        "high_breakout_lookback": 10,
        "high_breakout_count_percent": 10,
    }
