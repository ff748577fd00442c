"""Candles through the store: load what is kept, fetch only the missing bars, merge, queue the write.

For one (exchange, symbol, native interval) and a depth (bars the scan needs):

- nothing stored: the full depth, as without a store;
- stored bars that end within ``depth`` bars of now and, with the missing ones, reach ``depth``
  (or go back to the market's first bar): only the bars from the last stored one (inclusive: the
  overlap shows an exchange revising a closed bar, which is replaced and logged once) to the
  forming one, in as many pages as they need (a gap after weeks off is backfilled this way);
- stored bars too shallow for ``depth``: the full depth, merged over what is kept;
- stored bars older than ``depth`` bars: the full depth, replacing them.

The scan gets the last ``depth`` bars, the forming one last, exactly what a fetch of ``depth``
bars returns. Only closed bars (opened at least one interval before the client's clock) are queued
for the store; writes go in batches of ``WRITE_BATCH`` series, one transaction each.
"""

from __future__ import annotations

import numpy as np

from exchanges.base_client import INTERVAL_MS, BaseExchangeClient
from scanner.store.base import CandleStore, SeriesWrite, StoredSeries, StoreError, frozen, shared_bars
from utils.candles import Candles

WRITE_BATCH = 256  # series per store transaction during a scan


def keeps_history(client: BaseExchangeClient, store: CandleStore | None) -> bool:
    """Whether ``store`` keeps ``client``'s candles (which also decides where 1w comes from, for the
    whole run, even if the store fails midway)."""
    return store is not None and getattr(client, "stable_history", True)


def plan_fetch(stored: StoredSeries, depth: int, now_ms: int, step: int) -> tuple[int | None, bool]:
    """(``since`` for an incremental fetch or None for the full depth, whether to replace the stored
    bars); see the module docstring."""
    candles = stored.candles
    if not len(candles):
        return None, False
    last = int(candles.stamps[-1])
    if last + step > now_ms:
        return None, False  # the store is ahead of this clock: trust the exchange
    missing = (now_ms - last) // step + 1
    if missing > depth:
        return None, True
    if len(candles) - 1 + missing < depth and not stored.complete:
        return None, False
    return last, False


async def fetch_native(
    client: BaseExchangeClient, symbol: str, interval: str, depth: int, store: CandleStore | None
) -> Candles:
    """The last ``depth`` native bars of ``symbol`` (the forming one last), through ``store`` when
    it keeps this client's history; see the module docstring."""
    if not keeps_history(client, store) or store.failure is not None:
        return await client.fetch_candles(symbol, interval=interval, limit=depth)
    assert store is not None
    try:
        stored = await store.ahistory(client.name, symbol, interval)
    except StoreError as exc:
        store.disable(exc)
        return await client.fetch_candles(symbol, interval=interval, limit=depth)
    step = INTERVAL_MS[interval]
    now_ms = int(client.clock() * 1000)
    since, replace = plan_fetch(stored, depth, now_ms, step)
    fetched = await client.fetch_candles(symbol, interval=interval, limit=None if since is not None else depth,
                                         since=since)
    if not len(fetched):
        return fetched
    kept = stored.candles
    split = int(np.searchsorted(kept.stamps, fetched.stamps[0], side="left"))
    n_closed = int(np.searchsorted(fetched.stamps, now_ms - step, side="right"))
    closed = fetched if n_closed == len(fetched) else Candles(fetched.stamps[:n_closed], fetched.values[:n_closed])
    if split < len(kept):
        revised = shared_bars(Candles(kept.stamps[split:], kept.values[split:]), closed)[1]
        if revised:
            store.note_revision(client.name, symbol, interval, revised)
    if len(closed):
        complete = len(fetched) < depth if since is None else None
        write = SeriesWrite(client.name, symbol, interval, closed, keep=store.keep_for(interval, depth),
                            complete=complete, replace=replace)
        if store.queue(write) >= WRITE_BATCH:
            await flush(store)
    if split == 0 or replace:
        return fetched.tail(depth)
    older = max(depth - len(fetched), 0)
    if older == 0:
        return fetched.tail(depth)
    head = Candles(kept.stamps[max(split - older, 0):split], kept.values[max(split - older, 0):split])
    return frozen(np.concatenate([head.stamps, fetched.stamps]), np.concatenate([head.values, fetched.values]))


async def flush(store: CandleStore | None) -> None:
    """Save the queued writes; a failing store is disabled (logged once), never raised mid-scan."""
    if store is None or store.failure is not None:
        return
    try:
        await store.aflush()
    except StoreError as exc:
        store.disable(exc)
