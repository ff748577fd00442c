"""Candle store benchmarks (issue 12): a cold scan on an empty store and a warm one a simulated day later.

Run from the repository root::

    python -m bench.store                 # 1,000 symbols per market (several minutes)
    python -m bench.store --symbols 200   # smaller
    python -m bench.store --skip-size     # without the load-time and file-size part
    python -m bench.store --repeat 1      # one scan of each kind (default 3, the median printed)

For each of binance_spot, binance_futures, bybit_spot, kucoin_futures, mexc_spot: timeframes
1d,2d,3d,4d,1w, all strategies, the fake exchange in another process (budgets lifted, so the
scanner's own cost shows), each scan in a fresh process (its CPU and peak RSS are its own). The
fake exchange's clock, and the client's with it, moves one day between the cold and the warm scan;
before each timed scan the fake exchange generates its series for that clock (it shares this
machine's cores, and a remote exchange's work does not run beside the scan).
Printed per scan: klines requests per symbol, the exchange's weight, bytes received, wall time
against the lower bound that weight implies under the market's published limit, CPU seconds of
the scan (scanner plus analysis process, both started beforehand, and the scanner process alone)
and of the whole processes (interpreter start and imports too, which a cron run pays and a
long-running ``scanner serve`` does not), peak RSS, and the store file's size. Then: loading 2,000
series of 1,000 daily bars, and the size of a store holding 10 markets x 2,000 symbols x (1,000
daily + 500 4h bars), written for real. Nothing here asserts; tests/test_store_scan.py pins the
behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.scan import DAILY_SET, _children_cpu, _repo_root, environment, lower_bound, unlimited_budgets

MARKETS: tuple[str, ...] = ("binance_spot", "binance_futures", "bybit_spot", "kucoin_futures", "mexc_spot")
START_S = 1_749_562_200.0  # 2025-06-10 13:30 UTC: the fake exchange's clock at the cold scan
DAY_S = 86_400.0
LOAD_SERIES, LOAD_BARS = 2000, 1000
SIZE_SYMBOLS, SIZE_DAILY, SIZE_4H, SIZE_MARKETS = 2000, 1000, 500, 10
DAY_MS, H4_MS = 86_400_000, 14_400_000
PREPARED_INTERVALS = ("1d", "1w")  # what the scans ask for: daily bars, and weeks where pages are short


@dataclass
class ScanCost:
    market: str
    phase: str
    symbols: int
    klines: int
    weight: float
    bytes: int
    wall_s: float
    bound_s: float
    cpu_s: float  # the scan: scanner and analysis process, both started beforehand
    loop_cpu_s: float  # the scanner's own process (fetching, parsing, the store), without the analysis process
    process_cpu_s: float  # both processes from their start: interpreter, imports and the scan
    rss_mb: float
    store_mb: float


def _serve(spec_json: str) -> None:
    """Body of the server process: the fake exchange plus a line protocol on stdin
    (``counters``, ``reset``, ``now <epoch s>``, ``prepare <market>``).

    ``prepare`` generates the market's series at the current clock before a scan is timed. The
    fake exchange shares this machine's cores with the scanner; generating a series on its first
    request would run beside the scan and slow the answers, which a remote exchange does not.
    """
    from tests.fakes.exchange_server import FakeExchangeServer

    spec = json.loads(spec_json)
    server = FakeExchangeServer(symbols=spec["symbols"], markets=spec["markets"], now=spec["now"],
                                rate_limits=False)
    with server.run_in_thread():
        print(json.dumps(server.env()), flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "reset":
                server.reset_counters()
            elif command == "now":
                server.set_now(float(arg))
            elif command == "prepare":
                for symbol in server.usdt_symbols(arg):
                    for interval in PREPARED_INTERVALS:
                        server.bars(arg, symbol, interval)
            kinds = {f"{m}:{k}": n for (m, k), n in server.requests_by_kind.items()}
            print(json.dumps({"kinds": kinds, "weight": dict(server.weight_by_market),
                              "bytes": dict(server.bytes_by_market),
                              "listed": {m: len(server.usdt_symbols(m)) for m in spec["markets"]}}), flush=True)


class Server:
    """The fake exchange in a child process (see ``_serve``)."""

    def __init__(self, symbols: int, markets: tuple[str, ...], now: float) -> None:
        spec = json.dumps({"symbols": symbols, "markets": list(markets), "now": now})
        self.proc = subprocess.Popen([sys.executable, "-c", f"from bench.store import _serve; _serve({spec!r})"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=_repo_root())
        self.env = json.loads(self.proc.stdout.readline())

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _scan_child(market: str, store: str, now: float) -> None:
    """Body of one scan process: 1d..1w, all strategies, one client whose clock reads ``now``."""
    from exchanges import get_client_class
    from scanner.analysis import start_analysis_process
    from scanner.cache import KlineCache
    from scanner.main import scan_exchange
    from scanner.registry import STRATEGY_NAMES

    worker = start_analysis_process()
    if worker is not None:  # its start-up (pandas, the detectors) is done before the scan is timed
        worker.submit(exec, "import scanner.registry", {}).result()  # imports every strategy module

    async def run() -> None:
        cache = KlineCache()
        async with get_client_class(market)(timeframe="1d", clock=lambda: now) as client:
            await asyncio.gather(*(
                scan_exchange(market, tf, list(STRATEGY_NAMES), client=client, cache=cache, plan=DAILY_SET,
                              progress=False, store=store)
                for tf in DAILY_SET
            ))

    cpu0, worker0, wall0 = time.process_time(), _children_cpu(), time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - wall0
    own = time.process_time() - cpu0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": wall, "cpu_s": own + _children_cpu() - worker0, "loop_cpu_s": own,
                      "process_cpu_s": usage.ru_utime + usage.ru_stime + _children_cpu(),
                      "rss_mb": usage.ru_maxrss / 1024}))


def scan_cost(server: Server, market: str, phase: str, store: Path, now: float) -> ScanCost:
    from tests.fakes.exchange_markets import MARKET_CLASSES

    server.ask(f"now {now}")
    server.ask(f"prepare {market}")
    server.ask("reset")
    code = f"from bench.store import _scan_child; _scan_child({market!r}, {str(store)!r}, {now!r})"
    env = {**os.environ, **server.env, **unlimited_budgets([market]), "DISABLE_PROGRESS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=_repo_root(), env=env,
                         check=True)
    run = json.loads(out.stdout.strip().splitlines()[-1])
    counts = server.ask("counters")
    rule = MARKET_CLASSES[market].rule
    weight = counts["weight"].get(market, 0)
    listed = counts["listed"][market]
    return ScanCost(market, phase, listed, counts["kinds"].get(f"{market}:klines", 0), weight,
                    counts["bytes"].get(market, 0), run["wall_s"], lower_bound(weight, rule.capacity, rule.window),
                    run["cpu_s"], run["loop_cpu_s"], run["process_cpu_s"], run["rss_mb"],
                    store.stat().st_size / 2**20 if store.exists() else 0.0)


def _store_files(store: Path) -> list[Path]:
    return [Path(f"{store}{suffix}") for suffix in ("", "-wal", "-shm")]


def _median_run(runs: list[ScanCost]) -> ScanCost:
    """The run whose scan CPU is the median of ``runs`` (all its figures come from that one run)."""
    return sorted(runs, key=lambda run: run.cpu_s)[len(runs) // 2]


def cold_and_warm(symbols: int, markets: tuple[str, ...], directory: Path, repeat: int = 1) -> list[ScanCost]:
    """A cold and a warm scan per market, each ``repeat`` times: every cold one on an empty store,
    every warm one on a copy of the store a cold scan left; the median run of each is kept."""
    server = Server(symbols, markets, START_S)
    try:
        with environment(server.env):
            rows = []
            for market in markets:
                store, cold_copy = directory / f"{market}.sqlite3", directory / f"{market}-cold"
                colds, warms = [], []
                for _ in range(repeat):
                    for path in _store_files(store):
                        path.unlink(missing_ok=True)
                    colds.append(scan_cost(server, market, "cold", store, START_S))
                cold_copy.mkdir()
                for path in _store_files(store):
                    if path.exists():
                        shutil.copy(path, cold_copy / path.name)
                for _ in range(repeat):
                    for path in _store_files(store):
                        path.unlink(missing_ok=True)
                        if (cold_copy / path.name).exists():
                            shutil.copy(cold_copy / path.name, path)
                    warms.append(scan_cost(server, market, "warm", store, START_S + DAY_S))
                rows += [_median_run(colds), _median_run(warms)]
            return rows
    finally:
        server.close()


def _synthetic(n: int, step: int, seed: int):
    from scanner.store.base import frozen

    rng = np.random.default_rng(seed)
    close = 1.0 + np.cumsum(rng.random(n))
    stamps = 1_600_000_000_000 // step * step + np.arange(n, dtype=np.int64) * step
    return frozen(stamps, np.column_stack([close, close * 1.01, close * 0.99, close, rng.random(n) * 1e6]))


def load_time(directory: Path) -> float:
    """Seconds to load ``LOAD_SERIES`` series of ``LOAD_BARS`` daily bars, one after another."""
    from scanner.store import SeriesWrite, SQLiteCandleStore

    path = directory / "load.sqlite3"
    with SQLiteCandleStore(path, retention={}) as store:
        for batch in range(0, LOAD_SERIES, 250):
            store.save([SeriesWrite("bench", f"S{i}", "1d", _synthetic(LOAD_BARS, DAY_MS, i))
                        for i in range(batch, batch + 250)])
    with SQLiteCandleStore(path) as store:
        started = time.perf_counter()
        bars = sum(len(store.load("bench", f"S{i}", "1d")) for i in range(LOAD_SERIES))
        elapsed = time.perf_counter() - started
    assert bars == LOAD_SERIES * LOAD_BARS
    return elapsed


def store_size(directory: Path, markets: int = SIZE_MARKETS) -> float:
    """MB of ``markets`` markets' ``SIZE_SYMBOLS`` x (``SIZE_DAILY`` daily + ``SIZE_4H`` 4h bars) in one
    store file, vacuumed: written for real, market by market, not one market times ten."""
    from scanner.store import SeriesWrite, SQLiteCandleStore

    path = directory / "size.sqlite3"
    with SQLiteCandleStore(path, retention={}) as store:
        for market in range(markets):
            for batch in range(0, SIZE_SYMBOLS, 250):
                store.save([w for i in range(batch, batch + 250) for w in (
                    SeriesWrite(f"market{market}", f"S{i}", "1d", _synthetic(SIZE_DAILY, DAY_MS, i)),
                    SeriesWrite(f"market{market}", f"S{i}", "4h", _synthetic(SIZE_4H, H4_MS, i)))])
        store.vacuum()
        return store.size_bytes() / 2**20


def print_costs(rows: list[ScanCost], repeat: int) -> None:
    print("\n[store] cold scan (empty store) and warm scan a day later; 1d,2d,3d,4d,1w, all strategies;"
          f" the median of {repeat} runs by scan CPU")
    print("  cpu s: the scan in both processes, started beforehand; own cpu: the scanner process's share;"
          " proc cpu: both processes from their start (interpreter and imports too)")
    print(f"  {'market':<16}{'scan':<6}{'symbols':>8}{'req/sym':>9}{'weight':>9}{'MB recv':>9}{'wall s':>8}"
          f"{'bound s':>9}{'cpu s':>8}{'own cpu':>8}{'proc cpu':>9}{'RSS MB':>8}{'store MB':>9}")
    for r in rows:
        print(f"  {r.market:<16}{r.phase:<6}{r.symbols:>8}{r.klines / r.symbols:>9.2f}{r.weight:>9.0f}"
              f"{r.bytes / 2**20:>9.2f}{r.wall_s:>8.2f}{r.bound_s:>9.0f}{r.cpu_s:>8.2f}{r.loop_cpu_s:>8.2f}"
              f"{r.process_cpu_s:>9.2f}{r.rss_mb:>8.0f}{r.store_mb:>9.1f}")
    by = {(r.market, r.phase): r for r in rows}
    for market in dict.fromkeys(r.market for r in rows):
        cold, warm = by[(market, "cold")], by[(market, "warm")]
        print(f"  {market:<16} warm/cold: weight {warm.weight / cold.weight:.2f}, bytes {warm.bytes / cold.bytes:.2f}, "
              f"CPU {warm.cpu_s / cold.cpu_s:.2f} (scanner process alone {warm.loop_cpu_s / cold.loop_cpu_s:.2f}; "
              f"whole processes {warm.process_cpu_s / cold.process_cpu_s:.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--markets", nargs="*", default=list(MARKETS), choices=MARKETS)
    parser.add_argument("--repeat", type=int, default=3,
                        help="scans of each kind per market; the median run is printed (default 3)")
    parser.add_argument("--skip-size", action="store_true", help="skip the load-time and file-size part")
    parser.add_argument("--size-markets", type=int, default=SIZE_MARKETS,
                        help=f"markets written for the file size (default {SIZE_MARKETS}, about 3 minutes)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        repeat = max(args.repeat, 1)
        print_costs(cold_and_warm(args.symbols, tuple(args.markets), Path(tmp), repeat), repeat)
        if not args.skip_size:
            print(f"\n[load] {LOAD_SERIES} series x {LOAD_BARS} daily bars from the store: {load_time(Path(tmp)):.2f}s")
            mb = store_size(Path(tmp), args.size_markets)
            print(f"[size] {args.size_markets} markets x {SIZE_SYMBOLS} symbols x ({SIZE_DAILY} daily + {SIZE_4H} 4h "
                  f"bars) in one store: {mb:.0f} MB ({mb / 1024:.2f} GB)")
    print(f"\nall: {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
