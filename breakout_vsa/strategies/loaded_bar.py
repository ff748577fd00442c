"""Loaded bar (spec 2.9): its parameter set, panel, seed wrapper, demo pattern and declaration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_vsa.core import VSA_FIELDS, PanelDict, engine_params, engine_report, vsa_detector
from utils.demo_patterns import Arrays, draw_bar
from utils.strategy_spec import BOTH, Strategy


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


def loaded_bar_panel(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, **overrides: object
) -> PanelDict:
    """Loaded bar on an (n, k) panel: the engine with this parameter set (``overrides``: a tuned variant's)."""
    return engine_report(o, h, l, c, v, {**get_params(), **overrides})


def loaded_bar_vsa(df: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Loaded bar over a frame (spec 2.9)."""
    return vsa_detector(df, get_params())


def demo_plant(a: Arrays, t: int) -> None:
    """A narrow bar closing in its upper half on abnormal volume."""
    draw_bar(a, t, 0.002, 0.002, 0.004, 6.0)


STRATEGY = Strategy(
    name="loaded_bar",
    title="Loaded Bar",
    channel="volume_surge",
    bars=BOTH,
    min_bars=50,
    panel=loaded_bar_panel,
    kind="vsa",
    direction="up",
    alert_fields=VSA_FIELDS,
    params=engine_params(get_params()),
    demo_plant=demo_plant,
)
