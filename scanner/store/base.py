"""The candle store interface: native closed bars per (exchange, symbol, interval), kept between runs.

A store holds only closed bars, as the compact ``utils.candles.Candles`` arrays the kline cache
uses; the forming bar always comes fresh from the exchange. Writes are batches of ``SeriesWrite``
(one transaction each in the SQLite store): new bars are merged into the stored ones by open time,
a bar already stored is replaced (an exchange revising a closed bar), older bars stay.

Retention: a write may say how many bars of its series to keep (at least); ``prune`` trims every
series exactly to the retention on demand. The default retention per interval is the depth the
deepest timeframe built from it needs (706 daily bars for 100 weeks built from days, 100 bars of
4h and 1w) plus a margin, so a later, deeper scan or a chart finds the history already there.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np

from utils.candles import Candles
from utils.config import file_config
from utils.timeframes import NATIVE_INTERVALS, OHLCV_COLUMNS

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_RETENTION: dict[str, int] = {"4h": 500, "1d": 1000, "1w": 200}
NO_STORE_HINT = "run with --no-store (SCANNER_STORE=off) or delete the file"


class StoreError(ValueError):
    """The candle store cannot be used: one line naming the file and the way out."""


@dataclass(frozen=True)
class StoredSeries:
    """A series as stored: its closed bars, and whether they start at the market's first bar."""

    candles: Candles
    complete: bool = False


@dataclass(frozen=True)
class SeriesWrite:
    """Closed bars of one series to merge into the store.

    ``keep``: keep at least this many newest bars of the series (None: keep all). ``complete``:
    True records that ``candles`` start at the market's first bar (a deep fetch returned fewer
    bars than asked), None leaves the record as it is. ``replace``: drop the stored bars first
    (the stored ones are too old to join the new ones).
    """

    exchange: str
    symbol: str
    interval: str
    candles: Candles
    keep: int | None = None
    complete: bool | None = None
    replace: bool = False


@dataclass(frozen=True)
class SeriesInfo:
    """One stored series: how many bars and the open times (UTC ms) of its oldest and newest."""

    exchange: str
    symbol: str
    interval: str
    bars: int
    first_ms: int | None
    last_ms: int | None


def frozen(stamps: np.ndarray, values: np.ndarray) -> Candles:
    """Candles of new arrays, made read-only as the cache expects."""
    stamps = np.ascontiguousarray(stamps, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1, len(OHLCV_COLUMNS))
    stamps.flags.writeable = False
    values.flags.writeable = False
    return Candles(stamps, values)


def shared_bars(old: Candles, new: Candles) -> tuple[np.ndarray, int]:
    """Which of ``old``'s bars ``new`` also has (a mask over ``old``), and how many of those ``new``
    gives other values. ``new``'s open times are sorted and unique, so a binary search finds them."""
    at = np.searchsorted(new.stamps, old.stamps)
    shared = at < len(new)
    shared[shared] = new.stamps[at[shared]] == old.stamps[shared]
    return shared, int((old.values[shared] != new.values[at[shared]]).any(axis=1).sum())


def merge_candles(old: Candles, new: Candles) -> tuple[Candles, int]:
    """``old`` and ``new`` bars by open time, ``new`` winning on equal times; and how many old bars
    ``new`` changed (an exchange revising a closed bar)."""
    if len(old) == 0:
        return new, 0
    if len(new) == 0:
        return old, 0
    # Only old bars from new's first open time on can meet new's: the usual write (a day appended,
    # the last stored bar repeated) compares a row or two, not the whole series.
    split = int(np.searchsorted(old.stamps, new.stamps[0]))
    shared, revised = shared_bars(Candles(old.stamps[split:], old.values[split:]), new)
    if shared.all():  # every old bar from there on is in new: new follows the older ones
        return frozen(np.concatenate([old.stamps[:split], new.stamps]),
                      np.concatenate([old.values[:split], new.values])), revised
    kept = np.flatnonzero(~shared) + split
    stamps = np.concatenate([old.stamps[:split], old.stamps[kept], new.stamps])
    values = np.concatenate([old.values[:split], old.values[kept], new.values])
    order = np.argsort(stamps, kind="stable")
    return frozen(stamps[order], values[order]), revised


def retention_setting() -> dict[str, int]:
    """Bars kept per native interval: ``[store.retention]`` of the config file over the defaults.

    ``ValueError`` names the valid keys and values.
    """
    configured = file_config().get("store", {}).get("retention", {})
    if not isinstance(configured, Mapping):
        raise ValueError("[store] retention must be a table such as { 1d = 1000, 4h = 500 }")
    out = dict(DEFAULT_RETENTION)
    for interval, bars in configured.items():
        if interval not in NATIVE_INTERVALS:
            raise ValueError(f"[store.retention] {interval!r} is not one of {', '.join(NATIVE_INTERVALS)}")
        if isinstance(bars, bool) or not isinstance(bars, int) or bars <= 0:
            raise ValueError(f"[store.retention] {interval} must be a positive number of bars, got {bars!r}")
        out[interval] = bars
    return out


class CandleStore(ABC):
    """Closed bars per (exchange, symbol, native interval); see the module docstring.

    Writes during a scan are queued (``queue``) and saved in batches (``flush``), one transaction
    per batch. ``ahistory``/``asave`` are the event loop's way in: the SQLite store runs them on
    its own thread, so a scan's loop never waits on the disk.
    """

    path: Path | None = None

    def __init__(self, retention: Mapping[str, int] | None = None) -> None:
        self.retention: dict[str, int] = dict(retention) if retention is not None else retention_setting()
        self._pending: list[SeriesWrite] = []
        self._pending_lock = threading.Lock()
        self.failure: str | None = None  # set when the store failed mid-run (see ``disable``)
        self.revised: dict[str, int] = {}  # closed bars an exchange revised after we stored them

    def disable(self, exc: BaseException) -> None:
        """Stop using the store for the rest of this run after a failure (logged once): the scan goes
        on fetching full history, as without a store, rather than crash mid-scan."""
        if self.failure is None:
            self.failure = str(exc)
            log.error("%s; this run goes on without the candle store", exc)
        self._take_pending()

    def note_revision(self, exchange: str, symbol: str, interval: str, bars: int) -> None:
        """Count closed bars an exchange changed after we stored them; log the first per exchange."""
        if exchange not in self.revised:
            log.info("%s revised %d stored closed %s bar(s) of %s; replaced (further revisions are counted, "
                     "not logged)", exchange, bars, interval, symbol)
        self.revised[exchange] = self.revised.get(exchange, 0) + bars

    # ---------------------------------------------------------------- what a backend implements

    @abstractmethod
    def history(self, exchange: str, symbol: str, interval: str) -> StoredSeries:
        """The stored closed bars of one series (no bars when there are none)."""

    @abstractmethod
    def save(self, writes: Iterable[SeriesWrite]) -> None:
        """Merge a batch of series writes, atomically (all or none)."""

    @abstractmethod
    def series(self, exchange: str | None = None) -> list[SeriesInfo]:
        """Every stored series (of one exchange), sorted by exchange, interval, symbol."""

    @abstractmethod
    def prune(self, keep: Mapping[str, int] | int | None = None, older_than_ms: int | None = None) -> int:
        """Trim each series to its newest ``keep`` bars (per interval; default ``self.retention``)
        and drop series whose newest bar opened before ``older_than_ms``; the bars deleted."""

    def vacuum(self) -> None:
        """Give the space of deleted bars back to the file system (nothing to do in memory)."""

    def size_bytes(self) -> int:
        """Bytes on disk (0 in memory)."""
        return 0

    def close(self) -> None:
        """Release the store; queued writes not flushed yet are dropped."""

    # ---------------------------------------------------------------- shared conveniences

    def load(self, exchange: str, symbol: str, interval: str) -> Candles:
        """The stored closed bars of one series, oldest first."""
        return self.history(exchange, symbol, interval).candles

    def append(self, exchange: str, symbol: str, interval: str, candles: Candles, keep: int | None = None) -> None:
        """Merge one series' closed bars (a batch of one)."""
        self.save([SeriesWrite(exchange, symbol, interval, candles, keep=keep)])

    def last_closed(self, exchange: str, symbol: str, interval: str) -> int | None:
        """Open time (UTC ms) of the newest stored bar of one series, None when there is none."""
        stamps = self.load(exchange, symbol, interval).stamps
        return int(stamps[-1]) if len(stamps) else None

    def keep_for(self, interval: str, depth: int = 0) -> int:
        """Bars of ``interval`` a scan keeps: the retention, or the scan's depth when deeper."""
        return max(self.retention.get(interval, 0), depth)

    def queue(self, write: SeriesWrite) -> int:
        """Queue one write for the next ``flush``; the number of writes queued."""
        with self._pending_lock:
            self._pending.append(write)
            return len(self._pending)

    def _take_pending(self) -> list[SeriesWrite]:
        with self._pending_lock:
            pending, self._pending = self._pending, []
        return pending

    def flush(self) -> int:
        """Save the queued writes in one transaction; the number saved."""
        pending = self._take_pending()
        if pending:
            self.save(pending)
        return len(pending)

    async def _in_store_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)``: inline here, on the store's own thread in the SQLite store."""
        return fn(*args)

    async def ahistory(self, exchange: str, symbol: str, interval: str) -> StoredSeries:
        return await self._in_store_thread(self.history, exchange, symbol, interval)

    async def asave(self, writes: Sequence[SeriesWrite]) -> None:
        await self._in_store_thread(self.save, writes)

    async def aflush(self) -> int:
        """``flush`` without blocking the event loop."""
        pending = self._take_pending()
        if pending:
            await self.asave(pending)
        return len(pending)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path) if self.path else ''})"


def keep_counts(keep: Mapping[str, int] | int | None, default: Mapping[str, int]) -> dict[str, int]:
    """Per-interval bars to keep from an int (every interval), a mapping, or None (``default``)."""
    if keep is None:
        return dict(default)
    if isinstance(keep, Mapping):
        return {**default, **keep}
    if isinstance(keep, bool) or int(keep) <= 0:
        raise ValueError(f"keep must be a positive number of bars, got {keep!r}")
    return dict.fromkeys(NATIVE_INTERVALS, int(keep))
