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
BOOTSTRAP_MAX_DRAW = 20_000  # signals drawn per resample at most (m-out-of-n above it)
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
    elif isinstance(item, (int, float, np.integer, np.floating)) and math.isfinite(item) and item == int(item):
        value = int(item)
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
        raise ValueError(f"signals for {symbol!r} must have one value per bar ({rows}), got shape {values.shape}")
    return values.astype(np.int8)


def _stats(ret: np.ndarray, mfe: np.ndarray, mae: np.ndarray) -> dict[str, float]:
    """Mean, median and share above zero of returns, and mean excursions (NaN when empty)."""
    if len(ret) == 0:
        return dict.fromkeys(("mean_return", "median_return", "positive_share", "mean_mfe", "mean_mae"), math.nan)
    return {
        "mean_return": float(np.mean(ret)),
        "median_return": float(np.median(ret)),
        "positive_share": float(np.mean(ret > 0)),
        "mean_mfe": float(np.mean(mfe)),
        "mean_mae": float(np.mean(mae)),
    }


def bootstrap_intervals(returns: np.ndarray, rng: np.random.Generator,
                        resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE) -> np.ndarray:
    """Percentile intervals of the mean of each column of ``returns`` (signals x horizons, NaN where
    a signal's horizon is past the history), resampling signals with replacement ``resamples`` times.

    One draw of signals serves every horizon: a resample's mean at horizon k is over the drawn
    signals measured at k. Above ``BOOTSTRAP_MAX_DRAW`` signals each resample draws that many
    (m of n) and its deviation from the full mean is scaled by sqrt(m/n), the m-out-of-n bootstrap:
    the same interval for a mean up to Monte-Carlo noise, at a bounded cost. Returns (horizons, 2)
    lows and highs, NaN where nothing is measured.
    """
    n, width = returns.shape
    out = np.full((width, 2), np.nan)
    if n == 0:
        return out
    draw = min(n, BOOTSTRAP_MAX_DRAW)
    measured = ~np.isnan(returns)
    values = np.ascontiguousarray(np.where(measured, returns, 0.0).T)
    counts = np.ascontiguousarray(measured.T.astype(np.float64))
    complete = measured.all(axis=0)
    means = np.empty((resamples, width))
    per_chunk = max(1, BOOTSTRAP_CHUNK // draw)
    with np.errstate(invalid="ignore", divide="ignore"):
        for start in range(0, resamples, per_chunk):
            count = min(per_chunk, resamples - start)
            drawn = rng.integers(0, n, size=(count, draw))
            for k in range(width):  # one contiguous column at a time: the fastest gather measured
                total = np.take(values[k], drawn).sum(axis=1)
                means[start : start + count, k] = total / (draw if complete[k] else np.take(counts[k], drawn).sum(axis=1))
        full = values.sum(axis=1) / counts.sum(axis=1)
    tail = (1.0 - confidence) / 2.0
    scale = math.sqrt(draw / n)
    for k in range(width):
        if measured[:, k].any():
            low, high = np.nanquantile(means[:, k], [tail, 1.0 - tail])
            out[k] = (low, high) if draw == n else (full[k] + scale * (low - full[k]), full[k] + scale * (high - full[k]))
    return out


def cell_rng(seed: int, *key: object) -> np.random.Generator:
    """A generator for one table cell: the same figures whichever other cells are computed."""
    return np.random.default_rng([int(seed), zlib.crc32("|".join(map(str, key)).encode())])


def _oriented(table: BarTable, horizon: int, direction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return, MFE and MAE of horizon ``horizon`` read in the strategy's favour."""
    ret, mfe, mae = (table.move(horizon, m) for m in _MEASURES)
    if direction == "down":
        return -ret, -mae, -mfe
    return ret, mfe, mae


def _rows_for(
    table: BarTable, strategy: Strategy, horizons: Sequence[int], exchange: str, timeframe: str,
    symbols: int, seed: int,
) -> list[dict[str, Any]]:
    rows_of_bars = table.row()
    fired = table.signal(strategy.name)
    base = (rows_of_bars >= first_bar(strategy)) & (fired >= 0)
    signal = base & (fired == 1)
    n_signals, n_bars = int(signal.sum()), int(base.sum())
    oriented = {k: _oriented(table, k, strategy.direction) for k in horizons}
    returns = np.column_stack([oriented[k][0][signal] for k in horizons]) if horizons else np.empty((0, 0))
    intervals = bootstrap_intervals(returns, cell_rng(seed, strategy.name, timeframe, exchange))
    out = []
    for k, (low, high) in zip(horizons, intervals):
        ret, mfe, mae = oriented[k]
        measured = ~np.isnan(ret)
        on_signal, on_base = signal & measured, base & measured
        sig = _stats(ret[on_signal], mfe[on_signal], mae[on_signal])
        ref = _stats(ret[on_base], mfe[on_base], mae[on_base])
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
            **sig,
            "baseline_bars": int(on_base.sum()),
            **{f"baseline_{name}": value for name, value in ref.items()},
            "edge": sig["mean_return"] - ref["mean_return"],
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
    rows = [row for s in selected for row in _rows_for(table, s, horizons, exchange, timeframe, symbols, seed)]
    result = pd.DataFrame(rows, columns=list(COLUMN_NAMES)) if rows else empty_table()
    result.attrs["skipped"] = skipped
    result.attrs["errors"] = errors
    return result


def _validate_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number, got {seed!r}")
    return int(seed)
