"""The alert ledger: which alert went to which chat, so a re-run sends nothing twice.

One SQLite row per alert key (channel, chat, exchange, symbol, timeframe, strategy, bar time,
closed/current) with status ``sent`` or ``pending``, the alert's text block, the number of delivery
attempts, the last error (redacted) and timestamps. A current-bar alert and the closed-bar alert of
the same bar are different keys: the closed bar confirms what the forming bar suggested.

Concurrency: every method is one short synchronous transaction, so calls from one event loop never
interleave inside a transaction. :meth:`AlertLedger.claim` is what the notifier holds while it plans
and sends one channel's alerts to one chat: first one ``asyncio.Lock`` per (database file, channel,
chat) and event loop, shared by every ``AlertLedger`` on that file in the process (the parallel
scanner delivers each exchange's hits with its own), then a lease row in the database, so another
process on the same file (two cron jobs firing at the same minute) waits instead of re-sending the
same pending alerts. A lease of a process that died lapses after ``LEASE_S``. WAL mode and a busy
timeout let another process read meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from utils import config
from utils.logging import redact

STATUS_SENT = "sent"
STATUS_PENDING = "pending"
# A pending alert is given up after this many failed deliveries (a chat that blocked the bot).
MAX_DELIVERY_ATTEMPTS = 10
BUSY_TIMEOUT_S = 5.0
LEASE_S = 900.0  # a sender that died holds its (channel, chat) this long at most
LEASE_POLL_S = 0.25  # how often a waiting process looks whether the lease is free

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    channel    TEXT NOT NULL,
    chat       TEXT NOT NULL,
    exchange   TEXT NOT NULL,
    symbol     TEXT NOT NULL,
    timeframe  TEXT NOT NULL,
    strategy   TEXT NOT NULL,
    bar_time   TEXT NOT NULL,
    bar        TEXT NOT NULL CHECK (bar IN ('closed', 'current')),
    status     TEXT NOT NULL CHECK (status IN ('sent', 'pending')),
    text       TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at    TEXT,
    PRIMARY KEY (channel, chat, exchange, symbol, timeframe, strategy, bar_time, bar)
);
CREATE INDEX IF NOT EXISTS alerts_pending ON alerts (channel, chat, status);
CREATE TABLE IF NOT EXISTS leases (
    channel    TEXT NOT NULL,
    chat       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (channel, chat)
);
"""
_KEY_COLUMNS = ("channel", "chat", "exchange", "symbol", "timeframe", "strategy", "bar_time", "bar")
_KEY_WHERE = " AND ".join(f"{c} = ?" for c in _KEY_COLUMNS)


@dataclass(frozen=True)
class AlertKey:
    """Identity of one alert to one chat; ``bar`` is ``"closed"`` or ``"current"``."""

    channel: str
    chat: str
    exchange: str
    symbol: str
    timeframe: str
    strategy: str
    bar_time: str
    bar: str

    @staticmethod
    def bar_time_text(bar_time: pd.Timestamp | datetime | str) -> str:
        """Bar time as ISO text in UTC, whatever the input's resolution or time zone."""
        stamp = pd.Timestamp(bar_time)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.as_unit("ms").isoformat()

    def values(self) -> tuple[str, ...]:
        return tuple(getattr(self, c) for c in _KEY_COLUMNS)


@dataclass(frozen=True)
class LedgerEntry:
    """A stored alert: its key, status, text block and delivery history."""

    key: AlertKey
    status: str
    text: str
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str
    sent_at: str | None


# Per event loop: (database file, channel, chat) -> the lock every ledger on that file shares.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, str], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class AlertLedger:
    """SQLite-backed record of alerts per chat (see the module docstring)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else config.state_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> AlertLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lock(self, channel: str, chat: str) -> asyncio.Lock:
        """The lock to hold while planning and sending alerts of one channel to one chat.

        Shared by every ledger of this process on the same file (within the running event loop).
        """
        locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
        return locks.setdefault((str(self.path.resolve()), channel, str(chat)), asyncio.Lock())

    @asynccontextmanager
    async def claim(self, channel: str, chat: str) -> AsyncIterator[None]:
        """Hold while planning and sending alerts of one channel to one chat, against other tasks
        of this process and other processes using the same file (see the module docstring)."""
        async with self.lock(channel, chat):
            owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
            while not self.take_lease(channel, chat, owner):
                await asyncio.sleep(LEASE_POLL_S)
            try:
                yield
            finally:
                self.release_lease(channel, chat, owner)

    def take_lease(self, channel: str, chat: str, owner: str, now: float | None = None) -> bool:
        """Lease (channel, chat) to ``owner`` for ``LEASE_S`` unless someone else holds it unexpired."""
        now = time.time() if now is None else now
        with self._transaction():
            row = self._conn.execute(
                "SELECT owner, expires_at FROM leases WHERE channel = ? AND chat = ?", (channel, str(chat))
            ).fetchone()
            if row is not None and row["owner"] != owner and row["expires_at"] > now:
                return False
            self._conn.execute(
                "INSERT OR REPLACE INTO leases (channel, chat, owner, expires_at) VALUES (?, ?, ?, ?)",
                (channel, str(chat), owner, now + LEASE_S),
            )
        return True

    def release_lease(self, channel: str, chat: str, owner: str) -> None:
        """Give the lease back (only ``owner``'s own; a lapsed one taken over meanwhile stays)."""
        self._conn.execute(
            "DELETE FROM leases WHERE channel = ? AND chat = ? AND owner = ?", (channel, str(chat), owner)
        )

    def get(self, key: AlertKey) -> LedgerEntry | None:
        row = self._conn.execute(f"SELECT * FROM alerts WHERE {_KEY_WHERE}", key.values()).fetchone()
        return _entry(row) if row is not None else None

    def is_sent(self, key: AlertKey) -> bool:
        entry = self.get(key)
        return entry is not None and entry.status == STATUS_SENT

    def add_pending(self, key: AlertKey, text: str) -> None:
        """Store ``key`` as pending with its text block; a known pending row gets the newer text."""
        now = _now()
        self._conn.execute(
            f"INSERT INTO alerts ({', '.join(_KEY_COLUMNS)}, status, text, created_at, updated_at)"
            f" VALUES ({', '.join('?' * len(_KEY_COLUMNS))}, ?, ?, ?, ?)"
            f" ON CONFLICT ({', '.join(_KEY_COLUMNS)})"
            " DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at"
            f" WHERE status = '{STATUS_PENDING}'",
            (*key.values(), STATUS_PENDING, text, now, now),
        )

    def mark_sent(self, keys: list[AlertKey]) -> None:
        """Record a successful delivery of ``keys`` (one attempt each)."""
        now = _now()
        with self._transaction():
            self._conn.executemany(
                "UPDATE alerts SET status = ?, attempts = attempts + 1, last_error = NULL, "
                f"updated_at = ?, sent_at = ? WHERE {_KEY_WHERE}",
                [(STATUS_SENT, now, now, *k.values()) for k in keys],
            )

    def mark_failed(self, keys: list[AlertKey], error: str) -> None:
        """Record a failed delivery of ``keys``: they stay pending, with the redacted error."""
        now = _now()
        reason = redact(error)
        with self._transaction():
            self._conn.executemany(
                "UPDATE alerts SET attempts = attempts + 1, last_error = ?, updated_at = ? "
                f"WHERE {_KEY_WHERE}",
                [(reason, now, *k.values()) for k in keys],
            )

    def pending(self, channel: str, chat: str) -> list[LedgerEntry]:
        """Undelivered alerts of one channel and chat still worth retrying, oldest first."""
        rows = self._conn.execute(
            "SELECT * FROM alerts WHERE channel = ? AND chat = ? AND status = ? AND attempts < ? "
            "ORDER BY created_at, rowid",
            (channel, str(chat), STATUS_PENDING, MAX_DELIVERY_ATTEMPTS),
        ).fetchall()
        return [_entry(r) for r in rows]

    def entries(self) -> list[LedgerEntry]:
        """Every stored alert (for inspection and tests)."""
        return [_entry(r) for r in self._conn.execute("SELECT * FROM alerts ORDER BY rowid")]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (the connection is in autocommit mode)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        key=AlertKey(*(row[c] for c in _KEY_COLUMNS)),
        status=row["status"],
        text=row["text"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sent_at=row["sent_at"],
    )
