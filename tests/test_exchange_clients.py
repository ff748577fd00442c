"""Every market end to end against the local fake exchange server (tests/fakes/exchange_server.py).

Listing and klines, pagination above the page size, young markets, contract sizes, the shared
rate budgets and the failure contracts of tests/exchange_contracts.py, for each of the ten markets.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import pytest

from exchanges.binance import BinanceSpotClient
from exchanges.errors import BadResponse, BadSymbol, ExchangeError, IPBanned, RequestTimeout, TemporaryError
from exchanges.rate_limit import RetryPolicy, configure_budget, host_request_counts
from exchanges.registry import LIVE_EXCHANGE_NAMES, get_client
from tests.exchange_contracts import (
    assert_ban_blocks_budget,
    assert_empty_candles_give_empty_frame,
    assert_fails_without_retry,
    assert_frame_matches_server,
    assert_reordered_rows_are_normalised,
    assert_retried_then_succeeds,
    assert_retries_exhausted,
    klines_sent,
)
from tests.fakes.exchange_server import FakeExchangeServer
from utils.timeframes import daily_bars_needed, get_timeframe

NOW = datetime(2025, 3, 5, 13, 37, 11, tzinfo=UTC)
SYMBOLS = 12
FAST_RETRY = RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.02, jitter=0.01, timeout=2.0)
MARKETS = list(LIVE_EXCHANGE_NAMES)
CONTRACT_MARKETS = ["gateio_futures", "kucoin_futures", "mexc_futures"]
BAN_STATUS = {"bybit_spot": "403", "bybit_futures": "403"}
# Markets sharing one IP budget: a ban on one stops the other.
SIBLING = {"bybit_spot": "bybit_futures", "bybit_futures": "bybit_spot",
           "kucoin_spot": "kucoin_futures", "kucoin_futures": "kucoin_spot"}


pytestmark = pytest.mark.usefixtures("fresh_exchange_state")


@pytest.fixture(params=MARKETS)
def market(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def server(market: str) -> AsyncIterator[FakeExchangeServer]:
    markets = sorted({market, SIBLING.get(market, market)})
    async with FakeExchangeServer(symbols=SYMBOLS, now=NOW, markets=markets) as srv:
        yield srv


def make_client(server: FakeExchangeServer, market: str, retry: RetryPolicy = FAST_RETRY, **kw):
    return get_client(market, base_url=server.base_url(market), retry=retry,
                      clock=lambda: server.now_ms / 1000, **kw)


@pytest.fixture
async def client(server: FakeExchangeServer, market: str):
    """A client that has listed its market (contract sizes known): later requests are klines only."""
    c = make_client(server, market)
    await c.get_all_spot_symbols()
    yield c
    await c.close()


def a_symbol(server: FakeExchangeServer, market: str) -> str:
    """A listed USDT market with the full history (its listing day is the oldest)."""
    infos = [i for i in server.symbols[market] if i.usdt]
    return min(infos, key=lambda i: i.listed_day).symbol


# ---------------------------------------------------------------------------------- end to end


async def test_listing_returns_tradable_usdt_markets_only(server, market) -> None:
    async with make_client(server, market) as c:
        symbols = await c.get_all_spot_symbols()
        assert symbols == sorted(server.usdt_symbols(market))
        assert c.request_count == 1 == server.requests_by_kind[(market, "listing")]


async def test_klines_match_server_bars(server, client, market) -> None:
    symbol = a_symbol(server, market)
    frame = await client.fetch_klines(symbol, "1d", 100)
    assert_frame_matches_server(frame, server, market, symbol, "1d", 100)


async def test_pagination_returns_exactly_limit_bars(server, client, market) -> None:
    symbol = a_symbol(server, market)
    limit = 2 * client.page_limit + 7
    before = client.request_count
    frame = await client.fetch_klines(symbol, "4h", limit)
    assert_frame_matches_server(frame, server, market, symbol, "4h", limit)
    assert client.request_count - before == math.ceil(limit / client.page_limit)


async def test_fetch_candles_of_a_multi_page_kucoin_futures_fetch_equals_fetch_klines() -> None:
    market = "kucoin_futures"
    async with FakeExchangeServer(symbols=3, now=NOW, markets=[market]) as srv:
        async with make_client(srv, market) as c:
            await c.get_all_spot_symbols()
            symbol = a_symbol(srv, market)
            limit = 3 * c.page_limit + 11
            before = c.request_count
            candles = await c.fetch_candles(symbol, "1d", limit)
            pages = c.request_count - before
            frame = await c.fetch_klines(symbol, "1d", limit)
            since = int(candles.stamps[-250])
            recent = await c.fetch_candles(symbol, "1d", since=since)
            recent_frame = await c.fetch_klines(symbol, "1d", since=since)
    assert pages == 4
    assert not candles.stamps.flags.writeable and not candles.values.flags.writeable
    assert candles.stamps.tolist() == frame.index.as_unit("ms").asi8.tolist()
    assert np.array_equal(candles.values.view(np.int64), frame.to_numpy().view(np.int64))
    assert_frame_matches_server(frame, srv, market, symbol, "1d", limit)
    assert recent.stamps.tolist() == candles.stamps[-250:].tolist() == recent_frame.index.as_unit("ms").asi8.tolist()
    assert np.array_equal(recent.values, recent_frame.to_numpy())


async def test_young_market_returns_its_whole_history(market) -> None:
    async with FakeExchangeServer(symbols=3, now=NOW, markets=[market], history_days=150) as srv:
        async with make_client(srv, market) as c:
            await c.get_all_spot_symbols()
            symbol = a_symbol(srv, market)
            history = len(srv.bars(market, symbol, "4h"))
            frame = await c.fetch_klines(symbol, "4h", history + 3 * c.page_limit)
            assert_frame_matches_server(frame, srv, market, symbol, "4h", history)
            assert c.request_count <= 1 + math.ceil(history / c.page_limit) + 1


async def test_default_interval_and_limit_follow_timeframe(server, market) -> None:
    async with make_client(server, market, timeframe="4h") as c:
        symbol = a_symbol(server, market)
        frame = await c.fetch_klines(symbol)
        assert_frame_matches_server(frame, server, market, symbol, "4h", get_timeframe("4h").bars)
    async with make_client(server, market, timeframe="3d") as c:
        frame = await c.fetch_klines(symbol)
        assert_frame_matches_server(frame, server, market, symbol, "1d", daily_bars_needed("3d"))


async def test_weekly_bars_are_native_only_where_monday_aligned(server, client, market) -> None:
    symbol = a_symbol(server, market)
    if not client.weekly_monday_aligned:
        assert client.native_interval("1w") == "1d"
        return
    frame = await client.fetch_klines(symbol, "1w", 20)
    assert_frame_matches_server(frame, server, market, symbol, "1w", 20)
    assert (frame.index.day_of_week == 0).all()


@pytest.mark.parametrize("market", CONTRACT_MARKETS)
async def test_contract_volume_converted_with_lazily_fetched_size(server, market) -> None:
    symbol = a_symbol(server, market)
    assert server.symbol_info(market, symbol).multiplier != 1.0
    async with make_client(server, market) as c:
        frame = await c.fetch_klines(symbol, "1d", 10)
        await c.fetch_klines(symbol, "4h", 10)
    assert_frame_matches_server(frame, server, market, symbol, "1d", 10)
    assert server.requests_by_kind[(market, "listing")] == 1
    assert klines_sent(server, market) == 2


# ---------------------------------------------------------------------------------- failure contracts


async def test_429_with_retry_after_is_honoured_then_succeeds(server, client, market) -> None:
    await assert_retried_then_succeeds(
        server, client, market, a_symbol(server, market), "429", min_elapsed=0.9, retry_after=1
    )


async def test_ip_ban_stops_every_client_of_the_budget(server, client, market) -> None:
    sibling = make_client(server, SIBLING.get(market, market))
    try:
        await assert_ban_blocks_budget(
            server, client, sibling, market, a_symbol(server, market), BAN_STATUS.get(market, "418")
        )
    finally:
        await sibling.close()


@pytest.mark.parametrize("fault", ["500", "503", "reset"])
async def test_temporary_failure_then_success(server, client, market, fault) -> None:
    await assert_retried_then_succeeds(server, client, market, a_symbol(server, market), fault)


async def test_server_errors_exhaust_bounded_retries(server, client, market) -> None:
    symbol = a_symbol(server, market)
    error = await assert_retries_exhausted(server, client, market, symbol, "502", TemporaryError)
    assert error.status == 502


async def test_timeout_is_retried_then_raised(server, market) -> None:
    quick = RetryPolicy(attempts=2, backoff_base=0.01, backoff_cap=0.01, jitter=0.0, timeout=0.2)
    async with make_client(server, market, retry=quick) as c:
        await c.get_all_spot_symbols()
        await assert_retries_exhausted(server, c, market, a_symbol(server, market), "timeout", RequestTimeout,
                                       seconds=1.0)


async def test_timeout_once_then_success(server, market) -> None:
    quick = RetryPolicy(attempts=2, backoff_base=0.01, backoff_cap=0.01, jitter=0.0, timeout=0.2)
    async with make_client(server, market, retry=quick) as c:
        await c.get_all_spot_symbols()
        symbol = a_symbol(server, market)
        await assert_retried_then_succeeds(server, c, market, symbol, "timeout", seconds=1.0)


@pytest.mark.parametrize("fault", ["truncated_json", "html", "envelope_error"])
async def test_unusable_body_raises_bad_response_without_retry(server, client, market, fault) -> None:
    await assert_fails_without_retry(server, client, market, a_symbol(server, market), fault, BadResponse)


async def test_bad_candle_values_raise_bad_response(server, client, market) -> None:
    error = await assert_fails_without_retry(
        server, client, market, a_symbol(server, market), "bad_values", BadResponse, variant="negative"
    )
    assert "low" in error.message


async def test_unknown_symbol_raises_bad_symbol_without_retry(server, client, market) -> None:
    info = server.symbols[market][1]
    unknown = info.symbol.replace(info.base, "NOPEQ", 1)
    assert unknown != info.symbol and unknown not in server.usdt_symbols(market)
    await assert_fails_without_retry(server, client, market, unknown, None, BadSymbol)


async def test_empty_candle_list_gives_empty_frame(server, client, market) -> None:
    await assert_empty_candles_give_empty_frame(server, client, market, a_symbol(server, market))


@pytest.mark.parametrize("fault", ["duplicates", "unsorted"])
async def test_duplicate_or_unordered_rows_are_normalised(server, client, market, fault) -> None:
    await assert_reordered_rows_are_normalised(server, client, market, a_symbol(server, market), fault)


async def test_failed_listing_raises_instead_of_returning_empty(server, market) -> None:
    server.add_fault("503", market=market, path="listing")
    async with make_client(server, market) as fresh:
        with pytest.raises(TemporaryError):
            await fresh.get_all_spot_symbols()
        assert server.requests_by_kind[(market, "listing")] == fresh.retry.attempts
        server.clear_faults()
        assert await fresh.get_all_spot_symbols() == sorted(server.usdt_symbols(market))


@pytest.mark.parametrize("market", ["mexc_futures"])
async def test_listing_is_requested_once_per_client_and_shared_by_concurrent_callers(server, market) -> None:
    async with make_client(server, market) as fresh:
        lists = await asyncio.gather(*(fresh.get_all_spot_symbols() for _ in range(5)))
        assert lists[0] == lists[4] and lists[0]
        assert server.requests_by_kind[(market, "listing")] == 1


# ---------------------------------------------------------------------------------- budgets


@pytest.mark.parametrize("market", ["bybit_spot"])
async def test_bybit_spot_and_linear_share_one_budget(server, market) -> None:
    async with make_client(server, "bybit_spot") as spot, make_client(server, "bybit_futures") as linear:
        assert spot.budget is linear.budget
        await spot.fetch_klines(a_symbol(server, "bybit_spot"), "1d", 5)
        await linear.fetch_klines(a_symbol(server, "bybit_futures"), "1d", 5)
        assert host_request_counts()["bybit"] == spot.request_count + linear.request_count == 2
        assert spot.request_count == linear.request_count == 1


@pytest.mark.parametrize("market", ["bybit_futures"])
async def test_bybit_linear_listing_follows_cursor_pages(market) -> None:
    async with FakeExchangeServer(symbols={"bybit_futures": 1100}, now=NOW, markets=[market]) as srv:
        async with make_client(srv, market) as c:
            symbols = await c.get_all_spot_symbols()
        assert symbols == sorted(srv.usdt_symbols(market)) and len(symbols) == 1100
        assert srv.requests_by_kind[(market, "listing")] == 2


@pytest.mark.parametrize(
    ("market", "capacity", "window"), [("kucoin_spot", 30, 2.0), ("gateio_spot", 10, 2.0)]
)
async def test_usage_headers_pause_before_the_exchange_says_429(server, market, capacity, window) -> None:
    server.set_rate_limit(market, capacity=capacity, window=window)
    async with make_client(server, market) as c:
        # The local limiter alone would allow 3x the server's budget: only the headers can stop it.
        configure_budget(c.budget_key, 3 * capacity, window)
        symbols = 2 * server.usdt_symbols(market)  # more than two windows' worth of requests
        frames = await asyncio.gather(*(c.fetch_klines(s, "1d", 5) for s in symbols))
    assert all(len(f) == 5 for f in frames)
    assert c.request_count == len(symbols) > 2 * capacity / c.klines_weight
    assert c.budget.paused_until > 0
    assert server.rate_limited[market] == 0


@pytest.mark.parametrize("market", ["binance_spot"])
async def test_binance_used_weight_header_pauses_the_budget(server, market) -> None:
    budget = configure_budget("binance_spot", limit=100, period=60.0)
    budget.observe(BinanceSpotClient.usage_headers, {"X-MBX-USED-WEIGHT-1M": "89"})
    assert budget.paused_until == 0.0
    configure_budget("binance_spot", limit=2, period=60.0)
    async with make_client(server, market) as c:
        await c.fetch_klines(a_symbol(server, market), "1d", 5)  # the server reports 2 weight used
        assert time.time() < c.budget.paused_until <= time.time() + 60.0


@pytest.mark.parametrize("market", ["binance_spot"])
async def test_ban_is_lifted_after_retry_after(server, client, market) -> None:
    server.add_fault("418", market=market, path="klines", times=1, retry_after=1)
    with pytest.raises(IPBanned):
        await client.fetch_klines(a_symbol(server, market), "1d", 5)
    await asyncio.sleep(1.05)
    assert len(await client.fetch_klines(a_symbol(server, market), "1d", 5)) == 5


@pytest.mark.parametrize("market", ["mexc_spot"])
async def test_env_base_url_is_used_when_none_is_given(server, market, monkeypatch) -> None:
    monkeypatch.setenv("SCANNER_MEXC_SPOT_BASE_URL", server.base_url(market))
    async with get_client(market, retry=FAST_RETRY, clock=lambda: server.now_ms / 1000) as c:
        assert c.base_url == server.base_url(market)
        assert await c.get_all_spot_symbols() == sorted(server.usdt_symbols(market))




@pytest.mark.parametrize("market", ["binance_spot"])
async def test_a_closed_client_refuses_new_requests_instead_of_opening_a_session_nobody_closes(
    server, client, market
) -> None:
    symbol = a_symbol(server, market)
    await client.close()
    with pytest.raises(ExchangeError, match="client closed"):
        await client.fetch_klines(symbol, "1d", 5)
    assert client._session is None  # noqa: SLF001 - no fresh session was opened
    async with client:  # reopening it explicitly is allowed
        assert len(await client.fetch_klines(symbol, "1d", 5)) == 5
