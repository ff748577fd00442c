"""Candles in compact form: two read-only numpy arrays instead of a DataFrame.

The candle cache keeps thousands of markets' candles through a scan. As DataFrames each one is some
thirty objects the garbage collector walks at every full collection (about 0.5 us each, so tens of
milliseconds of stalled event loop per 2,000 markets); numpy arrays of numbers are not tracked at
all. A frame is built on demand, and a scan hands the arrays straight to the analysis worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from utils.timeframes import OHLCV_COLUMNS, ohlcv_only

UTC_MS = pd.DatetimeTZDtype("ms", "UTC")


def ohlcv_frame(stamps: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """The normalised OHLCV frame of UTC millisecond open times and (rows, 5) float64 values."""
    index = pd.DatetimeIndex(np.asarray(stamps, dtype=np.int64).astype("datetime64[ms]"), dtype=UTC_MS,
                             name="timestamp")
    return pd.DataFrame(np.array(values, dtype=np.float64), columns=list(OHLCV_COLUMNS), index=index)


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
