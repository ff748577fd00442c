"""Reversal bar parameter set (spec 2.9)."""

from __future__ import annotations


def get_params() -> dict:
    """The engine parameters of reversal bar, exactly the spec 2.9 table (absent keys use defaults)."""
    return {
        "lookback": 14,
        "direction_opt": "None",
        "bar_type_opt": "New High or Outside Bar",
        "spread_opt": "Wide",
        "spread_std": 0.5,
        "spread_abnormal_std": 4.0,
        "momentum_opt": "None",
        "momentum_std": 0.5,
        "volume_opt": "High",
        "volume_std": 0.5,
        "volume_abnormal_std": 3.0,
        "close_opt": "In Lows",
        "use_volume_pct": False,
        "use_spread_pct": False,
        "macro_opt": "Macro High",
        "macro_method": "Count Based (V2)",
        "v1_macro_short_lookback": 14,
        "v1_macro_medium_lookback": 34,
        "v1_macro_long_lookback": 50,
        "v1_macro_percentile": 5.0,
        "v2_macro_short_lookback": 8,
        "v2_macro_medium_lookback": 28,
        "v2_macro_long_lookback": 48,
        "v2_macro_percentile": 20.0,
        "use_breakout_close": False,
        "breakout_close_percent": 30.0,
        "use_arctangent_ratio": False,
        "arctangent_ratio_threshold": 1.0,
        "use_high_breakout": False,
        "high_breakout_lookback": 20,
        "high_breakout_count_percent": 80,
    }
