"""The SQLite candle store: one file, WAL mode, a busy timeout, one transaction per batch of series.

Layout: a ``series`` row per (exchange, symbol, interval) and its bars in ``chunks``, one row per
fixed span of ``CHUNK_BARS`` bar lengths (``bucket = open_ms // span``) holding the open times and
the OHLCV rows as little-endian int64 / float64 blobs. Loading a series is a handful of blob reads
and ``np.frombuffer``, not a Python object per bar; appending a day rewrites one small chunk;
retention drops whole chunks. A write merges into the chunks it touches inside its transaction,
so two processes appending to one series never lose each other's bars.

The connection lives on one thread the store owns (never shared between threads): synchronous
calls wait for it, a scan's event loop awaits it (``ahistory``/``asave``). A file that is not a
SQLite database, not a candle store, or written by a newer schema is a ``StoreError`` naming the
file and the way out (``--no-store`` or delete it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from exchanges.base_client import INTERVAL_MS
from scanner.store.base import (
    NO_STORE_HINT,
    CandleStore,
    SeriesInfo,
    SeriesWrite,
    StoredSeries,
    StoreError,
    frozen,
    keep_counts,
    merge_candles,
)
from utils.candles import Candles, empty_candles
from utils.timeframes import OHLCV_COLUMNS

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0  # a writer waits this long for another process's transaction
CHUNK_BARS = 256  # bar lengths per chunk: ~12 KB of blobs per full chunk
STAMP_DTYPE = np.dtype("<i8")
VALUE_DTYPE = np.dtype("<f8")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE series (
    id            INTEGER PRIMARY KEY,
    exchange      TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    interval      TEXT NOT NULL,
    complete_from INTEGER,
    UNIQUE (exchange, symbol, interval)
);
CREATE TABLE chunks (
    series_id INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    bucket    INTEGER NOT NULL,
    bars      INTEGER NOT NULL,
    first_ms  INTEGER NOT NULL,
    last_ms   INTEGER NOT NULL,
    stamps    BLOB NOT NULL,
    ohlcv     BLOB NOT NULL,
    PRIMARY KEY (series_id, bucket)
);
"""


def _span(interval: str) -> int:
    return CHUNK_BARS * INTERVAL_MS.get(interval, INTERVAL_MS["1d"])


class SQLiteCandleStore(CandleStore):
    """The default store (see the module docstring); ``path`` is created with its directory."""

    def __init__(self, path: str | os.PathLike[str], retention: Mapping[str, int] | None = None) -> None:
        super().__init__(retention)
        self.path = Path(path).expanduser()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="candle-store")
        self._conn: sqlite3.Connection | None = None
        self._reads: dict[asyncio.AbstractEventLoop, list[tuple[tuple[str, str, str], asyncio.Future]]] = {}
        try:
            self._call(self._open)
        except BaseException:
            self._thread.shutdown(wait=True)
            raise

    # ---------------------------------------------------------------- the store's thread

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._thread.submit(self._guarded, fn, *args).result()

    async def _in_store_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._thread.submit(self._guarded, fn, *args))

    async def ahistory(self, exchange: str, symbol: str, interval: str) -> StoredSeries:
        """The stored series, read on the store's thread. The reads a scan asks for in one event-loop
        step go there together: one hand-over instead of one each (a warm 1,000-symbol scan asks in
        about 300 steps), which saves the thread switches and loop wake-ups around each."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[StoredSeries] = loop.create_future()
        batch = self._reads.get(loop)
        if batch is None:
            batch = self._reads[loop] = []
            loop.call_soon(self._read_batch, loop)
        batch.append(((exchange, symbol, interval), future))
        return await future

    def _read_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send the step's reads (``ahistory``) to the store's thread; settle their futures when done."""
        wanted = [(key, future) for key, future in self._reads.pop(loop, []) if not future.done()]
        if not wanted:
            return
        try:
            done = asyncio.wrap_future(self._thread.submit(self._guarded, self._histories, [k for k, _ in wanted]))
        except (RuntimeError, AttributeError) as exc:  # closed meanwhile (thread shut down or gone)
            failure = StoreError(f"candle store {self.path} is closed ({exc!r})")
            for _, future in wanted:
                future.set_exception(failure)
            return
        done.add_done_callback(lambda answer: _settle(wanted, answer))

    def _histories(self, keys: list[tuple[str, str, str]]) -> list[StoredSeries]:
        return [self._history(*key) for key in keys]

    async def asave(self, writes: Sequence[SeriesWrite]) -> None:
        if writes:
            await self._in_store_thread(self._save, list(writes))

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        """Run on the store thread; SQLite failures become one clear StoreError."""
        try:
            return fn(*args)
        except StoreError:
            raise
        except sqlite3.Error as exc:
            raise StoreError(f"candle store {self.path} failed ({exc}); {NO_STORE_HINT}") from None
        except (ValueError, TypeError) as exc:
            raise StoreError(f"candle store {self.path} holds unreadable bars ({exc}); {NO_STORE_HINT}") from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a crash never corrupts, at most the last batch is lost
            conn.execute("PRAGMA foreign_keys = ON")
            if "schema_version" not in tables:
                if tables:
                    raise StoreError(f"{self.path} is an SQLite file but not a candle store; "
                                     "choose another path (--store PATH) or --no-store")
                self._create(conn)
            self._check_version(conn)
            conn.execute("SELECT count(*) FROM series").fetchone()
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
            if not exists:  # another process may have created it while we waited for the lock
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _check_version(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] if row else None
        if version is None or int(version) != SCHEMA_VERSION:
            newer = version is not None and int(version) > SCHEMA_VERSION
            what = f"written by a newer scanner (schema {version}; this one reads {SCHEMA_VERSION})" if newer \
                else f"of an unknown schema version {version!r}"
            raise StoreError(f"candle store {self.path} is {what}; {NO_STORE_HINT}")

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"candle store {self.path} is closed")
        return self._conn

    def close(self) -> None:
        if self._thread is None:
            return
        try:
            self._thread.submit(self._close_connection).result()
        finally:
            self._thread.shutdown(wait=True)
            self._thread = None  # type: ignore[assignment]

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---------------------------------------------------------------- reads

    def history(self, exchange: str, symbol: str, interval: str) -> StoredSeries:
        return self._call(self._history, exchange, symbol, interval)

    def _history(self, exchange: str, symbol: str, interval: str) -> StoredSeries:
        rows = self._db.execute(
            "SELECT s.complete_from, c.bars, c.stamps, c.ohlcv FROM series s JOIN chunks c ON c.series_id = s.id "
            "WHERE s.exchange = ? AND s.symbol = ? AND s.interval = ? ORDER BY c.bucket",
            (exchange, symbol, interval),
        ).fetchall()
        if not rows:
            return StoredSeries(empty_candles())
        candles = _decode_rows([(bars, stamps, ohlcv) for _, bars, stamps, ohlcv in rows])
        complete_from = rows[0][0]
        return StoredSeries(candles, complete_from is not None and int(candles.stamps[0]) == complete_from)

    def series(self, exchange: str | None = None) -> list[SeriesInfo]:
        return self._call(self._series, exchange)

    def _series(self, exchange: str | None) -> list[SeriesInfo]:
        where, args = ("WHERE s.exchange = ?", (exchange,)) if exchange is not None else ("", ())
        rows = self._db.execute(
            "SELECT s.exchange, s.symbol, s.interval, coalesce(sum(c.bars), 0), min(c.first_ms), max(c.last_ms) "
            f"FROM series s LEFT JOIN chunks c ON c.series_id = s.id {where} "
            "GROUP BY s.id ORDER BY s.exchange, s.interval, s.symbol",
            args,
        ).fetchall()
        return [SeriesInfo(*row) for row in rows]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    # ---------------------------------------------------------------- writes

    def save(self, writes: Iterable[SeriesWrite]) -> None:
        writes = list(writes)
        if writes:
            self._call(self._save, writes)

    def _save(self, writes: list[SeriesWrite]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for write in writes:
                self._save_one(db, write)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _series_id(self, db: sqlite3.Connection, write: SeriesWrite) -> int:
        key = (write.exchange, write.symbol, write.interval)
        row = db.execute("SELECT id FROM series WHERE exchange = ? AND symbol = ? AND interval = ?", key).fetchone()
        if row is not None:
            return int(row[0])
        return int(db.execute("INSERT INTO series (exchange, symbol, interval) VALUES (?, ?, ?)", key).lastrowid)

    def _save_one(self, db: sqlite3.Connection, write: SeriesWrite) -> None:
        sid = self._series_id(db, write)
        if write.replace:
            db.execute("DELETE FROM chunks WHERE series_id = ?", (sid,))
        new = write.candles
        if len(new):
            span = _span(write.interval)
            buckets = new.stamps // span
            bounds = [0, *(np.flatnonzero(np.diff(buckets)) + 1).tolist(), len(new)]
            for lo, hi in pairwise(bounds):
                self._merge_chunk(db, sid, int(buckets[lo]), Candles(new.stamps[lo:hi], new.values[lo:hi]))
        if write.complete is not None and len(new):
            db.execute("UPDATE series SET complete_from = ? WHERE id = ?",
                       (int(new.stamps[0]) if write.complete else None, sid))
        if write.keep is not None:
            self._drop_old_chunks(db, sid, write.keep)

    def _merge_chunk(self, db: sqlite3.Connection, sid: int, bucket: int, new: Candles) -> None:
        row = db.execute("SELECT bars, stamps, ohlcv FROM chunks WHERE series_id = ? AND bucket = ?",
                         (sid, bucket)).fetchone()
        merged = merge_candles(_decode_rows([row]), new)[0] if row is not None else new
        db.execute(
            "INSERT OR REPLACE INTO chunks (series_id, bucket, bars, first_ms, last_ms, stamps, ohlcv) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sid, bucket, len(merged), int(merged.stamps[0]), int(merged.stamps[-1]),
             merged.stamps.astype(STAMP_DTYPE).tobytes(), merged.values.astype(VALUE_DTYPE).tobytes()),
        )

    def _drop_old_chunks(self, db: sqlite3.Connection, sid: int, keep: int) -> None:
        """Delete the chunks wholly older than the newest ``keep`` bars (whole chunks: cheap, keeps >= keep)."""
        rows = db.execute("SELECT bucket, bars FROM chunks WHERE series_id = ? ORDER BY bucket DESC", (sid,)).fetchall()
        total = 0
        for bucket, bars in rows:
            if total >= keep:
                db.execute("DELETE FROM chunks WHERE series_id = ? AND bucket <= ?", (sid, bucket))
                return
            total += bars

    # ---------------------------------------------------------------- maintenance

    def prune(self, keep: Mapping[str, int] | int | None = None, older_than_ms: int | None = None) -> int:
        return self._call(self._prune, keep_counts(keep, self.retention), older_than_ms)

    def _prune(self, counts: dict[str, int], older_than_ms: int | None) -> int:
        db = self._db
        deleted = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            if older_than_ms is not None:
                stale = db.execute(
                    "SELECT s.id, coalesce(sum(c.bars), 0) FROM series s LEFT JOIN chunks c ON c.series_id = s.id "
                    "GROUP BY s.id HAVING coalesce(max(c.last_ms), -1) < ?", (older_than_ms,)).fetchall()
                for sid, bars in stale:
                    db.execute("DELETE FROM chunks WHERE series_id = ?", (sid,))
                    db.execute("DELETE FROM series WHERE id = ?", (sid,))
                    deleted += bars
            for sid, interval, bars in db.execute(
                    "SELECT s.id, s.interval, sum(c.bars) FROM series s JOIN chunks c ON c.series_id = s.id "
                    "GROUP BY s.id").fetchall():
                limit = counts.get(interval)
                if limit is not None and bars > limit:
                    deleted += self._trim(db, sid, limit)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return deleted

    def _trim(self, db: sqlite3.Connection, sid: int, keep: int) -> int:
        """Keep exactly the newest ``keep`` bars of one series; the bars deleted."""
        rows = db.execute("SELECT bucket, bars, stamps, ohlcv FROM chunks WHERE series_id = ? ORDER BY bucket DESC",
                          (sid,)).fetchall()
        total, deleted = 0, 0
        for bucket, bars, stamps, ohlcv in rows:
            if total >= keep:
                deleted += bars
                db.execute("DELETE FROM chunks WHERE series_id = ? AND bucket = ?", (sid, bucket))
            elif total + bars > keep:
                cut = _decode_rows([(bars, stamps, ohlcv)]).tail(keep - total)
                deleted += bars - len(cut)
                db.execute("UPDATE chunks SET bars = ?, first_ms = ?, stamps = ?, ohlcv = ? "
                           "WHERE series_id = ? AND bucket = ?",
                           (len(cut), int(cut.stamps[0]), cut.stamps.astype(STAMP_DTYPE).tobytes(),
                            np.ascontiguousarray(cut.values).astype(VALUE_DTYPE).tobytes(), sid, bucket))
            total += bars
        if deleted:
            db.execute("UPDATE series SET complete_from = NULL WHERE id = ?", (sid,))
        return deleted

    def vacuum(self) -> None:
        self._call(self._vacuum)

    def _vacuum(self) -> None:
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _settle(wanted: list[tuple[Any, asyncio.Future]], answer: asyncio.Future) -> None:
    """Each waiting reader's series, or the batch's error (the first store error disables the store
    for the run anyway); readers cancelled meanwhile are skipped."""
    waiting = [future for _, future in wanted if not future.done()]
    if answer.cancelled():
        for future in waiting:
            future.cancel()
        return
    failure = answer.exception()
    if failure is not None:
        for future in waiting:
            future.set_exception(failure)
        return
    for (_, future), series in zip(wanted, answer.result()):
        if not future.done():
            future.set_result(series)


def _decode_rows(rows: list[tuple[int, bytes, bytes]]) -> Candles:
    """Candles of chunk rows (bars, stamps blob, ohlcv blob), checked for consistent sizes."""
    width = len(OHLCV_COLUMNS)
    for bars, stamp_blob, value_blob in rows:
        if len(stamp_blob) != bars * STAMP_DTYPE.itemsize or len(value_blob) != bars * width * VALUE_DTYPE.itemsize:
            raise ValueError(f"a chunk of {bars} bars has blobs of {len(stamp_blob)} and {len(value_blob)} bytes")
    # One array per column kind from the joined blobs: two numpy calls however many chunks.
    stamps = np.frombuffer(b"".join(row[1] for row in rows), dtype=STAMP_DTYPE)
    values = np.frombuffer(b"".join(row[2] for row in rows), dtype=VALUE_DTYPE)
    return frozen(stamps.astype(np.int64, copy=False), values.astype(np.float64, copy=False))
