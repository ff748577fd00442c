"""Reversal bar (spec 2.9): its parameter set, panel, seed wrapper, demo pattern and declaration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_vsa.core import VSA_FIELDS, PanelDict, engine_params, engine_report, vsa_detector
from utils.demo_patterns import Arrays, draw_trend
from utils.strategy_spec import BOTH, Strategy


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


def reversal_bar_panel(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, **overrides: object
) -> PanelDict:
    """Reversal bar on an (n, k) panel: the engine with this parameter set (``overrides``: a tuned variant's)."""
    return engine_report(o, h, l, c, v, {**get_params(), **overrides})


def reversal_bar_vsa(df: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Reversal bar over a frame (spec 2.9)."""
    return vsa_detector(df, get_params())


def demo_plant(a: Arrays, t: int) -> None:
    """Rally, then a wide new-high bar closing in its lows."""
    draw_trend(a, t - 20, t, 0.012)
    o = a["close"][t - 1]
    high, low = o * 1.03, o * 0.998
    a["open"][t], a["high"][t], a["low"][t] = o, high, low
    a["close"][t] = low + 0.2 * (high - low)
    a["volume"][t] = 1.0


STRATEGY = Strategy(
    name="reversal_bar",
    title="Reversal Bar",
    channel="weakening_trend",
    bars=BOTH,
    min_bars=14,
    panel=reversal_bar_panel,
    kind="vsa",
    direction="down",
    alert_fields=VSA_FIELDS,
    params=engine_params(get_params()),
    demo_plant=demo_plant,
)
