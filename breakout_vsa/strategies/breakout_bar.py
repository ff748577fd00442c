"""Breakout bar (spec 2.9): its parameter set, panel, seed wrapper, demo pattern and declaration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_vsa.core import VSA_FIELDS, PanelDict, engine_params, engine_report, vsa_detector
from utils.demo_patterns import Arrays, draw_bar, draw_trend, usual_volume
from utils.strategy_spec import BOTH, Strategy


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


def breakout_bar_panel(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, **overrides: object
) -> PanelDict:
    """Breakout bar on an (n, k) panel: the engine with this parameter set (``overrides``: a tuned variant's)."""
    return engine_report(o, h, l, c, v, {**get_params(), **overrides})


def breakout_bar_vsa(df: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Breakout bar over a frame (spec 2.9)."""
    return vsa_detector(df, get_params())


def demo_plant(a: Arrays, t: int) -> None:
    """Decline, tight base, wide up bar from the base low, median volume."""
    draw_trend(a, t - 20, t - 8, -0.012)
    base = a["close"][t - 9]
    floor = base * 0.992
    for j, i in enumerate(range(t - 8, t)):
        draw_bar(a, i, 0.002 if j % 2 else -0.002, 0.004, 0.0, usual_volume(i))
        a["low"][i] = floor * (1.0 + 0.0005 * (t - 1 - i))
    o = a["close"][t - 1]
    draw_bar(a, t, 0.028, 0.003, 0.0, 1.0)
    a["low"][t] = a["low"][t - 1] = min(floor, o)
    # 7 x 1.1 and 6 x 0.9 before a 1.0 bar: at or below the 14-bar median, within the volume band.
    a["volume"][t - 13 : t] = np.resize([1.1, 0.9], 13)
    a["volume"][t] = 1.0


STRATEGY = Strategy(
    name="breakout_bar",
    title="Breakout Bar",
    channel="start_trend",
    bars=BOTH,
    min_bars=50,
    panel=breakout_bar_panel,
    kind="vsa",
    direction="up",
    alert_fields=VSA_FIELDS,
    params=engine_params(get_params()),
    demo_plant=demo_plant,
)
