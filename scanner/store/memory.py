"""In-memory candle store: the CandleStore contract without a file (tests, ``--no-store`` runs that
still want one run's history in one place)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from scanner.store.base import (
    CandleStore,
    SeriesInfo,
    SeriesWrite,
    StoredSeries,
    keep_counts,
    merge_candles,
)
from utils.candles import empty_candles

SeriesKey = tuple[str, str, str]


class MemoryCandleStore(CandleStore):
    """Series in a dict; a lock makes each batch atomic for threads sharing the store."""

    def __init__(self, retention: Mapping[str, int] | None = None) -> None:
        super().__init__(retention)
        self._series: dict[SeriesKey, StoredSeries] = {}
        self._lock = threading.Lock()

    def history(self, exchange: str, symbol: str, interval: str) -> StoredSeries:
        with self._lock:
            return self._series.get((exchange, symbol, interval), StoredSeries(empty_candles()))

    def save(self, writes: Iterable[SeriesWrite]) -> None:
        with self._lock:
            for write in writes:
                key = (write.exchange, write.symbol, write.interval)
                old = StoredSeries(empty_candles()) if write.replace else self._series.get(key)
                old = old or StoredSeries(empty_candles())
                merged, _ = merge_candles(old.candles, write.candles)
                complete = old.complete if write.complete is None else write.complete
                if write.keep is not None and len(merged) > write.keep:
                    merged, complete = merged.tail(write.keep), False
                self._series[key] = StoredSeries(merged, complete)

    def series(self, exchange: str | None = None) -> list[SeriesInfo]:
        with self._lock:
            items = sorted(self._series.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1]))
        return [
            SeriesInfo(ex, sym, iv, len(s.candles), int(s.candles.stamps[0]) if len(s.candles) else None,
                       int(s.candles.stamps[-1]) if len(s.candles) else None)
            for (ex, sym, iv), s in items
            if exchange is None or ex == exchange
        ]

    def prune(self, keep: Mapping[str, int] | int | None = None, older_than_ms: int | None = None) -> int:
        counts = keep_counts(keep, self.retention)
        deleted = 0
        with self._lock:
            for key, stored in list(self._series.items()):
                candles = stored.candles
                if older_than_ms is not None and (not len(candles) or candles.stamps[-1] < older_than_ms):
                    deleted += len(candles)
                    del self._series[key]
                    continue
                limit = counts.get(key[2])
                if limit is not None and len(candles) > limit:
                    deleted += len(candles) - limit
                    self._series[key] = StoredSeries(candles.tail(limit), False)
        return deleted
