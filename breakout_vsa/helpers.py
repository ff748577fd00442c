"""Vectorised indicator building blocks on (n, k) panels: n bars (oldest first) x k symbols.

Every function takes float64 arrays of shape (n, k) (1-D arrays are accepted and treated as one
column) and returns arrays of the same shape, with NaN where a value is undefined (spec 1.2, 1.3).
Values at row t depend only on rows <= t: nothing here looks ahead.

The rolling windows (MEAN, SD, Q, MAX, MIN) are pandas' own rolling kernels, bit for bit (spec 1.2:
a hand-made formula can flip a knife-edge bar). For speed the panel is flattened column by column
into one long series and rolled once with window bounds that restart at every column, so pandas runs
its C kernel once per panel instead of once per symbol; the kernels restart their running sums at
each column start exactly as they do at the start of a single series, so each column is identical
to ``pd.Series(column).rolling(N)``.

Building a ``Series.rolling`` object costs about 0.2 ms (validation, signature inspection), more
than the kernel itself on a 256-symbol panel, and a full scan makes tens of thousands of such calls.
So the panel is handed straight to the kernels ``Series.rolling`` dispatches to (the same
``pandas._libs.window.aggregations`` functions, with the same inf-to-NaN preparation and the same
clipped square root for SD). That module is not public API: when it is missing or its signatures
change, ``_rolling`` falls back to ``Series.rolling`` with the same window bounds, and
``tests/test_vsa_properties.py`` pins both paths to ``DataFrame.rolling``, bit for bit.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

try:  # the kernels behind Series.rolling; see the module docstring
    from pandas._libs.window import aggregations as _kernels
except ImportError:  # pragma: no cover - depends on the installed pandas
    _kernels = None

__all__ = [
    "as_panel",
    "shift",
    "rolling_mean",
    "rolling_std",
    "rolling_quantile",
    "rolling_max",
    "rolling_min",
    "wma",
    "spread",
    "close_position",
    "close_off_low",
    "momentum",
    "up_bar",
    "down_bar",
    "new_high_bar",
    "new_low_bar",
    "outside_bar",
    "inside_bar",
    "count_prior_below",
    "count_prior_above",
    "v1_low",
    "v1_high",
    "v1_macro_low",
    "v1_macro_high",
    "v2_macro_low",
    "v2_macro_high",
    "breakout_close",
    "arctan_ratio",
    "high_breakout",
    "percentile_rank",
    "mean_ratio",
    "new_occurrence",
]


def as_panel(a: np.ndarray) -> np.ndarray:
    """``a`` as a 2-D float64 array (a 1-D input becomes one column); no copy when already so."""
    arr = np.asarray(a, dtype=np.float64)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def shift(a: np.ndarray, k: int, fill: float | bool = np.nan) -> np.ndarray:
    """``x[t-k]`` for every row (k >= 0): the first k rows get ``fill`` (NaN, or False for bools)."""
    arr = np.asarray(a)
    out = np.empty(arr.shape, dtype=np.result_type(arr.dtype, np.asarray(fill).dtype))
    n = arr.shape[0]
    k = min(k, n)
    out[:k] = fill
    out[k:] = arr[: n - k]
    return out


class _ColumnWindows(BaseIndexer):
    """Trailing windows of ``size`` rows over a column-major flattened panel, restarting per column."""

    def __init__(self, start: np.ndarray, end: np.ndarray) -> None:
        super().__init__()
        self._start = start
        self._end = end

    def get_window_bounds(  # type: ignore[no-untyped-def, override]
        self, num_values=0, min_periods=None, center=None, closed=None, step=None
    ):
        return self._start, self._end


@lru_cache(maxsize=64)
def _bounds(n: int, k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(n * k, dtype=np.int64)
    column_start = (i // n) * n
    start = np.maximum(column_start, i - size + 1)
    return start, i + 1


def _rolling_public(flat: np.ndarray, start: np.ndarray, end: np.ndarray, size: int, stat: str, q: float) -> np.ndarray:
    """The statistic through ``Series.rolling`` (the reference the kernel path must equal)."""
    roller = pd.Series(flat).rolling(_ColumnWindows(start, end), min_periods=size)
    if stat == "quantile":
        return roller.quantile(q, interpolation="linear").to_numpy()
    if stat == "std":
        return roller.std(ddof=1).to_numpy()
    return getattr(roller, stat)().to_numpy()


def _rolling_kernel(flat: np.ndarray, start: np.ndarray, end: np.ndarray, size: int, stat: str, q: float) -> np.ndarray:
    """The statistic straight from the kernels ``Series.rolling`` calls, prepared as it prepares them."""
    values = np.where(np.isinf(flat), np.nan, flat)
    with np.errstate(all="ignore"):
        if stat == "mean":
            return np.asarray(_kernels.roll_mean(values, start, end, size))
        if stat == "std":
            var = np.asarray(_kernels.roll_var(values, start, end, size, ddof=1))
            out = np.sqrt(var)
            out[var < 0] = 0
            return out
        if stat == "quantile" and 0.0 < q < 1.0:
            return np.asarray(
                _kernels.roll_quantile(values, start, end, size, quantile=q, interpolation="linear")
            )
        name = "roll_min" if stat == "min" or (stat == "quantile" and q == 0.0) else "roll_max"
        return np.asarray(getattr(_kernels, name)(values, start, end, size))


def _rolling(a: np.ndarray, size: int, stat: str, q: float = 0.5, kernel: bool = True) -> np.ndarray:
    """One pandas rolling statistic over every column of ``a``, NaN until ``size`` bars exist.

    ``kernel=False`` forces the ``Series.rolling`` path (used to check the kernel path).
    """
    arr = np.asarray(a, dtype=np.float64)
    panel = as_panel(arr)
    n, k = panel.shape
    if n == 0 or k == 0:
        return np.full(arr.shape, np.nan)
    size = int(size)
    start, end = _bounds(n, k, size)
    flat = np.ravel(panel, order="F")
    out = None
    if kernel and _kernels is not None:
        try:
            out = _rolling_kernel(flat, start, end, size, stat, q)
        except (AttributeError, TypeError):  # pragma: no cover - a pandas whose kernels changed
            out = None
    if out is None:
        out = _rolling_public(flat, start, end, size, stat, q)
    return out.reshape(k, n).T.reshape(arr.shape)


def rolling_mean(a: np.ndarray, n: int) -> np.ndarray:
    """MEAN_n(x)[t] over x[t-n+1..t] (spec 1.2), pandas ``rolling(n).mean()`` per column."""
    return _rolling(a, n, "mean")


def rolling_std(a: np.ndarray, n: int) -> np.ndarray:
    """SD_n(x)[t], the sample standard deviation (ddof=1, spec D6), pandas ``rolling(n).std()``."""
    return _rolling(a, n, "std")


def rolling_quantile(a: np.ndarray, n: int, q: float) -> np.ndarray:
    """Q_n(x, q)[t] with linear interpolation (spec 1.2, D6), pandas ``rolling(n).quantile(q)``."""
    return _rolling(a, n, "quantile", q)


def rolling_max(a: np.ndarray, n: int) -> np.ndarray:
    """MAX_n(x)[t], the largest of x[t-n+1..t]; NaN before n bars or with an undefined value."""
    return _rolling(a, n, "max")


def rolling_min(a: np.ndarray, n: int) -> np.ndarray:
    """MIN_n(x)[t], the smallest of x[t-n+1..t]; NaN before n bars or with an undefined value."""
    return _rolling(a, n, "min")


def wma(a: np.ndarray, n: int) -> np.ndarray:
    """WMA_n(x)[t] = sum_{j=1..n} j*x[t-n+j] / (n(n+1)/2): newest bar weight n (spec 1.2).

    Undefined (NaN) before n bars or when the window holds an undefined value.
    """
    arr = np.asarray(a, dtype=np.float64)
    total = np.zeros_like(arr)
    for weight in range(1, n + 1):
        total += weight * shift(arr, n - weight)
    return total / (n * (n + 1) / 2)


def spread(h: np.ndarray, l: np.ndarray) -> np.ndarray:
    """The bar range r = h - l (spec 1.4)."""
    return np.asarray(h, dtype=np.float64) - np.asarray(l, dtype=np.float64)


def close_position(h: np.ndarray, l: np.ndarray, c: np.ndarray) -> np.ndarray:
    """CP = (c - l) / r, and 0 on a zero-range bar (spec 1.4, D5)."""
    r = spread(h, l)
    with np.errstate(divide="ignore", invalid="ignore"):
        cp = (np.asarray(c, dtype=np.float64) - l) / r
    return np.where(r != 0, cp, 0.0)


def close_off_low(h: np.ndarray, l: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Reported close off low in percent: 100*(c - l)/r when r > 0, else 0 (spec 9.2)."""
    r = spread(h, l)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100 * (np.asarray(c, dtype=np.float64) - l) / r
    return np.where(r > 0, pct, 0.0)


def momentum(c: np.ndarray) -> np.ndarray:
    """m[t] = |c[t] - c[t-1]|, undefined at t = 0 (spec 2.2)."""
    return np.abs(np.asarray(c, dtype=np.float64) - shift(c, 1))


def up_bar(c: np.ndarray) -> np.ndarray:
    """Close above the previous close (the engine's up bar, spec 1.4); false at t = 0."""
    return np.asarray(c) > shift(c, 1)


def down_bar(c: np.ndarray) -> np.ndarray:
    """Close below the previous close (the engine's down bar, spec 1.4); false at t = 0."""
    return np.asarray(c) < shift(c, 1)


def new_high_bar(h: np.ndarray, l: np.ndarray) -> np.ndarray:
    """h[t] > h[t-1] and l[t] >= l[t-1] (spec 1.4); false at t = 0."""
    return (np.asarray(h) > shift(h, 1)) & (np.asarray(l) >= shift(l, 1))


def new_low_bar(h: np.ndarray, l: np.ndarray) -> np.ndarray:
    """l[t] < l[t-1] and h[t] <= h[t-1] (spec 1.4); false at t = 0."""
    return (np.asarray(l) < shift(l, 1)) & (np.asarray(h) <= shift(h, 1))


def outside_bar(h: np.ndarray, l: np.ndarray) -> np.ndarray:
    """h[t] > h[t-1] and l[t] < l[t-1] (spec 1.4); false at t = 0."""
    return (np.asarray(h) > shift(h, 1)) & (np.asarray(l) < shift(l, 1))


def inside_bar(h: np.ndarray, l: np.ndarray) -> np.ndarray:
    """h[t] < h[t-1] and l[t] > l[t-1] (spec 1.4); false at t = 0."""
    return (np.asarray(h) < shift(h, 1)) & (np.asarray(l) > shift(l, 1))


def _count_prior(x: np.ndarray, lookbacks: tuple[int, ...], above: bool) -> dict[int, np.ndarray]:
    """Per lookback N: #{k in 1..N : x[t] > x[t-k]} (or < when ``above``), 0 for t < N.

    One pass over k = 1..max(N), comparing whole arrays against shifted slices (no per-bar loop).
    """
    arr = np.asarray(x, dtype=np.float64)
    n = arr.shape[0]
    counts = np.zeros(arr.shape, dtype=np.int32)
    out: dict[int, np.ndarray] = {}
    for k in range(1, max(lookbacks) + 1):
        if k < n:
            hit = arr[k:] < arr[:-k] if above else arr[k:] > arr[:-k]
            counts[k:] += hit
        if k in lookbacks:
            snapshot = counts.copy()
            snapshot[: min(k, n)] = 0
            out[k] = snapshot
    return out


def count_prior_below(l: np.ndarray, n: int) -> np.ndarray:
    """CL_n[t]: how many of the previous n lows are strictly below l[t]; 0 for t < n (spec 2.5)."""
    return _count_prior(l, (n,), above=False)[n]


def count_prior_above(h: np.ndarray, n: int) -> np.ndarray:
    """CH_n[t]: how many of the previous n highs are strictly above h[t]; 0 for t < n (spec 2.5)."""
    return _count_prior(h, (n,), above=True)[n]


def _v2_macro(x: np.ndarray, lookbacks: tuple[int, int, int], percentile: float, above: bool) -> np.ndarray:
    counts = _count_prior(x, tuple(lookbacks), above=above)
    ok = np.ones(np.shape(x), dtype=bool)
    for n in lookbacks:
        ok &= 100 * counts[n] / n <= percentile
    return ok


def v2_macro_low(l: np.ndarray, lookbacks: tuple[int, int, int], percentile: float) -> np.ndarray:
    """V2 (count based) macro low: 100*CL_N/N <= P2 at all three lookbacks (spec 2.5).

    Vacuously true for t < N of every lookback (first-lookback rule, kept as is).
    """
    return _v2_macro(l, lookbacks, percentile, above=False)


def v2_macro_high(h: np.ndarray, lookbacks: tuple[int, int, int], percentile: float) -> np.ndarray:
    """V2 (count based) macro high: 100*CH_N/N <= P2 at all three lookbacks (spec 2.5)."""
    return _v2_macro(h, lookbacks, percentile, above=True)


def v1_low(l: np.ndarray, n: int, percentile: float) -> np.ndarray:
    """low_N: l[t] <= MIN_N(l)[t]*(1 + P/100); false in warm-up, always true when P == 100 (2.5)."""
    if percentile == 100:
        return np.ones(np.shape(l), dtype=bool)
    return np.asarray(l) <= rolling_min(l, n) * (1 + percentile / 100)


def v1_high(h: np.ndarray, n: int, percentile: float) -> np.ndarray:
    """high_N: h[t] >= MAX_N(h)[t]*(1 - P/100); false in warm-up, always true when P == 100 (2.5)."""
    if percentile == 100:
        return np.ones(np.shape(h), dtype=bool)
    return np.asarray(h) >= rolling_max(h, n) * (1 - percentile / 100)


def v1_macro_low(l: np.ndarray, lookbacks: tuple[int, int, int], percentile: float) -> np.ndarray:
    """V1 (price based) macro low: low_N at all three lookbacks (spec 2.5)."""
    ok = np.ones(np.shape(l), dtype=bool)
    for n in lookbacks:
        ok &= v1_low(l, n, percentile)
    return ok


def v1_macro_high(h: np.ndarray, lookbacks: tuple[int, int, int], percentile: float) -> np.ndarray:
    """V1 (price based) macro high: high_N at all three lookbacks (spec 2.5)."""
    ok = np.ones(np.shape(h), dtype=bool)
    for n in lookbacks:
        ok &= v1_high(h, n, percentile)
    return ok


def breakout_close(c: np.ndarray, n: int, percent: float) -> np.ndarray:
    """c[t] >= HC - (HC - LC)*B/100 with HC/LC the n-bar highest/lowest close (spec 2.6)."""
    hc = rolling_max(c, n)
    lc = rolling_min(c, n)
    return np.asarray(c) >= hc - (hc - lc) * percent / 100


def arctan_ratio(h: np.ndarray, l: np.ndarray) -> np.ndarray:
    """AR = deg(atan(h - h[t-1])) / deg(atan(h[t-1] - l)); NaN at t = 0 or a zero denominator (2.7)."""
    h_prev = shift(h, 1)
    numerator = np.degrees(np.arctan(np.asarray(h, dtype=np.float64) - h_prev))
    denominator = np.degrees(np.arctan(h_prev - np.asarray(l, dtype=np.float64)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
    return np.where(denominator != 0, ratio, np.nan)


def high_breakout(c: np.ndarray, h: np.ndarray, lookback: int, count_percent: float) -> np.ndarray:
    """Close above the last two highs and above >= HP % of the HL highs before them (spec 2.8).

    False for t < HL + 2. The divisor of the percentage is HL.
    """
    close = np.asarray(c, dtype=np.float64)
    ok = (close > shift(h, 1)) & (close > shift(h, 2))
    count = np.zeros(close.shape, dtype=np.int32)
    for k in range(3, lookback + 3):
        count += close > shift(h, k)
    ok &= 100 * count / lookback >= count_percent
    ok[: min(lookback + 2, close.shape[0])] = False
    return ok


def percentile_rank(a: np.ndarray, n: int) -> np.ndarray:
    """PR_n(x)[t] = 100*#{j in t-n+1..t : x[j] <= x[t]}/n; NaN in warm-up or with NaN (spec 3)."""
    arr = np.asarray(a, dtype=np.float64)
    count = np.zeros(arr.shape)
    defined = np.ones(arr.shape, dtype=bool)
    for k in range(n):
        earlier = shift(arr, k)
        count += earlier <= arr
        defined &= ~np.isnan(earlier)
    return np.where(defined, 100 * count / n, np.nan)


def mean_ratio(v: np.ndarray, n: int) -> np.ndarray:
    """v[t] / MEAN_n(v)[t] (bar included), 0 when that mean is not > 0 or undefined (spec 9.2)."""
    mean = rolling_mean(v, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(v, dtype=np.float64) / mean
    return np.where(mean > 0, ratio, 0.0)


def new_occurrence(pattern: np.ndarray) -> np.ndarray:
    """pattern[t] and not pattern[t-1], pattern[-1] counting as false (spec 3, 4)."""
    pattern = np.asarray(pattern, dtype=bool)
    return pattern & ~shift(pattern, 1, fill=False)


OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


def frame_arrays(df: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """(o, h, l, c, v) of a frame as float64 (n, 1) copies; ``ValueError`` naming a missing column.

    The one conversion from the seed's DataFrame call shape to the panel cores (spec 1.1), used by
    the VSA and the custom detectors' wrappers alike.
    """
    for column in OHLCV_COLUMNS:
        if column not in df.columns:
            raise ValueError(f"input frame has no {column!r} column (required: {', '.join(OHLCV_COLUMNS)})")
    return tuple(df[column].to_numpy(dtype=np.float64, copy=True).reshape(-1, 1) for column in OHLCV_COLUMNS)
