"""Signal quality, the pure part: what the bars after each signal did, against every bar (issue 16).

``quality_table`` takes closed bars already loaded (symbol -> OHLCV frame) and returns one row per
strategy x horizon. Each detector runs once per panel over the whole history (``Strategy.panel``:
``signal`` is bar t judged as the last closed bar, with no look-ahead), never once per bar.

Which bars count (spec 9.4 and 11):
- a signal is a bar t where the strategy's ``signal`` is true, t is at or after the strategy's first
  bar (``min_bars - 2``, its closed-bar warm-up), t is at or after ``since``, its close is positive,
  and its USD volume v[t]*c[t] passes the timeframe's volume filter (``utils.config.volume_threshold``);
- the baseline is every bar that meets the same conditions whatever the signal says, on the same
  symbols: signals are a subset of the baseline bars;
- a bar enters horizon k only when bar t+k exists (the last closed bar has no forward return);
  nothing is padded.

Panels are built from symbols of equal length only. Padding the front of a shorter history with
NaN changes signals of pin down (its partial 50-bar windows) and confluence (its row-count guard),
so the equal-length grouping of ``scanner.analysis`` is kept.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scanner.analysis import clean_frame
from scanner.main import validate_min_volume
from scanner.registry import Strategy, get_strategy, resolve_strategies
from utils.config import volume_threshold
from utils.timeframes import EPOCH, get_timeframe, ohlcv_only

HORIZONS: tuple[int, ...] = (1, 3, 5, 10)
MAX_HORIZON = 1000  # bars; a longer horizon leaves almost no signal measurable
BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
SYMBOL_CHUNK = 256  # symbols per panel call: bounds the memory of the detectors' metric arrays
BOOTSTRAP_MAX_DRAW = 10_000  # signals drawn per resample at most (m-out-of-n above it)
BOOTSTRAP_CHUNK = 250_000  # drawn signal indices held at once

# Column -> meaning, in output order. The README and the JSON export read this table.
COLUMNS: dict[str, str] = {
    "strategy": "strategy name",
    "timeframe": "timeframe of the bars",
    "exchange": "exchange",
    "horizon": "bars after the signal bar at which the move is measured",
    "direction": "the move the strategy expects: 'up', or 'down' (then every return, MFE and MAE "
    "below is sign-flipped so that positive means in the strategy's favour)",
    "symbols": "symbols analysed (cleaned, long enough)",
    "signals": "signal bars counted (in the period, after warm-up, volume filter passed at the bar)",
    "bars": "baseline bars: every bar meeting the same conditions, signal or not",
    "firing_rate_per_100": "signals per 100 baseline bars (how often the strategy fires)",
    "measured": "signals whose horizon lies within the history (later ones are left out, never padded)",
    "mean_return": "mean close-to-close return from the signal bar to the horizon, in its favour (fraction)",
    "median_return": "median of the same returns",
    "positive_share": "share of those returns above zero (in its favour)",
    "mean_mfe": "mean maximum favourable excursion within the horizon, from highs (lows for 'down'), "
    "relative to the signal bar's close",
    "mean_mae": "mean maximum adverse excursion within the horizon, from lows (highs for 'down'); "
    "negative = against the strategy",
    "baseline_bars": "baseline bars whose horizon lies within the history",
    "baseline_mean_return": "mean_return over the baseline bars (read in the same direction)",
    "baseline_median_return": "median_return over the baseline bars",
    "baseline_positive_share": "positive_share over the baseline bars",
    "baseline_mean_mfe": "mean_mfe over the baseline bars",
    "baseline_mean_mae": "mean_mae over the baseline bars",
    "edge": "mean_return - baseline_mean_return",
    "edge_low": f"lower end of the {CONFIDENCE:.0%} bootstrap interval of edge (resampling signals)",
    "edge_high": f"upper end of the {CONFIDENCE:.0%} bootstrap interval of edge",
}
COLUMN_NAMES: tuple[str, ...] = tuple(COLUMNS)
_MEASURES = ("return", "mfe", "mae")


def validate_horizons(horizons: str | int | Iterable[int] | None) -> tuple[int, ...]:
    """Comma list / ints -> sorted unique horizons in bars; ``ValueError`` naming the valid form."""
    hint = f"horizons must be whole numbers of bars from 1 to {MAX_HORIZON}, e.g. 1,3,5,10"
    if horizons is None:
        return HORIZONS
    if isinstance(horizons, str):
        items: list[Any] = [part.strip() for part in horizons.split(",") if part.strip()]
    elif isinstance(horizons, (int, np.integer)) and not isinstance(horizons, bool):
        items = [horizons]
    else:
        try:
            items = list(horizons)
        except TypeError:
            raise ValueError(f"{hint}; got {horizons!r}") from None
    out = {_horizon(item) for item in items}
    if not out or None in out:
        bad = next((item for item in items if _horizon(item) is None), None)
        raise ValueError(f"{hint}; got {bad!r}" if out else f"{hint}; got none")
    return tuple(sorted(out))  # type: ignore[arg-type]


def _horizon(item: Any) -> int | None:
    """``item`` as a horizon in bars, or None when it is not a whole number in range."""
    if isinstance(item, bool):
        return None
    if isinstance(item, str):
        value = int(item) if item.strip().isdigit() else None
    elif isinstance(item, (int, float, np.integer, np.floating)):
        value = int(item) if math.isfinite(item) and item == int(item) else None
    else:
        value = None
    return value if value is not None and 1 <= value <= MAX_HORIZON else None


def parse_since(since: str | pd.Timestamp | Any | None) -> pd.Timestamp | None:
    """A UTC timestamp (naive dates are read as UTC) or None; ``ValueError`` on anything else."""
    if since is None:
        return None
    try:
        stamp = pd.Timestamp(since)
    except (TypeError, ValueError):
        raise ValueError(f"since must be a date such as 2024-01-31 (UTC), got {since!r}") from None
    if stamp is pd.NaT:
        raise ValueError(f"since must be a date such as 2024-01-31 (UTC), got {since!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def first_bar(strategy: Strategy) -> int:
    """The first row a strategy can fire at as the last closed bar (its frame needs ``min_bars``
    rows including the forming one, spec 9.4)."""
    return max(strategy.min_bars - 2, 0)


def forward_moves(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, horizons: Sequence[int]
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per horizon k, for every bar t of (bars, symbols) arrays: the raw (up-reading) return
    c[t+k]/c[t]-1, and max(h[t+1..t+k])/c[t]-1 and min(l[t+1..t+k])/c[t]-1. NaN where bar t+k
    does not exist. One vectorised step per bar of the longest horizon, not per bar of history."""
    n = close.shape[0]
    top = np.full(close.shape, -np.inf)
    bottom = np.full(close.shape, np.inf)
    wanted = set(horizons)
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for step in range(1, max(horizons) + 1):
            if step < n:
                np.maximum(top[: n - step], high[step:], out=top[: n - step])
                np.minimum(bottom[: n - step], low[step:], out=bottom[: n - step])
            if step not in wanted:
                continue
            ret = np.full(close.shape, np.nan)
            if step < n:
                ret[: n - step] = close[step:] / close[: n - step] - 1.0
            mfe = top / close - 1.0
            mae = bottom / close - 1.0
            mfe[max(n - step, 0):] = np.nan
            mae[max(n - step, 0):] = np.nan
            out[step] = (ret, mfe, mae)
    return out


@dataclass
class BarTable:
    """Every bar that can count (in period, volume filter passed, positive close, past the earliest
    warm-up), one entry per bar: its row in its history, its raw forward moves per horizon, and per
    strategy 1 (fired), 0 (did not) or -1 (detector failed on that symbol). Filled chunk by chunk,
    then ``finish`` joins each column once."""

    rows: list[np.ndarray] = field(default_factory=list)
    moves: dict[tuple[int, str], list[np.ndarray]] = field(default_factory=dict)
    fired: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def finish(self) -> None:
        """Each column as one array (in place)."""
        self.rows = [_join(self.rows, np.int32)]
        self.moves = {key: [_join(parts, np.float64)] for key, parts in self.moves.items()}
        self.fired = {key: [_join(parts, np.int8)] for key, parts in self.fired.items()}

    def row(self) -> np.ndarray:
        return self.rows[0]

    def move(self, horizon: int, measure: str) -> np.ndarray:
        return self.moves.get((horizon, measure), [np.empty(0)])[0]

    def signal(self, strategy: str) -> np.ndarray:
        return self.fired.get(strategy, [np.empty(0, dtype=np.int8)])[0]


def _join(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _panel_arrays(frames: Sequence[pd.DataFrame]) -> tuple[list[np.ndarray], np.ndarray]:
    """Equal-length frames side by side: (bars, symbols) float64 OHLCV arrays and UTC ms stamps."""
    cube = np.stack([ohlcv_only(f).to_numpy(dtype="float64", copy=False) for f in frames], axis=1)
    stamps = np.stack([pd.DatetimeIndex(f.index).as_unit("ms").asi8 for f in frames], axis=1)
    return [np.ascontiguousarray(cube[:, :, i]) for i in range(cube.shape[2])], stamps


def _signals(strategy: Strategy, arrays: list[np.ndarray], errors: list[dict[str, str]],
             symbols: Sequence[str]) -> np.ndarray:
    """int8 (bars, symbols): 1 fired, 0 not, -1 where the detector raised on that symbol (retried
    symbol by symbol after a failure on the whole panel, as ``scanner.analysis`` does)."""
    try:
        return np.asarray(strategy.panel(*arrays)["signal"], dtype=bool).astype(np.int8)
    except Exception:
        out = np.full(arrays[0].shape, -1, dtype=np.int8)
        for col, symbol in enumerate(symbols):
            try:
                single = [np.ascontiguousarray(a[:, col : col + 1]) for a in arrays]
                out[:, col] = np.asarray(strategy.panel(*single)["signal"], dtype=bool)[:, 0]
            except Exception as exc:  # a detector bug costs only this symbol's result
                errors.append({"symbol": symbol, "strategy": strategy.name, "reason": repr(exc)})
        return out


def _collect(
    table: BarTable,
    frames: Sequence[pd.DataFrame],
    symbols: Sequence[str],
    strategies: Sequence[Strategy],
    horizons: Sequence[int],
    threshold: float,
    since_ms: int | None,
    errors: list[dict[str, str]],
    given: Mapping[str, Mapping[str, Any]],
) -> None:
    """Add one chunk of equal-length frames to ``table``: one panel call per strategy (or the
    signals ``given`` for it)."""
    (o, h, l, c, v), stamps = _panel_arrays(frames)
    rows = np.broadcast_to(np.arange(c.shape[0])[:, None], c.shape)
    with np.errstate(invalid="ignore"):
        keep = (v * c >= threshold) & (c > 0) & (rows >= min(first_bar(s) for s in strategies))
    if since_ms is not None:
        keep &= stamps >= since_ms
    table.rows.append(rows[keep].astype(np.int32))
    for k, measures in forward_moves(h, l, c, horizons).items():
        for name, values in zip(_MEASURES, measures):
            table.moves.setdefault((k, name), []).append(values[keep])
    for strategy in strategies:
        if strategy.name in given:
            fired = np.column_stack([_given(given[strategy.name], s, c.shape[0]) for s in symbols])
        else:
            fired = _signals(strategy, [o, h, l, c, v], errors, symbols)
        table.fired.setdefault(strategy.name, []).append(fired[keep])


def _given(by_symbol: Mapping[str, Any], symbol: str, rows: int) -> np.ndarray:
    """A precomputed signal column: one bool per row of the symbol's (cleaned) frame."""
    values = np.asarray(by_symbol.get(symbol, np.zeros(rows, dtype=bool)), dtype=bool)
    if values.shape != (rows,):
        raise ValueError(
            f"signals for {symbol!r} must have one value per bar ({rows}), got shape {values.shape}"
        )
    return values.astype(np.int8)


_STAT_NAMES = ("mean_return", "median_return", "positive_share", "mean_mfe", "mean_mae")


def _raw_stats(ret: np.ndarray, mfe: np.ndarray, mae: np.ndarray) -> dict[str, float]:
    """Up-reading mean and median return, shares above and below zero, mean excursions."""
    if len(ret) == 0:
        return dict.fromkeys(("mean", "median", "up", "down", "mfe", "mae"), math.nan)
    return {
        "mean": float(np.mean(ret)),
        "median": float(np.median(ret)),
        "up": float(np.mean(ret > 0)),
        "down": float(np.mean(ret < 0)),
        "mfe": float(np.mean(mfe)),
        "mae": float(np.mean(mae)),
    }


def _in_favour(raw: Mapping[str, float], direction: str) -> dict[str, float]:
    """``_raw_stats`` read in the strategy's favour. Exact: IEEE negation commutes with sums,
    means and medians, so this equals the statistics of the sign-flipped values."""
    if direction == "down":
        return dict(zip(_STAT_NAMES, (-raw["mean"], -raw["median"], raw["down"], -raw["mae"], -raw["mfe"])))
    return dict(zip(_STAT_NAMES, (raw["mean"], raw["median"], raw["up"], raw["mfe"], raw["mae"])))


def bootstrap_interval(
    values: np.ndarray,
    rng: np.random.Generator,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` over ``resamples`` resamples with replacement.

    Above ``BOOTSTRAP_MAX_DRAW`` values each resample draws that many (m of n) and its deviation
    from the full mean is scaled by sqrt(m/n), the m-out-of-n bootstrap: the same interval for a
    mean up to Monte-Carlo noise, at a bounded cost. NaN, NaN when ``values`` is empty.
    """
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    draw = min(n, BOOTSTRAP_MAX_DRAW)
    values = np.ascontiguousarray(values, dtype=np.float64)
    means = np.empty(resamples)
    per_chunk = max(1, BOOTSTRAP_CHUNK // draw)
    for start in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - start)
        means[start : start + count] = np.take(values, rng.integers(0, n, size=(count, draw))).mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = (float(q) for q in np.quantile(means, [tail, 1.0 - tail]))
    if draw == n:
        return low, high
    full, scale = float(np.mean(values)), math.sqrt(draw / n)
    return full + scale * (low - full), full + scale * (high - full)


def cell_rng(seed: int, *key: object) -> np.random.Generator:
    """A generator for one table cell: the same figures whichever other cells are computed."""
    return np.random.default_rng([int(seed), zlib.crc32("|".join(map(str, key)).encode())])


def _rows_for(
    table: BarTable, strategy: Strategy, horizons: Sequence[int], exchange: str, timeframe: str,
    symbols: int, seed: int, baselines: dict[tuple[int, int], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The strategy's rows. Baseline figures depend only on the strategy's first bar when its
    detector ran on every symbol, so ``baselines`` keeps them for the next strategy."""
    start = first_bar(strategy)
    fired = table.signal(strategy.name)
    complete = bool((fired >= 0).all())
    base = table.row() >= start
    if not complete:
        base &= fired >= 0
    signal = base & (fired == 1)
    n_signals, n_bars = int(signal.sum()), int(base.sum())
    sign = -1.0 if strategy.direction == "down" else 1.0
    out = []
    for k in horizons:
        ret, mfe, mae = (table.move(k, m) for m in _MEASURES)
        on_signal = signal & ~np.isnan(ret)
        sig = _raw_stats(ret[on_signal], mfe[on_signal], mae[on_signal])
        reference = baselines.get((start, k)) if complete else None
        if reference is None:
            on_base = base & ~np.isnan(ret)
            reference = {"bars": int(on_base.sum()), **_raw_stats(ret[on_base], mfe[on_base], mae[on_base])}
            if complete:
                baselines[(start, k)] = reference
        mine, ref = _in_favour(sig, strategy.direction), _in_favour(reference, strategy.direction)
        rng = cell_rng(seed, strategy.name, timeframe, exchange, k)
        low, high = bootstrap_interval(sign * ret[on_signal], rng)
        out.append({
            "strategy": strategy.name,
            "timeframe": timeframe,
            "exchange": exchange,
            "horizon": k,
            "direction": strategy.direction,
            "symbols": symbols,
            "signals": n_signals,
            "bars": n_bars,
            "firing_rate_per_100": 100.0 * n_signals / n_bars if n_bars else math.nan,
            "measured": int(on_signal.sum()),
            **mine,
            "baseline_bars": reference["bars"],
            **{f"baseline_{name}": value for name, value in ref.items()},
            "edge": mine["mean_return"] - ref["mean_return"],
            "edge_low": low - ref["mean_return"],
            "edge_high": high - ref["mean_return"],
        })
    return out


def empty_table() -> pd.DataFrame:
    """A quality table with the documented columns and no rows."""
    return pd.DataFrame({name: pd.Series(dtype="object") for name in COLUMN_NAMES})


def quality_table(
    frames: Mapping[str, pd.DataFrame],
    exchange: str,
    timeframe: str,
    strategies: str | Iterable[str],
    horizons: str | Iterable[int] | None = HORIZONS,
    min_volume_usd: float | None = None,
    since: str | pd.Timestamp | None = None,
    seed: int = 0,
    signals: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Signal quality of ``strategies`` on closed bars ``frames`` (symbol -> OHLCV frame, UTC index).

    ``signals`` (strategy -> symbol -> one bool per bar, a symbol left out never fires) replaces
    that strategy's detector: signals computed elsewhere, or known ones in tests.

    One row per strategy x horizon, columns ``COLUMN_NAMES`` (see ``COLUMNS``). The result does
    not depend on the order of ``frames``. Symbols whose candles are unusable are left out and
    listed in ``.attrs["skipped"]`` (symbol -> reason); detector failures in ``.attrs["errors"]``.
    Bad arguments raise ``ValueError`` naming the valid choices.
    """
    get_timeframe(timeframe)
    selected = [get_strategy(name) for name in resolve_strategies(strategies)]
    horizons = validate_horizons(horizons)
    threshold = volume_threshold(timeframe, validate_min_volume(min_volume_usd))
    start = parse_since(since)
    since_ms = None if start is None else -(-(start - EPOCH) // pd.Timedelta(milliseconds=1))
    seed = _validate_seed(seed)

    skipped: dict[str, str] = {}
    by_length: dict[int, list[tuple[str, pd.DataFrame]]] = {}
    for symbol in sorted(frames):
        frame, reason = clean_frame(frames[symbol])
        if reason:
            skipped[symbol] = reason
            continue
        by_length.setdefault(len(frame), []).append((symbol, frame))
    table = BarTable()
    errors: list[dict[str, str]] = []
    for length in sorted(by_length):
        group = by_length[length]
        for begin in range(0, len(group), SYMBOL_CHUNK):
            chunk = group[begin : begin + SYMBOL_CHUNK]
            _collect(table, [f for _, f in chunk], [s for s, _ in chunk], selected, horizons, threshold,
                     since_ms, errors, signals or {})
    table.finish()
    symbols = sum(len(group) for group in by_length.values())
    baselines: dict[tuple[int, int], dict[str, Any]] = {}
    rows = [row for s in selected
            for row in _rows_for(table, s, horizons, exchange, timeframe, symbols, seed, baselines)]
    result = pd.DataFrame(rows, columns=list(COLUMN_NAMES)) if rows else empty_table()
    result.attrs["skipped"] = skipped
    result.attrs["errors"] = errors
    return result


def _validate_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number, got {seed!r}")
    return int(seed)
