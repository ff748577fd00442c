"""Pin down (spec section 7): a close below the low of a bearish top within three bars after it.

The latest bearish top is a forward-filled row index, so the whole series is one pass of array
operations; the signal is the change of state from "not pinned" to "pinned".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_vsa.helpers import inside_bar, new_occurrence, outside_bar, rolling_max, rolling_min, shift
from custom_strategies._frame import evaluated_row, frame_panel, hit_metrics, series_frame
from custom_strategies._windows import last_true_index, partial_max, partial_mean
from utils.demo_patterns import Arrays, draw_bar, draw_trend
from utils.strategy_spec import CLOSED_ONLY, COMMON_FIELDS, Strategy

MIN_ROWS = 5  # the seed's frame-length guard (evaluated bar second to last)
SPAN_BARS = 3  # A3: high-low span of bars t-2 ... t
WICK_TO_BODY = 0.85  # bearish candle: upper wick at least 0.85 of the body
TOP_LOOKBACK = 50  # 50-bar highest close / high, partial window at the start
MAX_DISTANCE = 3  # the close below the top's low must come within 3 bars
RATIO_BARS = 8  # volume_ratio divides by the mean of up to 8 previous bars
NO_TOP = -1  # bearishtop_dist where no bearish top exists yet
METRICS: tuple[str, ...] = (
    "close", "high", "low", "volume_ratio", "bearishtop_dist", "high_wick_ratio", "bearish_candle",
    "volume_usd",
)


def _bearish_top(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TOP[t], the bearish candle flag BC[t] and the high wick ratio of spec 7."""
    top = np.maximum(o, c)
    body = np.abs(o - c)
    upper_wick = h - top
    lower_wick = np.minimum(o, c) - l
    span = rolling_max(h, SPAN_BARS) - rolling_min(l, SPAN_BARS)
    with np.errstate(invalid="ignore", divide="ignore"):
        bearish = ((upper_wick >= WICK_TO_BODY * body) & (upper_wick > lower_wick)) | (
            upper_wick > top - l
        )
        is_top = (
            bearish
            & (h > partial_max(c, TOP_LOOKBACK))
            & ((h - c) < span)
            & (np.abs(h - partial_max(h, TOP_LOOKBACK)) < span)
            & ~inside_bar(h, l)
            & ((h - c) > (c - l))
        )
        wick_ratio = np.where(body > 0, upper_wick / np.where(body > 0, body, np.nan), 0.0)
    return is_top, bearish, wick_ratio


def _pinned(h: np.ndarray, l: np.ndarray, c: np.ndarray, is_top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PD[t] and t - tau(t) (``NO_TOP`` before the first bearish top)."""
    tau = last_true_index(is_top)
    exists = tau >= 0
    rows = np.arange(c.shape[0], dtype=np.int64).reshape(-1, 1)
    distance = np.where(exists, rows - tau, NO_TOP)
    top_low = np.take_along_axis(l, np.maximum(tau, 0), axis=0)
    with np.errstate(invalid="ignore"):
        pinned = exists & (c < top_low) & (distance <= MAX_DISTANCE) & ~outside_bar(h, l)
    return pinned, distance


def pin_down_panel(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-bar pin down signal (bar t as the last closed bar) and metrics, (n, k) arrays (spec 7)."""
    is_top, bearish, wick_ratio = _bearish_top(o, h, l, c)
    pinned, distance = _pinned(h, l, c, is_top)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = v / shift(partial_mean(v, RATIO_BARS), 1)
    return {
        "signal": new_occurrence(pinned),
        "close": c.copy(),
        "high": h.copy(),
        "low": l.copy(),
        "volume_ratio": ratio,
        "bearishtop_dist": distance,
        "high_wick_ratio": wick_ratio,
        "bearish_candle": bearish,
        "volume_usd": v * c,
    }


def pin_down_series(df: pd.DataFrame) -> pd.DataFrame:
    """Whole-series view of one frame: ``signal`` plus the metric columns, indexed like ``df``."""
    return series_frame(df.index, pin_down_panel(*frame_panel(df)))


def detect_pin_down(df: pd.DataFrame, check_bar: int = -2) -> tuple[bool, dict]:
    """Seed call shape: does row ``check_bar`` start a pin down? Empty dict on no hit.

    Frames shorter than 5 rows give no signal (D1 guard).
    """
    panel = frame_panel(df)
    row = evaluated_row(len(df), check_bar)
    if row is None or len(df) < MIN_ROWS:
        return False, {}
    arrays = pin_down_panel(*panel)
    if not arrays["signal"][row, 0]:
        return False, {}
    result: dict[str, object] = {"date": df.index[row]}
    result.update(hit_metrics(arrays, row, METRICS, current=False))
    return True, result


def demo_plant(a: Arrays, t: int) -> None:
    """A rally to a shooting-star top, then a close below the top's low."""
    draw_trend(a, t - 15, t - 1, 0.012)
    draw_bar(a, t - 1, 0.002, 0.0, 0.004, 1.3)
    a["high"][t - 1] = a["open"][t - 1] * 1.04
    o = a["close"][t - 1]
    a["open"][t], a["high"][t] = o, o * 1.001
    a["close"][t] = a["low"][t - 1] * 0.99
    a["low"][t] = a["close"][t] * 0.997
    a["volume"][t] = 1.2


STRATEGY = Strategy(
    name="pin_down",
    title="Pin Down Detection",
    channel="weakening_trend",
    bars=CLOSED_ONLY,
    min_bars=MIN_ROWS,
    panel=pin_down_panel,
    direction="down",
    alert_fields=COMMON_FIELDS + (("Bearish-top distance", "bearishtop_dist", "bars"),),
    demo_plant=demo_plant,
)
