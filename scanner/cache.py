"""Candle store: one native fetch per (exchange, host, symbol, interval), every timeframe served from it.

1d, 2d, 3d and 4d always come from daily bars, and so does 1w when one page of daily bars is deep
enough (or when the exchange's native weeks are not Monday-aligned, spec section 10). A scan's
``plan`` sizes the daily fetch once for every timeframe it will scan, so a 1d,2d,3d,4d,1w scan
costs one klines request per symbol where the page size allows. Concurrent requests for the same
candles share one in-flight fetch; entries expire after ``CACHE_TTL_SECONDS``.

With a candle store (``scanner.store``) behind it, a fetch asks the exchange only for the bars the
store lacks, and 1w always comes from daily bars: the store keeps them deep enough, so markets
whose page is too small for 100 weeks of days (MEXC spot, KuCoin futures) still cost one klines
request per symbol once warm.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from exchanges.base_client import BaseExchangeClient
from scanner.store.base import CandleStore
from scanner.store.fetch import fetch_native, keeps_history
from utils.candles import Candles, Source
from utils.timeframes import Timeframe, daily_bars_needed, get_timeframe

# A notebook re-run after this many seconds sees fresh bars.
CACHE_TTL_SECONDS = 300.0

NativeKey = tuple[str, str, str, str]


@dataclass
class _Entry:
    """Native candles of one key (compact arrays, see utils.candles) and the depth fetched.

    Derived timeframes are not kept: aggregating is well under a millisecond, while keeping five
    derived frames per symbol more than doubled a 5-exchange x 2,000-symbol scan's memory.
    """

    candles: Candles
    depth: int
    fetched_at: float


def source_of(client: BaseExchangeClient, timeframe: str | Timeframe, history: bool = False) -> Source:
    """The native interval and depth that serve ``timeframe`` on ``client`` (module docstring);
    ``history``: a candle store keeps the client's daily bars."""
    return _source(client.page_limit, client.weekly_monday_aligned, get_timeframe(timeframe), history)


@lru_cache(maxsize=256)
def _source(page_limit: int, weekly_monday_aligned: bool, tf: Timeframe, history: bool) -> Source:
    """``source_of`` from the two client declarations it reads (cached: asked for every symbol)."""
    if tf.native == "4h":
        return Source("4h", tf.bars)
    if tf.native == "1w":
        weekly_from_daily = page_limit >= daily_bars_needed(tf) or not weekly_monday_aligned or history
        if not weekly_from_daily:
            return Source("1w", tf.bars)
    return Source("1d", daily_bars_needed(tf), aggregate=tf.aggregated)


@lru_cache(maxsize=256)
def _planned(
    page_limit: int, weekly_monday_aligned: bool, timeframe: str | Timeframe, plan: tuple[str | Timeframe, ...],
    history: bool,
) -> tuple[Source, int]:
    """The source of ``timeframe`` and the native depth to fetch for every timeframe of ``plan`` it
    shares (cached on the names as given: asked for every symbol of every scanned timeframe)."""
    source = _source(page_limit, weekly_monday_aligned, get_timeframe(timeframe), history)
    planned = (_source(page_limit, weekly_monday_aligned, get_timeframe(other), history) for other in plan)
    return source, max([source.depth] + [s.depth for s in planned if s.interval == source.interval])


class KlineCache:
    """Process-wide candle store; ``clock`` is injectable so tests can move time."""

    def __init__(self, ttl: float = CACHE_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[NativeKey, _Entry] = {}
        self._inflight: dict[NativeKey, tuple[int, asyncio.Task[_Entry]]] = {}
        self._stats = {"hits": 0, "misses": 0, "fetches": 0}
        # Bumped by clear(): fetches started before a clear are not stored.
        self._generation: dict[str | None, int] = {None: 0}

    def clear(self, exchange: str | None = None) -> None:
        """Drop stored frames (of one exchange, or all and the statistics too).

        Fetches in flight finish for their waiters but are not stored.
        """
        self._generation[exchange] = self._generation.get(exchange, 0) + 1
        if exchange is None:
            self._entries.clear()
            self._inflight.clear()
            self._stats = dict.fromkeys(self._stats, 0)
            return
        for store in (self._entries, self._inflight):
            for key in [k for k in store if k[0] == exchange]:
                del store[key]

    def _generation_of(self, exchange: str) -> tuple[int, int]:
        return self._generation[None], self._generation.get(exchange, 0)

    def stats(self) -> dict[str, int]:
        """``hits`` (served without a new fetch), ``misses`` and ``fetches`` (native requests)."""
        return {**self._stats, "entries": len(self._entries)}

    async def get(
        self,
        client: BaseExchangeClient,
        symbol: str,
        timeframe: str | Timeframe,
        plan: Iterable[str] | None = None,
        store: CandleStore | None = None,
    ) -> pd.DataFrame:
        """The bars of ``timeframe`` for ``symbol`` on ``client``, fetched at most once per TTL.

        The frame is new at every call: a caller changing it leaves the store intact.

        ``plan`` lists every timeframe the caller will scan with this client; the native fetch is
        sized for the deepest of them that share its interval. Fetch errors propagate and are not
        stored. ``store``: the candle store to fetch through (None: straight from the exchange).
        """
        native, source = await self.native(client, symbol, timeframe, plan, store)
        return source.derive(native, timeframe)

    def peek(self, client: BaseExchangeClient, symbol: str, timeframe: str | Timeframe) -> pd.DataFrame | None:
        """The bars of ``timeframe`` held for ``symbol`` (a new frame), or None; never fetches.

        Charts of a scan's hits read the candles the scan already holds this way.
        """
        tf = get_timeframe(timeframe)
        for history in (True, False):  # built from stored daily bars, or the exchange's own interval
            source = source_of(client, tf, history)
            entry = self._entries.get((client.name, getattr(client, "base_url", ""), symbol, source.interval))
            if entry is not None:
                return source.derive(entry.candles, tf)
        return None

    async def native(
        self,
        client: BaseExchangeClient,
        symbol: str,
        timeframe: str | Timeframe,
        plan: Iterable[str] | None = None,
        store: CandleStore | None = None,
    ) -> tuple[Candles, Source]:
        """The stored native candles behind ``timeframe`` and how to derive its bars (``get`` does).

        A scan hands these to the analysis worker, which does the slicing and aggregation off the
        event loop. The arrays are the stored ones, read-only.
        """
        source, depth = _planned(client.page_limit, client.weekly_monday_aligned, timeframe, tuple(plan or ()),
                                 keeps_history(client, store))
        key: NativeKey = (client.name, getattr(client, "base_url", ""), symbol, source.interval)
        entry = await self._native(client, key, depth, store)
        return entry.candles, source

    async def _native(
        self, client: BaseExchangeClient, key: NativeKey, depth: int, store: CandleStore | None = None
    ) -> _Entry:
        entry = self._entries.get(key)
        if entry is not None and self.clock() - entry.fetched_at > self.ttl:
            del self._entries[key]
            entry = None
        if entry is not None and entry.depth >= depth:
            self._stats["hits"] += 1
            return entry
        running = self._inflight.get(key)
        if running is not None and running[0] >= depth and _same_loop(running[1]):
            self._stats["hits"] += 1
            return await asyncio.shield(running[1])
        self._stats["misses"] += 1
        task = asyncio.ensure_future(self._fetch(client, key, depth, store))
        task.add_done_callback(_retrieve_exception)
        self._inflight[key] = (depth, task)
        return await asyncio.shield(task)

    async def _fetch(
        self, client: BaseExchangeClient, key: NativeKey, depth: int, store: CandleStore | None
    ) -> _Entry:
        generation = self._generation_of(key[0])
        try:
            self._stats["fetches"] += 1
            candles = await fetch_native(client, key[2], key[3], depth, store)
            entry = _Entry(candles=candles, depth=depth, fetched_at=self.clock())
            stored = self._entries.get(key)
            fresher = stored is None or stored.depth <= depth or self.clock() - stored.fetched_at > self.ttl
            if generation == self._generation_of(key[0]) and fresher:
                self._entries[key] = entry
            return entry
        finally:
            running = self._inflight.get(key)
            if running is not None and running[1] is asyncio.current_task():
                del self._inflight[key]


def _same_loop(task: asyncio.Task) -> bool:
    try:
        return task.get_loop() is asyncio.get_running_loop()
    except RuntimeError:
        return False


def _retrieve_exception(task: asyncio.Task) -> None:
    """Mark a failed shared fetch as seen, so an abandoned one does not warn at shutdown."""
    if not task.cancelled():
        task.exception()


kline_cache = KlineCache()
