"""Helper process for the candle store's concurrency tests (tests/test_store.py).

    python -m tests.store_writer PATH --symbols N --days D0 D1 ... [--forever]

Writes one batch per day: that day's bar for every symbol (values derived from symbol and day),
one transaction each, printing the day after each commit. ``--forever`` keeps writing day after
day from the first one given (the SIGKILL test stops it mid-write).
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np

from scanner.store import SeriesWrite, SQLiteCandleStore
from scanner.store.base import frozen

DAY_MS = 86_400_000
EXCHANGE = "writer"


def bar(symbol_index: int, day: int) -> np.ndarray:
    """The OHLCV row every writer agrees on for (symbol, day)."""
    base = 100.0 + symbol_index + day / 1000.0
    return np.array([base, base + 2.0, base - 1.0, base + 1.0, 1000.0 + day])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, nargs="+", required=True)
    parser.add_argument("--forever", action="store_true")
    args = parser.parse_args(argv)
    days = itertools.count(args.days[0]) if args.forever else args.days
    store = SQLiteCandleStore(args.path, retention={})
    try:
        for day in days:
            writes = [
                SeriesWrite(EXCHANGE, f"S{i:03d}", "1d", frozen(np.array([day * DAY_MS]), bar(i, day)[None, :]))
                for i in range(args.symbols)
            ]
            store.save(writes)
            print(day, flush=True)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
