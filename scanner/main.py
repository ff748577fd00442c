"""Scanning of one exchange x one timeframe: list, fetch (cached), filter by volume, detect, report.

``scan_exchange`` is the engine; ``run_scan`` and ``run_custom_scan`` keep the seed's call shapes.
Detector work runs on equal-length panels of symbols in the analysis process (``scanner.analysis``),
so the event loop keeps serving the exchange requests while candles are analysed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from exchanges import get_client
from exchanges.base_client import BaseExchangeClient
from exchanges.errors import BadCandles, ExchangeError, IPBanned
from scanner.analysis import (
    MIN_ROWS,
    PANEL_CHUNK,
    Analyser,
    BatchJob,
    BatchOutcome,
    analyse_frames,
    batch_size,
    clean_frame,
    prepare_and_analyse,
)
from scanner.cache import KlineCache, kline_cache, source_of
from scanner.registry import BAR_CHOICES, get_strategy, resolve_strategies
from scanner.results import AlertReport, ScanResult, ScanSummary
from scanner.runtime import scan_running
from scanner.store import CandleStore, StoreOption, open_store, owned
from scanner.store.fetch import flush as flush_store
from scanner.store.fetch import keeps_history
from utils.candles import Candles
from utils.config import volume_threshold
from utils.timeframes import get_timeframe

log = logging.getLogger(__name__)

FETCH_CONCURRENCY = 32  # in-flight candle requests per scan; the rate limiter does the pacing

__all__ = [
    "scan_exchange",
    "run_scan",
    "run_custom_scan",
    "analyse_frames",
    "clean_frame",
    "prepare_and_analyse",
    "MIN_ROWS",
    "PANEL_CHUNK",
    "progress_enabled",
    "validate_min_volume",
    "validate_send_telegram",
    "ban_reason",
    "deliver",
    "kline_cache",
]


def progress_enabled(progress: bool | None = None) -> bool:
    """Progress bars unless switched off by the parameter or ``DISABLE_PROGRESS=1``."""
    if progress is not None:
        return progress
    return os.environ.get("DISABLE_PROGRESS", "").strip().lower() not in ("1", "true", "yes")


def validate_min_volume(min_volume_usd: Any) -> float | None:
    """``None`` or a finite, non-negative number; ``ValueError`` otherwise."""
    if min_volume_usd is None:
        return None
    if isinstance(min_volume_usd, bool):
        raise ValueError(f"min_volume_usd must be a non-negative number, got {min_volume_usd!r}")
    try:
        value = float(min_volume_usd)
    except (TypeError, ValueError):
        raise ValueError(f"min_volume_usd must be a non-negative number, got {min_volume_usd!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"min_volume_usd must be a non-negative number, got {min_volume_usd!r}")
    return value


def validate_send_telegram(send_telegram: Any) -> bool:
    """A real bool: a string such as ``"false"`` would be truthy and send alerts by mistake."""
    if not isinstance(send_telegram, bool):
        raise ValueError(f"send_telegram must be True or False, got {send_telegram!r}")
    return send_telegram


def ban_reason(exc: IPBanned) -> str:
    """What a summary says about an IP ban: until when (UTC), how long from now, and the exchange's text."""
    left = max(exc.until - time.time(), 0.0)
    until = pd.Timestamp(exc.until, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"IP banned for {left:.0f}s more (until {until}); no request sent meanwhile: {exc}"


def validate_bars(bars: str) -> str:
    if bars not in BAR_CHOICES:
        raise ValueError(f"unknown bars option {bars!r}; valid values: {', '.join(BAR_CHOICES)}")
    return bars


async def scan_exchange(
    exchange: str,
    timeframe: str,
    strategies: str | Iterable[str],
    *,
    bars: str = "both",
    min_volume_usd: float | None = None,
    client: BaseExchangeClient | None = None,
    cache: KlineCache | None = None,
    plan: Iterable[str] | None = None,
    symbols: Iterable[str] | None = None,
    progress: bool | None = None,
    concurrency: int = FETCH_CONCURRENCY,
    partial_sink: list[ScanResult] | None = None,
    store: StoreOption = None,
) -> ScanResult:
    """Scan one exchange x one timeframe for ``strategies``; never raises for exchange failures.

    Exchange-level failures (listing failed, IP ban, exchange down) end up in ``summary.error``;
    per-symbol failures (requests that failed after their retries) in ``summary.failed``, unusable
    candles (none, too few, bad values) in ``summary.skipped``; detector failures in
    ``summary.detector_errors``. ``client`` lets several timeframes share one session and rate
    budget; ``plan`` lists every timeframe the caller will scan with it (one daily fetch serves all).
    When the scan is cancelled, its partial result (hits so far, ``summary.cancelled``) is appended
    to ``partial_sink`` before the cancellation propagates.

    ``store``: the candle store kept between runs (``scanner.store.open_store``: a ``CandleStore``,
    a path, None for the default, False for none); only bars it lacks are fetched. An unusable
    store file is a ``StoreError`` (a ValueError) before anything is fetched.
    """
    get_timeframe(timeframe)
    names = resolve_strategies(strategies)
    selected = [get_strategy(name) for name in names]
    validate_bars(bars)
    threshold = volume_threshold(timeframe, validate_min_volume(min_volume_usd))
    cache = cache if cache is not None else kline_cache
    summary = ScanSummary(exchange=exchange, timeframe=timeframe, strategies=names)
    summary.hits_per_strategy = {name: 0 for name in names}
    result = ScanResult(summaries=[summary])
    started = time.perf_counter()
    own_client = client is None
    client = client if client is not None else get_client(exchange, timeframe)
    history = open_store(store)
    source = source_of(client, timeframe, keeps_history(client, history))
    # A running scan from here to the end: full collections wait, the analysis process is kept
    # (scanner.runtime), and both end with the last scan of the process, listing failures included.
    with scan_running():
        # Built before the listing: the analysis process boots while symbols are listed and fetched.
        job = BatchJob(source, tuple(selected), exchange, timeframe, bars, threshold)
        analyser = Analyser(job)
        requests_before = client.request_count
        try:
            try:
                listed = list(symbols) if symbols is not None else await client.get_all_spot_symbols()
            except IPBanned as exc:
                summary.error = f"symbol listing failed: {ban_reason(exc)}"
                return result
            except ExchangeError as exc:
                summary.error = f"symbol listing failed: {exc}"
                return result
            summary.listed = len(listed)
            await _fetch_and_analyse(
                client, listed, timeframe, analyser, cache, plan, summary, result, progress_enabled(progress),
                concurrency, history,
            )
            await flush_store(history)
        except asyncio.CancelledError:
            summary.cancelled = True
            if partial_sink is not None:
                partial_sink.append(result)
            raise
        finally:
            if owned(store, history):
                history.close()
            summary.requests = client.request_count - requests_before
            summary.duration_s = time.perf_counter() - started
            for hit in result.hits:
                summary.hits_per_strategy[hit.strategy] = summary.hits_per_strategy.get(hit.strategy, 0) + 1
            if own_client:
                await client.close()
    return result


async def _fetch_and_analyse(
    client: BaseExchangeClient,
    symbols: list[str],
    timeframe: str,
    analyser: Analyser,
    cache: KlineCache,
    plan: Iterable[str] | None,
    summary: ScanSummary,
    result: ScanResult,
    show_progress: bool,
    concurrency: int,
    store: CandleStore | None = None,
) -> None:
    """``concurrency`` workers fetch symbols in turn; full batches go to the analysis process.

    A fixed pool of workers (not one task per symbol) keeps each event-loop step short however many
    symbols are listed, and cleaning, filtering and detectors run off the loop.
    """
    plan = tuple(plan) if plan is not None else (timeframe,)
    pending = iter(symbols)
    fetched: list[tuple[str, Candles]] = []  # native candles; the worker derives the timeframe
    chunk = batch_size(analyser.job.source.depth)
    analysing: list[asyncio.Task[BatchOutcome]] = []
    banned: list[IPBanned] = []
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(symbols), desc=f"{summary.exchange} {timeframe}", unit="sym", leave=False)

    def flush() -> None:
        if fetched:
            batch = fetched.copy()
            fetched.clear()
            analysing.append(asyncio.ensure_future(analyser.analyse(batch)))

    async def fetch(symbol: str) -> None:
        if banned:
            summary.failed[symbol] = f"not fetched: {ban_reason(banned[0])}"
            return
        try:
            candles, _ = await cache.native(client, symbol, timeframe, plan=plan, store=store)
        except IPBanned as exc:
            banned.append(exc)
            summary.failed[symbol] = str(exc)
            return
        except BadCandles as exc:
            summary.fetched += 1
            summary.skipped[symbol] = f"bad candles: {exc}"
            return
        except ExchangeError as exc:
            summary.failed[symbol] = str(exc)
            return
        except (ValueError, KeyError, TypeError) as exc:
            summary.failed[symbol] = f"unusable candles: {exc!r}"
            return
        summary.fetched += 1
        fetched.append((symbol, candles))
        if len(fetched) >= chunk:
            flush()

    async def worker() -> None:
        for symbol in pending:
            await fetch(symbol)
            if bar is not None:
                bar.update(1)

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, min(concurrency, len(symbols))))]
    try:
        await asyncio.gather(*workers)
        flush()
        for done in asyncio.as_completed(analysing):
            outcome = await done
            result.hits.extend(outcome.hits)
            for error in outcome.errors:
                log.warning("%s failed on %s %s %s: %s", error["strategy"], summary.exchange, timeframe,
                            error["symbol"], error["reason"])
            summary.detector_errors.extend(outcome.errors)
            summary.skipped.update(outcome.skipped)
            summary.filtered_out += outcome.filtered_out
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, *analysing, return_exceptions=True)
        if bar is not None:
            bar.close()
    if banned:
        summary.error = ban_reason(max(banned, key=lambda exc: exc.until))
    elif summary.listed and len(summary.failed) == summary.listed:
        summary.error = f"every symbol failed, e.g. {next(iter(summary.failed.values()))}"
    result.hits.sort(key=lambda h: (h.strategy, h.symbol))


async def _scan_and_alert(
    exchange: str,
    timeframe: str,
    strategies: str | Iterable[str],
    *,
    send_telegram: bool,
    telegram_channel: str | None,
    users: Sequence[str],
    **kwargs: Any,
) -> ScanResult:
    from scanner.notifier import validate_alert_targets

    names = resolve_strategies(strategies)
    if validate_send_telegram(send_telegram):
        validate_alert_targets(names, list(users), channel=telegram_channel)
    result = await scan_exchange(exchange, timeframe, names, **kwargs)
    if send_telegram:
        result.alerts = await deliver(result, list(users), telegram_channel)
    return result


async def deliver(
    result: ScanResult,
    users: list[str],
    channel: str | None = None,
    *,
    charts: bool | None = None,
    group_assets: bool | None = None,
    summary_user: str | None = None,
    candles: Any = None,
) -> AlertReport:
    """Send a scan's hits (and pending items of earlier runs) through the ledger and the users' sinks.

    The options default to the config file; see ``scanner.alerts.deliver``.
    """
    from scanner.alerts import deliver as deliver_alerts

    return await deliver_alerts(
        result, users, channel, charts=charts, group_assets=group_assets, summary_user=summary_user,
        candles=candles,
    )


async def run_scan(
    timeframe: str,
    strategy: str | Iterable[str],
    exchange: str,
    send_telegram: bool = False,
    telegram_channel: str | None = None,
    user_id: str = "default",
    **kwargs: Any,
) -> ScanResult:
    """Scan one exchange and timeframe for one strategy (or a comma list); optionally alert.

    Keyword options: ``bars`` ("both"/"closed"/"current"), ``min_volume_usd``, ``progress``,
    ``store`` (the candle store: a ``CandleStore``, a path, None for the default, False for none).
    """
    return await _scan_and_alert(
        exchange, timeframe, strategy, send_telegram=send_telegram,
        telegram_channel=telegram_channel, users=[user_id], **kwargs,
    )


async def run_custom_scan(
    exchange: str,
    timeframe: str,
    strategies: str | Iterable[str],
    send_telegram: bool = False,
    telegram_channel: str | None = None,
    user_id: str = "default",
    **kwargs: Any,
) -> ScanResult:
    """The seed's custom-strategy scan: same engine as ``run_scan``, exchange first (``store=`` too)."""
    return await _scan_and_alert(
        exchange, timeframe, strategies, send_telegram=send_telegram,
        telegram_channel=telegram_channel, users=[user_id], **kwargs,
    )


async def load_candles(
    exchange: str, symbol: str, timeframe: str, cache: KlineCache | None = None
) -> pd.DataFrame:
    """The candles a scan of ``exchange`` x ``timeframe`` sees for ``symbol`` (through the cache)."""
    get_timeframe(timeframe)
    async with get_client(exchange, timeframe) as client:
        return await (cache if cache is not None else kline_cache).get(client, symbol, timeframe)
