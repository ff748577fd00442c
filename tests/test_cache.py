"""The candle store: one native fetch serves every timeframe, shared, sized by the plan, with a TTL."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from exchanges.base_client import BaseExchangeClient
from exchanges.errors import TemporaryError
from scanner.cache import CACHE_TTL_SECONDS, KlineCache, kline_cache
from utils.candles import Candles, tidy
from utils.timeframes import SCAN_BARS, aggregate_daily, daily_bars_needed

LAST_DAY = pd.Timestamp("2025-06-04", tz="UTC")
DAILY_PLAN = ("1d", "2d", "3d", "4d", "1w")
STEP = {"4h": pd.Timedelta(hours=4), "1d": pd.Timedelta(days=1), "1w": pd.Timedelta(weeks=1)}


class FakeClient(BaseExchangeClient):
    """Counts fetch_candles calls (the cache's fetch); bars are synthetic, ``delay`` makes fetches overlap, ``fail`` raises."""

    name = "fake"
    default_base_url = "http://127.0.0.1:9"
    page_limit: ClassVar[int] = 1000
    weekly_monday_aligned: ClassVar[bool] = True

    def __init__(self, base_url: str | None = None, delay: float = 0.0, fail: int = 0) -> None:
        super().__init__(base_url=base_url)
        self.calls: list[tuple[str, str, int]] = []
        self.delay = delay
        self.fail = fail

    def parse_symbols(self, payload: Any) -> list[str]:
        return list(payload)

    async def get_all_spot_symbols(self) -> list[str]:
        return ["AAAUSDT"]

    async def fetch_candles(
        self, symbol: str, interval: str | None = None, limit: int | None = None, *, since: int | None = None
    ) -> Candles:
        self.calls.append((symbol, interval, limit))
        await asyncio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise TemporaryError(self.name, "HTTP 503", status=503, symbol=symbol)
        last = LAST_DAY - pd.Timedelta(days=LAST_DAY.day_of_week) if interval == "1w" else LAST_DAY
        step_ms = STEP[interval] // pd.Timedelta(milliseconds=1)
        stamps = last.value // 1_000_000 - step_ms * np.arange(limit - 1, -1, -1, dtype=np.int64)
        x = np.arange(limit, dtype="float64") + 1.0
        return tidy(stamps, np.column_stack([x, x + 1.0, x - 0.5, x + 0.5, x * 10]))


class SmallPageClient(FakeClient):
    """A market whose page is too small for 706 daily bars but whose native weeks open on Monday."""

    name = "small"
    page_limit = 500


class SmallPageUnalignedClient(SmallPageClient):
    """Small pages and weeks that do not open on Monday (Gate spot's 7d buckets)."""

    name = "unaligned"
    weekly_monday_aligned = False


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cache() -> KlineCache:
    return KlineCache()


async def test_one_daily_fetch_serves_1d_2d_3d_4d_and_1w(cache: KlineCache) -> None:
    client = FakeClient()
    frames = {tf: await cache.get(client, "AAAUSDT", tf, plan=DAILY_PLAN) for tf in DAILY_PLAN}
    assert client.calls == [("AAAUSDT", "1d", daily_bars_needed("1w"))]
    days = await FakeClient().fetch_klines("AAAUSDT", "1d", daily_bars_needed("1w"))
    pd.testing.assert_frame_equal(frames["1d"], days.iloc[-SCAN_BARS:], check_freq=False)
    for tf in ("2d", "3d", "4d", "1w"):
        expected = aggregate_daily(days.iloc[-daily_bars_needed(tf):], tf)
        pd.testing.assert_frame_equal(frames[tf], expected, check_freq=False)
    assert cache.stats()["fetches"] == 1
    assert cache.stats()["misses"] == 1 and cache.stats()["hits"] == 4


async def test_concurrent_gets_of_several_timeframes_share_one_fetch(cache: KlineCache) -> None:
    client = FakeClient(delay=0.02)
    frames = await asyncio.gather(*(cache.get(client, "AAAUSDT", tf, plan=DAILY_PLAN) for tf in DAILY_PLAN))
    assert len(client.calls) == 1
    assert [len(f) > 0 for f in frames] == [True] * len(DAILY_PLAN)
    assert cache.stats()["fetches"] == 1


async def test_concurrent_gets_of_one_timeframe_share_one_fetch(cache: KlineCache) -> None:
    client = FakeClient(delay=0.02)
    frames = await asyncio.gather(*(cache.get(client, "AAAUSDT", "1d") for _ in range(5)))
    assert client.calls == [("AAAUSDT", "1d", SCAN_BARS)]
    assert all(f.equals(frames[0]) for f in frames)


async def test_without_a_plan_deeper_timeframes_refetch_and_shallower_ones_reuse(cache: KlineCache) -> None:
    client = FakeClient()
    await cache.get(client, "AAAUSDT", "1d")
    await cache.get(client, "AAAUSDT", "3d")
    await cache.get(client, "AAAUSDT", "2d")
    await cache.get(client, "AAAUSDT", "1d")
    assert [limit for _, _, limit in client.calls] == [SCAN_BARS, daily_bars_needed("3d")]


async def test_plan_sizes_the_first_fetch_for_its_deepest_timeframe(cache: KlineCache) -> None:
    client = FakeClient()
    await cache.get(client, "AAAUSDT", "2d", plan=("2d", "4d"))
    assert client.calls == [("AAAUSDT", "1d", daily_bars_needed("4d"))]
    await cache.get(client, "AAAUSDT", "4d", plan=("2d", "4d"))
    assert len(client.calls) == 1


async def test_plan_entries_on_another_native_interval_do_not_deepen_the_fetch(cache: KlineCache) -> None:
    client = SmallPageClient()  # 1w comes natively here, so the plan's 1w must not ask 706 days
    await cache.get(client, "AAAUSDT", "1d", plan=("1d", "1w", "4h"))
    assert client.calls == [("AAAUSDT", "1d", SCAN_BARS)]


async def test_small_page_monday_aligned_client_fetches_native_weeks(cache: KlineCache) -> None:
    client = SmallPageClient()
    frame = await cache.get(client, "AAAUSDT", "1w", plan=DAILY_PLAN)
    assert ("AAAUSDT", "1w", SCAN_BARS) in client.calls
    assert len(frame) == SCAN_BARS and (frame.index.day_of_week == 0).all()
    await cache.get(client, "AAAUSDT", "4d", plan=DAILY_PLAN)
    assert ("AAAUSDT", "1d", daily_bars_needed("4d")) in client.calls
    assert len(client.calls) == 2


async def test_small_page_client_without_monday_weeks_builds_weeks_from_daily(cache: KlineCache) -> None:
    client = SmallPageUnalignedClient()
    await cache.get(client, "AAAUSDT", "1w")
    assert client.calls == [("AAAUSDT", "1d", daily_bars_needed("1w"))]


async def test_4h_comes_natively(cache: KlineCache) -> None:
    client = FakeClient()
    frame = await cache.get(client, "AAAUSDT", "4h", plan=("4h", "1d"))
    assert client.calls == [("AAAUSDT", "4h", SCAN_BARS)]
    assert len(frame) == SCAN_BARS


async def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = KlineCache(clock=clock)
    client = FakeClient()
    await cache.get(client, "AAAUSDT", "1d")
    clock.now += CACHE_TTL_SECONDS - 1
    await cache.get(client, "AAAUSDT", "1d")
    assert len(client.calls) == 1
    clock.now += 2
    await cache.get(client, "AAAUSDT", "1d")
    assert len(client.calls) == 2


async def test_clear_drops_every_entry_and_resets_the_stats() -> None:
    client = FakeClient()
    kline_cache.clear()
    try:
        await kline_cache.get(client, "AAAUSDT", "1d")
        kline_cache.clear()
        assert kline_cache.stats() == {"hits": 0, "misses": 0, "fetches": 0, "entries": 0}
        await kline_cache.get(client, "AAAUSDT", "1d")
        assert len(client.calls) == 2
    finally:
        kline_cache.clear()


async def test_clearing_one_exchange_keeps_the_others(cache: KlineCache) -> None:
    fake, small = FakeClient(), SmallPageClient()
    for client in (fake, small):
        await cache.get(client, "AAAUSDT", "1d")
    cache.clear(exchange="fake")
    for client in (fake, small):
        await cache.get(client, "AAAUSDT", "1d")
    assert [len(fake.calls), len(small.calls)] == [2, 1]


async def test_a_fetch_in_flight_during_clear_is_not_stored(cache: KlineCache) -> None:
    client = FakeClient(delay=0.02)
    pending = asyncio.create_task(cache.get(client, "AAAUSDT", "1d"))
    await asyncio.sleep(0.005)
    cache.clear()
    assert len(await pending) == SCAN_BARS
    assert cache.stats()["entries"] == 0
    await cache.get(client, "AAAUSDT", "1d")
    assert len(client.calls) == 2


async def test_fetch_errors_propagate_to_every_waiter_and_are_not_cached(cache: KlineCache) -> None:
    client = FakeClient(delay=0.01, fail=1)
    results = await asyncio.gather(
        cache.get(client, "AAAUSDT", "1d", plan=("2d",)), cache.get(client, "AAAUSDT", "2d"),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [TemporaryError, TemporaryError]
    assert len(client.calls) == 1
    assert cache.stats()["entries"] == 0
    frame = await cache.get(client, "AAAUSDT", "1d")
    assert len(client.calls) == 2 and len(frame) == SCAN_BARS


async def test_exchanges_hosts_and_symbols_are_separate_keys(cache: KlineCache) -> None:
    one, other_host, other_market = FakeClient(), FakeClient(base_url="http://127.0.0.1:8"), SmallPageClient()
    for client in (one, other_host, other_market):
        await cache.get(client, "AAAUSDT", "1d")
    await cache.get(one, "BBBUSDT", "1d")
    assert [len(c.calls) for c in (one, other_host, other_market)] == [2, 1, 1]


async def test_a_caller_adding_columns_does_not_change_the_stored_frame(cache: KlineCache) -> None:
    client = FakeClient()
    frame = await cache.get(client, "AAAUSDT", "2d")
    frame["extra"] = 1.0
    frame.loc[frame.index[0], "close"] = -1.0
    again = await cache.get(client, "AAAUSDT", "2d")
    assert "extra" not in again.columns and again["close"].iloc[0] > 0
