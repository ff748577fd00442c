"""Confluence (spec section 8): high volume, a spread breakout and a momentum breakout on one bar.

Every part is an array expression over (n, k) panels: the bar classes, the same-class volume
comparisons (lags 1-3 and a forward-filled index of the last opposite-class bar), and the context
range (a width-9 sliding window with a per-bar mask, spec 8.4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_vsa.helpers import (
    close_off_low,
    close_position,
    mean_ratio,
    rolling_max,
    rolling_mean,
    rolling_std,
    shift,
    wma,
)
from custom_strategies._frame import evaluated_row, frame_panel, hit_metrics, series_frame
from custom_strategies._windows import last_true_index
from utils.demo_patterns import Arrays, draw_bar
from utils.strategy_spec import BOTH, COMMON_FIELDS, Param, Strategy

DOJI_THRESHOLD = 5.0  # percent close-to-close change still counted as doji-like (8.1)
CTX_LEN = 7
RANGE_FLOOR = 0.10
LEN_FAST, LEN_MID, LEN_SLOW = 7, 13, 21
MIN_ROWS = 23  # the seed's frame-length guard
CLOSED_FIRST_BAR = MIN_ROWS - 2  # bar t as the second-to-last row of a 23-row frame
CURRENT_FIRST_BAR = MIN_ROWS - 1  # bar t as the last row
HALF = 0.5  # share of the way to the high (low) an up (down) close must cover (8.1)
BROAD_BARS = 3  # BR compares with the same-class bars among t-3 ... t-1
EXTREME_STD = 3.0
EXTREME_RATIO = 3.0
CLOSE_POSITION_MIN = 0.7
SPREAD_TOLERANCE = 0.95
RANGE_MAX_BARS = 3
RATIO_BARS = 7  # volume_ratio = v / MEAN_7(v)
UP, DOWN, NONE = 1, -1, 0
MAX_LENGTH = 500  # longest WMA / context window a tuned variant may ask for
COMPONENTS: tuple[str, ...] = ("high_volume", "spread_breakout", "momentum_breakout")
METRICS: tuple[str, ...] = (
    "close_price", "volume", "volume_usd", "volume_ratio", "close_off_low", "bar_range", "momentum_score",
    "high_volume", "spread_breakout", "momentum_breakout",
)  # plus current_bar, which depends only on how the bar is evaluated


def _bar_class(h: np.ndarray, l: np.ndarray, c: np.ndarray, doji_threshold: float) -> np.ndarray:
    """U / D / none per bar as +1 / -1 / 0 (8.1); bar 0 is none."""
    c1 = shift(c, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        doji = 100.0 * np.abs(c - c1) / np.maximum(c, c1) <= doji_threshold
        lean = (c - l) - (h - c)
        by_shadows = np.where(lean > 0, UP, np.where(lean < 0, DOWN, NONE))
        rising = np.where(c - c1 >= HALF * (h - c1), UP, DOWN)
        falling = np.where(c1 - c >= HALF * (c1 - l), DOWN, NONE)
        by_move = np.where(c > c1, rising, np.where(c < c1, falling, NONE))
    return np.where(doji, by_shadows, by_move).astype(np.int8)


def _high_volume(
    v: np.ndarray, cls: np.ndarray, len_fast: int, len_mid: int, len_slow: int
) -> np.ndarray:
    """HV = (SV or AHV or BR or LR) and not EXT (8.2)."""
    rows = np.arange(v.shape[0]).reshape(-1, 1)
    classed = cls != NONE
    prev_same = shift(cls, 1, fill=NONE) == cls
    with np.errstate(invalid="ignore", divide="ignore"):
        local = classed & (v > np.where(prev_same, shift(v, 1), 0.0))
        same_total = np.zeros_like(v)
        same_count = np.zeros(v.shape, dtype=np.int64)
        for k in range(BROAD_BARS, 0, -1):  # oldest first, as the mean of S adds them
            same = shift(cls, k, fill=NONE) == cls
            same_total = same_total + np.where(same, shift(v, k), 0.0)
            same_count += same
        broad = classed & (rows >= BROAD_BARS) & (same_count > 0) & (v > same_total / same_count)
        last_up = shift(last_true_index(cls == UP), 1, fill=-1)
        last_down = shift(last_true_index(cls == DOWN), 1, fill=-1)
        opposite = np.where(cls == UP, last_down, last_up)
        opposite_volume = np.take_along_axis(v, np.maximum(opposite, 0), axis=0)
        serious = broad & (opposite >= 0) & (v > opposite_volume)
        slow_mean = rolling_mean(v, len_slow)
        absolute = (v > rolling_mean(v, len_fast)) & (v > rolling_mean(v, len_mid)) & (v > slow_mean)
        extreme = (v > slow_mean + EXTREME_STD * rolling_std(v, len_slow)) & (v / slow_mean > EXTREME_RATIO)
    return (serious | absolute | broad | local) & ~extreme


def _beats_wmas(x: np.ndarray, scale: float, lengths: tuple[int, ...]) -> np.ndarray:
    """x > scale * WMA_N(x) for every N in ``lengths``; false where a WMA is undefined."""
    out = np.ones(x.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for n in lengths:
            out &= x > scale * wma(x, n)
    return out


def _context(h: np.ndarray, l: np.ndarray, ctx_len: int) -> tuple[np.ndarray, np.ndarray]:
    """ctxHi and ctxLo of 8.4 (NaN for t < ctx_len), from one width ctx_len+2 window per bar.

    Window position w holds bar t - ctx_len - 1 + w. The widest of the previous ctx_len bars (most
    recent on a tie) at lag i* gives the span w >= i*; with no positive range, the span is
    w <= ctx_len - 1 (bars up to t-2, the padding standing in for bars before 0).
    """
    n, k = h.shape
    if n == 0:
        return np.full(h.shape, np.nan), np.full(h.shape, np.nan)
    width = ctx_len + 2
    h_win = np.lib.stride_tricks.sliding_window_view(
        np.vstack([np.full((width - 1, k), -np.inf), h]), width, axis=0
    )
    l_win = np.lib.stride_tricks.sliding_window_view(
        np.vstack([np.full((width - 1, k), np.inf), l]), width, axis=0
    )
    previous = (h_win - l_win)[..., ctx_len:0:-1]  # lag 1, 2, ..., ctx_len; padding is -inf
    previous = np.where(np.isnan(previous), -np.inf, previous)
    lag = np.argmax(previous, axis=-1) + 1
    widest = np.max(previous, axis=-1, initial=-np.inf)
    position = np.arange(width)
    span = np.where((widest > 0)[..., None], position >= lag[..., None], position <= ctx_len - 1)
    ctx_hi = np.max(h_win, axis=-1, where=span, initial=-np.inf)
    ctx_lo = np.min(l_win, axis=-1, where=span, initial=np.inf)
    early = (np.arange(n) < ctx_len).reshape(-1, 1)
    return np.where(early, np.nan, ctx_hi), np.where(early, np.nan, ctx_lo)


def _score(
    h: np.ndarray, l: np.ndarray, c: np.ndarray, ctx_len: int, range_floor: float
) -> np.ndarray:
    """score = RF * PG * PL * PP (8.5)."""
    r = h - l
    ctx_hi, ctx_lo = _context(h, l, ctx_len)
    ctx_range = ctx_hi - ctx_lo
    h1, l1 = shift(h, 1), shift(l, 1)
    r1 = h1 - l1
    with np.errstate(divide="ignore", invalid="ignore"):
        has_ctx = ctx_range > 0
        range_factor = np.where(has_ctx, np.maximum(r / ctx_range, range_floor), range_floor)
        global_pos = np.where(has_ctx, (2.0 * (c - (ctx_hi + ctx_lo) / 2.0) / ctx_range) ** 2, 0.0)
        local_pos = np.where(r != 0, ((c - l) / r) ** 2, np.nan)
        prev_pos = np.where(r1 > 0, (c - (h1 + l1) / 2.0) / r1, 0.0)
        prev_factor = 1.0 + 0.5 * np.sqrt(np.abs(prev_pos)) * np.sign(prev_pos)
    return range_factor * global_pos * local_pos * prev_factor


def _confluence_raw(
    h: np.ndarray,
    l: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    doji_threshold: float,
    ctx_len: int,
    range_floor: float,
    lengths: tuple[int, int, int],
) -> dict[str, np.ndarray]:
    """Signal before the 23-row guard, and the metrics (8.2-8.7)."""
    r = h - l
    high_volume = _high_volume(v, _bar_class(h, l, c, doji_threshold), *lengths)
    with np.errstate(invalid="ignore"):
        spread = (close_position(h, l, c) > CLOSE_POSITION_MIN) & _beats_wmas(r, SPREAD_TOLERANCE, lengths)
        spread &= r >= rolling_max(r, RANGE_MAX_BARS)
        score = _score(h, l, c, ctx_len, range_floor)
        momentum = (c > shift(c, 1)) & _beats_wmas(score, 1.0, lengths)
    return {
        "signal": high_volume & spread & momentum,
        "close_price": c.copy(),
        "volume": v.copy(),
        "volume_usd": v * c,
        "volume_ratio": mean_ratio(v, RATIO_BARS),
        "close_off_low": close_off_low(h, l, c),
        "bar_range": r,
        "momentum_score": score,
        "high_volume": high_volume,
        "spread_breakout": spread,
        "momentum_breakout": momentum,
    }


def confluence_panel(
    o: np.ndarray,
    h: np.ndarray,
    l: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    *,
    doji_threshold: float = DOJI_THRESHOLD,
    ctx_len: int = CTX_LEN,
    range_floor: float = RANGE_FLOOR,
    len_fast: int = LEN_FAST,
    len_mid: int = LEN_MID,
    len_slow: int = LEN_SLOW,
) -> dict[str, np.ndarray]:
    """Per-bar confluence signal and metrics for (n, k) arrays (spec 8).

    ``signal`` is bar t as the last closed bar (t >= 21), ``signal_current`` as the forming bar
    (t >= 22): the seed's 23-row guard seen per bar. ``current_bar`` / ``current_bar_current`` are
    the two values of that metric.
    """
    out = _confluence_raw(h, l, c, v, doji_threshold, ctx_len, range_floor, (len_fast, len_mid, len_slow))
    rows = np.arange(c.shape[0]).reshape(-1, 1)
    raw = out["signal"]
    out["signal"] = raw & (rows >= CLOSED_FIRST_BAR)
    out["signal_current"] = raw & (rows >= CURRENT_FIRST_BAR)
    out["current_bar"] = np.zeros(c.shape, dtype=bool)
    out["current_bar_current"] = np.ones(c.shape, dtype=bool)
    return out


def confluence_series(
    df: pd.DataFrame,
    doji_threshold: float = DOJI_THRESHOLD,
    ctx_len: int = CTX_LEN,
    range_floor: float = RANGE_FLOOR,
    len_fast: int = LEN_FAST,
    len_mid: int = LEN_MID,
    len_slow: int = LEN_SLOW,
) -> pd.DataFrame:
    """Whole-series view of one frame: ``signal``, ``signal_current`` and the metric columns."""
    arrays = confluence_panel(
        *frame_panel(df), doji_threshold=doji_threshold, ctx_len=ctx_len, range_floor=range_floor,
        len_fast=len_fast, len_mid=len_mid, len_slow=len_slow,
    )
    return series_frame(df.index, arrays)


def detect_confluence(
    df: pd.DataFrame,
    doji_threshold: float = DOJI_THRESHOLD,
    ctx_len: int = CTX_LEN,
    range_floor: float = RANGE_FLOOR,
    len_fast: int = LEN_FAST,
    len_mid: int = LEN_MID,
    len_slow: int = LEN_SLOW,
    check_bar: int = -1,
) -> tuple[bool, dict]:
    """Seed call shape: is row ``check_bar`` (default: the forming bar) a confluence bar?

    Frames shorter than 23 rows give no signal (D1 guard). Empty dict on no hit.
    """
    o, h, l, c, v = frame_panel(df)
    row = evaluated_row(len(df), check_bar)
    if row is None or len(df) < MIN_ROWS:
        return False, {}
    arrays = _confluence_raw(h, l, c, v, doji_threshold, ctx_len, range_floor, (len_fast, len_mid, len_slow))
    if not arrays["signal"][row, 0]:
        return False, {}
    stamp = df.index[row]
    result: dict[str, object] = {"timestamp": stamp, "date": stamp.strftime("%Y-%m-%d %H:%M:%S")}
    result.update(hit_metrics(arrays, row, METRICS, current=False))
    result["current_bar"] = check_bar == -1
    return True, result


def demo_plant(a: Arrays, t: int) -> None:
    """A wide up bar out of a quiet range, closing at its high on more volume."""
    draw_bar(a, t, 0.035, 0.002, 0.003, 1.6)


STRATEGY = Strategy(
    name="confluence",
    title="Confluence Signal",
    channel="confluence",
    bars=BOTH,
    min_bars=MIN_ROWS,
    panel=confluence_panel,
    direction="up",
    alert_fields=COMMON_FIELDS
    + (
        ("Close off low", "close_off_low", "pct"),
        ("Momentum score", "momentum_score", "ratio"),
        ("Components", COMPONENTS, "flags"),
    ),
    flag_labels={"high_volume": "high volume", "spread_breakout": "spread breakout",
                 "momentum_breakout": "momentum breakout"},
    params=(
        Param("doji_threshold", DOJI_THRESHOLD, 0.0, 100.0),
        Param("ctx_len", CTX_LEN, 1, MAX_LENGTH),
        Param("range_floor", RANGE_FLOOR, 0.0, 1.0),
        Param("len_fast", LEN_FAST, 1, MAX_LENGTH),
        Param("len_mid", LEN_MID, 1, MAX_LENGTH),
        Param("len_slow", LEN_SLOW, 1, MAX_LENGTH),
    ),
    demo_plant=demo_plant,
)
