"""The alert ledger: no alert sent twice to a chat, undelivered alerts re-sent on the next call."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from scanner.ledger import (
    LEASE_S,
    MAX_DELIVERY_ATTEMPTS,
    SCHEMA_VERSION,
    STATUS_PENDING,
    STATUS_SENT,
    STATUS_UNDELIVERABLE,
    AlertKey,
    AlertLedger,
)
from scanner.notifier import send_alerts
from scanner.results import Hit
from tests.fakes.telegram_server import FakeBotApi, make_token
from utils.config import TelegramConfig

REPO = Path(__file__).resolve().parent.parent
TOKEN = make_token(333333333, "C")
WRONG_TOKEN = make_token(444444444, "D")
BAR = pd.Timestamp("2025-03-20", tz="UTC")
USERS = {"alice": "1001", "bob": "1002"}


def make_hit(symbol: str = "BTCUSDT", *, current: bool = False, bar_time: pd.Timestamp = BAR) -> Hit:
    return Hit(
        strategy="breakout_bar",
        exchange="binance_spot",
        timeframe="1d",
        symbol=symbol,
        bar_time=bar_time,
        current_bar=current,
        close=100.0,
        volume_usd=1_000_000.0,
        metrics={"volume_ratio": 2.0, "close_off_low": 75.0, "arctan_ratio": 1.0},
    )


def config_for(api: FakeBotApi, token: str = TOKEN) -> TelegramConfig:
    return TelegramConfig(base_url=api.base_url(), tokens={"start_trend": token}, users=dict(USERS))


def opts(api: FakeBotApi, ledger: AlertLedger, token: str = TOKEN) -> dict:
    return {"config": config_for(api, token), "ledger": ledger}


@pytest.fixture
def ledger(tmp_path: Path) -> AlertLedger:
    with AlertLedger(tmp_path / "ledger.sqlite3") as opened:
        yield opened


def key(chat: str = "1001", *, bar: str = "closed", symbol: str = "BTCUSDT") -> AlertKey:
    return AlertKey("start_trend", chat, "binance_spot", symbol, "1d", "breakout_bar",
                    AlertKey.bar_time_text(BAR), bar)


# --- the ledger on its own ---------------------------------------------------------------------


def test_default_path_comes_from_config_and_parent_is_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "deep" / "state" / "alerts.sqlite3"
    monkeypatch.setenv("SCANNER_STATE_DB", str(target))
    with AlertLedger() as opened:
        assert opened.path == target
    assert target.is_file()


def test_database_uses_wal_mode(ledger: AlertLedger) -> None:
    with sqlite3.connect(ledger.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_pending_then_sent_lifecycle_records_attempts_and_errors(ledger: AlertLedger) -> None:
    ledger.add_pending(key(), "block")
    assert [e.key for e in ledger.pending("start_trend", "1001")] == [key()]
    ledger.mark_failed([key()], "NetworkError: boom")
    entry = ledger.get(key())
    assert entry is not None
    assert (entry.status, entry.attempts, entry.last_error) == (STATUS_PENDING, 1, "NetworkError: boom")
    ledger.mark_sent([key()])
    entry = ledger.get(key())
    assert entry is not None
    assert (entry.status, entry.attempts, entry.last_error) == (STATUS_SENT, 2, None)
    assert entry.sent_at is not None and ledger.is_sent(key())
    assert ledger.pending("start_trend", "1001") == []


def test_errors_are_stored_redacted(ledger: AlertLedger) -> None:
    ledger.add_pending(key(), "block")
    ledger.mark_failed([key()], f"InvalidToken: The token `{TOKEN}` was rejected")
    entry = ledger.get(key())
    assert entry is not None and TOKEN not in (entry.last_error or "")


def test_sent_row_is_not_reopened_by_a_new_pending_insert(ledger: AlertLedger) -> None:
    ledger.add_pending(key(), "old")
    ledger.mark_sent([key()])
    ledger.add_pending(key(), "new")
    entry = ledger.get(key())
    assert entry is not None and (entry.status, entry.text) == (STATUS_SENT, "old")


def test_alerts_failing_too_often_are_given_up_as_undeliverable(ledger: AlertLedger) -> None:
    ledger.add_pending(key(), "block")
    for _ in range(MAX_DELIVERY_ATTEMPTS):
        ledger.mark_failed([key()], "NetworkError: boom")
    assert ledger.pending("start_trend", "1001") == []
    assert ledger.get(key()).status == STATUS_UNDELIVERABLE  # type: ignore[union-attr]


def test_bar_time_key_ignores_resolution_and_time_zone() -> None:
    ns = pd.Timestamp("2025-03-20 00:00", tz="UTC")
    seconds = pd.Timestamp("2025-03-20 00:00", tz="UTC").as_unit("s")
    shifted = pd.Timestamp("2025-03-20 01:00", tz="Europe/Berlin")  # CET, UTC+1
    naive = pd.Timestamp("2025-03-20 01:00").tz_localize("Europe/Berlin").tz_convert(None)
    texts = {AlertKey.bar_time_text(t) for t in (ns, seconds, shifted, naive)}
    assert texts == {"2025-03-20T00:00:00+00:00"}


# --- the ledger as the notifier uses it ----------------------------------------------------------


async def test_rerunning_the_same_scan_sends_nothing_new(ledger: AlertLedger) -> None:
    hits = [make_hit("BTCUSDT"), make_hit("ETHUSDT")]
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        first = await send_alerts(hits, list(USERS), **opts(api, ledger))
        calls_after_first = len(api.calls)
        second = await send_alerts(hits, list(USERS), **opts(api, ledger))
    assert first.sent == 4 and second.sent == 0
    assert second.duplicates_skipped == 4
    assert len(api.calls) == calls_after_first  # not even getMe
    assert len(api.messages) == 2


async def test_new_hit_in_a_rerun_is_sent_alone(ledger: AlertLedger) -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        await send_alerts([make_hit("BTCUSDT")], ["alice"], **opts(api, ledger))
        report = await send_alerts(
            [make_hit("BTCUSDT"), make_hit("SOLUSDT")], ["alice"], config=config_for(api), ledger=ledger
        )
    assert (report.sent, report.duplicates_skipped) == (1, 1)
    assert "SOLUSDT" in api.messages[-1].text and "BTCUSDT" not in api.messages[-1].text


async def test_current_and_closed_alerts_of_one_bar_are_different_keys(ledger: AlertLedger) -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        forming = await send_alerts([make_hit(current=True)], ["alice"], **opts(api, ledger))
        closed = await send_alerts([make_hit(current=False)], ["alice"], **opts(api, ledger))
    assert forming.sent == 1 and closed.sent == 1
    assert "(current bar, forming)" in api.messages[0].text and "(closed bar)" in api.messages[1].text


async def test_a_new_bar_is_alerted_again(ledger: AlertLedger) -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        await send_alerts([make_hit()], ["alice"], **opts(api, ledger))
        report = await send_alerts(
            [make_hit(bar_time=BAR + pd.Timedelta(days=1))], ["alice"], config=config_for(api), ledger=ledger
        )
    assert report.sent == 1


async def test_undelivered_alert_is_resent_next_call_even_without_the_hit(ledger: AlertLedger) -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        api.add_fault(USERS["bob"], "forbidden", times=1)
        first = await send_alerts([make_hit()], list(USERS), **opts(api, ledger))
        assert (first.sent, first.pending) == (1, 1)
        assert ledger.get(key(USERS["bob"])).status == STATUS_PENDING  # type: ignore[union-attr]
        second = await send_alerts([], list(USERS), **opts(api, ledger))
    assert (second.sent, second.retried_from_ledger, second.pending) == (1, 1, 0)
    assert [m.chat_id for m in api.messages] == [USERS["alice"], USERS["bob"]]
    assert ledger.get(key(USERS["bob"])).status == STATUS_SENT  # type: ignore[union-attr]


async def test_pending_alert_found_again_is_sent_once(ledger: AlertLedger) -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        api.add_fault(USERS["alice"], "server_error", times=99)
        await send_alerts([make_hit()], ["alice"], **opts(api, ledger))
        api.faults.clear()
        report = await send_alerts([make_hit(), make_hit("ETHUSDT")], ["alice"], **opts(api, ledger))
    assert (report.sent, report.retried_from_ledger, report.messages) == (2, 1, 1)
    [message] = api.messages
    assert message.text.count("BTCUSDT") == 2  # link text and TradingView symbol, one block


async def test_alerts_behind_an_invalid_token_wait_for_a_fixed_token(ledger: AlertLedger) -> None:
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        broken = await send_alerts([make_hit()], ["alice"], **opts(api, ledger, WRONG_TOKEN))
        assert broken.pending == 1 and api.messages == []
        fixed = await send_alerts([], ["alice"], **opts(api, ledger))
    assert fixed.retried_from_ledger == 1 and len(api.messages) == 1


async def test_concurrent_sends_of_the_same_hits_deliver_once(ledger: AlertLedger) -> None:
    hits = [make_hit("BTCUSDT"), make_hit("ETHUSDT")]
    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        reports = await asyncio.gather(
            *(send_alerts(hits, list(USERS), **opts(api, ledger)) for _ in range(3))
        )
    assert sum(r.sent for r in reports) == 4
    assert sorted(m.chat_id for m in api.messages) == sorted(USERS.values())


# --- several processes on one ledger file -------------------------------------------------------


async def test_a_lease_held_elsewhere_makes_the_sender_wait_until_it_is_released(ledger: AlertLedger) -> None:
    other = AlertLedger(ledger.path)  # stands for another process on the same file
    assert other.take_lease("start_trend", "1001", "other-process")
    entered = asyncio.Event()

    async def send() -> None:
        async with ledger.claim("start_trend", "1001"):
            entered.set()

    task = asyncio.ensure_future(send())
    await asyncio.sleep(0.6)
    assert not entered.is_set()
    other.release_lease("start_trend", "1001", "other-process")
    await asyncio.wait_for(task, 5)
    assert entered.is_set()
    other.close()


def test_a_lapsed_lease_of_a_dead_process_is_taken_over(ledger: AlertLedger) -> None:
    long_ago = time.time() - 2 * LEASE_S
    assert ledger.take_lease("start_trend", "1001", "dead-process", now=long_ago)
    assert not ledger.take_lease("start_trend", "1001", "me", now=long_ago + 1)  # still held then
    assert ledger.take_lease("start_trend", "1001", "me")  # lapsed now
    ledger.release_lease("start_trend", "1001", "dead-process")  # the dead one's release is a no-op
    assert not ledger.take_lease("start_trend", "1001", "third")


SENDER = """
import asyncio, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from scanner.ledger import AlertLedger
from scanner.notifier import send_alerts
from tests.test_ledger import USERS, TOKEN, make_hit
from utils.config import TelegramConfig

config = TelegramConfig(base_url=sys.argv[1], tokens={{"start_trend": TOKEN}}, users=dict(USERS))
print("ready", flush=True)
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
with AlertLedger(sys.argv[2]) as ledger:
    report = asyncio.run(send_alerts([make_hit("BTCUSDT"), make_hit("ETHUSDT")], list(USERS), config=config, ledger=ledger))
print("sent", report.sent, flush=True)
"""


async def test_two_processes_sending_the_same_alerts_at_once_deliver_each_once(tmp_path: Path) -> None:
    """Two cron jobs firing at the same minute on one ledger (README's example does): one message per chat."""
    script, go = tmp_path / "sender.py", tmp_path / "go"
    script.write_text(SENDER.format(repo=str(REPO)))
    async with FakeBotApi(valid_tokens=[TOKEN], send_delay=0.5) as api:
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, str(script), api.base_url(), str(tmp_path / "ledger.sqlite3"), str(go),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
            )
            for _ in range(2)
        ]
        for proc in procs:
            assert (await asyncio.wait_for(proc.stdout.readline(), 120)).strip() == b"ready"
        go.touch()  # both start sending together
        answers = [await asyncio.wait_for(proc.communicate(), 120) for proc in procs]
        outputs = [out.decode() for out, _ in answers]
    assert all(proc.returncode == 0 for proc in procs), [err.decode()[-2000:] for _, err in answers]
    assert sorted(m.chat_id for m in api.messages) == sorted(USERS.values())
    assert sum(int(out.split()[-1]) for out in outputs) == 4  # 2 alerts x 2 chats, each sent by one of them


# --- schema migration ------------------------------------------------------------------------------

# The ledger layout before issue 17 (schema version 0), as files in users' state directories have it.
V0_SCHEMA = """
CREATE TABLE alerts (
    channel TEXT NOT NULL, chat TEXT NOT NULL, exchange TEXT NOT NULL, symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL, strategy TEXT NOT NULL, bar_time TEXT NOT NULL,
    bar TEXT NOT NULL CHECK (bar IN ('closed', 'current')),
    status TEXT NOT NULL CHECK (status IN ('sent', 'pending')),
    text TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, sent_at TEXT,
    PRIMARY KEY (channel, chat, exchange, symbol, timeframe, strategy, bar_time, bar)
);
CREATE INDEX alerts_pending ON alerts (channel, chat, status);
CREATE TABLE leases (channel TEXT NOT NULL, chat TEXT NOT NULL, owner TEXT NOT NULL,
                     expires_at REAL NOT NULL, PRIMARY KEY (channel, chat));
"""


def v0_file(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(V0_SCHEMA)
        now = "2025-03-20T00:00:00.000+00:00"
        rows = [(*key("1001").values()[:8], "sent", "sent block", 1, None, now, now, now),
                (*key("1002").values()[:8], "pending", "pending block", 2, "Forbidden: blocked", now, now, None)]
        conn.executemany("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return path


def test_a_ledger_of_the_first_schema_is_migrated_in_place_keeping_every_row(tmp_path: Path) -> None:
    path = v0_file(tmp_path / "old.sqlite3")
    with AlertLedger(path) as migrated:
        assert migrated.is_sent(key("1001")) and not migrated.is_sent(key("1002"))
        [pending] = migrated.pending("start_trend", "1002")
        assert (pending.text, pending.attempts, pending.last_error) == ("pending block", 2, "Forbidden: blocked")
        assert pending.key.kind == "alert"
        migrated.mark_undeliverable([key("1002")], "gone")  # the new state fits the migrated table
        assert migrated.get(key("1002")).status == STATUS_UNDELIVERABLE  # type: ignore[union-attr]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with AlertLedger(path) as reopened:  # a second open finds it done
        assert len(reopened.entries()) == 2


def test_a_ledger_of_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ValueError, match="newer than this scanner's"):
        AlertLedger(path)


def test_a_failed_run_count_is_kept_once_per_run_and_reset_by_a_success(ledger: AlertLedger) -> None:
    ledger.add_pending(key(), "block")
    assert not ledger.target_failed("start_trend", "1001", "Forbidden", "run-a", runs_allowed=2)
    assert not ledger.target_failed("start_trend", "1001", "Forbidden", "run-a", runs_allowed=2)
    ledger.target_ok("start_trend", "1001")
    assert not ledger.target_failed("start_trend", "1001", "Forbidden", "run-b", runs_allowed=2)
    assert ledger.target_failed("start_trend", "1001", "Forbidden", "run-c", runs_allowed=2)
    assert ledger.get(key()).status == STATUS_UNDELIVERABLE  # type: ignore[union-attr]
    assert ledger.unannounced_targets() == [("start_trend", "1001", "Forbidden")]
    ledger.mark_announced([("start_trend", "1001")])
    assert ledger.unannounced_targets() == []
