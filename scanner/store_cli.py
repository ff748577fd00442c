"""``scanner store ...``: look after the candle store (``python -m scanner.store_cli`` works too).

    scanner store info                      series, bars, size, oldest/newest bar per exchange
    scanner store prune [--keep N] [--older-than DAYS]
    scanner store vacuum                    give deleted space back to the file system
    scanner store export --format parquet DIR   one file per exchange x interval (needs pyarrow)

``--store PATH`` picks the file (default: ``SCANNER_STORE``, ``[store] path``, or
``candles.sqlite3`` beside the alert ledger). Bad input exits 2 with one line naming the choices.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from scanner.store import SQLiteCandleStore, StoreError, default_store_path
from scanner.store.base import SeriesInfo
from utils.timeframes import NATIVE_INTERVALS, OHLCV_COLUMNS

EXPORT_FORMATS = ("parquet",)
DAY_S = 86_400


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: ``--store`` may come before or after the command without one hiding the other.
    common.add_argument("--store", default=argparse.SUPPRESS, metavar="PATH", help="the store file (default: see --help)")
    parser = argparse.ArgumentParser(prog="scanner store", description=__doc__.splitlines()[0], parents=[common],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="{info,prune,vacuum,export}")
    commands.required = True
    commands.add_parser("info", parents=[common], help="series, bars, size, oldest/newest bar per exchange")
    prune = commands.add_parser("prune", parents=[common], help="trim every series to its retention")
    prune.add_argument("--keep", type=int, default=None, help="bars to keep per series (default: the retention)")
    prune.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                       help="also drop series whose newest bar is older than DAYS days")
    commands.add_parser("vacuum", parents=[common], help="give deleted space back to the file system")
    export = commands.add_parser("export", parents=[common], help="write the history for pandas/DuckDB/polars")
    export.add_argument("--format", default="parquet", help=f"one of: {', '.join(EXPORT_FORMATS)}")
    export.add_argument("directory", help="output directory (one file per exchange x interval)")
    return parser


def _when(ms: int | None) -> str:
    return "-" if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


def format_info(series: list[SeriesInfo], path: Path, size: int) -> str:
    """One line per exchange x interval: series, bars, oldest and newest bar; then the file size."""
    groups: dict[tuple[str, str], list[SeriesInfo]] = defaultdict(list)
    for item in series:
        groups[(item.exchange, item.interval)].append(item)
    head = f"candle store {path}: {len(series)} series, {sum(s.bars for s in series):,} bars, {size / 2**20:.1f} MB on disk"
    lines = [head]
    if groups:
        lines.append(f"  {'exchange':<16}{'interval':<9}{'series':>8}{'bars':>12}  {'oldest bar':<17}  newest bar")
    for (exchange, interval), items in sorted(groups.items()):
        firsts = [s.first_ms for s in items if s.first_ms is not None]
        lasts = [s.last_ms for s in items if s.last_ms is not None]
        lines.append(f"  {exchange:<16}{interval:<9}{len(items):>8}{sum(s.bars for s in items):>12,}  "
                     f"{_when(min(firsts) if firsts else None):<17}  {_when(max(lasts) if lasts else None)}")
    return "\n".join(lines)


def export_parquet(store: SQLiteCandleStore, directory: Path) -> list[Path]:
    """One Parquet file per exchange x interval: symbol, timestamp (UTC ms), open..volume."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in store.series():
        groups[(item.exchange, item.interval)].append(item.symbol)
    written = []
    for (exchange, interval), symbols in sorted(groups.items()):
        parts = [(symbol, store.load(exchange, symbol, interval)) for symbol in symbols]
        stamps = np.concatenate([c.stamps for _, c in parts])
        values = np.concatenate([c.values for _, c in parts])
        columns = {
            "symbol": pa.array(np.repeat([s for s, _ in parts], [len(c) for _, c in parts])).dictionary_encode(),
            "timestamp": pa.array(stamps.astype("datetime64[ms]"), type=pa.timestamp("ms", tz="UTC")),
            **{name: pa.array(values[:, i]) for i, name in enumerate(OHLCV_COLUMNS)},
        }
        target = directory / f"{exchange}_{interval}.parquet"
        pq.write_table(pa.table(columns), target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """Run one store command; 0 done, 2 bad input or an unusable store."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "export" and args.format not in EXPORT_FORMATS:
        parser.error(f"unknown export format {args.format!r}; valid formats: {', '.join(EXPORT_FORMATS)}")
    if args.command == "prune" and args.keep is not None and args.keep <= 0:
        parser.error("--keep must be a positive number of bars")
    if args.command == "export":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            print("store export needs pyarrow: pip install pyarrow", file=sys.stderr)
            return 2
    chosen = getattr(args, "store", None)
    path = Path(chosen).expanduser() if chosen else default_store_path()
    if path is None:
        print("the candle store is off (SCANNER_STORE=off); pass --store PATH", file=sys.stderr)
        return 2
    if not path.exists():
        print(f"no candle store at {path} yet (a scan creates it)")
        return 0
    try:
        store = SQLiteCandleStore(path)
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        if args.command == "info":
            print(format_info(store.series(), path, store.size_bytes()))
        elif args.command == "prune":
            older = None if args.older_than is None else int((time.time() - args.older_than * DAY_S) * 1000)
            keep = args.keep if args.keep is not None else None
            deleted = store.prune(keep, older_than_ms=older)
            kept = args.keep or ", ".join(f"{i}: {store.retention[i]}" for i in NATIVE_INTERVALS)
            print(f"pruned {deleted:,} bars from {path} (kept per series: {kept}); `store vacuum` frees the space")
        elif args.command == "vacuum":
            before = store.size_bytes()
            store.vacuum()
            print(f"vacuumed {path}: {before / 2**20:.1f} MB -> {store.size_bytes() / 2**20:.1f} MB")
        else:
            files = export_parquet(store, Path(args.directory))
            print(f"exported {len(files)} files to {args.directory}")
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
