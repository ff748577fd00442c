"""Weak uptrend (spec section 6, D13): weakness in an uptrend, four of five weaknesses, W3 among them.

The weaknesses are looked for in bars t-4 ... t; W4 and W5 compare those bars with the 20 bars before
them (t-24 ... t-5). The uptrend test needs the close above a rising 20-bar mean and the 20-bar high
inside the five bars. The panel core computes every bar at once for k symbols; ``detect_weak_uptrend``
is the seed's call shape over it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_vsa.helpers import rolling_max, rolling_mean, rolling_std, shift
from custom_strategies._frame import evaluated_row, frame_panel, hit_metrics, series_frame
from custom_strategies._windows import any_recent, partial_mean
from utils.demo_patterns import Arrays, draw_bar, draw_trend
from utils.strategy_spec import CLOSED_ONLY, Param, Strategy

MIN_WEAKNESSES = 4
MIN_ROWS = 26  # frame guard: evaluated bar second to last, t >= 24 (D13)
FIRST_BAR = 24  # the 20-bar baseline before the 5-bar window must exist
WINDOW = 5  # bars t-4 ... t
BASELINE = 20  # W4 / W5 baseline t-24 ... t-5, and the uptrend's 20-bar mean and high
RECENT = 4  # W1, W2 and W3 part 3 look at j in t-3 ... t
MOMENTUM_RECENT = 3  # W3 parts 1 and 2 look at j in t-2 ... t
NO_EXPANSION = 1.1  # W2: s[j] <= 1.1 * s[j-1]
SMALL_GAIN = 0.25  # W3 part 3: a gain of at most a quarter of the previous spread
OUTLIER_STD = 2.0  # W4 / W5: above the baseline's mean + 2 SD
LOW_CLOSE = 0.75  # W5: close position at most 0.75
RATIO_BARS = 8  # volume_ratio divides by the mean of up to 8 previous bars
WEAKNESSES: tuple[str, ...] = ("W1", "W2", "W3", "W4", "W5")
METRICS: tuple[str, ...] = ("close", "volume_usd", "volume_ratio", "total_patterns", *WEAKNESSES)


def _outlier_in_window(x: np.ndarray, also: np.ndarray | None = None) -> np.ndarray:
    """True at t when some j in t-4 ... t has x[j] > mean + 2 SD of x over t-24 ... t-5 (and ``also[j]``)."""
    threshold = shift(rolling_mean(x, BASELINE) + OUTLIER_STD * rolling_std(x, BASELINE), WINDOW)
    out = np.zeros(x.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for lag in range(WINDOW):
            hit = shift(x, lag) > threshold
            if also is not None:
                hit &= shift(also, lag, fill=False)
            out |= hit
    return out


def _uptrend(h: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Close above a rising 20-bar mean, and the 20-bar high made inside the last five bars (D13)."""
    mean = rolling_mean(c, BASELINE)
    with np.errstate(invalid="ignore"):
        return (c > mean) & (mean > shift(mean, WINDOW)) & (rolling_max(h, WINDOW) == rolling_max(h, BASELINE))


def _weaknesses(h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """W1 ... W5 of spec 6 at every bar (before the t >= 24 rule)."""
    s = h - l
    c1, c2, h1, v1, s1 = shift(c, 1), shift(c, 2), shift(h, 1), shift(v, 1), shift(s, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        up = c > c1
        step, prev_step = c - c1, c1 - c2
        w1_bar = up & (h > h1) & (v < v1)
        w2_bar = up & (s <= NO_EXPANSION * s1)
        slowing_rise = up & (c1 > c2) & (step < prev_step)
        failed_high = (c < c1) & (h > h1) & (np.abs(step) < np.abs(prev_step))
        small_gain = up & (step <= SMALL_GAIN * s1)
        closes_low = (s > 0) & ((c - l) / np.where(s > 0, s, np.nan) <= LOW_CLOSE)
    return {
        "W1": any_recent(w1_bar, RECENT),
        "W2": any_recent(w2_bar, RECENT),
        "W3": any_recent(slowing_rise | failed_high, MOMENTUM_RECENT) | any_recent(small_gain, RECENT),
        "W4": _outlier_in_window(v),
        "W5": _outlier_in_window(s, also=closes_low),
    }


def weak_uptrend_panel(
    o: np.ndarray,
    h: np.ndarray,
    l: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    *,
    min_weaknesses: int = MIN_WEAKNESSES,
) -> dict[str, np.ndarray]:
    """Per-bar weak uptrend signal (bar t as the last closed bar) and metrics, (n, k) arrays (spec 6)."""
    flags = _weaknesses(h, l, c, v)
    total = np.sum([flags[name] for name in WEAKNESSES], axis=0, dtype=np.int64)
    eligible = (np.arange(c.shape[0]) >= FIRST_BAR).reshape(-1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = v / shift(partial_mean(v, RATIO_BARS), 1)
    return {
        "signal": eligible & _uptrend(h, c) & flags["W3"] & (total >= min_weaknesses),
        "close": c.copy(),
        "volume_usd": v * c,
        "volume_ratio": ratio,
        "total_patterns": total,
        **flags,
    }


def weak_uptrend_series(df: pd.DataFrame, min_weaknesses: int = MIN_WEAKNESSES) -> pd.DataFrame:
    """Whole-series view of one frame: ``signal`` plus the metric columns, indexed like ``df``."""
    return series_frame(df.index, weak_uptrend_panel(*frame_panel(df), min_weaknesses=min_weaknesses))


def detect_weak_uptrend(
    df: pd.DataFrame, min_weaknesses: int = MIN_WEAKNESSES, check_bar: int = -2
) -> tuple[bool, dict]:
    """Seed call shape: is row ``check_bar`` a weak uptrend bar? Empty dict on no hit.

    Frames shorter than 26 rows give no signal (D13 guard).
    """
    panel = frame_panel(df)
    row = evaluated_row(len(df), check_bar)
    if row is None or len(df) < MIN_ROWS:
        return False, {}
    arrays = weak_uptrend_panel(*panel, min_weaknesses=min_weaknesses)
    if not arrays["signal"][row, 0]:
        return False, {}
    result: dict[str, object] = {"date": df.index[row]}
    result.update(hit_metrics(arrays, row, METRICS, current=False))
    return True, result


def demo_plant(a: Arrays, t: int) -> None:
    """A steady rally to new highs, a climactic volume bar, then higher up bars on falling volume
    whose gains shrink (W1-W4, in an uptrend; D13)."""
    draw_trend(a, t - 30, t - 4, 0.012, wick=0.003)
    steps, volumes = (0.012, 0.010, 0.008, 0.006, 0.003), (1.2, 3.5, 2.5, 1.8, 1.3)
    for k, (step, volume) in enumerate(zip(steps, volumes)):
        draw_bar(a, t - 4 + k, step, 0.003, 0.003, volume)


STRATEGY = Strategy(
    name="weak_uptrend",
    title="Weak Uptrend Detection",
    channel="weakening_trend",
    bars=CLOSED_ONLY,
    min_bars=MIN_ROWS,
    panel=weak_uptrend_panel,
    direction="down",
    alert_fields=(
        ("Close", "close", "price"),
        ("USD volume", "volume_usd", "usd"),
        ("Weakness count", "total_patterns", "int"),
        ("Weaknesses", WEAKNESSES, "flags"),
    ),
    flag_labels={
        "W1": "W1 lower volume on a higher up bar",
        "W2": "W2 no spread expansion",
        "W3": "W3 momentum loss",
        "W4": "W4 climactic volume",
        "W5": "W5 wide bar closing low",
    },
    params=(Param("min_weaknesses", MIN_WEAKNESSES, 1, len(WEAKNESSES)),),
    demo_plant=demo_plant,
)
