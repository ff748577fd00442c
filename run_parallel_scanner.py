"""Parallel scans over exchanges x timeframes, and the positional command line.

    python run_parallel_scanner.py 1d "breakout_bar,confluence" "binance_spot,bybit_spot" "default" true

Arguments: timeframes, strategies, exchanges, users, send_telegram (each a comma list; ``all`` for
every strategy or every real exchange; names in any case). ``--help`` lists the options, the exit
codes, the environment variables and the config file. Bad arguments and configuration exit with
status 2 before anything is scanned. The same command line is ``scanner scan`` (``scanner.cli``).

The library functions send nothing unless asked: ``send_telegram`` defaults to False (it was True
in the parallel functions before 0.2.0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from exchanges import EXCHANGE_NAMES, get_client
from scanner.analysis import analysis_mode
from scanner.cache import KlineCache, kline_cache
from scanner.cli import ENVIRONMENT_HELP, EXIT_CODES_HELP, paths_help
from scanner.main import deliver, scan_exchange, validate_bars, validate_min_volume, validate_send_telegram
from scanner.names import (
    REAL_EXCHANGES,
    resolve_exchanges,
    resolve_strategy_names,
    resolve_timeframes,
    resolve_users,
)
from scanner.registry import STRATEGY_NAMES
from scanner.results import ScanResult, ScanSummary, count_requests_once, format_price
from scanner.store import StoreOption, open_store, owned
from utils import config
from utils.timeframes import TIMEFRAME_NAMES

log = logging.getLogger("scanner")

BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Per-symbol failures listed under a summary line (grouped by reason); the rest are counted.
FAILED_REASONS_SHOWN = 5
DETECTOR_ERRORS_SHOWN = 5
ALERT_FAILURES_SHOWN = 10

__all__ = [
    "REAL_EXCHANGES",
    "kline_cache",
    "main",
    "resolve_exchanges",
    "resolve_strategy_names",
    "resolve_timeframes",
    "resolve_users",
    "run_parallel_exchanges",
    "run_parallel_multi_timeframes_all_exchanges",
]


async def _scan_exchange_timeframes(
    exchange: str,
    timeframes: list[str],
    strategies: list[str],
    *,
    cache: KlineCache,
    sink: list[ScanResult],
    store: StoreOption = None,
    chart_candles: dict[tuple[str, str, str], pd.DataFrame] | None = None,
    **kwargs: Any,
) -> ScanResult:
    """All timeframes of one exchange over one client (one session, one rate budget, one daily fetch);
    ``store`` as in ``scan_exchange`` (pass an open ``CandleStore`` to share one across exchanges).
    ``chart_candles`` (when charts are wanted) receives the bars of every hit's market before the
    exchange's cached candles are dropped: alerts go out once per run, after every exchange."""
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
        sink.append(result)
        if chart_candles is not None:
            for hit in result.hits:
                chart_candles[(hit.exchange, hit.timeframe, hit.symbol)] = cache.peek(client, hit.symbol, timeframe)
        return result

    try:
        results = await asyncio.gather(*(one(tf) for tf in timeframes), return_exceptions=True)
    finally:
        await client.close()
        cache.clear(exchange=exchange)
    done = [summary for item in results if isinstance(item, ScanResult) for summary in item.summaries]
    count_requests_once(done, client.request_count)
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
    send_telegram: bool = False,
    telegram_channel: str | None = None,
    min_volume_usd: float | None = None,
    bars: str = "both",
    progress: bool | None = None,
    cache: KlineCache | None = None,
    sink: list[ScanResult] | None = None,
    store: StoreOption = None,
    charts: bool | None = None,
    group_assets: bool | None = None,
    summary_user: str | None = None,
) -> ScanResult:
    """Every timeframe x exchange concurrently; one failing never stops the others.

    With ``send_telegram=True`` the hits of every exchange go out together once the scans are done
    (so an asset hit on several exchanges is one block with ``group_assets``), with a chart per alert
    (``charts``, drawn from the candles the scans held) and a run summary to ``summary_user``; each
    option defaults to the config file (``scanner.alerts``).

    ``store``: the candle store every scan of the run shares (a ``CandleStore``, a path, None for
    the default, False for none; ``scanner.store.open_store``), opened once here.

    Daily candles are fetched once per symbol and serve 1d/2d/3d/4d (and 1w where the page size
    allows); an exchange's cached candles are dropped once all its timeframes are done.
    ``sink`` (a list) receives each finished exchange x timeframe result as it completes, so a
    caller that is interrupted still has the partial results. Alerts go out only with
    ``send_telegram=True``.
    """
    tfs = resolve_timeframes(timeframes)
    names = resolve_strategy_names(strategies)
    markets = resolve_exchanges(exchanges)
    user_list = resolve_users(users)
    validate_bars(bars)
    min_volume_usd = validate_min_volume(min_volume_usd)
    analysis_mode()
    if validate_send_telegram(send_telegram):
        from scanner.notifier import validate_alert_targets

        admins = [summary_user] if summary_user else []
        validate_alert_targets(names, user_list + admins, channel=telegram_channel)
    sink = sink if sink is not None else []
    chart_candles: dict[tuple[str, str, str], pd.DataFrame] | None = {} if send_telegram else None
    history = open_store(store)
    try:
        per_exchange = await asyncio.gather(
            *(
                _scan_exchange_timeframes(
                    exchange, tfs, names, cache=cache if cache is not None else kline_cache,
                    sink=sink, bars=bars, min_volume_usd=min_volume_usd, progress=progress,
                    store=history if history is not None else False, chart_candles=chart_candles,
                )
                for exchange in markets
            )
        )
    finally:
        if owned(store, history):
            history.close()
    result = ScanResult.combine(list(per_exchange))
    if send_telegram:
        result.alerts = await deliver(
            result, user_list, telegram_channel, charts=charts, group_assets=group_assets,
            summary_user=summary_user, candles=chart_candles,
        )
    return result


async def run_parallel_exchanges(
    timeframe: str,
    strategies: str | Iterable[str],
    exchanges: str | Iterable[str] | None = None,
    users: str | Sequence[str] = ("default",),
    send_telegram: bool = False,
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


def build_parser(prog: str = "run_parallel_scanner.py") -> argparse.ArgumentParser:
    """The positional command line (also ``scanner scan``); ``--help`` is the full reference."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Scan crypto markets for VSA and custom patterns, optionally alerting on Telegram.",
        epilog=(
            f"timeframes: {', '.join(TIMEFRAME_NAMES)}\nstrategies: {', '.join(STRATEGY_NAMES)}, all\n"
            f"exchanges: {', '.join(EXCHANGE_NAMES)}, all (every real exchange; 'all,demo' adds demo)\n"
            "names are accepted in any case.\n"
            f"example: {prog} 1d \"breakout_bar,confluence\" \"binance_spot,bybit_spot\" default true\n\n"
            f"{EXIT_CODES_HELP}\n\n{ENVIRONMENT_HELP}\n\n{paths_help()}"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("timeframes", nargs="?", default="1d", help="comma list, e.g. 1d or 1d,3d (default 1d)")
    parser.add_argument("strategies", nargs="?", default="all", help="comma list or 'all' (default all)")
    parser.add_argument("exchanges", nargs="?", default="demo", help="comma list or 'all' (default demo)")
    parser.add_argument("users", nargs="?", default="default", help="comma list of user names (default default)")
    parser.add_argument("send_telegram", nargs="?", default="false", help="true/false (default false)")
    parser.add_argument("--min-volume-usd", default=None, help="replace the per-timeframe USD volume threshold")
    parser.add_argument("--bars", default="both", type=str.lower, help="both | closed | current (default both)")
    parser.add_argument("--channel", default=None, help="send every alert to this Telegram channel")
    parser.add_argument("--csv", default=None, help="write the hits to this CSV file")
    parser.add_argument("--json", default=None, help="write hits and summaries to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (shown only on a terminal)")
    parser.add_argument(
        "--log-level", default="WARNING", type=str.upper, choices=LOG_LEVELS, metavar="LEVEL",
        help=f"{', '.join(LOG_LEVELS)} (default WARNING)",
    )
    parser.add_argument("--store", default=None, metavar="PATH",
                        help="candle store file (default: candles.sqlite3 in the state directory)")
    parser.add_argument("--no-store", action="store_true", help="no candle store: fetch the full history")
    parser.add_argument("--charts", action="store_true", default=None, help="a chart image with each alert")
    parser.add_argument("--summary", default=None, metavar="USER", help="send a run summary to USER")
    parser.add_argument(
        "--group-assets", action=argparse.BooleanOptionalAction, default=None,
        help="one alert block per asset hit on several exchanges (default on)",
    )
    return parser


def store_option(path: str | None, no_store: bool) -> StoreOption:
    """``--store PATH`` / ``--no-store`` as the scans' ``store=``; ValueError when both are given."""
    if path is not None and no_store:
        raise ValueError("choose one of --store PATH and --no-store")
    return False if no_store else path


def check_output_path(path: str, option: str) -> Path:
    """``path`` when a file can be written there (tried now, before any scan or alert); else ValueError."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ValueError(f"{option} {path}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise ValueError(
            f"{option} {path}: directory {target.parent} does not exist; create it or choose another path"
        )
    existed = target.exists()
    try:
        with target.open("a"):
            pass
    except OSError as exc:
        reason = exc.strerror or exc
        raise ValueError(f"{option} {path}: cannot write there ({reason}); choose another path") from None
    if not existed:
        target.unlink()
    return target


def _hits_table(result: ScanResult) -> str:
    """The hits as a trader reads them: prices with significant digits, USD volume, the chart link."""
    frame = result.to_frame()
    if frame.empty:
        return "No hits."
    columns = ["strategy", "exchange", "timeframe", "symbol", "bar_time", "current_bar", "close",
               "volume_usd"]
    if frame["link"].notna().any():
        columns.append("link")
    table = frame[columns].assign(
        bar_time=frame["bar_time"].map(lambda t: t.strftime("%Y-%m-%d %H:%M")),
        current_bar=frame["current_bar"].map({True: "forming", False: "closed"}),
        close=frame["close"].map(format_price),
        volume_usd=frame["volume_usd"].map(lambda v: f"{v:,.0f}"),
    ).rename(columns={"current_bar": "bar", "volume_usd": "volume USD"})
    if "link" in table:
        table["link"] = table["link"].fillna("")
    return table.to_string(index=False)


def _failure_lines(summary: ScanSummary) -> list[str]:
    """Failed symbols grouped by reason (the exchange named once, not in every reason)."""
    by_reason: dict[str, list[str]] = {}
    for symbol, reason in summary.failed.items():
        short = reason
        exchange = summary.exchange
        for prefix in (f"{exchange} {symbol}: ", f"{exchange} {symbol} ", f"{exchange}: "):
            if short.startswith(prefix):
                short = short.removeprefix(prefix)
                break
        by_reason.setdefault(short, []).append(symbol)
    ranked = sorted(by_reason.items(), key=lambda item: -len(item[1]))
    lines = []
    for reason, symbols in ranked[:FAILED_REASONS_SHOWN]:
        if len(symbols) == 1:
            lines.append(f"    failed {summary.exchange} {symbols[0]}: {reason}")
        else:
            examples = ", ".join(symbols[:3]) + (", ..." if len(symbols) > 3 else "")
            lines.append(f"    {len(symbols)} symbols failed on {summary.exchange} ({examples}): {reason}")
    if len(ranked) > FAILED_REASONS_SHOWN:
        others = sum(len(symbols) for _, symbols in ranked[FAILED_REASONS_SHOWN:])
        lines.append(f"    ... and {others} more failed symbols on {summary.exchange} (other reasons)")
    return lines


def format_report(result: ScanResult, sending: bool = False) -> str:
    """A readable table of hits plus one summary line per exchange x timeframe, and the alert line
    whenever ``sending`` (also when nothing new was sent)."""
    lines = [_hits_table(result), "", "Summary:"]
    lines.extend(f"  {s.line()}" for s in result.summaries)
    for summary in result.summaries:
        lines.extend(_failure_lines(summary))
        for err in summary.detector_errors[:DETECTOR_ERRORS_SHOWN]:
            lines.append(f"    detector {err['strategy']} failed on {summary.exchange} {err['symbol']}: {err['reason']}")
    alerts = result.alerts
    if sending or alerts.messages or alerts.failures or alerts.pending:
        lines.append(alerts.line())
        lines.extend(f"    {f.channel} -> {f.user}: {f.reason}" for f in alerts.failures[:ALERT_FAILURES_SHOWN])
    return "\n".join(lines)


def progress_wanted(no_progress: bool) -> bool | None:
    """False with ``--no-progress`` or when stderr is not a terminal (cron logs stay clean); else None,
    which leaves ``DISABLE_PROGRESS`` the last word."""
    if no_progress or not sys.stderr.isatty():
        return False
    return None


def main(argv: Sequence[str] | None = None, prog: str = "run_parallel_scanner.py") -> int:
    """CLI entry point; returns the exit status (0 ok, 1 something failed, 2 bad arguments, 130 interrupted).

    Every argument, the config file, the hosts, the tokens (when sending) and the export paths are
    checked before anything is scanned; a problem is one line naming the fix, exit status 2.
    """
    from utils.logging import setup_logging

    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        timeframes = resolve_timeframes(args.timeframes)
        strategies = resolve_strategy_names(args.strategies)
        exchanges = resolve_exchanges(args.exchanges)
        users = resolve_users(args.users)
        send = parse_bool(args.send_telegram)
        min_volume = validate_min_volume(args.min_volume_usd)
        bars = validate_bars(args.bars)
        analysis_mode()  # SCANNER_ANALYSIS, checked before anything is scanned
        config.check_config(sending=send)
        if send:
            from scanner.notifier import validate_alert_targets

            admins = [args.summary] if args.summary else []
            validate_alert_targets(strategies, users + admins, channel=args.channel)
        csv_path = check_output_path(args.csv, "--csv") if args.csv else None
        json_path = check_output_path(args.json, "--json") if args.json else None
        store = open_store(store_option(args.store, args.no_store))  # a bad store file is named now
    except ValueError as exc:
        parser.error(str(exc))
    for option, given in (("--channel", args.channel), ("--summary", args.summary), ("--charts", args.charts)):
        if given and not send:
            print(f"warning: {option} has no effect: sending is off (send_telegram false)", file=sys.stderr)
    setup_logging(args.log_level)
    sink: list[ScanResult] = []
    try:
        result = asyncio.run(
            run_parallel_multi_timeframes_all_exchanges(
                timeframes, strategies, exchanges, users=users, send_telegram=send,
                telegram_channel=args.channel, min_volume_usd=min_volume, bars=bars,
                progress=progress_wanted(args.no_progress), sink=sink,
                store=store if store is not None else False, charts=args.charts,
                group_assets=args.group_assets, summary_user=args.summary,
            )
        )
    except KeyboardInterrupt:
        partial = ScanResult.combine(sink)
        print(format_report(partial))
        print("Interrupted: the results above are partial.", file=sys.stderr)
        return 130
    finally:
        if store is not None:
            store.close()
    print(format_report(result, sending=send))
    try:
        if csv_path:
            result.to_csv(csv_path)
        if json_path:
            result.to_json(json_path)
    except OSError as exc:
        print(f"error: could not write the export: {exc}", file=sys.stderr)
        return 1
    failed = any(s.error for s in result.summaries) or bool(result.alerts.failures) or result.alerts.pending
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
