"""The six scan timeframes as data, and the aggregation of daily bars into multi-day bars.

Generic: no exchange code. 2d, 3d and 4d bars (and 1w bars when built locally) come from daily
bars with fixed anchors, labelled by the period's start (strategies spec section 10, D9). The
depth of every fetch derives from one constant, ``SCAN_BARS`` (spec section 9.4).

Bar boundaries (``last_close``, ``next_close``, ``closes_between``, ``closed_bar_label``) follow the
same definitions: 4h bars every four hours from 00:00 UTC, 1d at 00:00 UTC, 2d/3d/4d from their
anchors, 1w on Monday 00:00 UTC. A bar labelled L of length P closes at L + P, the instant the next
bar opens, so a boundary is at once a close and an open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
import pandas as pd

# Bars of each timeframe a scan wants. The deepest warm-up in spec 9.4 is volume surge's: 66 rows
# for its last closed bar to be checkable; 100 covers every detector with room to spare.
SCAN_BARS = 100

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
NATIVE_INTERVALS: tuple[str, ...] = ("4h", "1d", "1w")
ONE_DAY = pd.Timedelta(days=1)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
FOUR_HOURS_MS = 4 * HOUR_MS
EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class Timeframe:
    """One scan timeframe.

    ``native`` is the interval fetched from an exchange. ``period_days`` is the bar length in days
    for timeframes that can be built from daily bars (1 for 1d itself, None for 4h); ``anchor`` is
    the start of period 0 (spec section 10) for the aggregated ones.
    """

    name: str
    native: str
    period_days: int | None
    anchor: pd.Timestamp | None
    bars: int = SCAN_BARS

    @property
    def daily_based(self) -> bool:
        """True when this timeframe can be built from daily bars (1d, 2d, 3d, 4d, 1w)."""
        return self.period_days is not None

    @property
    def aggregated(self) -> bool:
        """True when a bar spans several daily bars (2d, 3d, 4d, 1w)."""
        return self.period_days is not None and self.period_days > 1

    def __hash__(self) -> int:
        """The name's hash: equal timeframes share a name, and the cached planning functions look
        a timeframe up for every symbol (the generated hash rehashed every field, a Timestamp too)."""
        return hash(self.name)


def _utc(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


TIMEFRAME_NAMES: tuple[str, ...] = ("1w", "4d", "3d", "2d", "1d", "4h")
TIMEFRAMES: dict[str, Timeframe] = {
    "1w": Timeframe("1w", "1w", 7, _utc("2025-03-17")),  # a Monday: weeks open Monday 00:00 UTC
    "4d": Timeframe("4d", "1d", 4, _utc("2025-03-22")),
    "3d": Timeframe("3d", "1d", 3, _utc("2025-03-20")),
    "2d": Timeframe("2d", "1d", 2, _utc("2025-03-20")),
    "1d": Timeframe("1d", "1d", 1, None),
    "4h": Timeframe("4h", "4h", None, None),
}


def get_timeframe(name: str | Timeframe) -> Timeframe:
    """The timeframe called ``name``; ``ValueError`` listing the valid names otherwise."""
    if isinstance(name, Timeframe):
        return name
    try:
        return TIMEFRAMES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown timeframe {name!r}; valid timeframes: {', '.join(TIMEFRAME_NAMES)}"
        ) from None


def daily_bars_needed(timeframe: str | Timeframe) -> int:
    """Daily bars to fetch for ``bars`` full periods plus the forming one (``bars`` for 1d)."""
    tf = get_timeframe(timeframe)
    if not tf.daily_based:
        raise ValueError(f"timeframe {tf.name!r} is not built from daily bars")
    if tf.period_days == 1:
        return tf.bars
    return tf.period_days * tf.bars + tf.period_days - 1


def empty_ohlcv(unit: str = "ms") -> pd.DataFrame:
    """An OHLCV frame with no rows and the normalised layout."""
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit(unit)
    return pd.DataFrame({col: pd.Series(dtype="float64") for col in OHLCV_COLUMNS}, index=index)


def ohlcv_only(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the OHLCV columns in order (the frame itself when it already is)."""
    return frame if tuple(frame.columns) == OHLCV_COLUMNS else frame.loc[:, list(OHLCV_COLUMNS)]


def aggregate_daily(daily: pd.DataFrame, timeframe: str | Timeframe) -> pd.DataFrame:
    """Multi-day bars from daily bars, exactly as spec section 10 (D9) builds them.

    A daily bar on UTC date d belongs to period p = floor((d - anchor) / k days); each period takes
    the first open, max high, min low, last close and summed volume, and is labelled anchor + p*k
    days. An incomplete leading period (cut off by the fetch depth) is dropped unless it is also
    the last one; the trailing period is kept even when incomplete (it is the forming bar).
    """
    tf = get_timeframe(timeframe)
    if not tf.daily_based:
        raise ValueError(f"timeframe {tf.name!r} is not built from daily bars")
    index = daily.index
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    if index.tz is None:
        index = index.tz_localize("UTC")
    unit = index.unit if len(index) else "ms"
    if len(daily) == 0:
        return empty_ohlcv(unit).rename_axis(daily.index.name)
    if tf.period_days == 1:
        frame = ohlcv_only(daily)  # a new frame object either way: the caller's is never changed
        return frame.copy(deep=False) if (frame.dtypes == "float64").all() else frame.astype("float64")

    values = ohlcv_only(daily).to_numpy(dtype="float64", copy=False)
    label_ms, out = aggregate_arrays(index.as_unit("ms").asi8, values, tf)
    stamps = label_ms.astype("datetime64[ms]").astype(f"datetime64[{unit}]")
    labels = pd.DatetimeIndex(stamps, dtype=pd.DatetimeTZDtype(unit, "UTC"), name=daily.index.name)
    return pd.DataFrame(out, columns=list(OHLCV_COLUMNS), index=labels, copy=False)


def aggregate_arrays(
    stamps_ms: np.ndarray, values: np.ndarray, timeframe: str | Timeframe
) -> tuple[np.ndarray, np.ndarray]:
    """``aggregate_daily`` on arrays: daily open times (UTC ms, ascending) and (rows, 5) OHLCV values
    in, period labels (UTC ms) and the multi-day OHLCV rows out. No DataFrame is built."""
    label_ms, out, _ = aggregate_segments(stamps_ms, values, np.array([len(stamps_ms)]), timeframe)
    return label_ms, out


def aggregate_segments(
    stamps_ms: np.ndarray, values: np.ndarray, lengths: np.ndarray, timeframe: str | Timeframe
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``aggregate_arrays`` of many markets at once: their daily rows one after another, ``lengths``
    rows each, in; each market's multi-day rows one after another and their counts out.

    Every market is aggregated on its own (a period never spans two markets; each drops its own
    incomplete leading period), with the same numpy reductions over the same rows as one call per
    market, so the numbers are identical; the per-market Python work is gone (a scan's analysis
    batch aggregates 256 markets in one call).
    """
    tf = get_timeframe(timeframe)
    if not tf.aggregated:
        raise ValueError(f"timeframe {tf.name!r} is not aggregated from daily bars")
    lengths = np.asarray(lengths, dtype=np.int64)
    rows = len(stamps_ms)
    if rows == 0:
        return np.empty(0, dtype=np.int64), np.empty((0, len(OHLCV_COLUMNS))), np.zeros(len(lengths), np.int64)
    k = tf.period_days
    anchor = _anchor_day(tf)
    # Whole days since the epoch from milliseconds (floor division also normalises intraday opens).
    days = np.asarray(stamps_ms, dtype=np.int64) // DAY_MS
    period = np.floor_divide(days - anchor, k)
    market_starts = np.cumsum(lengths) - lengths
    change = np.empty(rows, dtype=bool)
    change[0] = True
    np.not_equal(period[1:], period[:-1], out=change[1:])
    change[market_starts[lengths > 0]] = True
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], rows) - 1
    counts = ends - starts + 1
    # Periods per market, and each market's first period: dropped when incomplete and not the only one.
    market_of = np.repeat(np.arange(len(lengths)), lengths)[starts]
    periods = np.bincount(market_of, minlength=len(lengths))
    first = np.cumsum(periods) - periods
    nonempty = periods > 0
    drop_at = first[nonempty][(periods[nonempty] > 1) & (counts[first[nonempty]] < k)]
    keep = np.ones(len(starts), dtype=bool)
    keep[drop_at] = False

    out = np.empty((len(starts), len(OHLCV_COLUMNS)))
    out[:, 0] = values[starts, 0]
    out[:, 1] = np.maximum.reduceat(values[:, 1], starts)
    out[:, 2] = np.minimum.reduceat(values[:, 2], starts)
    out[:, 3] = values[ends, 3]
    out[:, 4] = np.add.reduceat(values[:, 4], starts)
    label_ms = (anchor + period[starts] * k) * DAY_MS
    out_lengths = periods.copy()
    np.subtract.at(out_lengths, market_of[drop_at], 1)
    return label_ms[keep], out[keep], out_lengths


@lru_cache(maxsize=None)
def _anchor_day(tf: Timeframe) -> int:
    """Days from the epoch to the timeframe's anchor (period 0 starts there)."""
    assert tf.anchor is not None
    return int((tf.anchor - EPOCH) // ONE_DAY)


Instant = pd.Timestamp | datetime | str | int | float


def _instant_ms(at: Instant) -> int:
    """UTC epoch milliseconds of ``at``: a timestamp (naive ones are UTC) or epoch seconds."""
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return int(np.floor(float(at) * 1000))
    stamp = pd.Timestamp(at)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value) // 1_000_000  # .value is nanoseconds whatever the resolution


def _stamp(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def bar_period(timeframe: str | Timeframe) -> pd.Timedelta:
    """How long one bar of ``timeframe`` lasts (4 hours, or ``period_days`` days)."""
    return pd.Timedelta(milliseconds=_grid(get_timeframe(timeframe))[1])


@lru_cache(maxsize=None)
def _grid(tf: Timeframe) -> tuple[int, int]:
    """(a bar boundary, the bar length), both in UTC ms: the lattice every bar opens and closes on."""
    if tf.period_days is None:
        return 0, FOUR_HOURS_MS  # 4h bars open at 00, 04, ... 20 UTC
    anchor = _anchor_day(tf) * DAY_MS if tf.aggregated else 0
    return anchor, tf.period_days * DAY_MS


def last_close(timeframe: str | Timeframe, at: Instant) -> pd.Timestamp:
    """The latest bar boundary at or before ``at``: when the last closed bar closed (and the
    forming bar opened)."""
    anchor, period = _grid(get_timeframe(timeframe))
    return _stamp(anchor + (_instant_ms(at) - anchor) // period * period)


def next_close(timeframe: str | Timeframe, at: Instant) -> pd.Timestamp:
    """The first bar boundary strictly after ``at``: when the bar forming at ``at`` closes."""
    return last_close(timeframe, at) + bar_period(timeframe)


def closed_bar_label(timeframe: str | Timeframe, close: Instant) -> pd.Timestamp:
    """The label (open time) of the bar that closes at the boundary ``close``."""
    return last_close(timeframe, close) - bar_period(timeframe)


def closes_between(timeframe: str | Timeframe, start: Instant, end: Instant) -> list[pd.Timestamp]:
    """Every bar boundary in ``(start, end]``, oldest first."""
    anchor, period = _grid(get_timeframe(timeframe))
    first = anchor + ((_instant_ms(start) - anchor) // period + 1) * period
    last = anchor + (_instant_ms(end) - anchor) // period * period
    return [_stamp(ms) for ms in range(first, last + 1, period)]
