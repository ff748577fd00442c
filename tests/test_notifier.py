"""Alert formatting (spec 9.3) and delivery through a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import html
import time

import aiohttp
import pandas as pd
import pytest

from scanner.notifier import (
    MAX_MESSAGE_CHARS,
    SEND_ATTEMPTS,
    format_block,
    format_header,
    format_messages,
    send_alerts,
    tradingview_url,
    validate_alert_targets,
)
from scanner.registry import CHANNEL_OF, STRATEGY_NAMES, TITLES, get_strategy
from scanner.results import Hit
from tests.fakes.telegram_server import FakeBotApi, make_token
from utils.config import CHANNELS, TelegramConfig

TOKEN = make_token(111111111, "A")
OTHER_TOKEN = make_token(222222222, "B")
BAR = pd.Timestamp("2025-03-20", tz="UTC")
USERS = {"alice": "1001", "bob": "1002", "carol": "1003"}

VSA_METRICS = {"volume_ratio": 3.25, "close_off_low": 81.25, "arctan_ratio": 1.5}
METRICS = {
    **{name: VSA_METRICS for name in STRATEGY_NAMES[:6]},
    "volume_surge": {"volume_ratio": 7.5, "score": 2.345, "price_extreme": "White candle - new high"},
    "confluence": {
        "volume_ratio": 2.0, "close_off_low": 90.0, "momentum_score": 1.75,
        "high_volume": True, "spread_breakout": True, "momentum_breakout": True,
    },
    "pin_down": {"volume_ratio": 1.4, "bearishtop_dist": 2},
    "weak_uptrend": {
        "volume_ratio": 0.8, "total_patterns": 3,
        "W1": True, "W2": False, "W3": True, "W4": False, "W5": True,
    },
}


def make_hit(
    strategy: str = "breakout_bar",
    symbol: str = "BTCUSDT",
    *,
    exchange: str = "binance_futures",
    timeframe: str = "1d",
    current: bool = False,
    bar_time: pd.Timestamp = BAR,
    metrics: dict | None = None,
) -> Hit:
    return Hit(
        strategy=strategy,
        exchange=exchange,
        timeframe=timeframe,
        symbol=symbol,
        bar_time=bar_time,
        current_bar=current,
        close=65000.5,
        volume_usd=12_345_678.0,
        metrics=dict(METRICS[strategy] if metrics is None else metrics),
    )


def config_for(api: FakeBotApi, tokens: dict[str, str] | None = None) -> TelegramConfig:
    tokens = tokens if tokens is not None else {channel: TOKEN for channel in CHANNELS}
    return TelegramConfig(base_url=api.base_url(), tokens=tokens, users=dict(USERS))


# --- content -----------------------------------------------------------------------------------


def test_header_names_title_exchange_and_timeframe() -> None:
    header = format_header("weak_uptrend", "bybit_spot", "4h")
    assert header == "<b>Weak Uptrend Detection</b>\nbybit_spot · 4h"


def test_vsa_block_links_symbol_and_lists_spec_metrics() -> None:
    block = format_block(make_hit("breakout_bar"))
    lines = block.split("\n")
    assert lines[0] == (
        '<b><a href="https://www.tradingview.com/chart/?symbol=BINANCE:BTCUSDT.P">BTCUSDT</a></b>'
    )
    assert lines[1] == "Bar: 2025-03-20 00:00 UTC (closed bar)"
    assert lines[2:] == [
        "Close: 65,000.50",
        "Volume ratio: 3.25",
        "USD volume: $12,345,678",
        "Close off low: 81.2%",
        "Arctan ratio: 1.50",
    ]


def test_current_bar_is_labelled_forming() -> None:
    assert "(current bar, forming)" in format_block(make_hit(current=True))


@pytest.mark.parametrize(
    ("strategy", "expected", "absent"),
    [
        ("volume_surge", ["Score: 2.35", "Price extreme: White candle - new high", "Volume ratio: 7.50"], []),
        (
            "confluence",
            ["Momentum score: 1.75", "Close off low: 90.0%",
             "Components: high volume, spread breakout, momentum breakout"],
            ["Arctan"],
        ),
        ("pin_down", ["Bearish-top distance: 2 bars", "Volume ratio: 1.40"], ["Close off low"]),
        (
            "weak_uptrend",
            ["Weakness count: 3",
             "Weaknesses: W1 lower volume on a higher up bar, W3 momentum loss, W5 wide bar closing low"],
            ["Volume ratio", "W2", "W4"],
        ),
    ],
)
def test_custom_strategy_blocks_show_their_spec_content(
    strategy: str, expected: list[str], absent: list[str]
) -> None:
    block = format_block(make_hit(strategy))
    for line in expected:
        assert line in block.split("\n")
    for text in absent:
        assert text not in block


def test_every_strategy_declares_its_alert_fields() -> None:
    assert all(get_strategy(name).alert_fields for name in STRATEGY_NAMES)


def test_missing_or_nan_metric_shows_na() -> None:
    block = format_block(make_hit(metrics={"volume_ratio": float("nan")}))
    assert "Volume ratio: n/a" in block
    assert "Arctan ratio: n/a" in block


def test_small_prices_keep_significant_digits() -> None:
    hit = make_hit()
    cheap = Hit(**{**hit.__dict__, "close": 0.000012345})
    assert "Close: 0.00001234" in format_block(cheap).split("\n")


@pytest.mark.parametrize(
    ("exchange", "symbol", "tv"),
    [
        ("binance_spot", "BTCUSDT", "BINANCE:BTCUSDT"),
        ("binance_futures", "BTCUSDT", "BINANCE:BTCUSDT.P"),
        ("bybit_futures", "ETHUSDT", "BYBIT:ETHUSDT.P"),
        ("gateio_spot", "BTC_USDT", "GATEIO:BTCUSDT"),
        ("gateio_futures", "BTC_USDT", "GATEIO:BTCUSDT.P"),
        ("kucoin_spot", "BTC-USDT", "KUCOIN:BTCUSDT"),
        ("kucoin_futures", "XBTUSDTM", "KUCOIN:BTCUSDT.P"),
        ("mexc_spot", "BTCUSDT", "MEXC:BTCUSDT"),
        ("mexc_futures", "BTC_USDT", "MEXC:BTCUSDT.P"),
    ],
)
def test_tradingview_link_per_market(exchange: str, symbol: str, tv: str) -> None:
    assert tradingview_url(exchange, symbol) == f"https://www.tradingview.com/chart/?symbol={tv}"


def test_demo_exchange_has_no_link() -> None:
    assert tradingview_url("demo", "DEMOUSDT") is None
    assert "<a " not in format_block(make_hit(exchange="demo", symbol="DEMOUSDT"))


def test_every_text_is_html_escaped() -> None:
    hit = make_hit(
        "volume_surge", symbol="A<B>&C", exchange="demo", timeframe="1d",
        metrics={"score": 1.0, "volume_ratio": 1.0, "price_extreme": "<b>new</b> & high"},
    )
    block = format_block(hit)
    assert "A&lt;B&gt;&amp;C" in block
    assert "Price extreme: &lt;b&gt;new&lt;/b&gt; &amp; high" in block
    assert html.unescape(block).count("<b>") == 2  # our symbol tag and the escaped metric text


def test_hits_grouped_by_strategy_exchange_timeframe_with_one_header_each() -> None:
    hits = [
        make_hit("breakout_bar", "BTCUSDT"),
        make_hit("stop_bar", "ETHUSDT"),
        make_hit("breakout_bar", "SOLUSDT"),
        make_hit("breakout_bar", "XRPUSDT", timeframe="4h"),
    ]
    [(channel, text)] = format_messages(hits)
    assert channel == "start_trend"
    assert text.count("<b>Breakout Bar</b>") == 2  # 1d and 4h groups
    assert text.count("<b>Stop Bar</b>") == 1
    assert text.index("BTCUSDT") < text.index("SOLUSDT") < text.index("Stop Bar")


def test_messages_go_to_the_registry_channel_unless_overridden() -> None:
    hits = [make_hit(name) for name in STRATEGY_NAMES]
    channels = {channel for channel, _ in format_messages(hits)}
    assert channels == set(CHANNEL_OF.values())
    assert {channel for channel, _ in format_messages(hits, channel="confluence")} == {"confluence"}


def test_long_alert_lists_are_split_under_the_limit_at_block_boundaries() -> None:
    hits = [make_hit("breakout_bar", f"COIN{i:03d}USDT") for i in range(120)]
    messages = [text for _, text in format_messages(hits)]
    header = format_header("breakout_bar", "binance_futures", "1d")
    assert len(messages) > 1
    blocks_seen = []
    for text in messages:
        assert len(text) <= MAX_MESSAGE_CHARS
        assert text.startswith(header)  # a continued group repeats its header
        blocks_seen += text.split("\n\n")[1:]
    assert blocks_seen == [format_block(hit) for hit in hits]


# --- sending -----------------------------------------------------------------------------------


async def test_every_user_receives_the_alert_as_html() -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        report = await send_alerts([make_hit()], list(USERS), config=config_for(api))
    assert report.sent == 3 and report.messages == 3 and report.failures == []
    assert sorted(m.chat_id for m in api.messages) == sorted(USERS.values())
    assert {m.parse_mode for m in api.messages} == {"HTML"}
    assert {m.token for m in api.messages} == {TOKEN}
    assert api.messages[0].text == format_messages([make_hit()])[0][1]


async def test_each_channel_uses_its_own_bot_token() -> None:
    hits = [make_hit("breakout_bar"), make_hit("volume_surge")]
    async with FakeBotApi(valid_tokens=[TOKEN, OTHER_TOKEN]) as api:
        cfg = config_for(api, {"start_trend": TOKEN, "volume_surge": OTHER_TOKEN})
        await send_alerts(hits, ["alice"], config=cfg)
    by_token = {m.token: m.text for m in api.messages}
    assert "Breakout Bar" in by_token[TOKEN] and "Sudden Volume Surge" in by_token[OTHER_TOKEN]


async def test_channel_override_sends_everything_through_that_bot() -> None:
    hits = [make_hit("breakout_bar"), make_hit("volume_surge")]
    async with FakeBotApi(valid_tokens=[TOKEN, OTHER_TOKEN]) as api:
        cfg = config_for(api, {"confluence": OTHER_TOKEN})
        report = await send_alerts(hits, ["alice"], config=cfg, channel="confluence")
    assert report.sent == 2
    assert {m.token for m in api.messages} == {OTHER_TOKEN}


async def test_split_messages_are_all_accepted_by_the_api() -> None:
    hits = [make_hit("breakout_bar", f"COIN{i:03d}USDT") for i in range(120)]
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        report = await send_alerts(hits, ["alice"], config=config_for(api))
    assert report.failures == []
    assert report.sent == 120 and report.messages == len(api.messages) > 1


async def test_flood_control_waits_retry_after_then_delivers() -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        api.add_fault(USERS["alice"], "retry_after", times=1, retry_after=1)
        started = time.monotonic()
        report = await send_alerts([make_hit()], ["alice", "bob"], config=config_for(api))
        elapsed = time.monotonic() - started
    assert report.sent == 2 and report.failures == []
    assert api.send_calls(USERS["alice"]) == 2
    assert elapsed >= 1.0


async def test_blocked_chat_is_recorded_while_others_receive() -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        api.add_fault(USERS["bob"], "forbidden", times=5)
        report = await send_alerts([make_hit()], list(USERS), config=config_for(api))
    assert sorted(m.chat_id for m in api.messages) == [USERS["alice"], USERS["carol"]]
    assert api.send_calls(USERS["bob"]) == 1  # Forbidden is not retried
    [failure] = report.failures
    assert (failure.channel, failure.user) == ("start_trend", "bob")
    assert "Forbidden" in failure.reason and "blocked" in failure.reason
    assert report.sent == 2 and report.pending == 1


@pytest.mark.parametrize("fault", ["drop", "server_error"])
async def test_network_errors_are_retried(fault: str) -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        api.add_fault(USERS["alice"], fault, times=2)
        report = await send_alerts([make_hit()], ["alice"], config=config_for(api))
    assert report.sent == 1 and report.failures == []
    assert api.send_calls(USERS["alice"]) == 3


async def test_network_retries_are_bounded() -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        api.add_fault(USERS["alice"], "server_error", times=SEND_ATTEMPTS + 5)
        report = await send_alerts([make_hit()], ["alice", "bob"], config=config_for(api))
    assert api.send_calls(USERS["alice"]) == SEND_ATTEMPTS
    assert [f.user for f in report.failures] == ["alice"]
    assert [m.chat_id for m in api.messages] == [USERS["bob"]]


async def test_bad_request_is_not_retried() -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        api.add_fault(USERS["alice"], "chat_not_found", times=5)
        report = await send_alerts([make_hit()], ["alice"], config=config_for(api))
    assert api.send_calls(USERS["alice"]) == 1
    assert "chat not found" in report.failures[0].reason.lower()


async def test_invalid_token_is_recorded_without_the_token() -> None:
    async with FakeBotApi(valid_tokens=[OTHER_TOKEN]) as api:
        cfg = config_for(api, {"start_trend": TOKEN, "volume_surge": OTHER_TOKEN})
        report = await send_alerts(
            [make_hit("breakout_bar"), make_hit("volume_surge")], ["alice", "bob"], config=cfg
        )
    failed = {(f.channel, f.user) for f in report.failures}
    assert failed == {("start_trend", "alice"), ("start_trend", "bob")}
    for failure in report.failures:
        assert "InvalidToken" in failure.reason
        assert TOKEN not in failure.reason and TOKEN.split(":")[1] not in failure.reason
    assert {m.token for m in api.messages} == {OTHER_TOKEN}  # the other channel still delivered
    assert report.sent == 2 and report.pending == 2


async def test_no_hits_and_no_ledger_sends_nothing() -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        report = await send_alerts([], ["alice"], config=config_for(api))
    assert api.calls == [] and report.sent == 0


# --- validation --------------------------------------------------------------------------------


def test_unknown_user_lists_configured_users() -> None:
    cfg = TelegramConfig(tokens={"start_trend": TOKEN}, users={"alice": "1"})
    with pytest.raises(ValueError, match=r"unknown Telegram user 'zoe'; configured users: alice"):
        validate_alert_targets(["breakout_bar"], ["zoe"], cfg)


def test_unknown_channel_lists_channels() -> None:
    cfg = TelegramConfig(tokens={"start_trend": TOKEN}, users={"alice": "1"})
    expected = "unknown Telegram channel 'news'; channels: volume_surge, start_trend"
    with pytest.raises(ValueError, match=expected):
        validate_alert_targets(["breakout_bar"], ["alice"], cfg, channel="news")


def test_missing_token_names_the_env_var() -> None:
    cfg = TelegramConfig(tokens={"start_trend": TOKEN}, users={"alice": "1"})
    with pytest.raises(ValueError, match="SCANNER_TELEGRAM_TOKEN_WEAKENING_TREND") as info:
        validate_alert_targets(["breakout_bar", "test_bar"], ["alice"], cfg)
    assert "START_TREND" not in str(info.value)
    assert TOKEN not in str(info.value)


def test_validation_reads_the_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCANNER_TELEGRAM_TOKEN_CONFLUENCE", TOKEN)
    monkeypatch.setenv("SCANNER_TELEGRAM_CHAT_ALICE", "1")
    validate_alert_targets(["confluence"], ["alice"])
    with pytest.raises(ValueError, match="SCANNER_TELEGRAM_TOKEN_START_TREND"):
        validate_alert_targets(["stop_bar"], ["alice"])


async def test_misconfiguration_raises_before_any_request() -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        with pytest.raises(ValueError, match="unknown Telegram user"):
            await send_alerts([make_hit()], ["alice", "mallory"], config=config_for(api))
    assert api.calls == []


def test_titles_come_from_the_registry() -> None:
    for name in STRATEGY_NAMES:
        assert format_header(name, "x", "1d").startswith(f"<b>{html.escape(TITLES[name])}</b>")



async def test_users_sharing_a_chat_get_one_message() -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        cfg = config_for(api)
        users = {**USERS, "team": USERS["alice"]}
        shared = TelegramConfig(base_url=cfg.base_url, tokens=cfg.tokens, users=users)
        report = await send_alerts([make_hit()], ["alice", "team", "alice"], config=shared)
    assert report.sent == 1 and [m.chat_id for m in api.messages] == [USERS["alice"]]


# --- the fake Bot API itself ---------------------------------------------------------------------


async def test_fake_api_answers_in_bot_api_shapes() -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api, aiohttp.ClientSession() as session:
        async with session.get(f"{api.base_url()}{TOKEN}/getMe") as resp:
            me = await resp.json()
        async with session.post(
            f"{api.base_url()}{TOKEN}/sendMessage", json={"chat_id": 42, "text": "hi", "parse_mode": "HTML"}
        ) as resp:
            sent = await resp.json()
        async with session.post(f"{api.base_url()}{OTHER_TOKEN}/getMe") as resp:
            unauthorized = (resp.status, await resp.json())
        api.add_fault(7, "retry_after", retry_after=1)
        form = {"chat_id": "7", "text": "x"}
        async with session.post(f"{api.base_url()}{TOKEN}/sendMessage", data=form) as resp:
            flood = (resp.status, await resp.json())
    assert me["ok"] is True and me["result"]["is_bot"] is True
    assert sent["result"]["chat"]["id"] == 42 and sent["result"]["text"] == "hi"
    assert unauthorized == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    assert flood[0] == 429 and flood[1]["parameters"] == {"retry_after": 1}
    assert [(m.chat_id, m.text, m.parse_mode) for m in api.messages] == [("42", "hi", "HTML")]
