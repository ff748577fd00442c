"""The analysis worker's cost per symbol-timeframe (issue 12: a warm scan's CPU is mostly this).

Run from the repository root::

    python -m bench.analysis                      # 500 symbols, 1d,2d,3d,4d,1w, all strategies
    python -m bench.analysis --profile 25         # and the 25 costliest functions (cProfile)
    python -m bench.analysis --save out.pkl       # the outcomes, to compare two versions bit for bit
    python -m bench.analysis --compare out.pkl    # ... against a saved run (exit 1 when they differ)

The daily candles of the fake exchange's binance_spot symbols (no server: the series are drawn
directly) are packed and run through ``BatchJob.run`` in this process, batch by batch as a scan hands
them to the analysis process, so what is timed is exactly the worker's share of a scan: deriving the
timeframe, cleaning, the volume filter, the detectors and building hits. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import cProfile
import pickle
import pstats
import sys
import time

import numpy as np

from scanner.analysis import BatchJob, BatchOutcome, batch_size, pack
from scanner.cache import Source
from scanner.registry import STRATEGY_NAMES, get_strategy
from utils.candles import Candles
from utils.config import volume_threshold
from utils.timeframes import daily_bars_needed, get_timeframe

TIMEFRAMES = ("1d", "2d", "3d", "4d", "1w")
MARKET = "binance_spot"
NOW_S = 1_749_562_200.0  # 2025-06-10 13:30 UTC, as bench.store's cold scan


def daily_candles(symbols: int) -> list[tuple[str, Candles]]:
    """The fake exchange's daily candles of ``symbols`` USDT markets, as a client parses them."""
    from tests.fakes.exchange_server import FakeExchangeServer

    server = FakeExchangeServer(symbols=symbols, markets=[MARKET], now=NOW_S, rate_limits=False)
    out = []
    for symbol in server.usdt_symbols(MARKET):
        info = server.symbol_info(MARKET, symbol)
        bars = server.bars(MARKET, symbol, "1d")
        prices = [np.asarray(getattr(bars, k), dtype=np.float64) * info.tick for k in ("open", "high", "low", "close")]
        volume = np.asarray(bars.volume, dtype=np.float64) * info.multiplier
        out.append((symbol, Candles(np.asarray(bars.open_ms, dtype=np.int64), np.column_stack([*prices, volume]))))
    return out


def jobs() -> list[BatchJob]:
    """One job per timeframe, every timeframe from daily bars (a store-backed scan)."""
    strategies = tuple(get_strategy(name) for name in STRATEGY_NAMES)
    out = []
    for name in TIMEFRAMES:
        tf = get_timeframe(name)
        source = Source("1d", daily_bars_needed(tf), aggregate=tf.aggregated)
        out.append(BatchJob(source, strategies, MARKET, name, "both", volume_threshold(name, None)))
    return out


def run_all(candles: list[tuple[str, Candles]], work: list[BatchJob]) -> list[BatchOutcome]:
    """Every batch of every timeframe, packed as ``Analyser.analyse`` packs them."""
    outcomes = []
    for job in work:
        size = batch_size(job.source.depth)
        for start in range(0, len(candles), size):
            outcomes.append(job.run(pack(candles[start:start + size], job.source.depth)))
    return outcomes


def fingerprint(outcomes: list[BatchOutcome]) -> str:
    """Everything an outcome carries (hits with their metrics, skips, filtered) as one exact text
    (``repr`` of floats round-trips; NaN compares equal as text). Hits are sorted: their order
    within a batch means nothing (the scan sorts them)."""
    return repr([
        (sorted(repr((h.strategy, h.timeframe, h.symbol, h.bar_time, h.current_bar, h.close, h.volume_usd,
                      sorted(h.metrics.items()))) for h in o.hits),
         o.errors, sorted(o.skipped.items()), o.filtered_out)
        for o in outcomes
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is printed")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    parser.add_argument("--save", help="pickle the outcomes' fingerprint to this file")
    parser.add_argument("--compare", help="compare the outcomes with a saved fingerprint")
    args = parser.parse_args(argv)
    candles = daily_candles(args.symbols)
    work = jobs()
    outcomes = run_all(candles, work)  # warm-up: imports, caches
    best = min(_timed(candles, work) for _ in range(max(args.repeat, 1)))
    cells = len(candles) * len(work)
    hits = sum(len(o.hits) for o in outcomes)
    print(f"[analysis] {len(candles)} symbols x {len(work)} timeframes, all strategies: {best:.3f} s CPU, "
          f"{best / cells * 1000:.3f} ms per symbol-timeframe ({hits} hits)")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run_all, candles, work)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(args.profile)
    if args.save:
        with open(args.save, "wb") as fh:
            pickle.dump(fingerprint(outcomes), fh)
    if args.compare:
        with open(args.compare, "rb") as fh:
            same = pickle.load(fh) == fingerprint(outcomes)
        print(f"[analysis] outcomes {'identical to' if same else 'DIFFER from'} {args.compare}")
        return 0 if same else 1
    return 0


def _timed(candles: list[tuple[str, Candles]], work: list[BatchJob]) -> float:
    started = time.process_time()
    run_all(candles, work)
    return time.process_time() - started


if __name__ == "__main__":
    raise SystemExit(main())
