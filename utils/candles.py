"""Candles in compact form: two read-only numpy arrays instead of a DataFrame.

The candle cache keeps thousands of markets' candles through a scan. As DataFrames each one is some
thirty objects the garbage collector walks at every full collection (about 0.5 us each, so tens of
milliseconds of stalled event loop per 2,000 markets); numpy arrays of numbers are not tracked at
all. A frame is built on demand, and a scan hands the arrays straight to the analysis worker.

The exchange clients parse pages straight into these arrays (``parse_candles``, ``fetch_candles``),
and the candle sanity rules (``check_candles``) and the sort/de-duplicate rule (``tidy_order``) live
here once: the parser and the worker's ``clean_frame`` both apply them. ``Source`` says how a scan
timeframe's bars derive from native candles; it lives here, beside the arrays, so that the analysis
process, which receives it with every batch, loads it without the exchange clients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from utils.timeframes import OHLCV_COLUMNS, Timeframe, aggregate_segments, ohlcv_only

UTC_MS = pd.DatetimeTZDtype("ms", "UTC")
LAST_OPEN_MS = 7_258_118_400_000  # 2200-01-01: a later open time is garbage, not a candle

# Kinds of CandleProblem, in the order check_candles looks for them.
BAD_TIME = "missing or non-numeric open time"
BAD_VALUE = "missing, non-numeric or negative value"
INVERTED = "high below low"
TIME_OUT_OF_RANGE = "open time out of range"


@dataclass(frozen=True)
class CandleProblem:
    """The first thing wrong with a set of candles (``check_candles``), for its caller's message.

    ``kind`` is one of the constants above; ``row`` and ``column`` (0-4, OHLCV) locate the first bad
    cell (``column`` -1 when the row's open time is at fault); ``reason`` is the one-line summary the
    scanner reports for a skipped market (``BAD_VALUE`` split into missing vs negative values).
    """

    kind: str
    row: int
    column: int
    reason: str


def _bad_values(values: np.ndarray) -> np.ndarray:
    """Cells that are missing, not numeric or negative."""
    return ~np.isfinite(values) | (values < 0)


def _inverted(values: np.ndarray) -> np.ndarray:
    """Rows whose high is below their low."""
    return values[:, 1] < values[:, 2]


def faulty_rows(values: np.ndarray) -> np.ndarray:
    """Rows ``check_candles`` rejects for their values (a bad value, high below low): the same rules,
    as a mask, for many markets' rows at once."""
    return _bad_values(values).any(axis=1) | _inverted(values)


def check_candles(values: np.ndarray, opens_ms: np.ndarray | None = None) -> CandleProblem | None:
    """The candle sanity rules, the one place they live: open times finite and within 1970..2200 (when
    ``opens_ms`` is given, float or int UTC ms), every value finite and not negative, high >= low.

    Zero volume passes (the scanner decides). Returns None for sane candles, else the first problem in
    the order: open time missing, bad value, high < low, open time out of range.
    """
    if opens_ms is not None and not np.isfinite(opens_ms).all():
        row = int(np.flatnonzero(~np.isfinite(opens_ms))[0])
        return CandleProblem(BAD_TIME, row, -1, "candles with a missing or non-numeric open time")
    bad = _bad_values(values)
    if bad.any():
        row, column = map(int, np.argwhere(bad)[0])
        missing = not np.isfinite(values).all()
        reason = "candles with missing or non-numeric values" if missing else "candles with negative values"
        return CandleProblem(BAD_VALUE, row, column, reason)
    inverted = _inverted(values)
    if inverted.any():
        return CandleProblem(INVERTED, int(np.flatnonzero(inverted)[0]), 1, "candles with high below low")
    if opens_ms is not None:
        outside = ~((opens_ms >= 0) & (opens_ms < LAST_OPEN_MS))
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            return CandleProblem(TIME_OUT_OF_RANGE, row, -1, "candles with an open time out of range")
    return None


def tidy_order(stamps: np.ndarray) -> np.ndarray | None:
    """Positions that put candles oldest first and keep only the last of rows sharing an open time
    (an exchange's later row is its newer word on that bar); None when they already are so."""
    stamps = np.asarray(stamps)
    if len(stamps) < 2 or bool((stamps[1:] > stamps[:-1]).all()):
        return None
    order = np.argsort(stamps, kind="stable")
    ordered = stamps[order]
    last_of_run = np.append(ordered[1:] != ordered[:-1], True)
    return order[last_of_run]


def tidy(stamps: np.ndarray, values: np.ndarray) -> Candles:
    """Read-only candles of open times (UTC ms) and (rows, 5) values, oldest first, open times unique
    (``tidy_order``). The arrays are taken over, not copied: pass new ones."""
    order = tidy_order(stamps)
    stamps = np.ascontiguousarray(stamps if order is None else stamps[order], dtype=np.int64)
    values = np.ascontiguousarray(values if order is None else values[order], dtype=np.float64)
    values = values.reshape(-1, len(OHLCV_COLUMNS))
    stamps.flags.writeable = False
    values.flags.writeable = False
    return Candles(stamps, values)


def empty_candles() -> Candles:
    """Candles of a market without any."""
    return tidy(np.empty(0, dtype=np.int64), np.empty((0, len(OHLCV_COLUMNS)), dtype=np.float64))


def ohlcv_index(stamps: np.ndarray) -> pd.DatetimeIndex:
    """The index of an OHLCV frame (``ohlcv_frame``) of UTC millisecond open times."""
    return pd.DatetimeIndex(np.asarray(stamps, dtype=np.int64).astype("datetime64[ms]"), dtype=UTC_MS,
                            name="timestamp")


def ohlcv_label(stamp_ms: int) -> pd.Timestamp:
    """The label ``ohlcv_index`` gives one open time (same value, ms unit and zone), without an index."""
    return pd.Timestamp(np.datetime64(int(stamp_ms), "ms"), tz="UTC")


def ohlcv_frame(stamps: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """The normalised OHLCV frame of UTC millisecond open times and (rows, 5) float64 values."""
    return pd.DataFrame(np.array(values, dtype=np.float64), columns=list(OHLCV_COLUMNS), index=ohlcv_index(stamps))


@dataclass(frozen=True, eq=False)
class Candles:
    """One market's native candles, oldest first: open times (UTC ms) and OHLCV rows."""

    stamps: np.ndarray  # int64, shape (n,)
    values: np.ndarray  # float64, shape (n, 5)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Candles:
        """The arrays of an OHLCV frame with a UTC DatetimeIndex (copied, then made read-only)."""
        stamps = np.array(pd.DatetimeIndex(frame.index).as_unit("ms").asi8, dtype=np.int64)
        values = ohlcv_only(frame).to_numpy(dtype=np.float64, copy=True)
        stamps.flags.writeable = False
        values.flags.writeable = False
        return cls(stamps, values)

    def __len__(self) -> int:
        return len(self.stamps)

    def tail(self, rows: int) -> Candles:
        """The last ``rows`` candles (all of them when there are fewer); views, no copy."""
        if len(self.stamps) <= rows:
            return self
        start = len(self.stamps) - max(rows, 0)
        return Candles(self.stamps[start:], self.values[start:])

    def frame(self) -> pd.DataFrame:
        """A new OHLCV frame of these candles; changing it leaves the arrays untouched."""
        return ohlcv_frame(self.stamps, self.values)


@dataclass(frozen=True)
class Source:
    """Where a timeframe's bars come from: the last ``depth`` bars of a native ``interval``,
    aggregated into the timeframe when ``aggregate`` (daily bars for 2d/3d/4d/1w)."""

    interval: str
    depth: int
    aggregate: bool = False

    def derive(self, native: Candles, timeframe: str | Timeframe) -> pd.DataFrame:
        """The timeframe's bars, a new frame, from the native candles (deeper rows are cut first)."""
        stamps, values, _ = self.derive_segments(native.stamps, native.values, np.array([len(native)]), timeframe)
        return ohlcv_frame(stamps, values)

    def derive_segments(
        self, stamps: np.ndarray, values: np.ndarray, lengths: np.ndarray, timeframe: str | Timeframe
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``derive`` for many markets at once, on arrays: each market's native rows one after another
        (``lengths`` rows each) in, its timeframe bars one after another and their counts out.

        The analysis worker derives a whole batch this way, without a frame or a Python step per market.
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        if len(lengths) and lengths.max() > self.depth:
            kept = np.minimum(lengths, self.depth)  # the last ``depth`` rows of each market
            keep = np.arange(len(stamps)) >= np.repeat(np.cumsum(lengths) - kept, lengths)
            stamps, values, lengths = stamps[keep], values[keep], kept
        if not self.aggregate:
            return stamps, values, lengths
        return aggregate_segments(stamps, values, lengths, timeframe)
