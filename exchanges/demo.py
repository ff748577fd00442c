"""Offline demo exchange: a few hundred synthetic USDT markets, deterministic, no network at all.

Daily bars are a regime-switching random walk per symbol (trends, ranges, volume spikes; thin
markets below the volume thresholds and liquid ones), generated with numpy from a seed derived
from the symbol name. 4h bars split each day into six sub-bars that aggregate back to it exactly
(the forming day only into the sub-bars opened by ``now``), and native weeks are Monday-aligned
aggregates of the days, so 4h, 1d and 1w always agree. Every tenth symbol ends with a planted
pattern, so each strategy fires on 1d at the bars the scanner checks (spec 9.1) whatever the date
is: the planted bar is the last closed one, liquid enough for the 1d volume filter (spec 11). The
exchange knows no strategy: each strategy declares its pattern, and the scanner's registry hands
them over through ``use_plants``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
import numpy as np
import pandas as pd

from exchanges.base_client import BaseExchangeClient
from exchanges.errors import BadSymbol
from utils.candles import Candles
from utils.demo_patterns import USUAL_VOLUMES, Arrays, PlantFn, draw_bar
from utils.timeframes import NATIVE_INTERVALS, OHLCV_COLUMNS, daily_bars_needed, get_timeframe

DEMO_SEED = 20250320
DEMO_SYMBOL_COUNT = 300
DEMO_HISTORY_DAYS = 1100  # > 706 daily bars, the depth of 100 weeks built from days
DEMO_PAGE_LIMIT = 5000
BARS_PER_DAY = 6
HOURS_PER_BAR = 24 // BARS_PER_DAY

# Random markets: start price, daily volatility and typical daily USD volume, all log-uniform.
PRICE_RANGE = (1e-4, 5e4)
VOLATILITY_RANGE = (0.015, 0.07)
USD_VOLUME_RANGE = (1e4, 3e7)  # about a fifth of the markets trade under the 1d threshold
MAX_LOG_EXCURSION = 2.5  # prices stay within e**±2.5 of their start
SPIKE_PROBABILITY = 0.015
SPIKE_FACTOR = (4.0, 12.0)

# Planted patterns: every PLANT_EVERY-th symbol from PLANT_OFFSET, strategies in turn.
PLANT_EVERY = 10
PLANT_OFFSET = 7
PLANT_DAYS = 120
PLANT_USD_VOLUME = (2e5, 3e6)  # USD volume of the planted (last closed) bar
PLANT_NOISE = 0.006  # daily close-to-close noise of a plant's quiet lead-in
PLANT_RANGE = 0.02  # typical relative daily range of the lead-in

_plant_source: Callable[[], Mapping[str, PlantFn]] = dict


def demo_symbols(count: int = DEMO_SYMBOL_COUNT) -> list[str]:
    """``count`` distinct pronounceable synthetic tickers quoted in USDT, sorted."""
    rng = np.random.default_rng(DEMO_SEED)
    consonants, vowels = "BCDFGKLMNPRSTVXZ", "AEIOUY"
    names: set[str] = set()
    while len(names) < count:
        length = int(rng.integers(3, 6))
        first = int(rng.integers(2))
        pools = [consonants if (i + first) % 2 == 0 else vowels for i in range(length)]
        letters = [pool[int(rng.integers(len(pool)))] for pool in pools]
        names.add("".join(letters) + "USDT")
    return sorted(names)


def _rng(symbol: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([DEMO_SEED, zlib.crc32(symbol.encode()), stream])


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def _random_walk(rng: np.random.Generator, days: int) -> Arrays:
    """Regime-switching daily walk: drifting or flat segments, fat tails, volume tied to moves."""
    price = _log_uniform(rng, PRICE_RANGE)
    vol = _log_uniform(rng, VOLATILITY_RANGE)
    usd = _log_uniform(rng, USD_VOLUME_RANGE)
    lengths = rng.integers(20, 120, size=days // 20 + 1)
    regime = np.repeat(np.arange(len(lengths)), lengths)[:days]
    drift = rng.choice([-1.0, 0.0, 0.0, 1.0], size=len(lengths)) * rng.uniform(0.001, 0.006, len(lengths))
    vol_scale = rng.uniform(0.6, 1.4, len(lengths))[regime]
    ret = drift[regime] + vol * vol_scale * rng.standard_t(4, days) / math.sqrt(2.0)
    path = np.cumsum(ret)
    close = price * np.exp(MAX_LOG_EXCURSION * np.tanh(path / MAX_LOG_EXCURSION))
    open_ = np.r_[price, close[:-1]]
    wick = vol * vol_scale * 0.6
    high = np.maximum(open_, close) * np.exp(wick * np.abs(rng.normal(size=days)))
    low = np.minimum(open_, close) * np.exp(-wick * np.abs(rng.normal(size=days)))
    usd_volume = usd * np.exp(0.35 * rng.normal(size=days)) * (1.0 + np.abs(ret) / vol)
    spikes = rng.random(days) < SPIKE_PROBABILITY
    usd_volume[spikes] *= rng.uniform(*SPIKE_FACTOR, spikes.sum())
    return {"open": open_, "high": high, "low": low, "close": close, "volume": usd_volume / close}


# --- planted patterns (relative prices around 1.0, relative volumes around 1.0) ----------------


def _lead_in(rng: np.random.Generator, days: int) -> Arrays:
    """A quiet range: small moves, ranges near PLANT_RANGE, volumes alternating 0.9 / 1.1."""
    close = np.exp(np.cumsum(rng.normal(0.0, PLANT_NOISE, days)))
    open_ = np.r_[1.0, close[:-1]]
    body = np.abs(close - open_)
    spread = np.maximum(PLANT_RANGE * rng.uniform(0.75, 1.25, days), body * 1.2)
    upper = (spread - body) * rng.uniform(0.2, 0.8, days)
    high = np.maximum(open_, close) + upper
    low = np.minimum(open_, close) - (spread - body - upper)
    volume = np.array(USUAL_VOLUMES)[np.arange(days) % 2] * rng.uniform(0.98, 1.02, days)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def use_plants(source: Callable[[], Mapping[str, PlantFn]]) -> None:
    """Where the planted patterns come from: name -> function drawing it at row t of relative bars.

    The exchange knows no strategy; the scanner's registry installs its strategies' own patterns.
    """
    global _plant_source
    _plant_source = source


def plants() -> Mapping[str, PlantFn]:
    """The patterns planted now, by name (none until a source is installed)."""
    return _plant_source()


def planted_symbols(symbols: list[str] | None = None) -> dict[str, str]:
    """Symbol -> the strategy planted at the end of its daily series."""
    symbols = demo_symbols() if symbols is None else symbols
    names = list(plants())
    if not names:
        return {}
    picked = symbols[PLANT_OFFSET::PLANT_EVERY]
    return {sym: names[k % len(names)] for k, sym in enumerate(picked)}


def _plant(rng: np.random.Generator, strategy: str, prev_close: float) -> Arrays:
    """PLANT_DAYS daily bars: a quiet lead-in, the pattern on the last closed bar, a small forming bar."""
    a = _lead_in(rng, PLANT_DAYS)
    t = PLANT_DAYS - 2
    plants()[strategy](a, t)
    draw_bar(a, t + 1, 0.001, 0.002, 0.002, 0.5 * a["volume"][t])
    scale = _log_uniform(rng, PLANT_USD_VOLUME) / (a["volume"][t] * a["close"][t] * prev_close)
    out = {col: a[col] * prev_close for col in ("open", "high", "low", "close")}
    out["volume"] = a["volume"] * scale
    return out


def _split_days(day: Arrays, parts: int, rng: np.random.Generator) -> Arrays:
    """Split each day into ``parts`` sub-bars whose aggregate is the day exactly.

    The sub-bar closes follow a Brownian bridge from the day's open to its close inside its
    range; one sub-bar touches the day's high and another its low; volume is split at random.
    """
    o, h, l, c, v = (day[col] for col in OHLCV_COLUMNS)
    n = len(o)
    walk = np.cumsum(rng.normal(size=(n, parts)), axis=1)
    frac = np.arange(1, parts + 1) / parts
    bridge = walk - frac[None, :] * walk[:, -1:]
    wander = ((h - l) * 0.35 / math.sqrt(parts))[:, None]
    points = o[:, None] + (c - o)[:, None] * frac[None, :] + bridge * wander
    points = np.clip(np.concatenate([o[:, None], points], axis=1), l[:, None], h[:, None])
    points[:, -1] = c
    sub_open, sub_close = points[:, :-1], points[:, 1:]
    top, bottom = np.maximum(sub_open, sub_close), np.minimum(sub_open, sub_close)
    sub_high = top + (h[:, None] - top) * rng.uniform(0.0, 0.5, (n, parts))
    sub_low = bottom - (bottom - l[:, None]) * rng.uniform(0.0, 0.5, (n, parts))
    rows = np.arange(n)
    at_high = rng.integers(0, parts, n)
    at_low = (at_high + rng.integers(1, parts, n)) % parts if parts > 1 else at_high
    sub_high[rows, at_high] = h
    sub_low[rows, at_low] = l
    weights = rng.gamma(2.0, size=(n, parts))
    sub_volume = v[:, None] * weights / weights.sum(axis=1, keepdims=True)
    return {
        "open": sub_open.ravel(),
        "high": sub_high.ravel(),
        "low": sub_low.ravel(),
        "close": sub_close.ravel(),
        "volume": sub_volume.ravel(),
    }


def _frame(arrays: Arrays, index: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({col: np.asarray(arrays[col], dtype="float64") for col in OHLCV_COLUMNS}, index=index)


class DemoClient(BaseExchangeClient):
    """Synthetic exchange for demos and tests: same symbols and candles for the same ``now``."""

    name = "demo"
    default_base_url = "demo://offline"
    page_limit = DEMO_PAGE_LIMIT
    weekly_monday_aligned = True
    intervals: ClassVar[dict[str, str]] = {interval: interval for interval in NATIVE_INTERVALS}
    stable_history = False  # the synthetic history is laid out back from today: nothing to keep

    def __init__(
        self,
        timeframe: str = "1d",
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        *,
        now: datetime | pd.Timestamp | None = None,
        symbol_count: int = DEMO_SYMBOL_COUNT,
        **options: Any,
    ) -> None:
        super().__init__(timeframe=timeframe, base_url=base_url, session=session, **options)
        stamp = pd.Timestamp(now if now is not None else datetime.now(UTC))
        self.now = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        self.symbols = demo_symbols(symbol_count)
        self.planted = planted_symbols(self.symbols)
        self._known = set(self.symbols)
        self._daily_cache: dict[str, pd.DataFrame] = {}

    async def close(self) -> None:
        """Nothing to release: the demo never opens a session."""

    def _get_fetch_limit(self) -> int:
        tf = get_timeframe(self.timeframe)
        return daily_bars_needed(tf) if tf.aggregated and tf.native == "1d" else tf.bars

    def parse_symbols(self, payload: Any) -> list[str]:
        """The demo's listing is already a list of symbols."""
        return sorted(payload)

    async def get_all_spot_symbols(self) -> list[str]:
        """All demo markets (one simulated request)."""
        self.request_count += 1
        return self.parse_symbols(self.symbols)

    async def fetch_candles(
        self, symbol: str, interval: str | None = None, limit: int | None = None, *, since: int | None = None
    ) -> Candles:
        """The last ``limit`` bars of ``symbol`` (from the bar opening at ``since`` UTC ms, when
        given); the last row is the bar containing ``now``. ``fetch_klines`` is their frame."""
        interval = interval or get_timeframe(self.timeframe).native
        if interval not in self.intervals:
            raise ValueError(f"unknown interval {interval!r}; valid intervals: {', '.join(NATIVE_INTERVALS)}")
        if symbol not in self._known:
            raise BadSymbol(self.name, "unknown demo market", symbol=symbol)
        builders = {"4h": self._four_hourly, "1d": self._daily, "1w": self._weekly}
        frame = builders[interval](symbol)
        if since is not None:
            frame = frame[frame.index.as_unit("ms").asi8 >= since]
        limit = limit or (len(frame) if since is not None else self._get_fetch_limit())
        self.request_count += max(1, math.ceil(limit / self.page_limit))
        return Candles.from_frame(frame.iloc[-limit:] if limit else frame.iloc[:0])

    def _daily(self, symbol: str) -> pd.DataFrame:
        frame = self._daily_cache.get(symbol)
        if frame is None:
            rng = _rng(symbol, 0)
            arrays = _random_walk(rng, DEMO_HISTORY_DAYS)
            strategy = self.planted.get(symbol)
            if strategy is not None:
                cut = DEMO_HISTORY_DAYS - PLANT_DAYS
                plant = _plant(_rng(symbol, 1), strategy, arrays["close"][cut - 1])
                for col in OHLCV_COLUMNS:
                    arrays[col][cut:] = plant[col]
            last_day = self.now.floor("D")
            index = pd.date_range(end=last_day, periods=DEMO_HISTORY_DAYS, freq="D", name="timestamp")
            frame = _frame(arrays, index.as_unit("ms"))
            self._daily_cache[symbol] = frame
        return frame

    def _four_hourly(self, symbol: str) -> pd.DataFrame:
        daily = self._daily(symbol)
        closed = {col: daily[col].to_numpy()[:-1] for col in OHLCV_COLUMNS}
        forming = {col: daily[col].to_numpy()[-1:] for col in OHLCV_COLUMNS}
        opened = self.now.hour // HOURS_PER_BAR + 1
        parts = [
            _split_days(closed, BARS_PER_DAY, _rng(symbol, 2)),
            _split_days(forming, opened, _rng(symbol, 3)),
        ]
        arrays = {col: np.concatenate([p[col] for p in parts]) for col in OHLCV_COLUMNS}
        step = pd.Timedelta(hours=HOURS_PER_BAR)
        index = pd.date_range(start=daily.index[0], periods=len(arrays["open"]), freq=step, name="timestamp")
        return _frame(arrays, index.as_unit("ms"))

    def _weekly(self, symbol: str) -> pd.DataFrame:
        """Monday-aligned weeks of the daily bars, as an exchange's native 1w would be."""
        daily = self._daily(symbol)
        monday = daily.index - pd.to_timedelta(daily.index.day_of_week, unit="D")
        weekly = daily.groupby(monday).agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        weekly.index = pd.DatetimeIndex(weekly.index, name="timestamp").as_unit("ms")
        return weekly
