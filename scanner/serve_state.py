"""What the serve loop remembers across restarts: the closes it scanned, and its status record.

One SQLite file in the state directory (``serve.sqlite3`` beside the alert ledger), WAL mode, a
busy timeout, one transaction per write. ``scanned_bars`` holds one row per (exchange, timeframe,
close): ``scanned`` once a scan of that close succeeded, ``failed`` once its retries ran out, so
a restart scans exactly the closes it has no row for. ``status`` holds the JSON record that
``scanner status`` prints. A corrupt file or one written by a newer version is a clear error.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from utils import config
from utils.sqlite import connect, transaction

SCHEMA_VERSION = 1
STATE_FILE_NAME = "serve.sqlite3"
STATUS_SCANNED = "scanned"
STATUS_FAILED = "failed"
SERVE_STATUS = "serve"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scanned_bars (
    exchange   TEXT NOT NULL,
    timeframe  TEXT NOT NULL,
    close_ms   INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('scanned', 'failed')),
    attempts   INTEGER NOT NULL,
    error      TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (exchange, timeframe, close_ms)
);
CREATE TABLE IF NOT EXISTS status (
    name       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


class StateError(RuntimeError):
    """The serve state file cannot be used (corrupt, or written by a newer version)."""


def default_path() -> Path:
    """``serve.sqlite3`` in the state directory (the directory of the alert ledger)."""
    return config.state_db_path().parent / STATE_FILE_NAME


def _ms(stamp: pd.Timestamp) -> int:
    return int(pd.Timestamp(stamp).value) // 1_000_000


def _stamp(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ServeState:
    """The serve loop's SQLite state (see the module docstring); one per thread, never shared."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self._conn = connect(self.path)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path} is not a usable serve state database: {exc}") from None
        try:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"{self.path} was written by a newer scanner (schema {version}, this one reads "
                    f"{SCHEMA_VERSION}); upgrade the scanner or point SCANNER_STATE_DB elsewhere"
                )
            with self._transaction():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StateError(f"{self.path} is not a usable serve state database: {exc}") from None
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ServeState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self, exchange: str, timeframes: Iterable[str], close: pd.Timestamp, status: str,
        attempts: int = 1, error: str | None = None,
    ) -> None:
        """Record the outcome of a close for ``timeframes`` of ``exchange`` (one transaction)."""
        if status not in (STATUS_SCANNED, STATUS_FAILED):
            raise ValueError(f"unknown status {status!r}; valid: {STATUS_SCANNED}, {STATUS_FAILED}")
        now = _now()
        with self._transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO scanned_bars (exchange, timeframe, close_ms, status, attempts, "
                "error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(exchange, tf, _ms(close), status, attempts, error, now) for tf in timeframes],
            )

    def recorded(self, exchange: str, timeframe: str, since: pd.Timestamp) -> set[pd.Timestamp]:
        """Closes of (exchange, timeframe) at or after ``since`` that have a row (scanned or failed)."""
        rows = self._conn.execute(
            "SELECT close_ms FROM scanned_bars WHERE exchange = ? AND timeframe = ? AND close_ms >= ?",
            (exchange, timeframe, _ms(since)),
        )
        return {_stamp(ms) for (ms,) in rows}

    def first_recorded(self, exchange: str, timeframe: str) -> pd.Timestamp | None:
        """The oldest close of (exchange, timeframe) with a row, or None before its first scan."""
        return self._bound("MIN", exchange, timeframe)

    def last_recorded(self, exchange: str, timeframe: str) -> pd.Timestamp | None:
        """The newest close of (exchange, timeframe) with a row, or None before its first scan."""
        return self._bound("MAX", exchange, timeframe)

    def _bound(self, which: str, exchange: str, timeframe: str) -> pd.Timestamp | None:
        (ms,) = self._conn.execute(
            f"SELECT {which}(close_ms) FROM scanned_bars WHERE exchange = ? AND timeframe = ?",
            (exchange, timeframe),
        ).fetchone()
        return None if ms is None else _stamp(ms)

    def rows(self) -> list[dict[str, Any]]:
        """Every row, oldest close first (for ``scanner status``, tests and benchmarks)."""
        cursor = self._conn.execute(
            "SELECT exchange, timeframe, close_ms, status, attempts, error, updated_at FROM scanned_bars "
            "ORDER BY close_ms, exchange, timeframe"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) | {"close": _stamp(row[2])} for row in cursor]

    def write_status(self, body: dict[str, Any], name: str = SERVE_STATUS) -> None:
        """Replace the status record ``name`` with ``body`` (JSON-serialisable)."""
        with self._transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO status (name, body, updated_at) VALUES (?, ?, ?)",
                (name, json.dumps(body, default=str), _now()),
            )

    def read_status(self, name: str = SERVE_STATUS) -> dict[str, Any] | None:
        """The status record ``name``, or None when the loop has not written one yet."""
        row = self._conn.execute("SELECT body FROM status WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _transaction(self) -> AbstractContextManager[None]:
        return transaction(self._conn)
