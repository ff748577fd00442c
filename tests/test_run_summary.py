"""The optional run summary to an admin user: sent every run, even when nothing fired."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.alerts import AlertSettings, DeliveryReport, deliver
from scanner.ledger import AlertLedger
from scanner.results import ScanResult, ScanSummary
from tests.fakes.telegram_server import FakeBotApi, make_token
from tests.test_notifier import make_hit
from utils.config import TelegramConfig

TOKEN = make_token(666666666, "F")
USERS = {"alice": "1001", "admin": "9000"}


@pytest.fixture
def ledger(tmp_path: Path) -> AlertLedger:
    with AlertLedger(tmp_path / "ledger.sqlite3") as opened:
        yield opened


def scan(hits=(), **fields) -> ScanResult:
    summary = ScanSummary("binance_spot", "1d", ["breakout_bar"], listed=120, fetched=110, **fields)
    other = ScanSummary("bybit_spot", "1d", ["breakout_bar"], error="symbol listing failed: HTTP 503")
    return ScanResult(hits=list(hits), summaries=[summary, other])


async def run(api, ledger, result, run_id="r1"):
    cfg = TelegramConfig(base_url=api.base_url(), tokens={"start_trend": TOKEN}, users=dict(USERS))
    return await deliver(result, ["alice"], ledger=ledger, telegram=cfg, webhooks={}, settings=AlertSettings(),
                         summary_user="admin", charts=False, run_id=run_id)


def summary_text(api) -> list[str]:
    return [m.text for m in api.messages_to(USERS["admin"])]


async def test_the_summary_is_sent_even_when_nothing_fired(ledger):
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        report = await run(api, ledger, scan())
    [text] = summary_text(api)
    lines = text.split("\n")
    assert lines[0] == "<b>Scan summary</b>"
    assert "Markets: 120 listed, 110 fetched in 2 exchange x timeframe scans" in lines
    assert "Hits: none" in lines
    assert "Failures: bybit_spot: 1d failed: symbol listing failed: HTTP 503" in lines
    assert "Alerts: 0 sent, 0 already sent, 0 pending, 0 undeliverable" in lines
    assert api.messages_to(USERS["alice"]) == [] and report.messages == 1


async def test_the_summary_counts_hits_per_strategy_and_failed_symbols(ledger):
    hits = [make_hit("breakout_bar", "AAAUSDT"), make_hit("breakout_bar", "BBBUSDT"), make_hit("volume_surge")]
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        token = make_token(777777777, "G")
        cfg = TelegramConfig(base_url=api.base_url(), tokens={"start_trend": TOKEN, "volume_surge": token},
                             users=dict(USERS))
        api.valid_tokens.append(token)
        await deliver(scan(hits, failed={"XUSDT": "HTTP 500"}), ["alice"], ledger=ledger, telegram=cfg,
                      webhooks={}, settings=AlertSettings(), summary_user="admin", charts=False)
    [text] = summary_text(api)
    assert "Hits: breakout_bar 2, volume_surge 1" in text.split("\n")
    assert "binance_spot: 1d: 1 symbols failed" in text
    assert "Alerts: 3 sent" in text


async def test_a_newly_undeliverable_chat_is_named_once_without_its_chat_id(ledger):
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        api.add_fault(USERS["alice"], "forbidden", times=100)
        for n in range(4):
            await run(api, ledger, scan([make_hit()]), run_id=f"r{n}")
    texts = summary_text(api)
    named = [t for t in texts if "Undeliverable from now on" in t]
    assert len(texts) == 4 and len(named) == 1 and texts.index(named[0]) == 2
    assert "Undeliverable from now on: alice on start_trend (Forbidden: bot was blocked by the user)" in named[0]
    assert "1001" not in "".join(texts)
    assert "1 pending" in texts[1] and "0 pending" in texts[3]


def test_the_alert_line_names_every_state():
    report = DeliveryReport(sent=2, messages=1, duplicates_skipped=3, pending=1, undeliverable=4)
    assert report.line() == "Alerts: 2 sent in 1 messages, 3 already sent, 1 pending, 4 undeliverable, 0 failures"
    merged = DeliveryReport()
    merged.merge(report)
    assert merged.line() == report.line()


async def test_a_caller_delivering_per_exchange_sends_one_summary_at_the_end(ledger):
    from scanner.alerts import send_summary

    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        cfg = TelegramConfig(base_url=api.base_url(), tokens={"start_trend": TOKEN}, users=dict(USERS))
        reports = [
            await deliver(ScanResult(hits=[make_hit(symbol=s)]), ["alice"], ledger=ledger, telegram=cfg,
                          webhooks={}, settings=AlertSettings(), charts=False)
            for s in ("AAAUSDT", "BBBUSDT")
        ]
        totals = DeliveryReport()
        for report in reports:
            totals.merge(report)
        await send_summary(scan(), totals, "admin", users=["alice"], ledger=ledger, telegram=cfg, webhooks={},
                           settings=AlertSettings())
    [text] = summary_text(api)
    assert "Alerts: 2 sent, 0 already sent, 0 pending, 0 undeliverable" in text


async def test_a_summary_user_on_telegram_needs_a_bot_for_admin_messages(ledger):
    cfg = TelegramConfig(tokens={}, users=dict(USERS))
    with pytest.raises(ValueError, match="SCANNER_TELEGRAM_TOKEN_VOLUME_SURGE"):
        await deliver(ScanResult(), [], ledger=ledger, telegram=cfg, webhooks={"ops": "http://127.0.0.1:1/x"},
                      settings=AlertSettings(), summary_user="admin")
