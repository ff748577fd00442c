"""Budgets learn the real limit (issue 13): published limits and usage override the table downward,
a 429 lowers the limit believed (multiplicative decrease without a number), which grows back slowly.

The budget rules are checked at chosen instants (``limit_at(now)``), never by sleeping; the client
paths run against the fake exchange with its limit lowered and the client not told.
"""

from __future__ import annotations

import asyncio

import pytest

from exchanges.binance import BinanceSpotClient
from exchanges.errors import RateLimited
from exchanges.kucoin import KucoinSpotClient
from exchanges.mexc import MexcFuturesClient
from exchanges.rate_limit import (
    HostBudget,
    DECREASE_FACTOR,
    GROWTH_PER_PERIOD,
    HOLD_PERIODS,
    RetryPolicy,
    UsageHeaders,
    configure_budget,
    get_budget,
    weight_limits,
)
from tests.fakes.exchange_server import FakeExchangeServer

# Long Retry-Afters are not slept through: the request fails at once with RateLimited.
NO_WAIT = RetryPolicy(attempts=2, backoff_base=0.01, backoff_cap=0.02, jitter=0.0, timeout=2.0,
                      max_retry_after=0.5)

pytestmark = pytest.mark.usefixtures("fresh_exchange_state")


def test_request_weight_entries_of_a_binance_rate_limit_list_are_read() -> None:
    rules = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "FORTNIGHT", "intervalNum": 1, "limit": 5},
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "limit": "many"},
        "garbage",
    ]
    assert weight_limits(rules) == [(6000, 60.0), (300, 10.0)]


def test_a_published_limit_only_ever_lowers_the_budget_and_only_over_the_same_period() -> None:
    budget = configure_budget("published", 6000, 60.0, margin=0.9)
    assert not budget.learn_limit(8000, 60.0, "test")  # above the table: ignored
    assert not budget.learn_limit(100, 10.0, "test")  # another window: not comparable
    assert budget.limit == 6000
    assert budget.learn_limit(600, 60.0, "test")
    assert (budget.limit, budget.capacity) == (600, pytest.approx(540))
    assert not budget.learn_limit(1200, 60.0, "test")  # never raised again


def test_a_429_with_the_used_weight_makes_that_the_limit() -> None:
    budget = configure_budget("stated", 6000, 60.0)
    budget.rate_limited(stated=600)
    assert budget.limit == 600
    budget.rate_limited(stated=600)  # the requests in flight meanwhile: same news, no further cut
    assert budget.limit == 600


def test_a_429_without_numbers_halves_the_limit_once_per_period() -> None:
    budget = configure_budget("blind", 600, 5.0)
    budget.rate_limited()
    budget.rate_limited()  # answered in the same period: one decrease for the whole burst
    assert budget.limit == 600 * DECREASE_FACTOR
    budget._cut_at -= 5.0  # one period later a new 429 is new news
    budget.rate_limited()
    assert budget.limit == 600 * DECREASE_FACTOR**2


def test_the_lowered_limit_holds_then_grows_back_slowly_to_the_ceiling() -> None:
    period = 10.0
    budget = configure_budget("recover", 6000, period)
    budget.rate_limited(stated=600)
    cut_at = budget._cut_at
    held = cut_at + HOLD_PERIODS * period
    assert budget.limit_at(held - 1) == 600
    assert budget.limit_at(held + period) == pytest.approx(600 * (1 + GROWTH_PER_PERIOD))
    assert budget.limit_at(held + 5 * period) < 600 * 1.3  # slowly: 5 periods, under +30 %
    assert budget.limit_at(held + 100 * period) == 6000  # and back to the table in the end


def test_usage_headers_that_state_the_limit_lower_it() -> None:
    budget = configure_budget("stated-headers", 2000, 30.0)
    headers = UsageHeaders(remaining="left", limit="cap", reset="reset", reset_kind="delta_ms")
    budget.observe(headers, {"left": "400", "cap": "500", "reset": "1000"})
    assert budget.limit == 500
    assert headers.stated_limit({"cap": "0"}) is None  # an injected fault's zero is no limit


async def test_the_listing_teaches_a_binance_client_the_lowered_published_limit() -> None:
    async with FakeExchangeServer(symbols=5, markets=["binance_spot"]) as server:
        server.set_rate_limit("binance_spot", capacity=600)  # a tenth of the published 6,000
        async with BinanceSpotClient(base_url=server.base_url("binance_spot"), retry=NO_WAIT) as client:
            assert client.budget.limit == 6000
            await client.get_all_spot_symbols()
            assert client.budget.limit == 600
        assert get_budget("binance_spot", 6000, 60.0).capacity == pytest.approx(540)  # for the whole process


async def test_a_binance_429_teaches_the_client_the_weight_the_exchange_allowed() -> None:
    async with FakeExchangeServer(symbols=3, markets=["binance_spot"]) as server:
        # 30 weight per hour (fixed, aligned): the 16th weight-2 request is refused; no ban escalation.
        server.set_rate_limit("binance_spot", capacity=30, window=3600, ban_seconds=None)
        symbol = server.usdt_symbols("binance_spot")[0]
        async with BinanceSpotClient(base_url=server.base_url("binance_spot"), retry=NO_WAIT) as client:
            with pytest.raises(RateLimited):
                for _ in range(16):
                    await client.fetch_klines(symbol, "1d", 10)
            assert client.budget.limit == 30
            assert client.budget.paused_until > 0  # and its Retry-After holds the budget


async def test_a_rate_limited_envelope_without_numbers_halves_a_told_limit() -> None:
    async with FakeExchangeServer(symbols=3, markets=["mexc_futures"], rate_limits=False) as server:
        symbol = server.usdt_symbols("mexc_futures")[0]
        server.add_fault("429", market="mexc_futures", path="klines", times=1, retry_after=0)
        configure_budget("mexc_futures", MexcFuturesClient.budget_limit, MexcFuturesClient.budget_period)
        async with MexcFuturesClient(base_url=server.base_url("mexc_futures"), retry=NO_WAIT) as client:
            frame = await client.fetch_klines(symbol, "1d", 10)  # 510 "too frequent", retried
            assert len(frame) == 10
            assert client.budget.limit == MexcFuturesClient.budget_limit * DECREASE_FACTOR
            assert not client.budget.confirmed  # refused within the told limit: probed from now on


async def test_a_refused_probe_without_numbers_makes_the_weight_accepted_in_the_window_the_limit() -> None:
    async with FakeExchangeServer(symbols=3, markets=["mexc_futures"], rate_limits=False) as server:
        symbol = server.usdt_symbols("mexc_futures")[0]
        # after a first 429 halved a guess of 16 per 2 s: 8 believed, nothing proven, probing
        configure_budget("mexc_futures", 16, MexcFuturesClient.budget_period).rate_limited(None)
        async with MexcFuturesClient(base_url=server.base_url("mexc_futures"), retry=NO_WAIT) as client:
            assert client.budget.limit == 8 and not client.budget.confirmed
            for _ in range(5):
                await client.fetch_klines(symbol, "1d", 10)
            accepted = client.budget.proven
            assert accepted >= 5  # each klines probe (weight 1) accepted, and the contract listing
            server.add_fault("429", market="mexc_futures", path="klines", times=1, retry_after=0)
            await client.fetch_klines(symbol, "1d", 10)  # goes as a probe, is refused (510), then retried
            assert client.budget.limit == accepted > 8 * DECREASE_FACTOR  # not what halving would give


async def test_a_stray_429_early_on_halves_the_limit_rather_than_taking_it_down_to_the_little_accepted() -> None:
    budget = configure_budget("early", 100, 10.0, confirmed=False)
    budget.accept(budget.observe(None, {}))  # nothing was a probe yet: proven stays 0
    await budget.acquire(1)  # a probe: beyond the 0 accepted
    budget.accept(budget.observe(None, {}))
    assert budget.proven == 1
    await budget.acquire(1)
    budget.observe(None, {})
    budget.rate_limited(None)  # the probe is refused, with no number
    assert budget.limit == 100 * DECREASE_FACTOR


async def test_kucoin_usage_headers_teach_the_client_a_lowered_limit() -> None:
    async with FakeExchangeServer(symbols=3, markets=["kucoin_spot"]) as server:
        server.set_rate_limit("kucoin_spot", capacity=500)
        symbol = server.usdt_symbols("kucoin_spot")[0]
        async with KucoinSpotClient(base_url=server.base_url("kucoin_spot"), retry=NO_WAIT) as client:
            await asyncio.wait_for(client.fetch_klines(symbol, "1d", 10), 10)
            assert client.budget.limit == 500


async def _answered(budget: HostBudget, weight: float, peak: list[int]) -> None:
    """Acquire, note how many requests are on the wire, then take an accepted answer."""
    await budget.acquire(weight)
    peak.append(budget.in_flight())
    await asyncio.sleep(0.005)
    budget.accept(budget.observe(None, {}))


async def test_an_unconfirmed_budget_sends_one_request_at_a_time_beyond_the_accepted_weight() -> None:
    budget = configure_budget("guess", 1000, 10.0, confirmed=False)
    peak: list[int] = []
    await asyncio.gather(*(_answered(budget, 1, peak) for _ in range(5)))
    assert max(peak) == 1  # each answer raises what the exchange is known to accept by one
    assert budget.proven == 5


async def test_within_the_accepted_weight_an_unconfirmed_budget_sends_at_full_concurrency() -> None:
    budget = configure_budget("guess", 1000, 0.2, confirmed=False)
    budget.proven = 20  # an earlier window took 20
    peak: list[int] = []
    await _answered(budget, 1, peak)  # the first request of a budget always goes alone
    await asyncio.gather(*(_answered(budget, 1, peak) for _ in range(10)))
    assert max(peak) == 10


async def test_a_told_limit_is_not_probed() -> None:
    budget = configure_budget("told", 1000, 10.0)
    peak: list[int] = []
    await _answered(budget, 1, peak)
    await asyncio.gather(*(_answered(budget, 1, peak) for _ in range(5)))
    assert max(peak) == 5


def test_the_table_is_a_guess_where_the_exchange_states_its_limit_and_trusted_where_it_does_not(
    monkeypatch,
) -> None:
    assert not BinanceSpotClient().budget.confirmed  # until the listing publishes the limit
    assert MexcFuturesClient().budget.confirmed  # MEXC states nothing: the documented table
    monkeypatch.setenv("SCANNER_BINANCE_FUTURES_RATE_LIMIT", "1200/60")
    assert get_budget("binance_futures", 2400, 60.0, confirmed=False).confirmed  # the user told it


def test_a_published_limit_over_the_budget_window_confirms_it() -> None:
    budget = configure_budget("binance_spot", 6000, 60.0, confirmed=False)
    budget.learn_limit(6000, 60.0, "test")
    assert budget.confirmed and budget.limit == 6000


async def test_a_429_within_the_accepted_weight_means_the_limit_changed_and_probing_starts_again() -> None:
    budget = configure_budget("changed", 1000, 10.0, confirmed=False)
    budget.proven = 50
    await budget.acquire(1)  # within the 50 accepted: not a probe
    budget.observe(None, {})
    budget.rate_limited(None)
    assert budget.proven == 0 and not budget.confirmed
    assert budget.limit == 500  # no number: halved


async def test_an_unknown_lower_limit_costs_one_429_in_the_first_window_and_none_after() -> None:
    async with FakeExchangeServer(symbols=40, markets=["binance_spot"]) as server:
        # 30 weight per second, fixed windows, no ban escalation; the client's table believes 300.
        server.set_rate_limit("binance_spot", capacity=30, window=1.0, ban_seconds=None)
        configure_budget("binance_spot", 300, 1.0, confirmed=False)
        symbols = server.usdt_symbols("binance_spot")
        async with BinanceSpotClient(base_url=server.base_url("binance_spot")) as client:
            frames = await asyncio.wait_for(
                asyncio.gather(*(client.fetch_klines(s, "1d", 10) for s in symbols)), 60)
            assert len(frames) == len(symbols) and all(len(f) for f in frames)  # none failed
            assert server.rate_limited["binance_spot"] <= 1
            assert client.budget.limit <= 30  # the exchange's count at the refusal


def test_a_listing_that_states_no_limit_makes_the_table_trusted_unless_a_429_showed_it_wrong() -> None:
    budget = configure_budget("binance_spot", 6000, 60.0, confirmed=False)
    budget.trust_table()
    assert budget.confirmed
    refused = configure_budget("binance_futures", 2400, 60.0, confirmed=False)
    refused.rate_limited(None)
    refused.trust_table()
    assert not refused.confirmed
