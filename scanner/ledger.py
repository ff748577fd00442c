"""The alert ledger: which item went to which target, so a re-run sends nothing twice.

One SQLite row per key (channel, chat, exchange, symbol, timeframe, strategy, bar time,
closed/current, kind) with status ``pending``, ``sent`` or ``undeliverable``, the item's text, the
number of delivery attempts, the last error (redacted), timestamps, and a group id tying the keys of
one block together (one asset on several exchanges). ``kind`` tells an alert block from its chart,
a run summary or an admin notice; those two use ``symbol`` for their own key. A current-bar alert
and the closed-bar alert of the same bar are different keys: the closed bar confirms what the
forming bar suggested. A chat is a Telegram chat id or ``webhook:<name>``.

The ``targets`` table counts, per (channel, chat), the runs in which the target refused delivery
for good (a blocked bot, a deleted webhook); at a configured number of runs the target and its
pending items become undeliverable, until a delivery to it works again.

Concurrency: every method is one short synchronous transaction, so calls from one event loop never
interleave inside a transaction. :meth:`AlertLedger.claim` is what the planner holds while it plans
and sends one channel's items to one chat: first one ``asyncio.Lock`` per (database file, channel,
chat) and event loop, shared by every ``AlertLedger`` on that file in the process (the parallel
scanner delivers each exchange's hits with its own), then a lease row in the database, so another
process on the same file (two cron jobs firing at the same minute) waits instead of re-sending the
same pending items. A lease of a process that died lapses after ``LEASE_S``. WAL mode and a busy
timeout let another process read meanwhile.

Schema: ``PRAGMA user_version`` holds :data:`SCHEMA_VERSION`. A file of the first layout (version 0:
no kind, no undeliverable state, no targets) is migrated in place in one transaction on first open;
a file of a newer version is refused with a clear error.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from utils import config
from utils.logging import redact
from utils.sqlite import connect, transaction

STATUS_SENT = "sent"
STATUS_PENDING = "pending"
# Given up: the target refused it for good (blocked chat, deleted webhook) or it failed too often.
STATUS_UNDELIVERABLE = "undeliverable"
# What a row carries: an alert block, the chart of an alert, a run summary or an admin notice.
KIND_ALERT = "alert"
KIND_CHART = "chart"
KIND_SUMMARY = "summary"
KIND_NOTICE = "notice"
KINDS: tuple[str, ...] = (KIND_ALERT, KIND_CHART, KIND_SUMMARY, KIND_NOTICE)
# A pending alert is given up (marked undeliverable) after this many failed deliveries.
MAX_DELIVERY_ATTEMPTS = 10
LEASE_S = 900.0  # a sender that died holds its (channel, chat) this long at most
LEASE_POLL_S = 0.25  # how often a waiting process looks whether the lease is free
# Version 0 is the first layout (no kind, no undeliverable state, no targets table): migrated in place.
SCHEMA_VERSION = 2

_ALERTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    channel    TEXT NOT NULL,
    chat       TEXT NOT NULL,
    exchange   TEXT NOT NULL,
    symbol     TEXT NOT NULL,
    timeframe  TEXT NOT NULL,
    strategy   TEXT NOT NULL,
    bar_time   TEXT NOT NULL,
    bar        TEXT NOT NULL CHECK (bar IN ('closed', 'current')),
    kind       TEXT NOT NULL DEFAULT 'alert' CHECK (kind IN ('alert', 'chart', 'summary', 'notice')),
    status     TEXT NOT NULL CHECK (status IN ('sent', 'pending', 'undeliverable')),
    text       TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at    TEXT,
    grp        TEXT,
    PRIMARY KEY (channel, chat, exchange, symbol, timeframe, strategy, bar_time, bar, kind)
);
"""
_SCHEMA = _ALERTS_TABLE.format(name="alerts") + """
CREATE INDEX IF NOT EXISTS alerts_pending ON alerts (channel, chat, status);
CREATE INDEX IF NOT EXISTS alerts_market ON alerts (exchange, symbol, timeframe, strategy, bar_time);
CREATE TABLE IF NOT EXISTS leases (
    channel    TEXT NOT NULL,
    chat       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (channel, chat)
);
CREATE TABLE IF NOT EXISTS targets (
    channel     TEXT NOT NULL,
    chat        TEXT NOT NULL,
    failed_runs INTEGER NOT NULL DEFAULT 0,
    last_run    TEXT,
    last_error  TEXT,
    undeliverable_since TEXT,
    announced   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, chat)
);
"""
_V0_COLUMNS = (
    "channel, chat, exchange, symbol, timeframe, strategy, bar_time, bar, status, text, attempts, "
    "last_error, created_at, updated_at, sent_at"
)
_KEY_COLUMNS = ("channel", "chat", "exchange", "symbol", "timeframe", "strategy", "bar_time", "bar", "kind")
_KEY_WHERE = " AND ".join(f"{c} = ?" for c in _KEY_COLUMNS)


@dataclass(frozen=True)
class AlertKey:
    """Identity of one message item to one chat; ``bar`` is ``"closed"`` or ``"current"``.

    ``kind`` tells an alert block from its chart, a run summary or an admin notice (those two use
    ``symbol`` for their own key and leave the market fields empty).
    """

    channel: str
    chat: str
    exchange: str
    symbol: str
    timeframe: str
    strategy: str
    bar_time: str
    bar: str
    kind: str = KIND_ALERT

    @staticmethod
    def bar_time_text(bar_time: pd.Timestamp | datetime | str) -> str:
        """Bar time as ISO text in UTC, whatever the input's resolution or time zone."""
        stamp = pd.Timestamp(bar_time)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.as_unit("ms").isoformat()

    def values(self) -> tuple[str, ...]:
        return tuple(getattr(self, c) for c in _KEY_COLUMNS)

    def as_kind(self, kind: str) -> AlertKey:
        """The same market and target, another kind (an alert's chart)."""
        return replace(self, kind=kind)


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
    group: str | None = None


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
        self._conn = connect(self.path)
        self._conn.row_factory = sqlite3.Row
        self._migrate()

    def _migrate(self) -> None:
        """Create the tables, or bring a file of an older layout to :data:`SCHEMA_VERSION` in place.

        One transaction, so a second process opening the file meanwhile waits and then finds it done.
        A file written by a newer version is refused rather than misread.
        """
        with self._transaction():
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ValueError(
                    f"alert ledger {self.path} has schema version {version}, newer than this scanner's "
                    f"{SCHEMA_VERSION}; upgrade the scanner or point SCANNER_STATE_DB at another file"
                )
            old = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alerts'")
            if version < SCHEMA_VERSION and old.fetchone() is not None:
                self._conn.execute(_ALERTS_TABLE.format(name="alerts_new"))
                self._conn.execute(f"INSERT INTO alerts_new ({_V0_COLUMNS}) SELECT {_V0_COLUMNS} FROM alerts")
                self._conn.execute("DROP TABLE alerts")
                self._conn.execute("ALTER TABLE alerts_new RENAME TO alerts")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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

    def add_pending(self, key: AlertKey, text: str, group: str | None = None) -> None:
        """Store ``key`` as pending with its text block; a known pending row gets the newer text.

        ``group`` ties the keys of one block together (one asset on several exchanges): they are
        re-sent as one block.
        """
        now = _now()
        self._conn.execute(
            f"INSERT INTO alerts ({', '.join(_KEY_COLUMNS)}, status, text, grp, created_at, updated_at)"
            f" VALUES ({', '.join('?' * len(_KEY_COLUMNS))}, ?, ?, ?, ?, ?)"
            f" ON CONFLICT ({', '.join(_KEY_COLUMNS)})"
            " DO UPDATE SET text = excluded.text, grp = excluded.grp, updated_at = excluded.updated_at"
            f" WHERE status = '{STATUS_PENDING}'",
            (*key.values(), STATUS_PENDING, text, group, now, now),
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
        """Record a failed delivery of ``keys``: they stay pending, with the redacted error, until
        their ``MAX_DELIVERY_ATTEMPTS``-th failure makes them undeliverable."""
        now = _now()
        reason = redact(error)
        with self._transaction():
            self._conn.executemany(
                "UPDATE alerts SET attempts = attempts + 1, last_error = ?, updated_at = ?, "
                f"status = CASE WHEN attempts + 1 >= ? THEN '{STATUS_UNDELIVERABLE}' ELSE status END "
                f"WHERE {_KEY_WHERE} AND status = '{STATUS_PENDING}'",
                [(reason, now, MAX_DELIVERY_ATTEMPTS, *k.values()) for k in keys],
            )

    def mark_undeliverable(self, keys: list[AlertKey], error: str) -> None:
        """Give ``keys`` up for good (a refusing target, a chart whose candles are gone)."""
        now = _now()
        reason = redact(error)
        with self._transaction():
            self._conn.executemany(
                f"UPDATE alerts SET status = '{STATUS_UNDELIVERABLE}', attempts = attempts + 1, "
                f"last_error = ?, updated_at = ? WHERE {_KEY_WHERE} AND status = '{STATUS_PENDING}'",
                [(reason, now, *k.values()) for k in keys],
            )

    def pending(self, channel: str, chat: str) -> list[LedgerEntry]:
        """Undelivered items of one channel and chat still worth retrying, oldest first."""
        rows = self._conn.execute(
            "SELECT * FROM alerts WHERE channel = ? AND chat = ? AND status = ? AND attempts < ? "
            "ORDER BY created_at, rowid",
            (channel, str(chat), STATUS_PENDING, MAX_DELIVERY_ATTEMPTS),
        ).fetchall()
        return [_entry(r) for r in rows]

    def count(self, status: str, kind: str | None = None) -> int:
        """How many items (of one kind, or all) are in ``status`` across every target."""
        sql, args = "SELECT COUNT(*) FROM alerts WHERE status = ?", [status]
        if kind is not None:
            sql, args = sql + " AND kind = ?", [status, kind]
        return int(self._conn.execute(sql, args).fetchone()[0])

    def last_fired_before(self, key: AlertKey) -> str | None:
        """Bar time of the latest earlier alert of the same strategy on the same market, any target."""
        row = self._conn.execute(
            "SELECT MAX(bar_time) FROM alerts WHERE exchange = ? AND symbol = ? AND timeframe = ? "
            "AND strategy = ? AND kind = ? AND bar_time < ?",
            (key.exchange, key.symbol, key.timeframe, key.strategy, KIND_ALERT, key.bar_time),
        ).fetchone()
        return row[0] if row is not None else None

    # --- targets (a chat of one channel's bot, a webhook) ---------------------------------------

    def target_undeliverable(self, channel: str, chat: str) -> bool:
        """Whether (channel, chat) has been marked as refusing delivery for good."""
        row = self._conn.execute(
            "SELECT undeliverable_since FROM targets WHERE channel = ? AND chat = ?", (channel, str(chat))
        ).fetchone()
        return row is not None and row["undeliverable_since"] is not None

    def target_failed(self, channel: str, chat: str, error: str, run: str, runs_allowed: int) -> bool:
        """Count a run in which (channel, chat) refused delivery for good (once per ``run``).

        At the ``runs_allowed``-th such run the target is marked undeliverable and its pending items
        with it; returns True exactly then.
        """
        now, reason = _now(), redact(error)
        with self._transaction():
            self._conn.execute(
                "INSERT INTO targets (channel, chat) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (channel, str(chat)),
            )
            self._conn.execute(
                "UPDATE targets SET failed_runs = failed_runs + (last_run IS NOT ?), last_run = ?, "
                "last_error = ? WHERE channel = ? AND chat = ?",
                (run, run, reason, channel, str(chat)),
            )
            row = self._conn.execute(
                "SELECT failed_runs, undeliverable_since FROM targets WHERE channel = ? AND chat = ?",
                (channel, str(chat)),
            ).fetchone()
            if row["undeliverable_since"] is not None or row["failed_runs"] < runs_allowed:
                return False
            self._conn.execute(
                "UPDATE targets SET undeliverable_since = ?, announced = 0 WHERE channel = ? AND chat = ?",
                (now, channel, str(chat)),
            )
            self._conn.execute(
                f"UPDATE alerts SET status = '{STATUS_UNDELIVERABLE}', last_error = ?, updated_at = ? "
                f"WHERE channel = ? AND chat = ? AND status = '{STATUS_PENDING}'",
                (reason, now, channel, str(chat)),
            )
        return True

    def target_ok(self, channel: str, chat: str) -> None:
        """A delivery to (channel, chat) worked: forget its failed runs and any undeliverable mark."""
        self._conn.execute("DELETE FROM targets WHERE channel = ? AND chat = ?", (channel, str(chat)))

    def unannounced_targets(self) -> list[tuple[str, str, str]]:
        """(channel, chat, last error) of targets marked undeliverable that no summary has named yet."""
        rows = self._conn.execute(
            "SELECT channel, chat, last_error FROM targets "
            "WHERE undeliverable_since IS NOT NULL AND announced = 0 ORDER BY channel, chat"
        ).fetchall()
        return [(r["channel"], r["chat"], r["last_error"] or "") for r in rows]

    def mark_announced(self, targets: list[tuple[str, str]]) -> None:
        with self._transaction():
            self._conn.executemany(
                "UPDATE targets SET announced = 1 WHERE channel = ? AND chat = ?",
                [(channel, str(chat)) for channel, chat in targets],
            )

    def entries(self) -> list[LedgerEntry]:
        """Every stored alert (for inspection and tests)."""
        return [_entry(r) for r in self._conn.execute("SELECT * FROM alerts ORDER BY rowid")]

    def _transaction(self) -> AbstractContextManager[None]:
        return transaction(self._conn)


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
        group=row["grp"],
    )
