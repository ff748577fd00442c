"""Alerts are never silently lost and never sent twice (issue 6), proven at scan level.

Scans of the offline demo exchange deliver through python-telegram-bot to the local fake Bot API,
with the SQLite ledger at ``SCANNER_STATE_DB`` (a per-test file, see conftest.py). Both delivery
paths are covered: the library (``run_scan``, ``run_parallel_exchanges``) and the CLI ``main``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import run_parallel_scanner as rps
from scanner import main as scanner_main
from scanner.cache import KlineCache
from scanner.ledger import STATUS_PENDING, STATUS_SENT, AlertLedger
from scanner.notifier import SEND_ATTEMPTS
from scanner.results import Hit, ScanResult
from tests.conftest import configure_telegram
from tests.fakes.telegram_server import FakeBotApi, make_token
from utils import config

STRATEGIES = "breakout_bar,volume_surge,weak_uptrend"
CHATS = {"alice": "1001", "bob": "1002"}
TOKENS = {ch: make_token(400000000 + i, fill=chr(ord("K") + i)) for i, ch in enumerate(config.CHANNELS)}


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch):
    """The fake Bot API with a token per channel and the chats of alice and bob configured."""
    async with FakeBotApi(valid_tokens=list(TOKENS.values())) as fake:
        configure_telegram(monkeypatch, fake.base_url(), TOKENS, CHATS)
        yield fake


async def scan_and_send(users: list[str] = ["alice", "bob"]) -> ScanResult:  # noqa: B006
    return await rps.run_parallel_exchanges(
        "1d", STRATEGIES, ["demo"], users=users, send_telegram=True, cache=KlineCache(), progress=False
    )


def blocks_to(api: FakeBotApi, chat: str) -> Counter[tuple[str, str]]:
    """(symbol line, bar line) of every alert block delivered to ``chat``, counted."""
    found: Counter[tuple[str, str]] = Counter()
    for message in api.messages_to(chat):
        for block in message.text.split("\n\n"):
            lines = block.split("\n")
            if lines[0].startswith("<b>") and len(lines) > 1 and lines[1].startswith("Bar:"):
                found[(message.text.split("\n", 1)[0] + lines[0], lines[1])] += 1
    return found


def ledger_rows() -> list:
    with AlertLedger() as ledger:
        return ledger.entries()


async def test_the_ledger_lives_at_the_configured_path(api, tmp_path):
    result = await scan_and_send()
    assert result.alerts.sent == 2 * len(result.hits) > 0
    path = Path(config.state_db_path())
    assert path.parent == tmp_path and path.is_file()
    assert len(ledger_rows()) == 2 * len(result.hits)
    assert {e.status for e in ledger_rows()} == {STATUS_SENT}


async def test_rerunning_the_same_scan_within_the_bar_sends_nothing_new_library_path(api):
    first = await scanner_main.run_scan("1d", STRATEGIES, "demo", send_telegram=True, user_id="alice",
                                        cache=KlineCache())
    sent = len(api.messages)
    assert first.alerts.sent == len(first.hits) > 0
    again = await scanner_main.run_scan("1d", STRATEGIES, "demo", send_telegram=True, user_id="alice",
                                        cache=KlineCache())
    assert len(api.messages) == sent
    assert again.alerts.sent == 0 and again.alerts.duplicates_skipped == len(again.hits)


async def cli(*argv: str) -> int:
    """The CLI in a worker thread (it runs its own event loop) while this loop serves the fake API."""
    return await asyncio.to_thread(rps.main, list(argv))


async def test_rerunning_the_same_scan_within_the_bar_sends_nothing_new_cli_path(api, capsys):
    argv = ["1d", STRATEGIES, "demo", "alice,bob", "true", "--no-progress"]
    assert await cli(*argv) == 0
    sent = Counter(m.chat_id for m in api.messages)
    assert sent["1001"] > 0 and sent["1001"] == sent["1002"]
    assert await cli(*argv) == 0
    assert Counter(m.chat_id for m in api.messages) == sent
    assert "Traceback" not in capsys.readouterr().err


async def test_concurrent_deliveries_of_several_exchanges_never_send_an_alert_twice(api):
    result = await rps.run_parallel_multi_timeframes_all_exchanges(
        ["1d", "2d", "3d"], STRATEGIES, ["demo"], users=["alice"], send_telegram=True, cache=KlineCache(),
        progress=False,
    )
    blocks = blocks_to(api, "1001")
    assert sum(blocks.values()) == len(result.hits) > 0
    assert max(blocks.values()) == 1


async def test_a_current_bar_alert_may_be_followed_by_exactly_one_closed_bar_alert(api):
    bar = pd.Timestamp("2025-03-20", tz="UTC")
    forming = Hit("breakout_bar", "demo", "1d", "AAAUSDT", bar, True, 1.0, 1e6)
    closed = Hit("breakout_bar", "demo", "1d", "AAAUSDT", bar, False, 1.1, 2e6)
    for hits, expected_sent in [([forming], 1), ([forming], 0), ([closed], 1), ([forming, closed], 0)]:
        report = await scanner_main.deliver(ScanResult(hits=hits), ["alice"])
        assert report.sent == expected_sent
    texts = [m.text for m in api.messages_to("1001")]
    assert len(texts) == 2 and "forming" in texts[0] and "closed bar" in texts[1]


async def test_a_failing_chat_keeps_its_alerts_pending_and_the_next_run_delivers_each_once(api):
    api.add_fault("1001", "server_error", times=SEND_ATTEMPTS * 10)
    first = await scan_and_send()
    hits = len(first.hits)
    assert first.alerts.sent == hits and first.alerts.pending == hits
    assert {f.user for f in first.alerts.failures} == {"alice"}
    assert all("500" in f.reason or "Internal Server Error" in f.reason for f in first.alerts.failures)
    assert api.messages_to("1001") == []
    pending = [e for e in ledger_rows() if e.status == STATUS_PENDING]
    assert len(pending) == hits and all(e.key.chat == "1001" and e.last_error for e in pending)
    report = rps.format_report(first)
    assert f"{hits} pending" in report and "-> alice" in report

    api.faults.clear()
    bob_before = len(api.messages_to("1002"))
    second = await scan_and_send()
    assert second.alerts.failures == [] and second.alerts.pending == 0
    assert second.alerts.retried_from_ledger == hits and second.alerts.sent == hits
    assert len(api.messages_to("1002")) == bob_before
    assert sum(blocks_to(api, "1001").values()) == hits and max(blocks_to(api, "1001").values()) == 1
    assert {e.status for e in ledger_rows()} == {STATUS_SENT}


async def test_pending_alerts_are_retried_even_when_the_next_scan_finds_nothing(api):
    api.add_fault("1001", "forbidden", times=100)
    first = await scan_and_send(["alice"])
    assert first.alerts.pending == len(first.hits) > 0
    api.faults.clear()
    report = await scanner_main.deliver(ScanResult(), ["alice"])
    assert report.sent == report.retried_from_ledger == len(first.hits)


async def test_a_blocked_chat_is_skipped_and_every_other_chat_receives(api):
    api.add_fault("1001", "forbidden", times=100)
    result = await scan_and_send()
    assert [f.user for f in result.alerts.failures] and {f.user for f in result.alerts.failures} == {"alice"}
    assert all("Forbidden" in f.reason for f in result.alerts.failures)
    assert sum(blocks_to(api, "1002").values()) == len(result.hits)
    channels = {f.channel for f in result.alerts.failures}
    assert api.send_calls("1001") == len(channels)  # Forbidden is not retried


async def test_flood_control_is_waited_out_and_nothing_is_sent_twice(api):
    api.add_fault("1001", "retry_after", times=1, retry_after=1)
    started = time.perf_counter()
    result = await scan_and_send(["alice"])
    assert time.perf_counter() - started >= 1.0
    assert result.alerts.failures == [] and result.alerts.pending == 0
    assert sum(blocks_to(api, "1001").values()) == len(result.hits)
    assert max(blocks_to(api, "1001").values()) == 1


@pytest.mark.parametrize("kind", ["server_error", "drop"])
async def test_network_errors_are_retried_and_delivered_once(api, kind):
    api.add_fault("1001", kind, times=2)
    result = await scan_and_send(["alice"])
    assert result.alerts.failures == [] and result.alerts.pending == 0
    blocks = blocks_to(api, "1001")
    assert sum(blocks.values()) == len(result.hits) and max(blocks.values()) == 1


async def test_undelivered_alerts_make_the_cli_exit_1_and_say_so(api, capsys):
    api.add_fault("1001", "forbidden", times=100)
    status = await cli("1d", STRATEGIES, "demo", "alice", "true", "--no-progress")
    out = capsys.readouterr().out
    assert status == 1
    assert "pending" in out and "alice: Forbidden" in out
