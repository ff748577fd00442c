"""``scanner quality TIMEFRAMES STRATEGIES EXCHANGES [options]``: the signal-quality command.

Prints the table sorted by exchange, timeframe, horizon and edge; with ``--out DIR`` also writes
``quality.csv``, ``quality.json`` and the PNG charts there. Exit status: 0 done, 1 an exchange or
symbol failed (the rest is still reported), 2 bad arguments (one line naming the valid choices).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from exchanges import EXCHANGE_NAMES
from scanner.quality.core import HORIZONS, parse_since, validate_horizons
from scanner.quality.history import signal_quality
from scanner.quality.report import format_table, write_outputs
from scanner.registry import STRATEGY_NAMES
from scanner.store import StoreError
from utils.timeframes import TIMEFRAME_NAMES

PROG = "scanner quality"
SHOWN_PROBLEMS = 5  # failed or skipped symbols listed by name; the rest are counted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="What happened after each strategy fired, against every bar, over the stored history.",
        epilog=(
            f"timeframes: {', '.join(TIMEFRAME_NAMES)}\nstrategies: {', '.join(STRATEGY_NAMES)}, all\n"
            f"exchanges: {', '.join(EXCHANGE_NAMES)}, all (every real exchange)\n"
            "example: python -m scanner quality 1d all demo --horizons 1,5,10 --out quality-report"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("timeframes", help="comma list, e.g. 1d or 1d,4h")
    parser.add_argument("strategies", help="comma list or 'all'")
    parser.add_argument("exchanges", help="comma list or 'all'")
    parser.add_argument("--horizons", default=",".join(map(str, HORIZONS)),
                        help="bars after the signal, comma list (default 1,3,5,10)")
    parser.add_argument("--since", default=None, help="only signals from this UTC date on, e.g. 2024-01-01")
    parser.add_argument("--min-volume-usd", default=None,
                        help="replace the per-timeframe USD volume threshold")
    parser.add_argument("--out", default=None, help="write quality.csv, quality.json and PNG charts here")
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--store", default=None, help="candle store file (default: the state directory's)")
    store.add_argument("--no-store", action="store_true", help="fetch from the exchange, bypassing the store")
    parser.add_argument("--seed", default="0", help="seed of the bootstrap intervals (default 0)")
    return parser


def _seed(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"seed must be a non-negative whole number, got {text!r}")
    return int(text)


def _problems(label: str, items: list[dict]) -> list[str]:
    lines = [f"  {label} {i['exchange']} {i['timeframe']} {i.get('symbol') or '(all)'}: "
             f"{i.get('reason')}" for i in items[:SHOWN_PROBLEMS]]
    if len(items) > SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(items) - SHOWN_PROBLEMS} more {label}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 1 something failed, 2 bad arguments)."""
    from scanner.main import validate_min_volume
    from scanner.names import resolve_exchanges, resolve_strategy_names, resolve_timeframes

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argparse usage error (2, already printed)
        return int(exc.code or 0)
    try:
        timeframes = resolve_timeframes(args.timeframes)
        strategies = resolve_strategy_names(args.strategies)
        exchanges = resolve_exchanges(args.exchanges)
        horizons = validate_horizons(args.horizons)
        since = parse_since(args.since)
        min_volume = validate_min_volume(args.min_volume_usd)
        seed = _seed(args.seed)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    store = False if args.no_store else args.store
    try:
        table = asyncio.run(signal_quality(
            timeframes, strategies, exchanges, horizons=horizons, since=since, min_volume_usd=min_volume,
            store=store, seed=seed,
        ))
    except KeyboardInterrupt:
        print("Interrupted: nothing measured.", file=sys.stderr)
        return 130
    except StoreError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(table))
    lines = _problems("failed", table.attrs["failed"]) + _problems("skipped", table.attrs["skipped"])
    lines += [f"  detector {e['strategy']} failed on {e['exchange']} {e['timeframe']} {e['symbol']}: "
              f"{e['reason']}"
              for e in table.attrs["errors"][:SHOWN_PROBLEMS]]
    if lines:
        print("\nLeft out:")
        print("\n".join(lines))
    if args.out:
        written = write_outputs(table, args.out)
        print(f"\nWrote {len(written)} files to {args.out}: {', '.join(p.name for p in written)}")
    return 1 if table.attrs["failed"] or table.attrs["errors"] else 0
