"""Deterministic market data for the fake exchange server: symbol tables and OHLCV series.

Every (market, symbol) gets a seeded random walk of 4h bars (integer price ticks and integer volume
units, so aggregation is exact); 1d, Monday-aligned 1w and Unix-0-aligned 7d bars are built from the
4h bars, so daily bars aggregated to weeks equal the native weekly bars. The last bar of every series
is the one still forming at the server's clock. Series are generated vectorised and kept in an LRU.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

H4_MS = 4 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000
WEEK_MS = 7 * DAY_MS
MONDAY_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; 1970-01-05 the first Monday
INTERVAL_MS = {"4h": H4_MS, "1d": DAY_MS, "1w": WEEK_MS, "7d": WEEK_MS}
BUCKET_OFFSET_MS = {"4h": 0, "1d": 0, "1w": MONDAY_OFFSET_MS, "7d": 0}

THIN_FRACTION = 0.15  # share of symbols whose daily USD volume is under the scanner's 50k threshold
YOUNG_FRACTION = 0.15  # share of symbols listed recently (history shorter than history_days)
SERIES_CACHE_SIZE = 4096
QUOTE_DECIMALS = 4  # quote volumes are kept as integers of 1e-4 quote units

MAJORS = (
    "BTC ETH SOL XRP BNB DOGE ADA TRX AVAX LINK DOT LTC BCH NEAR UNI APT ARB OP SUI ATOM FIL ETC XLM "
    "HBAR ICP INJ SEI TIA AAVE MKR"
).split()
LEVERAGED_SUFFIXES = ("UP", "DOWN", "BULL", "BEAR")


def _stable_int(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def base_names(count: int) -> list[str]:
    """``count`` distinct base assets: real majors first, then synthetic letter names (``QAAB``...)."""
    names = list(MAJORS[:count])
    i = 0
    while len(names) < count:
        a, b, c = (i // 676) % 26, (i // 26) % 26, i % 26
        name = "Q" + chr(65 + a) + chr(65 + b) + chr(65 + c)
        i += 1
        if not name.endswith(LEVERAGED_SUFFIXES):
            names.append(name)
    return names


@dataclass(frozen=True)
class SymbolInfo:
    """One listed instrument of one market, with the parameters of its generated series."""

    symbol: str
    base: str
    quote: str
    usdt: bool  # a tradable USDT market the clients must keep (False for distractors)
    listed_day: int  # days since Unix 0 of the first bar (00:00 UTC)
    price_decimals: int
    volume_decimals: int  # base volume = units * 10**-volume_decimals (may be negative)
    start_price: float
    sigma: float  # log-return std per 4h bar
    daily_usd: float
    seed: int
    attrs: dict[str, Any] = field(default_factory=dict)  # listing fields overriding the defaults

    @property
    def listed_ms(self) -> int:
        return self.listed_day * DAY_MS

    @property
    def tick(self) -> float:
        return 10.0 ** -self.price_decimals

    @property
    def multiplier(self) -> float:
        """Base units per volume unit (the contract size on contract-volume markets)."""
        return 10.0 ** -self.volume_decimals


def make_symbol(
    market: str,
    symbol: str,
    base: str,
    quote: str,
    *,
    usdt: bool,
    seed: int,
    now_day: int,
    history_days: int,
    contract_volume: bool,
    attrs: dict[str, Any] | None = None,
) -> SymbolInfo:
    """Draw the deterministic parameters of one instrument from a hash of (seed, market, symbol)."""
    h = _stable_int(seed, market, symbol)
    rng = np.random.default_rng(h)
    u = rng.random(6)
    start_price = float(10 ** (-4 + 8.5 * u[0]))
    if base == "BTC":
        start_price = 40000.0 + 20000.0 * u[0]
    elif base == "ETH":
        start_price = 2000.0 + 1500.0 * u[0]
    magnitude = int(np.floor(np.log10(start_price)))
    price_decimals = int(np.clip(5 - magnitude, 0, 10))
    if contract_volume:
        volume_decimals = int(np.clip(magnitude, -7, 6))
    else:
        volume_decimals = int(np.clip(magnitude + 2, 0, 8))
    if base in ("BTC", "ETH"):
        daily_usd = 5e8 * (1 + u[1])
    elif u[1] < THIN_FRACTION:
        daily_usd = 4000.0 + 36000.0 * u[2]
    else:
        daily_usd = float(10 ** (5.2 + 3.0 * u[2]))
    if u[3] < YOUNG_FRACTION and base not in ("BTC", "ETH"):
        age = int(3 + (history_days * 0.6) * u[4] ** 2)
    else:
        age = history_days
    return SymbolInfo(
        symbol=symbol,
        base=base,
        quote=quote,
        usdt=usdt,
        listed_day=now_day - min(age, history_days),
        price_decimals=price_decimals,
        volume_decimals=volume_decimals,
        start_price=start_price,
        sigma=0.004 + 0.01 * float(u[5]),
        daily_usd=daily_usd,
        seed=h,
        attrs=dict(attrs or {}),
    )


@dataclass(frozen=True)
class Bars:
    """OHLCV bars, oldest first: open time ms, integer price ticks, integer volume units, quote ints."""

    open_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote: np.ndarray  # quote volume in units of 10**-QUOTE_DECIMALS

    def __len__(self) -> int:
        return len(self.open_ms)

    def take(self, index: np.ndarray | slice) -> Bars:
        return Bars(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


def _draws(info: SymbolInfo) -> list[np.random.Generator]:
    """One generator per random quantity: bar i's draws do not depend on how many bars there are, so
    a later clock extends a series without changing its past (the candle store relies on that)."""
    return [np.random.default_rng([info.seed, stream]) for stream in range(6)]


def generate_4h(info: SymbolInfo, now_ms: int) -> Bars:
    """The 4h random walk of ``info`` from its listing day up to the bar forming at ``now_ms``."""
    start = info.listed_ms
    n = max(int((now_ms - start) // H4_MS) + 1, 1)
    walk, wick_up, wick_down, noise, regimes, spiking = _draws(info)
    normals = np.stack([walk.standard_normal(n), wick_up.standard_normal(n), wick_down.standard_normal(n),
                        noise.standard_normal(n)])
    regime = np.repeat(regimes.standard_normal(n // 180 + 1) * info.sigma * 0.02, 180)[:n]
    rets = normals[0] * info.sigma + regime
    close_f = info.start_price * np.exp(np.cumsum(rets))
    open_f = np.concatenate(([info.start_price], close_f[:-1]))
    wick = np.abs(normals[1:3]) * info.sigma * 0.6
    high_f = np.maximum(open_f, close_f) * np.exp(wick[0])
    low_f = np.minimum(open_f, close_f) * np.exp(-wick[1])
    scale = 10.0**info.price_decimals
    o = np.maximum(np.rint(open_f * scale).astype(np.int64), 1)
    c = np.maximum(np.rint(close_f * scale).astype(np.int64), 1)
    h = np.maximum(np.rint(high_f * scale).astype(np.int64), np.maximum(o, c))
    low = np.clip(np.rint(low_f * scale).astype(np.int64), 1, np.minimum(o, c))
    chance, size = spiking.random((n, 2)).T
    spikes = np.where(chance < 0.01, 4.0 + 6.0 * size, 1.0)
    usd = info.daily_usd / 6.0 * np.exp(0.5 * normals[3] - 0.125) * (1.0 + np.abs(rets) / info.sigma) / 1.8
    usd *= spikes
    open_ms = start + np.arange(n, dtype=np.int64) * H4_MS
    elapsed = (now_ms - open_ms[-1]) / H4_MS
    usd[-1] *= min(max(elapsed, 0.01), 1.0)
    mid = (o + h + low + c) / (4.0 * scale)
    vol = np.rint(usd / mid * 10.0**info.volume_decimals).astype(np.int64)
    quote = np.rint(vol * 10.0**-info.volume_decimals * mid * 10**QUOTE_DECIMALS).astype(np.int64)
    return Bars(open_ms, o, h, low, c, vol, quote)


def aggregate(bars: Bars, interval: str) -> Bars:
    """Group 4h bars into ``interval`` buckets (1d at 00:00 UTC, 1w Monday, 7d Thursday since Unix 0)."""
    if interval == "4h" or len(bars) == 0:
        return bars
    period, offset = INTERVAL_MS[interval], BUCKET_OFFSET_MS[interval]
    key = (bars.open_ms - offset) // period
    starts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1))
    ends = np.concatenate((starts[1:], [len(key)])) - 1
    return Bars(
        open_ms=key[starts] * period + offset,
        open=bars.open[starts],
        high=np.maximum.reduceat(bars.high, starts),
        low=np.minimum.reduceat(bars.low, starts),
        close=bars.close[ends],
        volume=np.add.reduceat(bars.volume, starts),
        quote=np.add.reduceat(bars.quote, starts),
    )


@dataclass(frozen=True)
class Summary:
    """Rolling 24h figures of one instrument (for ticker and listing volume fields), as floats."""

    last: float
    open_24h: float
    high_24h: float
    low_24h: float
    base_volume: float
    quote_volume: float


class SeriesStore:
    """LRU of generated series keyed by (market, symbol, interval, now); 24h summaries kept forever."""

    def __init__(self, max_series: int = SERIES_CACHE_SIZE) -> None:
        self._max = max_series
        self._series: OrderedDict[tuple, Bars] = OrderedDict()
        self._summaries: dict[tuple, Summary] = {}

    def clear(self) -> None:
        self._series.clear()
        self._summaries.clear()

    def bars(self, market: str, info: SymbolInfo, interval: str, now_ms: int) -> Bars:
        key = (market, info.symbol, interval, now_ms)
        hit = self._series.get(key)
        if hit is not None:
            self._series.move_to_end(key)
            return hit
        if interval == "4h":
            bars = generate_4h(info, now_ms)
        else:
            bars = aggregate(self.bars(market, info, "4h", now_ms), interval)
        self._series[key] = bars
        if len(self._series) > self._max:
            self._series.popitem(last=False)
        return bars

    def summary(self, market: str, info: SymbolInfo, now_ms: int) -> Summary:
        key = (market, info.symbol, now_ms)
        hit = self._summaries.get(key)
        if hit is None:
            b = self.bars(market, info, "4h", now_ms).take(slice(-6, None))
            scale = 10.0**-info.price_decimals
            hit = Summary(
                last=float(b.close[-1] * scale),
                open_24h=float(b.open[0] * scale),
                high_24h=float(b.high.max() * scale),
                low_24h=float(b.low.min() * scale),
                base_volume=float(b.volume.sum() * info.multiplier),
                quote_volume=float(b.quote.sum() * 10.0**-QUOTE_DECIMALS),
            )
            self._summaries[key] = hit
        return hit
