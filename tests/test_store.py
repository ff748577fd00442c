"""The candle store itself: round trip, merging, retention, concurrency, corrupt and foreign files."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scanner.store import (
    MemoryCandleStore,
    SeriesWrite,
    SQLiteCandleStore,
    StoreError,
    default_store_path,
    open_store,
)
from scanner.store.base import frozen
from scanner.store.sqlite import CHUNK_BARS
from utils import config

REPO = Path(__file__).resolve().parents[1]
DAY_MS = 86_400_000
START_MS = 1_700_006_400_000  # a UTC midnight


def bars(days: int, first_day: int = 0, seed: int = 1):
    """Daily candles with awkward floats (not representable exactly in decimal)."""
    rng = np.random.default_rng(seed)
    close = 0.1 + np.cumsum(rng.random(days)) / 3.0
    values = np.column_stack([close * 0.99, close * 1.07, close * 0.93, close, rng.random(days) * 1e7 / 7.0])
    stamps = START_MS + (first_day + np.arange(days, dtype=np.int64)) * DAY_MS
    return frozen(stamps, values)


@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path):
    made = SQLiteCandleStore(tmp_path / "candles.sqlite3", retention={}) if request.param == "sqlite" \
        else MemoryCandleStore(retention={})
    yield made
    made.close()


def test_round_trip_keeps_values_dtypes_and_utc_times(store):
    original = bars(700)
    store.append("binance_spot", "BTCUSDT", "1d", original)
    loaded = store.load("binance_spot", "BTCUSDT", "1d")
    assert loaded.stamps.dtype == np.int64 and loaded.values.dtype == np.float64
    assert np.array_equal(loaded.stamps, original.stamps)
    assert loaded.values.tobytes() == original.values.tobytes()  # bit for bit
    frame = loaded.frame()
    assert str(frame.index.tz) == "UTC" and frame.index[0] == pd.Timestamp(START_MS, unit="ms", tz="UTC")
    assert not loaded.values.flags.writeable
    assert store.last_closed("binance_spot", "BTCUSDT", "1d") == int(original.stamps[-1])


def test_series_are_kept_apart_by_exchange_symbol_and_interval(store):
    store.append("a", "X", "1d", bars(3, seed=1))
    store.append("b", "X", "1d", bars(4, seed=2))
    store.append("a", "X", "4h", bars(5, seed=3))
    assert [len(store.load(*k)) for k in (("a", "X", "1d"), ("b", "X", "1d"), ("a", "X", "4h"))] == [3, 4, 5]
    assert len(store.load("a", "Y", "1d")) == 0 and store.last_closed("a", "Y", "1d") is None
    assert [(s.exchange, s.interval, s.bars) for s in store.series()] == [("a", "1d", 3), ("a", "4h", 5), ("b", "1d", 4)]


def test_appending_new_bars_replaces_a_revised_overlap_and_keeps_older_bars(store):
    store.append("x", "S", "1d", bars(600))
    fresh = bars(10, first_day=599, seed=9)  # overlaps the last stored bar, with other values
    store.append("x", "S", "1d", fresh)
    loaded = store.load("x", "S", "1d")
    assert len(loaded) == 609
    assert np.array_equal(np.diff(loaded.stamps), np.full(608, DAY_MS))
    assert loaded.values[599:].tobytes() == fresh.values.tobytes()
    assert loaded.values[:599].tobytes() == bars(600).values[:599].tobytes()


def test_a_gap_is_filled_when_the_missing_bars_arrive_later(store):
    store.append("x", "S", "1d", bars(5))
    store.append("x", "S", "1d", bars(5, first_day=400))
    store.append("x", "S", "1d", bars(395, first_day=5))
    assert np.array_equal(store.load("x", "S", "1d").stamps, bars(405).stamps)


def test_retention_on_write_keeps_at_least_the_asked_bars_and_drops_old_ones(store):
    store.save([SeriesWrite("x", "S", "1d", bars(3000), keep=1000)])
    kept = store.load("x", "S", "1d")
    assert 1000 <= len(kept) < 1000 + CHUNK_BARS
    assert kept.stamps[-1] == bars(3000).stamps[-1]


def test_prune_trims_every_series_exactly_and_drops_stale_ones(store):
    store.append("x", "S", "1d", bars(1500))
    store.append("x", "T", "4h", bars(800))
    store.append("x", "OLD", "1d", bars(10))
    deleted = store.prune({"1d": 1000, "4h": 300}, older_than_ms=int(bars(1500).stamps[100]))
    assert len(store.load("x", "S", "1d")) == 1000 and len(store.load("x", "T", "4h")) == 300
    assert store.load("x", "S", "1d").stamps[0] == bars(1500).stamps[500]
    assert [s.symbol for s in store.series()] == ["S", "T"]
    assert deleted == 500 + 500 + 10


def test_replace_drops_stored_bars_too_old_to_join(store):
    store.append("x", "S", "1d", bars(100))
    store.save([SeriesWrite("x", "S", "1d", bars(50, first_day=900), replace=True)])
    assert np.array_equal(store.load("x", "S", "1d").stamps, bars(50, first_day=900).stamps)


def test_complete_history_flag_follows_the_first_bar(store):
    store.save([SeriesWrite("x", "S", "1d", bars(40), complete=True)])
    assert store.history("x", "S", "1d").complete
    store.append("x", "S", "1d", bars(3, first_day=40))
    assert store.history("x", "S", "1d").complete
    store.prune(10)
    assert not store.history("x", "S", "1d").complete


def test_a_batch_is_saved_all_or_nothing(tmp_path):
    path = tmp_path / "c.sqlite3"
    with SQLiteCandleStore(path, retention={}) as store:
        broken = SeriesWrite("x", "B", "1d", frozen(np.array([1, 2]), np.ones((2, 5))))
        object.__setattr__(broken, "candles", None)  # fails inside the transaction
        with pytest.raises(StoreError):
            store.save([SeriesWrite("x", "A", "1d", bars(5)), broken])
        assert store.series() == []


def test_store_file_uses_wal_and_records_its_schema_version(tmp_path):
    path = tmp_path / "c.sqlite3"
    SQLiteCandleStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]


def test_a_corrupt_file_is_a_clear_error_naming_the_file_and_the_way_out(tmp_path):
    path = tmp_path / "candles.sqlite3"
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(StoreError) as info:
        SQLiteCandleStore(path)
    message = str(info.value)
    assert str(path) in message and "--no-store" in message and "delete" in message and "\n" not in message
    assert path.read_bytes() == b"this is not a database" * 500  # never overwritten


def test_a_newer_schema_version_is_refused_without_touching_the_file(tmp_path):
    path = tmp_path / "candles.sqlite3"
    SQLiteCandleStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="newer scanner.*schema 99.*--no-store"):
        SQLiteCandleStore(path)


def test_another_sqlite_file_is_not_taken_for_a_store(tmp_path):
    path = tmp_path / "alerts.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alerts (x)")
    with pytest.raises(StoreError, match="not a candle store"):
        SQLiteCandleStore(path)


def test_a_chunk_with_broken_blobs_is_a_store_error_not_a_crash(tmp_path):
    path = tmp_path / "c.sqlite3"
    with SQLiteCandleStore(path, retention={}) as store:
        store.append("x", "S", "1d", bars(5))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE chunks SET ohlcv = x'00'")
    with SQLiteCandleStore(path) as store, pytest.raises(StoreError, match="unreadable bars"):
        store.load("x", "S", "1d")


def test_open_store_resolves_paths_env_config_and_off(tmp_path, monkeypatch):
    assert open_store(False) is None and open_store("off") is None
    memory = MemoryCandleStore()
    assert open_store(memory) is memory
    assert default_store_path() == tmp_path / "candles.sqlite3"  # beside the ledger (conftest's state db)
    monkeypatch.setenv("SCANNER_STORE", "off")
    assert open_store(None) is None
    monkeypatch.setenv("SCANNER_STORE", str(tmp_path / "env.sqlite3"))
    with open_store(None) as opened:
        assert opened.path == tmp_path / "env.sqlite3"
    monkeypatch.delenv("SCANNER_STORE")
    (tmp_path / "cfg.toml").write_text(f'[store]\npath = "{tmp_path / "cfg.sqlite3"}"\nretention = {{ 1d = 1200 }}\n')
    monkeypatch.setenv("SCANNER_CONFIG", str(tmp_path / "cfg.toml"))
    config.reload()
    with open_store(None) as opened:
        assert opened.path == tmp_path / "cfg.sqlite3" and opened.retention["1d"] == 1200
    with pytest.raises(ValueError, match="CandleStore, a file path, 'off', False or None"):
        open_store(42)


def test_two_processes_writing_one_store_lose_no_bars(tmp_path):
    path = tmp_path / "shared.sqlite3"
    SQLiteCandleStore(path).close()
    cmd = [sys.executable, "-m", "tests.store_writer", str(path), "--symbols", "30", "--days"]
    evens = subprocess.Popen([*cmd, *map(str, range(0, 80, 2))], cwd=REPO, stdout=subprocess.PIPE)
    odds = subprocess.Popen([*cmd, *map(str, range(1, 80, 2))], cwd=REPO, stdout=subprocess.PIPE)
    assert evens.wait(timeout=120) == 0 and odds.wait(timeout=120) == 0
    with SQLiteCandleStore(path) as store:
        infos = store.series()
        assert len(infos) == 30 and {s.bars for s in infos} == {80}
        loaded = store.load("writer", "S007", "1d")
        assert np.array_equal(loaded.stamps, np.arange(80) * DAY_MS)
        assert loaded.values[:, 4].tolist() == [1000.0 + d for d in range(80)]


def test_a_writer_killed_mid_write_leaves_a_consistent_store(tmp_path):
    path = tmp_path / "killed.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store_writer", str(path), "--symbols", "200", "--days", "0", "--forever"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(6):  # a few committed batches, then kill it while it writes the next ones
            assert proc.stdout.readline()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    with SQLiteCandleStore(path) as store:
        counts = {s.bars for s in store.series()}
        assert len(counts) == 1 and min(counts) >= 6  # every batch is all or nothing
        days = counts.pop()
        loaded = store.load("writer", "S123", "1d")
        assert loaded.values[:, 4].tolist() == [1000.0 + d for d in range(days)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_reads_asked_in_one_loop_step_share_one_hand_over_and_each_gets_its_own_series(tmp_path):
    store = SQLiteCandleStore(tmp_path / "candles.sqlite3", retention={})
    try:
        store.save([SeriesWrite("x", f"S{i}", "1d", bars(10 + i, seed=i)) for i in range(20)])
        handed_over = []
        histories = store._histories
        store._histories = lambda keys: handed_over.append(len(keys)) or histories(keys)

        async def read_all():
            readers = [asyncio.ensure_future(store.ahistory("x", f"S{i}", "1d")) for i in range(20)]
            readers[3].cancel()  # one reader gives up: the others still get theirs
            await asyncio.sleep(0)
            return await asyncio.gather(*readers, return_exceptions=True)

        got = asyncio.run(read_all())
        assert handed_over == [19]
        assert isinstance(got[3], asyncio.CancelledError)
        for i, stored in enumerate(got):
            if i != 3:
                assert np.array_equal(stored.candles.values, bars(10 + i, seed=i).values)
    finally:
        store.close()


def test_a_read_of_a_closed_store_is_a_store_error(tmp_path):
    store = SQLiteCandleStore(tmp_path / "candles.sqlite3", retention={})
    store.close()
    with pytest.raises(StoreError, match="closed"):
        asyncio.run(store.ahistory("x", "S", "1d"))
