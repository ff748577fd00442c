"""The serve state file: scanned closes and the status record survive restarts, bad files are clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from scanner.serve_state import (
    SCHEMA_VERSION,
    STATUS_FAILED,
    STATUS_SCANNED,
    ServeState,
    StateError,
    default_path,
)
from utils import config


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_the_state_file_lives_beside_the_alert_ledger(tmp_path):
    assert default_path() == Path(config.state_db_path()).parent / "serve.sqlite3"
    with ServeState() as state:
        assert state.path == tmp_path / "serve.sqlite3" and state.path.is_file()


def test_recorded_closes_survive_a_restart(tmp_path):
    with ServeState(tmp_path / "s.db") as state:
        state.record("binance_spot", ["1d", "1w"], utc("2025-04-07"), STATUS_SCANNED)
        state.record("binance_spot", ["4h"], utc("2025-04-07 04:00"), STATUS_FAILED, attempts=5, error="down")
    with ServeState(tmp_path / "s.db") as state:
        assert state.recorded("binance_spot", "1d", utc("2025-04-01")) == {utc("2025-04-07")}
        assert state.recorded("binance_spot", "4h", utc("2025-04-07 08:00")) == set()
        assert state.first_recorded("binance_spot", "1w") == utc("2025-04-07")
        assert state.first_recorded("bybit_spot", "1w") is None
        failed = [r for r in state.rows() if r["status"] == STATUS_FAILED]
        assert [(r["timeframe"], r["attempts"], r["error"]) for r in failed] == [("4h", 5, "down")]


def test_a_close_recorded_again_replaces_the_earlier_row(tmp_path):
    with ServeState(tmp_path / "s.db") as state:
        state.record("demo", ["1d"], utc("2025-04-07"), STATUS_FAILED, attempts=3, error="down")
        state.record("demo", ["1d"], utc("2025-04-07"), STATUS_SCANNED, attempts=4)
        assert [(r["status"], r["attempts"]) for r in state.rows()] == [(STATUS_SCANNED, 4)]


def test_an_unknown_status_is_refused_naming_the_valid_ones(tmp_path):
    with ServeState(tmp_path / "s.db") as state, pytest.raises(ValueError, match="scanned, failed"):
        state.record("demo", ["1d"], utc("2025-04-07"), "done")


def test_the_status_record_round_trips_and_is_replaced(tmp_path):
    with ServeState(tmp_path / "s.db") as state:
        assert state.read_status() is None
        state.write_status({"next_close": {"1d": utc("2025-04-08")}, "failures": []})
        state.write_status({"next_close": {"1d": "2025-04-09"}, "failures": ["x"]})
        assert state.read_status() == {"next_close": {"1d": "2025-04-09"}, "failures": ["x"]}


def test_the_file_is_in_wal_mode_and_another_connection_reads_while_one_writes(tmp_path):
    path = tmp_path / "s.db"
    with ServeState(path) as writer, ServeState(path) as reader:
        writer.record("demo", ["1d"], utc("2025-04-07"), STATUS_SCANNED)
        assert reader.recorded("demo", "1d", utc("2025-04-01")) == {utc("2025-04-07")}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_file_from_a_newer_version_is_a_clear_error_and_left_untouched(tmp_path):
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StateError, match="newer scanner"):
        ServeState(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    conn.close()


def test_a_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="not a usable serve state database"):
        ServeState(path)
