"""Start bar (spec 3): its own formula, not the engine. Parameters, panel, demo pattern, declaration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_vsa.core import VSA_FIELDS, PanelDict, frame_arrays, frame_result, math_report, start_bar_math
from utils.demo_patterns import Arrays, draw_bar, draw_trend
from utils.strategy_spec import BOTH, Param, Strategy

MAX_WINDOW = 1000  # longest window a tuned variant may ask for
MAX_PREV_CLOSE_RANGE = 1000.0  # percent of the previous bar's range


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


def start_bar_panel(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, **overrides: float
) -> PanelDict:
    """Start bar on an (n, k) panel (spec 3); arctan_ratio is reported as 0.0 (spec 9.2)."""
    return math_report(h, l, c, v, start_bar_math(o, h, l, c, v, {**get_params(), **overrides}))


def start_bar_vsa(df: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Start bar over a frame (spec 3); ``result["arctan_ratio"]`` is NaN on every bar."""
    return frame_result(df.index, start_bar_math(*frame_arrays(df), get_params()))


def demo_plant(a: Arrays, t: int) -> None:
    """Small dip, then an up bar clearing the previous range on rising volume."""
    draw_trend(a, t - 5, t, -0.006, wick=0.006)
    a["volume"][t - 1] = 0.9
    draw_bar(a, t, 0.016, 0.002, 0.003, 1.15)


def _param(name: str, default: int) -> Param:
    if name in ("lookback", "volume_lookback"):
        return Param(name, default, 1, MAX_WINDOW)
    if name == "prev_close_range":
        return Param(name, float(default), 0.0, MAX_PREV_CLOSE_RANGE)
    return Param(name, float(default), 0.0, 100.0)


STRATEGY = Strategy(
    name="start_bar",
    title="Start Bar",
    channel="start_trend",
    bars=BOTH,
    min_bars=30,
    panel=start_bar_panel,
    kind="vsa",
    direction="up",
    alert_fields=VSA_FIELDS,
    params=tuple(_param(name, value) for name, value in get_params().items()),
    demo_plant=demo_plant,
)
