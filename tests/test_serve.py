"""``scanner serve`` end to end: the fake exchanges and the fake Bot API driven by a simulated clock.

Two simulated weeks of 4h/1d/1w closes run in seconds: the loop sleeps on a ``SimulatedClock``
whose moves the fake exchange server follows (``set_now``), while the scans and deliveries are
real (HTTP to the local fakes, the analysis process, the SQLite ledger and serve state).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

import pandas as pd
import pytest

from exchanges.base_client import set_default_retry
from exchanges.rate_limit import RetryPolicy
from scanner import schedule
from scanner.ledger import STATUS_SENT, AlertLedger
from scanner.serve import ServeConfig, ServeLoop, dry_run_text, main, status_main
from scanner.serve_state import STATUS_FAILED, STATUS_SCANNED, ServeState
from tests.conftest import REPO, configure_telegram
from tests.fakes.exchange_markets import LISTING
from tests.fakes.exchange_server import FakeExchangeServer
from tests.fakes.telegram_server import FakeBotApi, make_token
from utils import config

MARKETS = ["binance_spot", "bybit_spot"]
# One channel (one bot per delivery) and daily hits on the fake data: a fortnight runs in seconds.
STRATEGIES = ("weak_uptrend",)
TIMEFRAMES = ("1w", "1d", "4h")
SYMBOLS = 5
HISTORY_DAYS = 750  # enough daily bars for 100 weekly bars built from days (706)
CHAT = "1001"
TOKENS = {ch: make_token(500000000 + i, fill=chr(ord("M") + i)) for i, ch in enumerate(config.CHANNELS)}
START = pd.Timestamp("2025-04-06 10:00", tz="UTC")  # a Sunday: the fortnight has two Monday closes
SETTLE = 15.0
QUICK_RETRY = RetryPolicy(attempts=2, backoff_base=0.01, backoff_cap=0.02, jitter=0.0, timeout=5.0)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def quick_retries(fresh_exchange_state):
    set_default_retry(QUICK_RETRY)
    yield
    set_default_retry(None)


@pytest.fixture
async def api(monkeypatch):
    async with FakeBotApi(valid_tokens=list(TOKENS.values())) as fake:
        configure_telegram(monkeypatch, fake.base_url(), TOKENS, {"alice": CHAT})
        yield fake


@pytest.fixture
async def exchange(monkeypatch, quick_retries):
    server = FakeExchangeServer(
        symbols=SYMBOLS, now=START.timestamp(), markets=MARKETS, rate_limits=False, history_days=HISTORY_DAYS
    )
    async with server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        config.reload()
        yield server


def serve_config(**options) -> ServeConfig:
    base = dict(
        timeframes=TIMEFRAMES, strategies=STRATEGIES, exchanges=tuple(MARKETS), users=("alice",), send=True,
        min_volume_usd=0.0, settle=SETTLE,
    )
    return ServeConfig(**(base | options))


async def serve(clock: schedule.SimulatedClock, until: pd.Timestamp, **options) -> tuple[ServeLoop, list[str]]:
    """One run of the loop (a process lifetime) on the simulated clock; returns it and its heartbeats."""
    beats: list[str] = []

    async def notify(user: str, text: str) -> None:
        beats.append(text)

    with ServeState() as state:
        loop = ServeLoop(serve_config(**options), state=state, clock=clock, sleep=clock.sleep, notify=notify)
        await loop.run(until=until.timestamp())
    return loop, beats


def rows() -> list[dict]:
    with ServeState() as state:
        return state.rows()


def expected_closes(start: pd.Timestamp, end: pd.Timestamp, timeframe: str) -> list[pd.Timestamp]:
    """The latest close ready at ``start`` and every close that becomes ready up to ``end``."""
    first = schedule.ready_close(timeframe, start, SETTLE)
    return [first] + [c for c, _ in schedule.closes_in([timeframe], first, end - pd.Timedelta(seconds=SETTLE))]


def delivered_blocks(api: FakeBotApi) -> Counter[tuple[str, str]]:
    """(header + symbol line, bar line) of every alert block delivered, counted."""
    found: Counter[tuple[str, str]] = Counter()
    for message in api.messages_to(CHAT):
        header = message.text.split("\n", 2)[:2]
        for block in message.text.split("\n\n"):
            lines = block.split("\n")
            if len(lines) > 1 and lines[1].startswith("Bar:"):
                found[("|".join(header) + lines[0], lines[1])] += 1
            elif len(lines) > 3 and lines[3].startswith("Bar:"):  # the first block follows the header
                found[("|".join(header) + lines[2], lines[3])] += 1
    return found


def at(clock: schedule.SimulatedClock, when: pd.Timestamp, action) -> None:  # noqa: ANN001
    """Run ``action`` once, when the simulated clock first reaches ``when``."""
    fired = []

    def check(now: float) -> None:
        if not fired and now >= when.timestamp():
            fired.append(now)
            action()

    clock.on_advance.append(check)


async def test_two_simulated_weeks_scan_every_close_once_deliver_once_and_survive_an_outage_and_a_restart(
    api, exchange, monkeypatch
):
    monkeypatch.setenv("SCANNER_ANALYSIS", "thread")  # 90 close instants: no process round trips
    clock = schedule.SimulatedClock(START.timestamp(), on_advance=[exchange.set_now])
    outage = utc("2025-04-08 08:00")  # bybit is down from this 4h close for an hour
    at(clock, outage, lambda: exchange.add_fault("down", market="bybit_spot"))
    at(clock, outage + pd.Timedelta(hours=1), exchange.clear_faults)
    middle, end = START + pd.Timedelta(days=7), START + pd.Timedelta(days=14)

    first, beats_first = await serve(clock, middle, heartbeat="alice")
    clock.advance(9 * 3600)  # the machine is off for nine hours: the 12:00 and 16:00 closes pass unseen
    restart_at = clock()
    messages_before_restart = len(api.messages_to(CHAT))
    second, beats_second = await serve(clock, end, heartbeat="alice")

    # Every close of every exchange x timeframe was scanned, the missed ones after the restart.
    recorded = rows()
    assert {r["status"] for r in recorded} == {STATUS_SCANNED}
    for market in MARKETS:
        for tf in TIMEFRAMES:
            got = [r["close"] for r in recorded if r["exchange"] == market and r["timeframe"] == tf]
            assert got == expected_closes(START, end, tf), (market, tf)
    missed = [r for r in recorded if r["close"] in (utc("2025-04-13 12:00"), utc("2025-04-13 16:00"))]
    assert len(missed) == 2 * len(MARKETS) and pd.Timestamp(restart_at, unit="s", tz="UTC") > utc("2025-04-13 16:00")

    # ... exactly once: one listing per close instant on binance (one client per exchange and close).
    instants = {r["close"] for r in recorded}
    assert exchange.requests_by_kind[("binance_spot", LISTING)] == len(instants)
    assert all(r["attempts"] == 1 for r in recorded if r["exchange"] == "binance_spot")

    # The bybit outage: its 08:00 close was retried until the exchange came back, then scanned.
    (down,) = [r for r in recorded if r["exchange"] == "bybit_spot" and r["close"] == outage]
    assert down["attempts"] > 1
    assert exchange.requests_by_kind[("bybit_spot", LISTING)] > len(instants)

    # Alerts: every ledger entry sent, and every alert block delivered exactly once.
    with AlertLedger() as ledger:
        entries = ledger.entries()
    assert entries and {e.status for e in entries} == {STATUS_SENT}
    blocks = delivered_blocks(api)
    assert sum(blocks.values()) == len(entries) and max(blocks.values()) == 1
    assert "1d" in {e.key.timeframe for e in entries}
    assert {e.key.bar for e in entries} == {"closed"}
    assert len(api.messages_to(CHAT)) > messages_before_restart > 0

    # Health: the status record and one heartbeat per day, persisted across the restart.
    status = second.status()
    assert status["next_close"]["1w"] == utc("2025-04-21").isoformat()
    assert status["failures"] == [] and status["retrying"] == [] and status["pending_alerts"] == 0
    assert status["last_cycle"]["close"] == utc("2025-04-20 08:00").isoformat()
    assert len(beats_first) == 7 and len(beats_second) == 7
    assert all(text.startswith("scanner serve heartbeat") for text in beats_first + beats_second)


async def test_an_exchange_down_until_the_next_close_is_reported_and_the_others_are_not_delayed(api, exchange):
    clock = schedule.SimulatedClock(utc("2025-04-07 07:59").timestamp(), on_advance=[exchange.set_now])
    at(clock, utc("2025-04-07 08:00"), lambda: exchange.add_fault("down", market="bybit_spot"))
    loop, _ = await serve(clock, utc("2025-04-07 12:30"), timeframes=("4h",))

    recorded = {(r["exchange"], r["close"]): r for r in rows()}
    for close in ("2025-04-07 08:00", "2025-04-07 12:00"):
        assert recorded[("binance_spot", utc(close))]["status"] == STATUS_SCANNED
        assert recorded[("binance_spot", utc(close))]["attempts"] == 1
    gave_up = recorded[("bybit_spot", utc("2025-04-07 08:00"))]
    assert gave_up["status"] == STATUS_FAILED and gave_up["attempts"] > 3 and "listing failed" in gave_up["error"]
    assert ("bybit_spot", utc("2025-04-07 12:00")) not in recorded  # still being retried when the run ends
    with ServeState() as state:
        status = state.read_status()
    assert [f["close"] for f in status["failures"]] == [utc("2025-04-07 08:00").isoformat()]
    assert [(r["exchange"], r["close"]) for r in status["retrying"]] == [("bybit_spot", utc("2025-04-07 12:00").isoformat())]
    text = loop.heartbeat_text(loop.now())
    assert "Failed: 2" in text and "bybit_spot 4h close 2025-04-07 08:00 UTC: not scanned after" in text
    assert "bybit_spot 4h close 2025-04-07 12:00 UTC: retrying" in text


async def test_a_clock_jump_over_several_closes_leads_to_the_overdue_scans_not_a_missed_day(api, exchange, caplog):
    clock = schedule.SimulatedClock(utc("2025-04-07 01:00").timestamp(), on_advance=[exchange.set_now])
    # The first sleep (until the 04:00 close is ready) ends 30 hours late: a laptop that was suspended.
    at(clock, utc("2025-04-07 01:00:01"), lambda: clock.advance(30 * 3600))
    await serve(clock, utc("2025-04-08 11:00"), timeframes=("1d", "4h"), exchanges=("binance_spot",))
    closes = {tf: [r["close"] for r in rows() if r["timeframe"] == tf] for tf in ("1d", "4h")}
    assert closes["1d"] == [utc("2025-04-07"), utc("2025-04-08")]
    # Woken at 04-08 10:00:15: the CATCH_UP_BARS 4h closes before it are scanned at once; the two
    # older ones missed while asleep are reported, not dropped silently.
    assert closes["4h"] == [utc("2025-04-07")] + [
        utc("2025-04-07 12:00") + pd.Timedelta(hours=4 * i) for i in range(schedule.CATCH_UP_BARS)
    ]
    assert "binance_spot 4h: 2 close(s) from 2025-04-07 04:00 UTC to 2025-04-07 08:00 UTC" in caplog.text


async def test_forming_bars_are_rescanned_between_closes_and_alert_once_per_bar(api, exchange):
    clock = schedule.SimulatedClock(utc("2025-04-07 00:30").timestamp(), on_advance=[exchange.set_now])
    await serve(clock, utc("2025-04-07 03:50"), timeframes=("1d",), exchanges=("binance_spot",),
                forming_every=3600.0, strategies=("volume_surge", "confluence"))
    listings = exchange.requests_by_kind[("binance_spot", LISTING)]
    assert listings == 1 + 3  # the 00:00 close, then forming scans at 01:30, 02:30 and 03:30
    with AlertLedger() as ledger:
        current = [e for e in ledger.entries() if e.key.bar == "current"]
    assert len(current) == len({e.key for e in current})
    assert all(e.key.bar_time.startswith("2025-04-07") for e in current)


async def test_sigterm_finishes_and_exits_zero_within_seconds(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANNER_")}
    env |= {"SCANNER_STATE_DB": str(tmp_path / "alerts.sqlite3"), "SCANNER_CONFIG": str(tmp_path / "none.toml"),
            "DISABLE_PROGRESS": "1", "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scanner.serve", "1d", "volume_surge", "demo", "default",
        cwd=REPO, env=env, stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines = []
    while not any("scanning demo" in line for line in lines):
        lines.append((await asyncio.wait_for(proc.stderr.readline(), 60)).decode())
    proc.send_signal(signal.SIGTERM)  # in the middle of the start-up catch-up scan
    rest = (await asyncio.wait_for(proc.stderr.read(), 15)).decode()
    assert await asyncio.wait_for(proc.wait(), 5) == 0
    assert "serve stopped" in rest and "Traceback" not in rest
    with ServeState(tmp_path / "serve.sqlite3") as state:
        assert state.read_status()["stopped_at"] is not None


def test_dry_run_prints_the_next_close_of_each_timeframe_and_exits(capsys):
    assert main(["4h,1d,1w,2d,3d,4d", "all", "demo", "default", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for tf in ("4h", "1d", "2d", "3d", "4d", "1w"):
        assert f"{tf:>3}  next close " in out
    text = dry_run_text(serve_config(timeframes=("1w", "1d", "4h")), utc("2025-04-06 10:00"))
    assert " 1w  next close 2025-04-07 00:00 UTC  (closes the bar of 2025-03-31 00:00 UTC)" in text
    assert "2025-04-07 00:00 UTC: 1w,1d,4h" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["5m"], "valid timeframes"),
        (["1d", "nope"], "valid strategies"),
        (["1d", "all", "nowhere"], "valid exchanges"),
        (["1d", "all", "demo", "default", "--settle", "-1"], "--settle"),
        (["4h", "all", "demo", "default", "--settle", "14400"], "shorter than the shortest bar"),
        (["1d", "all", "demo", "default", "--forming-every", "soon"], "e.g. 90s, 30m, 1h"),
        (["1d", "all", "demo", "default", "--forming-every", "10s"], "at least 60s"),
        (["1d", "all", "demo", "default", "--store", "x.db", "--no-store"], "--no-store"),
        (["1d", "all", "demo", "nobody", "--send"], "unknown Telegram user"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_valid_choices(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


async def test_status_prints_last_cycle_next_closes_failures_and_pending_alerts(api, exchange, capsys):
    clock = schedule.SimulatedClock(utc("2025-04-07 07:59").timestamp(), on_advance=[exchange.set_now])
    at(clock, utc("2025-04-07 08:00"), lambda: exchange.add_fault("down", market="bybit_spot"))
    await serve(clock, utc("2025-04-07 12:30"), timeframes=("4h",))
    assert status_main([]) == 0
    out = capsys.readouterr().out
    assert "stopped 2025-04-07 12:30 UTC" in out
    assert "last cycle: close 2025-04-07 12:00 UTC (4h)" in out
    assert f"binance_spot 4h: {SYMBOLS} listed" in out and "bybit_spot 4h: FAILED" in out
    assert "next close: 4h 2025-04-07 16:00 UTC" in out
    assert "failures: 1\n  bybit_spot 4h close 2025-04-07 08:00 UTC: symbol listing failed" in out
    assert "pending alerts: 0" in out


def test_status_without_a_serve_run_says_so_and_exits_1(capsys, tmp_path):
    assert status_main(["--state", str(tmp_path / "missing.sqlite3")]) == 1
    assert "no serve status" in capsys.readouterr().out
    assert not (tmp_path / "missing.sqlite3").exists()


def test_the_systemd_unit_restarts_on_failure_and_reads_tokens_from_an_environment_file():
    unit = (REPO / "deploy" / "scanner.service").read_text()
    assert "Restart=on-failure" in unit and "EnvironmentFile=" in unit and "scanner serve" in unit
    example = (REPO / "deploy" / "scanner.env.example").read_text()
    assert "SCANNER_TELEGRAM_TOKEN_" in example
    assert not [line for line in example.splitlines() if "=" in line and any(c.isdigit() for c in line.split("=")[1])
                and ":" in line.split("=")[1]]


async def test_a_close_scanned_again_after_a_crash_before_it_was_recorded_sends_nothing_twice(api, exchange):
    clock = schedule.SimulatedClock(utc("2025-04-07 00:30").timestamp(), on_advance=[exchange.set_now])
    exchange.set_now(clock())  # the exchange's day is the clock's from the start, so both runs see one bar
    many = ("confluence", "volume_surge", "start_bar", "stop_bar")  # enough hits on 5 fake markets
    await serve(clock, utc("2025-04-07 01:00"), timeframes=("1d",), strategies=many)
    sent = len(api.messages_to(CHAT))
    assert sent > 0
    with ServeState() as state:  # the process died after delivering, before recording the close
        state._conn.execute("DELETE FROM scanned_bars")  # noqa: SLF001 - simulating the lost write
    await serve(clock, utc("2025-04-07 01:30"), timeframes=("1d",), strategies=many)
    assert len(api.messages_to(CHAT)) == sent
    assert {(r["exchange"], r["close"]) for r in rows()} == {(m, utc("2025-04-07")) for m in MARKETS}
    with AlertLedger() as ledger:
        assert {(e.status, e.attempts) for e in ledger.entries()} == {(STATUS_SENT, 1)}


def test_the_soak_benchmark_runs_and_reports_resources_after_each_cycle(capsys, fresh_exchange_state):
    from bench import serve_soak

    assert serve_soak.main(["--days", "0.3", "--symbols", "5", "--timeframes", "4h"]) == 0
    out = capsys.readouterr().out
    assert "serve soak: 3 markets x 5 symbols" in out and "closes not scanned: 0" in out
    assert "tcp connections 0 -> 0" in out and "tasks 2 -> 2" in out
