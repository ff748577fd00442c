"""The scanner end to end: real clients against the local fake exchanges, the demo exchange, and
alerts through python-telegram-bot to the local fake Bot API."""

from __future__ import annotations

import pytest

import run_parallel_scanner as rps
from scanner import main as scanner_main
from scanner.cache import KlineCache
from scanner.registry import STRATEGY_NAMES
from tests.conftest import configure_telegram
from tests.fakes.exchange_server import FakeExchangeServer
from tests.fakes.telegram_server import FakeBotApi, make_token
from utils import config

MARKETS = ["binance_spot", "bybit_spot", "gateio_futures", "kucoin_futures", "mexc_spot"]


@pytest.fixture
async def exchanges(monkeypatch):
    async with FakeExchangeServer(symbols=12, markets=MARKETS, rate_limits=False) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        config.reload()
        yield server


async def test_one_scan_reports_listing_fetch_filter_and_hits(exchanges):
    result = await scanner_main.run_scan("1d", "all", "binance_spot", cache=KlineCache(), progress=False)
    summary = result.summaries[0]
    assert summary.error is None
    assert summary.listed == len(exchanges.usdt_symbols("binance_spot"))
    assert summary.fetched == summary.listed
    assert not summary.skipped and not summary.failed
    assert summary.requests == exchanges.requests_by_market["binance_spot"]
    assert sum(summary.hits_per_strategy.values()) == len(result.hits)
    for hit in result.hits:
        assert hit.exchange == "binance_spot" and hit.timeframe == "1d"
        assert hit.volume_usd >= config.VOLUME_THRESHOLDS["1d"] or not hit.current_bar
        assert hit.bar_time.tzinfo is not None


async def test_volume_filter_uses_last_closed_bar_and_min_volume_override(exchanges):
    everything = await scanner_main.run_scan(
        "1d", "weak_uptrend", "binance_spot", cache=KlineCache(), min_volume_usd=0, progress=False
    )
    assert everything.summaries[0].filtered_out == 0
    nothing = await scanner_main.run_scan(
        "1d", "weak_uptrend", "binance_spot", cache=KlineCache(), min_volume_usd=1e18, progress=False
    )
    assert nothing.summaries[0].filtered_out == nothing.summaries[0].fetched
    assert nothing.hits == []


async def test_multi_timeframe_scan_costs_one_klines_request_per_symbol_on_large_page_exchanges(exchanges):
    result = await rps.run_parallel_multi_timeframes_all_exchanges(
        ["1d", "2d", "3d", "4d", "1w"], "all", ["binance_spot", "bybit_spot"],
        send_telegram=False, cache=KlineCache(), progress=False,
    )
    assert not result.failures
    assert {(s.exchange, s.timeframe) for s in result.summaries} == {
        (m, tf) for m in ("binance_spot", "bybit_spot") for tf in ("1d", "2d", "3d", "4d", "1w")
    }
    for market in ("binance_spot", "bybit_spot"):
        n = len(exchanges.usdt_symbols(market))
        assert exchanges.requests_by_kind[(market, "klines")] == n


async def test_small_page_exchange_adds_one_native_weekly_request_per_symbol(exchanges):
    await rps.run_parallel_multi_timeframes_all_exchanges(
        ["1d", "1w"], "volume_surge", ["mexc_spot"], send_telegram=False, cache=KlineCache(), progress=False
    )
    n = len(exchanges.usdt_symbols("mexc_spot"))
    assert exchanges.requests_by_kind[("mexc_spot", "klines")] == 2 * n


async def test_one_exchange_down_never_stops_the_others(exchanges):
    exchanges.add_fault("down", market="gateio_futures")
    result = await rps.run_parallel_exchanges(
        "1d", "all", ["gateio_futures", "binance_spot", "kucoin_futures"], send_telegram=False,
        cache=KlineCache(), progress=False,
    )
    by_exchange = {s.exchange: s for s in result.summaries}
    assert by_exchange["gateio_futures"].error
    assert by_exchange["binance_spot"].error is None and by_exchange["binance_spot"].fetched > 0
    assert by_exchange["kucoin_futures"].error is None and by_exchange["kucoin_futures"].fetched > 0
    assert "gateio_futures 1d" in result.failures


async def test_demo_scan_finds_every_strategy_on_daily_bars():
    result = await rps.run_parallel_exchanges("1d", "all", ["demo"], send_telegram=False, cache=KlineCache())
    found = {hit.strategy for hit in result.hits}
    assert found == set(STRATEGY_NAMES)
    frame = result.to_frame()
    assert list(frame.columns[:8]) == [
        "strategy", "exchange", "timeframe", "symbol", "bar_time", "current_bar", "close", "volume_usd"
    ]
    assert len(frame) == len(result.hits)


async def test_bars_option_restricts_checked_bars():
    cache = KlineCache()
    current = await scanner_main.run_scan("1d", "all", "demo", bars="current", cache=cache)
    closed = await scanner_main.run_scan("1d", "all", "demo", bars="closed", cache=cache)
    assert current.hits and all(h.current_bar for h in current.hits)
    assert closed.hits and not any(h.current_bar for h in closed.hits)
    assert not any(h.strategy in ("weak_uptrend", "pin_down") for h in current.hits)


async def test_vsa_reports_forming_bar_over_closed_bar_once_per_market():
    result = await scanner_main.run_scan("1d", "all", "demo", cache=KlineCache())
    keys = [(h.strategy, h.symbol) for h in result.hits]
    assert len(keys) == len(set(keys))


async def test_a_detector_raising_on_one_symbol_loses_only_that_result(monkeypatch):
    from scanner import registry

    strategies = registry.registry()
    original = strategies["test_bar"]
    real_panel = original.panel

    def buggy(o, h, l, c, v):
        if c.shape[1] > 1 or int(c[-2, 0] * 1e6) % 2 == 0:
            raise RuntimeError("detector bug")
        return real_panel(o, h, l, c, v)

    monkeypatch.setitem(strategies, "test_bar", type(original)(**{**original.__dict__, "panel": buggy}))
    result = await scanner_main.run_scan("1d", "all", "demo", cache=KlineCache())
    summary = result.summaries[0]
    assert {e["strategy"] for e in summary.detector_errors} <= {"test_bar"}
    assert {h.strategy for h in result.hits} >= set(STRATEGY_NAMES) - {"test_bar"}


async def test_alerts_reach_each_users_chat_through_the_bot_api(monkeypatch):
    tokens = {ch: make_token(100000000 + i, fill=chr(ord("A") + i)) for i, ch in enumerate(config.CHANNELS)}
    async with FakeBotApi(valid_tokens=list(tokens.values())) as api:
        configure_telegram(monkeypatch, api.base_url(), tokens, {"alice": "1001", "bob": "1002"})
        result = await rps.run_parallel_exchanges(
            "1d", "breakout_bar,volume_surge", ["demo"], users=["alice", "bob"], send_telegram=True,
            cache=KlineCache(),
        )
        assert result.hits
        assert result.alerts.failures == []
        for chat in ("1001", "1002"):
            texts = "\n".join(m.text for m in api.messages_to(chat))
            for hit in result.hits:
                assert hit.symbol in texts
        by_token = {m.token for m in api.messages}
        assert by_token <= {tokens["start_trend"], tokens["volume_surge"]}
        again = await rps.run_parallel_exchanges(
            "1d", "breakout_bar,volume_surge", ["demo"], users=["alice", "bob"], send_telegram=True,
            cache=KlineCache(),
        )
        assert again.alerts.sent == 0 and again.alerts.duplicates_skipped > 0


async def test_unknown_user_with_send_telegram_is_refused_before_any_request(monkeypatch):
    monkeypatch.setenv("SCANNER_TELEGRAM_TOKEN_START_TREND", make_token())
    monkeypatch.setenv("SCANNER_TELEGRAM_CHAT_DEFAULT", "1")
    config.reload()
    with pytest.raises(ValueError, match="default"):
        await rps.run_parallel_exchanges("1d", "breakout_bar", ["demo"], users=["nobody"], send_telegram=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeframe": "5m"}, "valid timeframes"),
        ({"strategies": "nope"}, "valid strategies"),
        ({"strategies": []}, "empty strategy list"),
        ({"exchanges": ["binanse"]}, "valid exchanges"),
        ({"min_volume_usd": -1}, "non-negative"),
        ({"min_volume_usd": "abc"}, "non-negative"),
    ],
)
async def test_bad_library_input_raises_value_error_naming_valid_choices(kwargs, message):
    args = {"timeframe": "1d", "strategies": "all", "exchanges": ["demo"], "send_telegram": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        await rps.run_parallel_exchanges(**args)
