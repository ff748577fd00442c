"""Stop bar (spec 2.9; close option "In Highs" per D2): parameters, panel, demo pattern, declaration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_vsa.core import VSA_FIELDS, PanelDict, engine_params, engine_report, vsa_detector
from utils.demo_patterns import Arrays, draw_bar, draw_trend
from utils.strategy_spec import BOTH, Strategy


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


def stop_bar_panel(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, **overrides: object
) -> PanelDict:
    """Stop bar on an (n, k) panel: the engine with this parameter set (``overrides``: a tuned variant's)."""
    return engine_report(o, h, l, c, v, {**get_params(), **overrides})


def stop_bar_vsa(df: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Stop bar over a frame (spec 2.9)."""
    return vsa_detector(df, get_params())


def demo_plant(a: Arrays, t: int) -> None:
    """Decline into an outside bar that undercuts 20 lows and closes high."""
    draw_trend(a, t - 12, t, -0.012)
    draw_bar(a, t, 0.0, 0.0, 0.0, 1.5)
    a["low"][t] = a["low"][t - 1] * 0.985
    a["close"][t] = a["high"][t - 1] * 1.002
    a["high"][t] = a["close"][t] * 1.003


STRATEGY = Strategy(
    name="stop_bar",
    title="Stop Bar",
    channel="start_trend",
    bars=BOTH,
    min_bars=50,
    panel=stop_bar_panel,
    kind="vsa",
    direction="up",
    alert_fields=VSA_FIELDS,
    params=engine_params(get_params()),
    demo_plant=demo_plant,
)
