"""Sudden volume surge (spec section 5): volume above a 65-bar mean + 4 SD band.

The panel core computes every bar at once for k symbols side by side; ``detect_volume_surge`` is the
seed's call shape over it and ``volume_surge_series`` the whole-series view of one frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_vsa.helpers import rolling_mean, rolling_std, shift
from custom_strategies._frame import evaluated_row, frame_panel, hit_metrics, series_frame
from custom_strategies._windows import partial_max, partial_min
from utils.demo_patterns import Arrays, draw_bar
from utils.strategy_spec import BOTH, COMMON_FIELDS, Param, Strategy

LOOKBACK = 65
STD_DEV = 4.0
ALPHA = 1.5  # weight of the part of the close beyond the previous bar's range in the score
EXTREME_LOOKBACK = 50  # bars before t whose high/low define a new high/low (D11)
RATIO_BARS = 10  # bars in the mean volume of volume_ratio
# Indexed by extreme (0 none, 1 new high, 2 new low) + 3 * (black candle).
EXTREME_LABELS = np.array(
    [
        f"{colour}{suffix}"
        for colour in ("White candle", "Black candle")
        for suffix in ("", " - new high", " - new low")
    ],
    dtype=object,
)
METRICS: tuple[str, ...] = ("volume", "volume_usd", "volume_ratio", "close_price", "score", "price_extreme")
MAX_LOOKBACK = 1000  # longest band a tuned variant may ask for
MAX_STD_DEV = 20.0


def _score(h: np.ndarray, l: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Spec 5 score: range expansion times close position, plus where the close sits against bar t-1."""
    r = h - l
    hp, lp, cp, rp = shift(h, 1), shift(l, 1), shift(c, 1), shift(r, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(
            c < lp,
            -1.0 + ALPHA * (c - lp) / rp,
            np.where(c > hp, 1.0 + ALPHA * (c - hp) / rp, (c - cp) / rp),
        )
        score = (r / rp) * (2.0 * (c - l) / r - 1.0) + rel
    return np.where((rp == 0) | (r == 0), 0.0, score)


def _price_extreme(h: np.ndarray, l: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Spec 5 label: candle colour, plus "new high"/"new low" against the 50 bars before t."""
    prior_high = shift(partial_max(h, EXTREME_LOOKBACK), 1)
    prior_low = shift(partial_min(l, EXTREME_LOOKBACK), 1)
    with np.errstate(invalid="ignore"):
        white = c > shift(c, 1)
        extreme = np.where(h > prior_high, 1, np.where(l < prior_low, 2, 0))
    return EXTREME_LABELS[extreme + 3 * ~white]


def volume_surge_panel(
    o: np.ndarray,
    h: np.ndarray,
    l: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    *,
    lookback_period: int = LOOKBACK,
    std_dev: float = STD_DEV,
) -> dict[str, np.ndarray]:
    """Per-bar volume surge signal and metrics for (n, k) OHLCV arrays (spec 5).

    ``signal`` is the same whether bar t is the last closed or the forming bar; only the volume
    ratio differs, so it comes as ``volume_ratio`` (closed) and ``volume_ratio_current``.
    """
    band = rolling_mean(v, lookback_period) + std_dev * rolling_std(v, lookback_period)
    with np.errstate(invalid="ignore"):
        signal = v > band
    mean_before = rolling_mean(v, RATIO_BARS)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_closed = v / shift(mean_before, 1)
        ratio_current = v / shift(mean_before, 2)
    return {
        "signal": signal,
        "volume": v.copy(),
        "volume_usd": v * c,
        "volume_ratio": ratio_closed,
        "volume_ratio_current": ratio_current,
        "close_price": c.copy(),
        "score": _score(h, l, c),
        "price_extreme": _price_extreme(h, l, c),
    }


def volume_surge_series(
    df: pd.DataFrame, lookback_period: int = LOOKBACK, std_dev: float = STD_DEV
) -> pd.DataFrame:
    """Whole-series view of one frame: ``signal`` plus the metric columns, indexed like ``df``."""
    arrays = volume_surge_panel(*frame_panel(df), lookback_period=lookback_period, std_dev=std_dev)
    return series_frame(df.index, arrays)


def detect_volume_surge(
    df: pd.DataFrame, lookback_period: int = LOOKBACK, std_dev: float = STD_DEV, check_bar: int = -2
) -> tuple[bool, dict]:
    """Seed call shape: does row ``check_bar`` show a volume surge? Empty dict on no hit.

    Frames shorter than ``lookback_period`` rows (65) give no signal (D1 guard). ``check_bar=-1``
    means the forming bar, whose volume ratio skips the last closed bar.
    """
    panel = frame_panel(df)
    row = evaluated_row(len(df), check_bar)
    if row is None or len(df) < lookback_period:
        return False, {}
    arrays = volume_surge_panel(*panel, lookback_period=lookback_period, std_dev=std_dev)
    if not arrays["signal"][row, 0]:
        return False, {}
    result: dict[str, object] = {"timestamp": df.index[row]}
    result.update(hit_metrics(arrays, row, METRICS, current=check_bar == -1))
    return True, result


def demo_plant(a: Arrays, t: int) -> None:
    """An up bar on eight times the usual volume."""
    draw_bar(a, t, 0.015, 0.003, 0.003, 8.0)


STRATEGY = Strategy(
    name="volume_surge",
    title="Sudden Volume Surge",
    channel="volume_surge",
    bars=BOTH,
    min_bars=LOOKBACK + 1,
    panel=volume_surge_panel,
    direction="up",
    alert_fields=COMMON_FIELDS + (("Score", "score", "ratio"), ("Price extreme", "price_extreme", "text")),
    params=(Param("lookback_period", LOOKBACK, 2, MAX_LOOKBACK), Param("std_dev", STD_DEV, 0.0, MAX_STD_DEV)),
    demo_plant=demo_plant,
)
