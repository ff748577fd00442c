"""Parallel scans over exchanges x timeframes, and the positional command line.

    python run_parallel_scanner.py 1d "breakout_bar,confluence" "binance_spot,bybit_spot" "default" true

Arguments: timeframes, strategies, exchanges, users, send_telegram (each a comma list; ``all`` for
every strategy or exchange). ``--help`` lists the options. Bad arguments exit with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from exchanges import EXCHANGE_NAMES, get_client
from scanner.analysis import analysis_mode
from scanner.cache import KlineCache, kline_cache
from scanner.main import deliver, scan_exchange, validate_bars, validate_min_volume, validate_send_telegram
from scanner.registry import STRATEGY_NAMES, resolve_strategies
from scanner.results import ScanResult, ScanSummary
from scanner.store import StoreOption, open_store, owned
from utils.timeframes import TIMEFRAME_NAMES, get_timeframe

log = logging.getLogger("scanner")

REAL_EXCHANGES: tuple[str, ...] = tuple(name for name in EXCHANGE_NAMES if name != "demo")
BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}

__all__ = [
    "run_parallel_exchanges",
    "run_parallel_multi_timeframes_all_exchanges",
    "resolve_exchanges",
    "resolve_timeframes",
    "kline_cache",
    "main",
]


def _split(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def resolve_exchanges(exchanges: str | Iterable[str] | None) -> list[str]:
    """Comma list / list / ``all`` / None (every real exchange) -> validated names."""
    items = _split(exchanges)
    if exchanges is None or "all" in items:
        return list(REAL_EXCHANGES)
    if not items:
        raise ValueError(f"empty exchange list; valid exchanges: {', '.join(EXCHANGE_NAMES)}, or 'all'")
    for name in items:
        if name not in EXCHANGE_NAMES:
            raise ValueError(f"unknown exchange {name!r}; valid exchanges: {', '.join(EXCHANGE_NAMES)}, or 'all'")
    return list(dict.fromkeys(items))


def resolve_timeframes(timeframes: str | Iterable[str]) -> list[str]:
    """Comma list / list -> validated timeframe names, in the given order."""
    items = _split(timeframes)
    if not items:
        raise ValueError(f"empty timeframe list; valid timeframes: {', '.join(TIMEFRAME_NAMES)}")
    for name in items:
        get_timeframe(name)
    return list(dict.fromkeys(items))


def resolve_users(users: str | Iterable[str] | None) -> list[str]:
    items = _split(users if users is not None else ["default"])
    if not items:
        raise ValueError("empty user list; name at least one user (e.g. 'default')")
    return list(dict.fromkeys(items))


async def _scan_exchange_timeframes(
    exchange: str,
    timeframes: list[str],
    strategies: list[str],
    *,
    users: list[str],
    send_telegram: bool,
    telegram_channel: str | None,
    cache: KlineCache,
    sink: list[ScanResult],
    store: StoreOption = None,
    **kwargs: Any,
) -> ScanResult:
    """All timeframes of one exchange over one client (one session, one rate budget, one daily fetch);
    ``store`` as in ``scan_exchange`` (pass an open ``CandleStore`` to share one across exchanges)."""
    try:
        client = get_client(exchange, timeframes[0])
    except Exception as exc:  # a broken client must not stop the other exchanges
        failed = ScanResult(summaries=[ScanSummary(exchange, tf, strategies, error=repr(exc)) for tf in timeframes])
        sink.append(failed)
        return failed

    async def one(timeframe: str) -> ScanResult:
        result = await scan_exchange(
            exchange, timeframe, strategies, client=client, cache=cache, plan=timeframes,
            partial_sink=sink, store=store, **kwargs,
        )
        try:
            if send_telegram:
                result.alerts = await deliver(result, users, telegram_channel)
        finally:
            sink.append(result)
        return result

    try:
        results = await asyncio.gather(*(one(tf) for tf in timeframes), return_exceptions=True)
    finally:
        await client.close()
        cache.clear(exchange=exchange)
    merged = []
    for timeframe, item in zip(timeframes, results):
        if isinstance(item, BaseException):
            if isinstance(item, asyncio.CancelledError):
                raise item
            log.exception("scan of %s %s crashed", exchange, timeframe, exc_info=item)
            item = ScanResult(summaries=[ScanSummary(exchange, timeframe, strategies, error=f"crashed: {item!r}")])
            sink.append(item)
        merged.append(item)
    return ScanResult.combine(merged)


async def run_parallel_multi_timeframes_all_exchanges(
    timeframes: str | Iterable[str],
    strategies: str | Iterable[str],
    exchanges: str | Iterable[str] | None = None,
    users: str | Sequence[str] = ("default",),
    send_telegram: bool = True,
    telegram_channel: str | None = None,
    min_volume_usd: float | None = None,
    bars: str = "both",
    progress: bool | None = None,
    cache: KlineCache | None = None,
    sink: list[ScanResult] | None = None,
    store: StoreOption = None,
) -> ScanResult:
    """Every timeframe x exchange concurrently; one failing never stops the others.

    ``store``: the candle store every scan of the run shares (a ``CandleStore``, a path, None for
    the default, False for none; ``scanner.store.open_store``), opened once here.

    Daily candles are fetched once per symbol and serve 1d/2d/3d/4d (and 1w where the page size
    allows); an exchange's cached candles are dropped once all its timeframes are done.
    ``sink`` (a list) receives each finished exchange x timeframe result as it completes, so a
    caller that is interrupted still has the partial results.
    """
    tfs = resolve_timeframes(timeframes)
    names = resolve_strategies(strategies)
    markets = resolve_exchanges(exchanges)
    user_list = resolve_users(users)
    validate_bars(bars)
    min_volume_usd = validate_min_volume(min_volume_usd)
    analysis_mode()
    if validate_send_telegram(send_telegram):
        from scanner.notifier import validate_alert_targets

        validate_alert_targets(names, user_list, channel=telegram_channel)
    sink = sink if sink is not None else []
    history = open_store(store)
    try:
        per_exchange = await asyncio.gather(
            *(
                _scan_exchange_timeframes(
                    exchange, tfs, names, users=user_list, send_telegram=send_telegram,
                    telegram_channel=telegram_channel, cache=cache if cache is not None else kline_cache,
                    sink=sink, bars=bars, min_volume_usd=min_volume_usd, progress=progress,
                    store=history if history is not None else False,
                )
                for exchange in markets
            )
        )
    finally:
        if owned(store, history):
            history.close()
    return ScanResult.combine(list(per_exchange))


async def run_parallel_exchanges(
    timeframe: str,
    strategies: str | Iterable[str],
    exchanges: str | Iterable[str] | None = None,
    users: str | Sequence[str] = ("default",),
    send_telegram: bool = True,
    min_volume_usd: float | None = None,
    store: StoreOption = None,
    **kwargs: Any,
) -> ScanResult:
    """One timeframe over several exchanges concurrently (see the multi-timeframe function)."""
    return await run_parallel_multi_timeframes_all_exchanges(
        [timeframe], strategies, exchanges, users=users, send_telegram=send_telegram,
        min_volume_usd=min_volume_usd, store=store, **kwargs,
    )


def parse_bool(text: str) -> bool:
    value = BOOL_WORDS.get(str(text).strip().lower())
    if value is None:
        raise ValueError(f"send_telegram must be true or false, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_parallel_scanner.py",
        description="Scan crypto markets for VSA and custom patterns, optionally alerting on Telegram.",
        epilog=(
            f"timeframes: {', '.join(TIMEFRAME_NAMES)}\nstrategies: {', '.join(STRATEGY_NAMES)}, all\n"
            f"exchanges: {', '.join(EXCHANGE_NAMES)}, all (every real exchange)\n"
            "example: python run_parallel_scanner.py 1d \"breakout_bar,confluence\" "
            "\"binance_spot,bybit_spot\" default true"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("timeframes", nargs="?", default="1d", help="comma list, e.g. 1d or 1d,3d (default 1d)")
    parser.add_argument("strategies", nargs="?", default="all", help="comma list or 'all' (default all)")
    parser.add_argument("exchanges", nargs="?", default="demo", help="comma list or 'all' (default demo)")
    parser.add_argument("users", nargs="?", default="default", help="comma list of user names (default default)")
    parser.add_argument("send_telegram", nargs="?", default="false", help="true/false (default false)")
    parser.add_argument("--min-volume-usd", default=None, help="replace the per-timeframe USD volume threshold")
    parser.add_argument("--bars", default="both", help="both | closed | current (default both)")
    parser.add_argument("--channel", default=None, help="send every alert to this Telegram channel")
    parser.add_argument("--csv", default=None, help="write the hits to this CSV file")
    parser.add_argument("--json", default=None, help="write hits and summaries to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    return parser


def format_report(result: ScanResult) -> str:
    """A readable table of hits plus one summary line per exchange x timeframe."""
    lines = []
    frame = result.to_frame()
    if frame.empty:
        lines.append("No hits.")
    else:
        table = frame[["strategy", "exchange", "timeframe", "symbol", "bar_time", "current_bar", "close", "volume_usd"]]
        table = table.assign(
            bar_time=table["bar_time"].map(lambda t: t.strftime("%Y-%m-%d %H:%M")),
            current_bar=table["current_bar"].map({True: "forming", False: "closed"}),
            volume_usd=table["volume_usd"].map(lambda v: f"{v:,.0f}"),
        ).rename(columns={"current_bar": "bar", "volume_usd": "volume USD"})
        lines.append(table.to_string(index=False))
    lines.append("")
    lines.append("Summary:")
    lines.extend(f"  {s.line()}" for s in result.summaries)
    for summary in result.summaries:
        for symbol, reason in list(summary.failed.items())[:5]:
            lines.append(f"    failed {summary.exchange} {symbol}: {reason}")
        if len(summary.failed) > 5:
            lines.append(f"    ... and {len(summary.failed) - 5} more failed symbols on {summary.exchange}")
        for err in summary.detector_errors[:5]:
            lines.append(f"    detector {err['strategy']} failed on {summary.exchange} {err['symbol']}: {err['reason']}")
    alerts = result.alerts
    if alerts.messages or alerts.failures or alerts.pending:
        lines.append(
            f"Alerts: {alerts.sent} sent in {alerts.messages} messages, {alerts.duplicates_skipped} already sent, "
            f"{alerts.pending} pending, {len(alerts.failures)} failures"
        )
        lines.extend(f"    {f.channel} -> {f.user}: {f.reason}" for f in alerts.failures[:10])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 something failed, 2 bad arguments, 130 interrupted)."""
    from utils.logging import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        timeframes = resolve_timeframes(args.timeframes)
        strategies = resolve_strategies(args.strategies)
        exchanges = resolve_exchanges(args.exchanges)
        users = resolve_users(args.users)
        send = parse_bool(args.send_telegram)
        min_volume = validate_min_volume(args.min_volume_usd)
        bars = validate_bars(args.bars)
        analysis_mode()  # SCANNER_ANALYSIS, checked before anything is scanned
        if send:
            from scanner.notifier import validate_alert_targets

            validate_alert_targets(strategies, users, channel=args.channel)
    except ValueError as exc:
        parser.error(str(exc))
    setup_logging(args.log_level.upper())
    sink: list[ScanResult] = []
    try:
        result = asyncio.run(
            run_parallel_multi_timeframes_all_exchanges(
                timeframes, strategies, exchanges, users=users, send_telegram=send,
                telegram_channel=args.channel, min_volume_usd=min_volume, bars=bars,
                progress=False if args.no_progress else None, sink=sink,
            )
        )
    except KeyboardInterrupt:
        partial = ScanResult.combine(sink)
        print(format_report(partial))
        print("Interrupted: the results above are partial.", file=sys.stderr)
        return 130
    print(format_report(result))
    if args.csv:
        result.to_csv(args.csv)
    if args.json:
        result.to_json(args.json)
    failed = any(s.error for s in result.summaries) or bool(result.alerts.failures) or result.alerts.pending
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
