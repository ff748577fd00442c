"""Stop bar parameter set (spec 2.9; close option "In Highs" per D2)."""

from __future__ import annotations


def get_params() -> dict:
    """The engine parameters of stop bar, exactly the spec 2.9 table (absent keys use defaults)."""
    return {
        "lookback": 50,
        "direction_opt": "Up",
        "bar_type_opt": "New Low or Outside Bar",
        "spread_opt": "None",
        "spread_std": 1.0,
        "spread_abnormal_std": 4.0,
        "momentum_opt": "None",
        "momentum_std": 0.5,
        "volume_opt": "High",
        "volume_std": 1.5,
        "volume_abnormal_std": 6.0,
        "close_opt": "In Highs",
        "use_volume_pct": False,
        "use_spread_pct": False,
        "macro_opt": "Macro Low",
        "macro_method": "Count Based (V2)",
        "v1_macro_short_lookback": 5,
        "v1_macro_medium_lookback": 21,
        "v1_macro_long_lookback": 21,
        "v1_macro_percentile": 10.0,
        "v2_macro_short_lookback": 20,
        "v2_macro_medium_lookback": 20,
        "v2_macro_long_lookback": 20,
        "v2_macro_percentile": 4.0,
        "use_breakout_close": False,
        "breakout_close_percent": 80.0,
        "use_arctangent_ratio": False,
        "arctangent_ratio_threshold": 1.0,
        "use_high_breakout": False,
        "high_breakout_lookback": 20,
        "high_breakout_count_percent": 80,
    }
