"""Fault injection (issue 6, items 1-6, 8, 9): every fault ends in retried data or a named failure.

Real clients from the registry talk to the local fake exchange; ``set_default_retry`` gives them
tiny backoffs so that bounded retries cost milliseconds. Each test names the fault it injects and
checks both that the scan finishes and that its summary says what was lost and why.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pandas as pd
import pytest

import run_parallel_scanner as rps
from exchanges.base_client import backoff_delay, set_default_retry
from exchanges.errors import BadCandles, BadResponse
from exchanges.rate_limit import RetryPolicy
from exchanges.registry import LIVE_EXCHANGE_NAMES, get_client
from scanner import main as scanner_main
from scanner.cache import KlineCache
from scanner.main import FETCH_CONCURRENCY, MIN_ROWS, analyse_frames, clean_frame
from scanner.registry import get_strategy
from tests.conftest import configure_telegram
from tests.fakes.exchange_server import FakeExchangeServer
from tests.fakes.telegram_server import FakeBotApi, make_token
from utils import config

FAST_RETRY = RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.02, jitter=0.01, timeout=0.5)
SYMBOLS = 12
ALL_MARKETS = list(LIVE_EXCHANGE_NAMES)


@pytest.fixture(autouse=True)
def fast_clients(fresh_exchange_state) -> None:
    """Tiny retry delays for registry-built clients; budgets, bans and contract sizes start empty."""
    set_default_retry(FAST_RETRY)
    yield
    set_default_retry(None)


@asynccontextmanager
async def serving(
    monkeypatch: pytest.MonkeyPatch, markets: list[str], symbols: int = SYMBOLS
) -> AsyncIterator[FakeExchangeServer]:
    """The fake exchange for ``markets`` (server rate limits off), wired in through the environment."""
    async with FakeExchangeServer(symbols=symbols, markets=markets, rate_limits=False) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        config.reload()
        yield server


async def scan(market: str, strategies: str = "all", **kw) -> scanner_main.ScanSummary:
    result = await scanner_main.scan_exchange(market, "1d", strategies, cache=KlineCache(), progress=False, **kw)
    return result.summaries[0]


# ------------------------------------------------------------------ 1. rate limits


async def test_rate_limit_answers_of_every_market_are_waited_out_then_the_candles_arrive(monkeypatch):
    """429 + Retry-After (Binance/Gate/KuCoin/MEXC spot) and the 200 envelopes (Bybit 10006, MEXC 510)."""
    async with serving(monkeypatch, ALL_MARKETS) as server:
        for market in ALL_MARKETS:
            server.add_fault("429", market=market, path="klines", times=1, retry_after=1)

        async def fetch(market: str) -> tuple[str, str, float, pd.DataFrame]:
            symbol = server.usdt_symbols(market)[0]
            async with get_client(market) as client:
                started = time.perf_counter()
                frame = await client.fetch_klines(symbol, limit=30)
                return market, symbol, time.perf_counter() - started, frame

        results = await asyncio.gather(*(fetch(m) for m in ALL_MARKETS))
        for market, symbol, elapsed, frame in results:
            assert len(frame) == 30, market
            assert elapsed >= 0.95, f"{market} retried after {elapsed:.2f}s, before its Retry-After"
            assert server.requests_by_symbol[(market, symbol)] == 2, market
            assert server.rate_limited[market] == 0  # the answers were injected faults, not a real overrun


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    policy = RetryPolicy(attempts=6, backoff_base=0.5, backoff_cap=3.0, jitter=0.25)
    rng = random.Random(7)
    for attempt, step in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (5, 3.0)]:
        delays = {backoff_delay(policy, attempt, rng) for _ in range(50)}
        assert all(step <= d <= step + 0.25 for d in delays)
        assert len(delays) > 1  # jittered, not one fixed value


# ------------------------------------------------------------------ 2. IP ban


async def test_ip_ban_stops_every_request_to_that_exchange_while_the_others_complete(monkeypatch):
    markets = ["binance_spot", "bybit_spot", "kucoin_spot"]
    async with serving(monkeypatch, markets, symbols=80) as server:
        server.add_fault("418", market="binance_spot", path="klines", times=1, retry_after=120)
        result = await rps.run_parallel_exchanges(
            "1d", "all", markets, send_telegram=False, cache=KlineCache(), progress=False
        )
        by = {s.exchange: s for s in result.summaries}
        banned = by["binance_spot"]
        assert re.search(r"IP banned for 1[12]\ds more \(until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", banned.error)
        assert server.requests_by_kind[("binance_spot", "klines")] <= FETCH_CONCURRENCY
        assert banned.fetched + len(banned.failed) == banned.listed
        assert all("IP banned" in reason for reason in banned.failed.values())
        for market in ("bybit_spot", "kucoin_spot"):
            assert by[market].error is None and by[market].fetched == by[market].listed
        assert "binance_spot 1d" in result.failures

        before = server.requests_by_market["binance_spot"]
        again = await scan("binance_spot")
        assert server.requests_by_market["binance_spot"] == before
        assert "IP banned" in again.error and "symbol listing failed" in again.error


# ------------------------------------------------------------------ 3. 5xx, resets, timeouts

TRANSIENT = [
    ("500", {}, "HTTP 500"),
    ("502", {}, "HTTP 502"),
    ("503", {}, "HTTP 503"),
    ("504", {}, "HTTP 504"),
    ("reset", {"when": "during"}, "connection failed"),
    ("reset", {"when": "before"}, "connection failed"),
    ("timeout", {"seconds": 5}, "no answer within"),
]


@pytest.mark.parametrize(("kind", "params", "reason"), TRANSIENT, ids=[f"{k}-{p.get('when', '')}" for k, p, _ in TRANSIENT])
async def test_a_burst_shorter_than_the_retries_still_delivers_the_candles(monkeypatch, kind, params, reason):
    async with serving(monkeypatch, ["binance_spot"]) as server:
        symbol = server.usdt_symbols("binance_spot")[3]
        server.add_fault(kind, market="binance_spot", symbol=symbol, times=FAST_RETRY.attempts - 1, **params)
        summary = await scan("binance_spot")
        assert summary.error is None and not summary.failed
        assert summary.fetched == summary.listed
        assert server.requests_by_symbol[("binance_spot", symbol)] >= FAST_RETRY.attempts


@pytest.mark.parametrize(("kind", "params", "reason"), TRANSIENT, ids=[f"{k}-{p.get('when', '')}" for k, p, _ in TRANSIENT])
async def test_a_lasting_fault_ends_after_bounded_retries_with_the_symbol_failed_and_its_reason(
    monkeypatch, kind, params, reason
):
    async with serving(monkeypatch, ["binance_spot"]) as server:
        symbol = server.usdt_symbols("binance_spot")[3]
        server.add_fault(kind, market="binance_spot", symbol=symbol, **params)
        summary = await scan("binance_spot")
        assert list(summary.failed) == [symbol]
        assert reason in summary.failed[symbol] and symbol in summary.failed[symbol]
        assert summary.fetched == summary.listed - 1 and summary.error is None
        sent = server.requests_by_symbol[("binance_spot", symbol)]
        # aiohttp itself re-sends once a request whose connection closed before any answer byte
        limit = 2 * FAST_RETRY.attempts if params.get("when") == "before" else FAST_RETRY.attempts
        assert FAST_RETRY.attempts <= sent <= limit


# ------------------------------------------------------------------ 4. malformed bodies

MALFORMED = ["truncated_json", "html", "envelope_error"]


@pytest.mark.parametrize("kind", MALFORMED)
@pytest.mark.parametrize("market", ALL_MARKETS)
async def test_a_malformed_body_is_a_typed_error_never_a_crash_or_an_empty_frame(monkeypatch, market, kind):
    async with serving(monkeypatch, [market]) as server:
        symbol = server.usdt_symbols(market)[0]
        async with get_client(market) as client:
            await client.get_all_spot_symbols()
            server.add_fault(kind, market=market, path="klines", times=1)
            with pytest.raises(BadResponse) as caught:
                await client.fetch_klines(symbol, limit=20)
            assert not isinstance(caught.value, BadCandles)
            assert caught.value.symbol == symbol and caught.value.exchange == market
            frame = await client.fetch_klines(symbol, limit=20)
            assert len(frame) == 20


@pytest.mark.parametrize(("market", "kind"), [("bybit_spot", "envelope_error"), ("kucoin_spot", "envelope_error"),
                                              ("binance_spot", "html"), ("gateio_spot", "truncated_json")])
async def test_a_malformed_body_fails_only_its_symbol_with_the_reason_in_the_summary(monkeypatch, market, kind):
    async with serving(monkeypatch, [market]) as server:
        symbol = server.usdt_symbols(market)[5]
        server.add_fault(kind, market=market, symbol=symbol)
        summary = await scan(market)
        assert list(summary.failed) == [symbol]
        assert market in summary.failed[symbol]
        assert summary.fetched == summary.listed - 1


# ------------------------------------------------------------------ 5. bad candles

SKIPPED = [
    ("empty", {}, "no candles"),
    ("short", {"bars": 5}, "only 5 bars"),
    ("bad_values", {"variant": "null"}, "bad candles"),
    ("bad_values", {"variant": "nan"}, "bad candles"),
    ("bad_values", {"variant": "negative"}, "bad candles"),
    ("bad_values", {"variant": "high_low"}, "high < low"),
]


@pytest.mark.parametrize("market", ["binance_spot", "bybit_spot"])  # oldest-first and newest-first rows
@pytest.mark.parametrize(("kind", "params", "reason"), SKIPPED, ids=[f"{k}-{p}" for k, p, _ in SKIPPED])
async def test_unusable_candles_skip_the_symbol_with_a_reason(monkeypatch, market, kind, params, reason):
    async with serving(monkeypatch, [market]) as server:
        symbol = server.usdt_symbols(market)[2]
        server.add_fault(kind, market=market, symbol=symbol, **params)
        summary = await scan(market)
        assert list(summary.skipped) == [symbol]
        assert reason in summary.skipped[symbol]
        assert not summary.failed and summary.error is None and summary.fetched == summary.listed
        assert server.requests_by_symbol[(market, symbol)] == 1  # bad data is not re-requested


@pytest.mark.parametrize("market", ["binance_spot", "bybit_spot"])
@pytest.mark.parametrize("kind", ["duplicates", "unsorted"])
async def test_duplicate_or_unsorted_candles_are_cleaned_and_scanned_like_clean_ones(monkeypatch, market, kind):
    async with serving(monkeypatch, [market]) as server:
        symbol = server.usdt_symbols(market)[2]
        async with get_client(market) as client:
            clean = await client.fetch_klines(symbol)
            server.add_fault(kind, market=market, symbol=symbol, times=1)
            messy = await client.fetch_klines(symbol)
        pd.testing.assert_frame_equal(messy, clean)
        server.add_fault(kind, market=market, symbol=symbol)
        summary = await scan(market)
        assert not summary.skipped and not summary.failed and summary.fetched == summary.listed


async def test_fewer_bars_than_a_detector_needs_is_scanned_without_errors(monkeypatch):
    async with serving(monkeypatch, ["binance_spot"]) as server:
        symbol = server.usdt_symbols("binance_spot")[1]
        server.add_fault("short", market="binance_spot", symbol=symbol, bars=20)  # volume_surge needs 66
        summary = await scan("binance_spot", min_volume_usd=0)
        assert not summary.skipped and not summary.failed and not summary.detector_errors


def _frame(rows: int, volume: float = 1000.0) -> pd.DataFrame:
    index = pd.date_range("2025-01-01", periods=rows, freq="D", tz="UTC", unit="ms", name="timestamp")
    close = np.linspace(10.0, 12.0, rows)
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": volume}, index=index
    )


def test_zero_volume_candles_are_kept_and_every_detector_runs_on_them():
    frame, reason = clean_frame(_frame(80, volume=0.0))
    assert reason is None and len(frame) == 80
    hits, errors = analyse_frames([("ZEROUSDT", frame)], [get_strategy(n) for n in rps.STRATEGY_NAMES], "x", "1d")
    assert errors == []


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda f: f.iloc[::-1], None),
        (lambda f: pd.concat([f, f.iloc[[3, 7]]]), None),
        (lambda f: f.iloc[: MIN_ROWS - 1], "only 9 bars"),
        (lambda f: f.assign(close=f["close"].where(f.index != f.index[4])), "missing or non-numeric"),
        (lambda f: f.assign(low=-f["low"]), "negative"),
        (lambda f: f.assign(high=f["low"] * 0.5), "high below low"),
    ],
    ids=["reversed", "duplicated", "short", "nan", "negative", "high_below_low"],
)
def test_clean_frame_fixes_order_and_duplicates_and_rejects_the_rest(spoil, reason):
    original = _frame(30)
    cleaned, why = clean_frame(spoil(original))
    if reason is None:
        pd.testing.assert_frame_equal(cleaned, original, check_freq=False)
    else:
        assert cleaned is None and reason in why


# ------------------------------------------------------------------ 6. an exchange down all along


@pytest.mark.parametrize("mode", ["refuse", "503"])
async def test_an_exchange_down_for_the_whole_scan_leaves_the_others_and_their_alerts(monkeypatch, mode):
    markets = ["binance_spot", "bybit_spot", "gateio_spot"]
    token = make_token(300000001, "D")
    async with serving(monkeypatch, markets, symbols=30) as server, FakeBotApi(valid_tokens=[token]) as api:
        server.add_fault("down", market="gateio_spot", mode=mode)
        every_channel = dict.fromkeys(config.CHANNELS, token)
        configure_telegram(monkeypatch, api.base_url(), every_channel, {"default": "4242"})
        result = await rps.run_parallel_exchanges(
            "1d", "all", markets, send_telegram=True, min_volume_usd=0, cache=KlineCache(), progress=False
        )
        by = {s.exchange: s for s in result.summaries}
        assert by["gateio_spot"].error.startswith("symbol listing failed")
        assert server.requests_by_kind[("gateio_spot", "listing")] == FAST_RETRY.attempts
        for market in ("binance_spot", "bybit_spot"):
            assert by[market].error is None and by[market].fetched == by[market].listed
        assert result.hits and {h.exchange for h in result.hits} <= {"binance_spot", "bybit_spot"}
        assert result.alerts.failures == [] and result.alerts.sent == len(result.hits)
        delivered = "\n".join(m.text for m in api.messages_to("4242"))
        for hit in result.hits:
            assert hit.symbol in delivered


# ------------------------------------------------------------------ 8. the symbol listing

LISTING_FAULTS = [
    ("429", {"retry_after": 0}, True),
    ("500", {}, True),
    ("reset", {"when": "during"}, True),
    ("html", {}, False),
    ("truncated_json", {}, False),
    ("envelope_error", {}, False),
]


@pytest.mark.parametrize(("kind", "params", "retried"), LISTING_FAULTS, ids=[k for k, _, _ in LISTING_FAULTS])
async def test_a_failed_listing_is_an_error_for_that_exchange_never_an_empty_market(monkeypatch, kind, params, retried):
    async with serving(monkeypatch, ["bybit_spot"]) as server:
        server.add_fault(kind, market="bybit_spot", path="listing", **params)
        summary = await scan("bybit_spot")
        assert summary.error.startswith("symbol listing failed") and "bybit_spot" in summary.error
        assert not summary.ok and summary.listed == 0
        assert server.requests_by_kind[("bybit_spot", "listing")] == (FAST_RETRY.attempts if retried else 1)
        assert server.requests_by_kind[("bybit_spot", "klines")] == 0


@pytest.mark.parametrize("kind", ["429", "500", "reset"])
async def test_a_listing_that_fails_once_is_retried_and_the_scan_completes(monkeypatch, kind):
    async with serving(monkeypatch, ["kucoin_spot"]) as server:
        params = {"retry_after": 0} if kind == "429" else {}
        server.add_fault(kind, market="kucoin_spot", path="listing", times=1, **params)
        summary = await scan("kucoin_spot")
        assert summary.error is None
        assert summary.listed == len(server.usdt_symbols("kucoin_spot")) == summary.fetched


# ------------------------------------------------------------------ 9. one detector failing on one symbol


async def test_a_detector_raising_on_one_symbol_loses_only_that_result_and_the_rest_is_alerted(monkeypatch):
    from scanner import registry

    cache = KlineCache()
    clean = await scanner_main.run_scan("1d", "all", "demo", cache=cache)
    by_symbol: dict[str, set[str]] = {}
    for hit in clean.hits:
        by_symbol.setdefault(hit.symbol, set()).add(hit.strategy)
    victim = next(s for s, names in sorted(by_symbol.items()) if "test_bar" not in names)
    target = (await scanner_main.load_candles("demo", victim, "1d", cache=cache))["close"].to_numpy()
    strategies = registry.registry()
    original = strategies["test_bar"]

    def buggy(o, h, l, c, v):
        if any(np.array_equal(c[:, k], target, equal_nan=True) for k in range(c.shape[1])):
            raise RuntimeError("detector bug")
        return original.panel(o, h, l, c, v)

    monkeypatch.setitem(strategies, "test_bar", type(original)(**{**original.__dict__, "panel": buggy}))
    token = make_token(300000002, "E")
    async with FakeBotApi(valid_tokens=[token]) as api:
        every_channel = dict.fromkeys(config.CHANNELS, token)
        configure_telegram(monkeypatch, api.base_url(), every_channel, {"default": "77"})
        result = await scanner_main.run_scan("1d", "all", "demo", send_telegram=True, cache=cache)
        delivered = "\n".join(m.text for m in api.messages_to("77"))
    summary = result.summaries[0]
    assert [(e["symbol"], e["strategy"]) for e in summary.detector_errors] == [(victim, "test_bar")]
    assert "detector bug" in summary.detector_errors[0]["reason"]
    keys = lambda hits: sorted((h.strategy, h.symbol, h.current_bar) for h in hits)  # noqa: E731
    assert keys(result.hits) == keys(clean.hits)  # the victim had no test_bar hit to lose
    assert {h.strategy for h in result.hits if h.symbol == victim} == by_symbol[victim]
    assert victim in delivered and result.alerts.failures == []
    assert f"detector test_bar failed on demo {victim}" in rps.format_report(result)
