"""Scans through the candle store against the fake exchanges: only missing bars are fetched, with each
exchange's own start parameter; a warm scan costs one klines request per symbol and finds exactly
what a stateless scan finds."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from exchanges import get_client_class
from scanner.cache import KlineCache
from scanner.main import scan_exchange
from scanner.store import MemoryCandleStore, SeriesWrite, SQLiteCandleStore, StoreError
from scanner.store.base import frozen
from scanner.store.fetch import fetch_native
from tests.fakes.exchange_server import FakeExchangeServer
from utils.candles import Candles

NOW = datetime(2025, 6, 10, 13, 30, tzinfo=UTC)
DAY = timedelta(days=1)
DAY_MS = 86_400_000
DAILY_SET = ["1d", "2d", "3d", "4d", "1w"]
# market -> (start parameter, its unit in ms), and whether it takes a limit.
START_PARAMS = {
    "binance_spot": ("startTime", 1), "binance_futures": ("startTime", 1), "bybit_spot": ("start", 1),
    "bybit_futures": ("start", 1), "gateio_spot": ("from", 1000), "gateio_futures": ("from", 1000),
    "kucoin_spot": ("startAt", 1000), "kucoin_futures": ("from", 1), "mexc_spot": ("startTime", 1),
    "mexc_futures": ("start", 1000),
}
LIMITED = {"binance_spot", "binance_futures", "bybit_spot", "bybit_futures", "mexc_spot"}


class Clock:
    """The client's clock, moved together with the fake exchange's."""

    def __init__(self, server: FakeExchangeServer) -> None:
        self.server = server

    def __call__(self) -> float:
        return self.server.now_ms / 1000

    def advance(self, delta: timedelta) -> None:
        self.server.set_now(self.server.now_ms / 1000 + delta.total_seconds())


def client_for(market: str, server: FakeExchangeServer, **kw):
    return get_client_class(market)(base_url=server.base_url(market), clock=Clock(server), **kw)


def oldest_symbol(server: FakeExchangeServer, market: str) -> str:
    return min((server.symbol_info(market, s) for s in server.usdt_symbols(market)), key=lambda i: i.listed_day).symbol


def same(a: Candles, b: Candles) -> bool:
    return np.array_equal(a.stamps, b.stamps) and a.values.tobytes() == b.values.tobytes()


@pytest.mark.parametrize("market", list(START_PARAMS))
async def test_warm_fetch_sends_the_exchange_its_own_start_parameter_and_the_smallest_page(market, fresh_exchange_state):
    async with FakeExchangeServer(symbols=3, now=NOW, markets=[market], rate_limits=False) as server:
        store = MemoryCandleStore(retention={})
        clock = Clock(server)
        async with client_for(market, server) as client:
            symbol = oldest_symbol(server, market)
            await fetch_native(client, symbol, "1d", 100, store)
            store.flush()
            last = store.last_closed(market, symbol, "1d")
            assert last == int(server.bars(market, symbol, "1d").open_ms[-2])  # the forming bar is not stored
            clock.advance(DAY)
            server.klines_queries.clear()
            warm = await fetch_native(client, symbol, "1d", 100, store)
            queries = [q for m, s, q in server.klines_queries if s == symbol]
            assert len(queries) == 1
            name, unit = START_PARAMS[market]
            assert int(queries[0][name]) == last // unit
            if market in LIMITED:
                assert queries[0]["limit"] == "3"  # the last stored bar, yesterday's, and today's forming one
            fresh = Candles.from_frame(await client.fetch_klines(symbol, "1d", limit=100))
            assert same(warm, fresh)
            store.flush()
            assert store.last_closed(market, symbol, "1d") == last + DAY_MS


async def test_binance_futures_warm_fetch_weighs_one_instead_of_five(fresh_exchange_state):
    async with FakeExchangeServer(symbols=5, now=NOW, markets=["binance_futures"], rate_limits=False) as server:
        store = MemoryCandleStore(retention={})
        async with client_for("binance_futures", server) as client:
            symbols = server.usdt_symbols("binance_futures")
            for symbol in symbols:
                await fetch_native(client, symbol, "1d", 706, store)
            cold = server.weight_by_market["binance_futures"]
            store.flush()
            Clock(server).advance(DAY)
            for symbol in symbols:
                await fetch_native(client, symbol, "1d", 706, store)
            assert (cold, server.weight_by_market["binance_futures"] - cold) == (5 * len(symbols), len(symbols))


async def test_a_gap_of_weeks_is_backfilled_in_pages_from_the_last_stored_bar(fresh_exchange_state):
    market = "kucoin_futures"  # 200 bars per page
    async with FakeExchangeServer(symbols=3, now=NOW, markets=[market], rate_limits=False) as server:
        store = MemoryCandleStore(retention={})
        async with client_for(market, server) as client:
            symbol = oldest_symbol(server, market)
            await fetch_native(client, symbol, "1d", 403, store)
            store.flush()
            last = store.last_closed(market, symbol, "1d")
            Clock(server).advance(250 * DAY)
            server.klines_queries.clear()
            warm = await fetch_native(client, symbol, "1d", 403, store)
            starts = sorted(int(q["from"]) for _, _, q in server.klines_queries)
            assert len(starts) == 2 and starts[0] == last  # 253 bars missing: two pages, the oldest from `last`
            assert same(warm, Candles.from_frame(await client.fetch_klines(symbol, "1d", limit=403)))
            store.flush()
            stored = store.load(market, symbol, "1d")
            assert np.all(np.diff(stored.stamps) == DAY_MS)


async def test_a_revised_closed_bar_is_replaced_and_logged_once(fresh_exchange_state, caplog):
    market = "binance_spot"
    async with FakeExchangeServer(symbols=4, now=NOW, markets=[market], rate_limits=False) as server:
        store = MemoryCandleStore(retention={})
        async with client_for(market, server) as client:
            symbols = server.usdt_symbols(market)[:2]
            for symbol in symbols:
                await fetch_native(client, symbol, "1d", 100, store)
            store.flush()
            for symbol in symbols:  # pretend we stored other values for the last closed bar
                last = store.last_closed(market, symbol, "1d")
                store.save([SeriesWrite(market, symbol, "1d", frozen(np.array([last]), np.full((1, 5), 7.0)))])
            Clock(server).advance(DAY)
            with caplog.at_level(logging.INFO, logger="scanner.store"):
                for symbol in symbols:
                    await fetch_native(client, symbol, "1d", 100, store)
            store.flush()
            revised_logs = [r for r in caplog.records if "revised" in r.getMessage()]
            assert len(revised_logs) == 1 and store.revised == {market: 2}
            for symbol in symbols:
                fresh = Candles.from_frame(await client.fetch_klines(symbol, "1d", limit=100))
                closed = Candles(fresh.stamps[:-1], fresh.values[:-1])
                assert same(store.load(market, symbol, "1d").tail(len(closed)), closed)


async def test_a_young_market_keeps_its_whole_history_and_stays_incremental(fresh_exchange_state):
    market = "binance_spot"
    async with FakeExchangeServer(symbols=60, now=NOW, markets=[market], rate_limits=False) as server:
        store = MemoryCandleStore(retention={})
        infos = [server.symbol_info(market, s) for s in server.usdt_symbols(market)]
        young = max(infos, key=lambda i: i.listed_day)
        assert len(server.bars(market, young.symbol, "1d")) < 706
        async with client_for(market, server) as client:
            await fetch_native(client, young.symbol, "1d", 706, store)
            store.flush()
            assert store.history(market, young.symbol, "1d").complete
            Clock(server).advance(DAY)
            server.klines_queries.clear()
            await fetch_native(client, young.symbol, "1d", 706, store)
            assert [q["limit"] for _, _, q in server.klines_queries] == ["3"]


async def scan_all(market: str, server: FakeExchangeServer, store, timeframes=DAILY_SET) -> list:
    """Every timeframe of one market over one client, as the parallel runner does."""
    cache = KlineCache()
    async with client_for(market, server) as client:
        results = await asyncio.gather(*(
            scan_exchange(market, tf, "all", client=client, cache=cache, plan=timeframes, progress=False,
                          store=store)
            for tf in timeframes
        ))
    return results


def hit_rows(results) -> list[tuple]:
    return sorted((h.strategy, h.timeframe, h.symbol, h.bar_time, h.current_bar, h.close, h.volume_usd,
                   repr(sorted(h.metrics.items())) if isinstance(h.metrics, dict) else repr(h.metrics))
                  for r in results for h in r.hits)


@pytest.mark.parametrize("market", ["binance_spot", "binance_futures", "bybit_spot", "kucoin_futures", "mexc_spot"])
async def test_a_warm_scan_a_day_later_costs_one_request_per_symbol_and_finds_what_a_fresh_one_does(market, tmp_path,
                                                                                     fresh_exchange_state):
    async with FakeExchangeServer(symbols=15, now=NOW, markets=[market], rate_limits=False) as server:
        path = tmp_path / "candles.sqlite3"
        await scan_all(market, server, path)
        Clock(server).advance(DAY)
        server.reset_counters()
        warm = await scan_all(market, server, path)
        listed = len(server.usdt_symbols(market))
        assert server.requests_by_kind[(market, "klines")] == listed  # 1.00 per symbol, 1w from stored days
        # What a fresh history finds at the same clock (MEXC spot's stateless 1w would be its native weeks).
        fresh = await scan_all(market, server, MemoryCandleStore())
        assert hit_rows(warm) == hit_rows(fresh)
        with SQLiteCandleStore(path) as store:
            assert {s.interval for s in store.series(market)} == {"1d"}


async def test_no_store_equals_cold_and_warm_stored_scans_bit_for_bit_on_a_frozen_clock(tmp_path,
                                                                                       fresh_exchange_state):
    timeframes = [*DAILY_SET, "4h"]
    async with FakeExchangeServer(symbols=25, now=NOW, markets=["bybit_spot"], rate_limits=False) as server:
        stateless = await scan_all("bybit_spot", server, False, timeframes)
        cold = await scan_all("bybit_spot", server, tmp_path / "c.sqlite3", timeframes)
        warm = await scan_all("bybit_spot", server, tmp_path / "c.sqlite3", timeframes)
    assert hit_rows(stateless) == hit_rows(cold) == hit_rows(warm)
    assert hit_rows(stateless)  # something to compare


async def test_a_store_failing_mid_scan_falls_back_to_full_fetches(tmp_path, fresh_exchange_state, caplog):
    path = tmp_path / "candles.sqlite3"
    async with FakeExchangeServer(symbols=10, now=NOW, markets=["binance_spot"], rate_limits=False) as server:
        await scan_all("binance_spot", server, path, ["1d"])
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE chunks SET ohlcv = x'00'")
        with caplog.at_level(logging.ERROR):
            broken = await scan_all("binance_spot", server, path, ["1d"])
        stateless = await scan_all("binance_spot", server, False, ["1d"])
    assert hit_rows(broken) == hit_rows(stateless)
    assert all(not r.summaries[0].failed and r.summaries[0].error is None for r in broken)
    assert sum("goes on without the candle store" in r.getMessage() for r in caplog.records) == 1


async def test_a_scan_on_a_corrupt_store_file_is_a_clear_error_before_any_request(tmp_path):
    path = tmp_path / "candles.sqlite3"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError, match="--no-store"):
        await scan_exchange("demo", "1d", "all", store=path, progress=False)


async def test_the_demo_exchange_keeps_no_history():
    store = MemoryCandleStore()
    result = await scan_exchange("demo", "1d", "volume_surge", store=store, cache=KlineCache(), progress=False)
    assert result.summaries[0].fetched > 0 and store.series() == []


async def test_the_parallel_runner_shares_one_store_across_exchanges(monkeypatch, fresh_exchange_state):
    import run_parallel_scanner as rps
    from utils import config

    async with FakeExchangeServer(symbols=6, markets=["binance_spot", "bybit_spot"], rate_limits=False) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        config.reload()
        store = MemoryCandleStore()
        await rps.run_parallel_multi_timeframes_all_exchanges(
            ["1d", "4h"], "volume_surge", ["binance_spot", "bybit_spot"], send_telegram=False, cache=KlineCache(),
            progress=False, store=store)
    stored = {(s.exchange, s.interval) for s in store.series()}
    assert stored == {("binance_spot", "1d"), ("binance_spot", "4h"), ("bybit_spot", "1d"), ("bybit_spot", "4h")}
