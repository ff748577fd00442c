"""Signal quality over exchanges x timeframes: load each one's history, then ``quality_table``.

``load_history`` is the one place that knows where history comes from: the candle store, through
the scan's fetch path (``scanner.store.fetch.fetch_native``: only the bars the store lacks are
fetched, and what is fetched is kept), with the same native interval and multi-day aggregation a
scan uses (``scanner.cache.source_of``, spec 10), ``HISTORY_BARS`` native bars deep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pandas as pd

from exchanges import get_client
from exchanges.errors import ExchangeError
from scanner.cache import source_of
from scanner.main import FETCH_CONCURRENCY, progress_enabled, validate_min_volume
from scanner.quality.core import (
    COLUMN_NAMES,
    HORIZONS,
    empty_table,
    parse_since,
    quality_table,
    validate_horizons,
)
from scanner.registry import resolve_strategies
from scanner.store import CandleStore, StoreOption, open_store, owned
from scanner.store.fetch import fetch_native, flush, keeps_history
from utils.sync import run_sync
from utils.timeframes import get_timeframe

# Native bars fetched per symbol: about three years of days (157 weeks when weeks are built from
# them), three of native weeks, one of 4h bars. A younger market simply has fewer.
HISTORY_BARS: dict[str, int] = {"4h": 2200, "1d": 1100, "1w": 160}



async def load_history(
    exchange: str,
    timeframe: str,
    symbols: Iterable[str] | None = None,
    store: StoreOption = None,
    *,
    failed: dict[str, str] | None = None,
    client: Any = None,
    progress: bool | None = None,
) -> dict[str, pd.DataFrame]:
    """Closed bars of ``timeframe`` per symbol of ``exchange`` (every listed USDT market by default).

    The forming bar (last row) is dropped: only closed bars are measured. A symbol whose fetch
    fails is left out and its reason put into ``failed``; a failed listing raises
    ``ExchangeError``. ``store``: the candle store (``scanner.store.open_store``: a ``CandleStore``,
    a path, None for the default, False for none). ``client`` lets a test or caller pass its own;
    ``progress`` shows a progress bar (default: unless ``DISABLE_PROGRESS=1``).
    """
    get_timeframe(timeframe)
    failed = failed if failed is not None else {}
    own = client is None
    client = client if client is not None else get_client(exchange, timeframe)
    history = open_store(store)
    try:
        listed = list(symbols) if symbols is not None else await client.get_all_spot_symbols()
        source = source_of(client, timeframe, keeps_history(client, history))
        source = replace(source, depth=HISTORY_BARS[source.interval])
        frames: dict[str, pd.DataFrame] = {}
        pending = iter(listed)
        bar = None
        if progress_enabled(progress):
            from tqdm.auto import tqdm

            bar = tqdm(total=len(listed), desc=f"{exchange} {timeframe} history", unit="sym", leave=False)

        async def worker() -> None:
            for symbol in pending:
                try:
                    native = await fetch_native(client, symbol, source.interval, source.depth, history)
                    frame = source.derive(native, timeframe)
                except (ExchangeError, ValueError, KeyError, TypeError) as exc:
                    failed[symbol] = str(exc) or repr(exc)
                else:
                    frames[symbol] = frame.iloc[:-1]
                if bar is not None:
                    bar.update(1)

        try:
            await asyncio.gather(*(worker() for _ in range(max(1, min(FETCH_CONCURRENCY, len(listed))))))
        finally:
            if bar is not None:
                bar.close()
            await flush(history)
        return frames
    finally:
        if owned(store, history):
            history.close()
        if own:
            await client.close()


async def signal_quality(
    timeframes: str | Iterable[str],
    strategies: str | Iterable[str],
    exchanges: str | Iterable[str],
    *,
    horizons: str | Iterable[int] | None = HORIZONS,
    since: str | pd.Timestamp | None = None,
    min_volume_usd: float | None = None,
    store: StoreOption = None,
    seed: int = 0,
    symbols: Iterable[str] | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Signal quality of ``strategies`` on every exchange x timeframe, one DataFrame (``COLUMNS``).

    Arguments as the ``scanner quality`` command takes them (comma lists or lists; ``all`` for
    every strategy or real exchange); bad ones raise ``ValueError`` before anything is fetched.
    An exchange or symbol that fails is listed in ``.attrs["failed"]`` (exchange, timeframe,
    symbol or None for the whole exchange, reason) and never stops the rest; unusable candles in
    ``.attrs["skipped"]``, detector failures in ``.attrs["errors"]``. ``symbols`` limits every
    exchange to those markets; ``progress`` as in ``load_history``.
    """
    from scanner.names import resolve_exchanges, resolve_timeframes

    tfs = resolve_timeframes(timeframes)
    names = resolve_strategies(strategies)
    markets = resolve_exchanges(exchanges)
    horizons = validate_horizons(horizons)
    parse_since(since)
    min_volume_usd = validate_min_volume(min_volume_usd)
    wanted = list(symbols) if symbols is not None else None
    history = open_store(store)  # once for the whole report; StoreError (a ValueError) before any fetch
    try:
        return await _measure(
            history, markets, tfs, names, horizons, since, min_volume_usd, seed, wanted, progress
        )
    finally:
        if owned(store, history):
            history.close()


async def _measure(
    history: CandleStore | None,
    markets: list[str],
    tfs: list[str],
    names: list[str],
    horizons: tuple[int, ...],
    since: str | pd.Timestamp | None,
    min_volume_usd: float | None,
    seed: int,
    wanted: list[str] | None,
    progress: bool | None,
) -> pd.DataFrame:
    """``signal_quality``'s loop over exchanges x timeframes on an open store."""
    tables: list[pd.DataFrame] = []
    report: dict[str, list[dict[str, Any]]] = {"failed": [], "skipped": [], "errors": []}
    store = history if history is not None else False
    for exchange in markets:
        for timeframe in tfs:
            where = {"exchange": exchange, "timeframe": timeframe}
            failed: dict[str, str] = {}
            try:
                frames = await load_history(
                    exchange, timeframe, wanted, store, failed=failed, progress=progress
                )
            except (ExchangeError, OSError, ValueError) as exc:
                report["failed"].append({**where, "symbol": None, "reason": str(exc) or repr(exc)})
                continue
            report["failed"].extend({**where, "symbol": s, "reason": r} for s, r in sorted(failed.items()))
            table = await asyncio.to_thread(
                quality_table, frames, exchange, timeframe, names, horizons, min_volume_usd, since, seed
            )
            report["skipped"].extend(
                {**where, "symbol": s, "reason": r} for s, r in sorted(table.attrs["skipped"].items())
            )
            report["errors"].extend({**where, **e} for e in table.attrs["errors"])
            tables.append(table)
    tables = [t for t in tables if not t.empty]
    result = pd.concat(tables, ignore_index=True) if tables else empty_table()
    result = result.loc[:, list(COLUMN_NAMES)]
    result.attrs = {**report, "horizons": list(horizons), "seed": seed}
    return result


def signal_quality_sync(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """``signal_quality`` from synchronous code (scripts); in a notebook, ``await`` it instead."""
    return run_sync(signal_quality(*args, **kwargs))
