"""Full-market scan benchmarks on the fake exchanges (issue 5): requests, pacing, scale, CPU, memory.

Run from the repository root (see bench/README.md for what each number means)::

    python -m bench.scan            # every scenario, full size (a few minutes)
    python -m bench.scan --quick    # every scenario, small sizes (well under a minute)
    python -m bench.scan pacing     # one scenario: requests | pacing | learning | scale | cpu | memory

Scenarios:

- ``requests``: klines requests per symbol of a 1d,2d,3d,4d,1w scan (and with 4h) on every market;
- ``pacing``: a scan against Binance's weight limit and Bybit's request-count limit, scaled down
  so they bind, with 50 ms latency: wall time over the lower bound the limit implies, 429s, bans;
- ``learning``: the exchange's limit is lower than the client's table and nobody tells the
  client (issue 13): published in the listing (Binance 600/min, real minute windows), not
  published (scaled windows, learned from 429s), and dropping in the middle of a scan;
- ``scale``: wall time, requests and CPU of a 6-timeframe scan as the symbol count grows;
- ``cpu``: CPU seconds of aggregation plus every detector for one 6-timeframe pass, and the worst
  event-loop lag seen by a 10 ms probe during the scan;
- ``memory``: peak RSS of a 5-exchange x N-symbol x 6-timeframe scan in a fresh process, the fake
  exchange serving from another process.

Nothing here asserts a time: tests/test_bench_smoke.py runs the functions small to prove they work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psutil

from exchanges import get_client_class
from exchanges.rate_limit import configure_budget, get_budget, reset_budgets
from scanner.analysis import BatchJob, batch_size, pack, start_analysis_process
from scanner.cache import KlineCache, source_of
from scanner.main import scan_exchange
from scanner import runtime
from scanner.registry import STRATEGY_NAMES, get_strategy

ALL_MARKETS: tuple[str, ...] = (
    "binance_spot", "binance_futures", "bybit_spot", "bybit_futures", "gateio_spot",
    "gateio_futures", "kucoin_spot", "kucoin_futures", "mexc_spot", "mexc_futures",
)
MEMORY_MARKETS: tuple[str, ...] = ALL_MARKETS[:5]
DAILY_SET: tuple[str, ...] = ("1d", "2d", "3d", "4d", "1w")
SIX_TIMEFRAMES: tuple[str, ...] = ("1w", "4d", "3d", "2d", "1d", "4h")
ORIGINAL_REQUESTS_PER_SYMBOL = 5  # the seed fetched every timeframe of DAILY_SET natively
LATENCY_S = 0.05
PROBE_INTERVAL_S = 0.01
RSS_SAMPLE_S = 0.05
UNLIMITED = "1000000000/1/1"  # SCANNER_<KEY>_RATE_LIMIT value that never binds
SERVER_START_TIMEOUT_S = 60.0
OVER_LIMIT_SAMPLE_S = 0.001

# (market, exchange capacity per window, window seconds, symbols) of the pacing runs; the scaled
# limits bind within a few windows (the published ones: 6000 weight/60 s, 600 requests/5 s).
PACING_FULL: tuple[tuple[str, float, float, int], ...] = (
    ("binance_spot", 300.0, 2.0, 1000),
    ("bybit_spot", 150.0, 2.0, 1000),
)
PACING_QUICK: tuple[tuple[str, float, float, int], ...] = (
    ("binance_spot", 200.0, 1.0, 300),
    ("bybit_spot", 100.0, 1.0, 300),
)
SIZES = {
    "full": {"requests": 200, "scale": (100, 500, 1000, 2000, 5000), "cpu": 2000, "memory": 2000},
    "quick": {"requests": 30, "scale": (50, 150), "cpu": 150, "memory": 100},
}


# ---------------------------------------------------------------------------------- helpers


def budget_keys(markets: Sequence[str]) -> list[str]:
    """The rate-budget keys the clients of ``markets`` draw from."""
    keys = []
    for market in markets:
        cls = get_client_class(market)
        keys.append(cls.budget_key or cls.name)
    return list(dict.fromkeys(keys))


def limit_env(key: str) -> str:
    return f"SCANNER_{key.upper()}_RATE_LIMIT"


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (and start with fresh budgets) for the duration of a run."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    reset_budgets()
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        reset_budgets()


def unlimited_budgets(markets: Sequence[str]) -> dict[str, str]:
    """Env overrides lifting the client budgets (runs that measure everything but pacing)."""
    return {limit_env(key): UNLIMITED for key in budget_keys(markets)}


class LoopLagProbe:
    """A task sleeping ``interval`` in a loop, recording its worst overshoot (event-loop blocking)."""

    def __init__(self, interval: float = PROBE_INTERVAL_S) -> None:
        self.interval = interval
        self.worst = 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.worst = max(self.worst, time.perf_counter() - start - self.interval)

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server_process(symbols: int, markets: Sequence[str], latency_ms: float = 0.0) -> Iterator[dict[str, str]]:
    """The fake exchange served by another process (its CLI), without rate limits; yields its env."""
    cmd = [sys.executable, "-m", "tests.fakes.exchange_server", "--port", str(_free_port()),
           "--symbols", str(symbols), "--latency-ms", str(latency_ms), "--no-rate-limits", "--markets", *markets]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=_repo_root())
    env: dict[str, str] = {}
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        assert proc.stdout is not None
        while len(env) < len(markets):
            line = proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"fake exchange server did not start: {' '.join(cmd)}")
            key, _, value = line.strip().partition("=")
            env[key] = value
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class RemoteServer:
    """The fake exchange in a child process that also reports its counters (pacing, request counts).

    Serving from another process keeps the server's CPU (candle generation, JSON) off the scanner's
    interpreter, so the client is measured alone. Line protocol on stdin: ``counters``, ``reset``.
    """

    def __init__(self, proc: subprocess.Popen, env: dict[str, str]) -> None:
        self.proc = proc
        self.env = env

    def _ask(self, command: str) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def counters(self) -> dict:
        """``kinds`` {market: {kind: n}}, ``rate_limited`` and ``bans`` {market: n}, ``listed``."""
        return self._ask("counters")

    def reset(self) -> None:
        self._ask("reset")

    def lower_limit(self, market: str, capacity: float) -> dict:
        """The exchange lowers ``market``'s limit now (its windows start afresh), telling nobody;
        returns the counters at that moment."""
        return self._ask(f"limit {market} {capacity:g}")


@contextlib.contextmanager
def remote_server(symbols: int, markets: Sequence[str], latency: float = 0.0,
                  limits: Sequence[tuple[str, float, float]] = (),
                  bans: bool = True) -> Iterator[RemoteServer]:
    """A ``RemoteServer`` with rate limits on only for the markets in ``limits`` (capacity, window);
    ``bans=False`` turns off the fake's ban escalation (any refused request while limited -> 418)."""
    spec = {"symbols": symbols, "markets": list(markets), "latency": latency,
            "limits": [list(x) for x in limits], "bans": bans}
    code = f"from bench.scan import _serve_child; _serve_child({json.dumps(spec)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=_repo_root())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("fake exchange server process did not start")
        yield RemoteServer(proc, json.loads(line))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _serve_child(spec_json: str) -> None:
    """Body of ``remote_server``'s process."""
    from tests.fakes.exchange_server import FakeExchangeServer

    spec = json.loads(spec_json)
    server = FakeExchangeServer(symbols=spec["symbols"], markets=spec["markets"], latency=spec["latency"])
    limited = {m for m, *_ in spec["limits"]}
    bans = spec.get("bans", True)
    for market in spec["markets"]:
        if market not in limited:
            server.set_rate_limit(market, enabled=False)
    for market, capacity, window in spec["limits"]:
        no_bans = {} if bans else {"ban_seconds": None}
        server.set_rate_limit(market, capacity=capacity, window=window, **no_bans)
    over_limit_times = _watch_over_limit(server)
    with server.run_in_thread():
        print(json.dumps(server.env()), flush=True)
        for command in sys.stdin:
            words = command.split()
            if words == ["reset"]:
                server.reset_counters()
                over_limit_times.clear()
            elif words[:1] == ["limit"]:  # limit <market> <capacity>: the exchange lowers it now
                server.set_rate_limit(words[1], capacity=float(words[2]))
            kinds: dict[str, dict[str, int]] = {}
            for (market, kind), n in server.requests_by_kind.items():
                kinds.setdefault(market, {})[kind] = n
            print(json.dumps({"kinds": kinds, "rate_limited": dict(server.rate_limited), "bans": dict(server.bans),
                              "listed": {m: len(server.usdt_symbols(m)) for m in spec["markets"]},
                              "over_limit_at": list(over_limit_times)}), flush=True)


def _watch_over_limit(server) -> list[float]:  # type: ignore[no-untyped-def]
    """Epoch times of the server's over-limit answers (429s and bans), sampled every millisecond
    by a thread of the server's process (the server counts them, but does not say when)."""
    times: list[float] = []

    def watch() -> None:
        seen = 0
        while True:
            total = sum(server.rate_limited.values())
            if total < seen:  # counters were reset
                seen = 0
            times.extend([time.time()] * (total - seen))
            seen = total
            time.sleep(OVER_LIMIT_SAMPLE_S)

    threading.Thread(target=watch, name="over-limit-watch", daemon=True).start()
    return times


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def scan_timeframes(
    market: str, timeframes: Sequence[str], strategies: Sequence[str] = STRATEGY_NAMES,
    cache: KlineCache | None = None,
) -> tuple[int, list]:
    """One exchange x several timeframes over one client, as the parallel runner does.

    Returns the client's request count and the per-timeframe results. The candles stay in
    ``cache`` (the runner drops them; the CPU scenario reads them back).
    """
    cache = cache if cache is not None else KlineCache()
    client = get_client_class(market)(timeframe=timeframes[0])
    try:
        results = await asyncio.gather(*(
            scan_exchange(market, tf, list(strategies), client=client, cache=cache, plan=timeframes, progress=False)
            for tf in timeframes
        ))
    finally:
        await client.close()
    return client.request_count, results


# ---------------------------------------------------------------------------------- scenarios


def requests_per_symbol(symbols: int, markets: Sequence[str] = ALL_MARKETS) -> dict[str, dict[str, float]]:
    """Klines requests per symbol of a 1d..1w scan and of the same scan with 4h, per market."""
    out: dict[str, dict[str, float]] = {}
    with remote_server(symbols, markets) as server, environment({**server.env, **unlimited_budgets(markets)}):
        for market in markets:
            row: dict[str, float] = {}
            for label, tfs in (("daily_set", DAILY_SET), ("with_4h", (*DAILY_SET, "4h"))):
                server.reset()
                asyncio.run(scan_timeframes(market, tfs, strategies=["test_bar"]))
                counts = server.counters()
                kinds = counts["kinds"].get(market, {})
                row[label] = kinds.get("klines", 0) / counts["listed"][market]
                row[f"{label}_listing_calls"] = kinds.get("listing", 0)
            out[market] = row
    return out


@dataclass
class PacingResult:
    market: str
    capacity: float
    window: float
    margin: float
    symbols: int
    requests: int
    weight: float
    wall_s: float
    bound_s: float
    bound_at_margin_s: float
    rate_limited: int
    bans: int
    failed: int
    loop_lag_ms: float = 0.0
    timeframes: tuple[str, ...] = ("1d",)

    @property
    def ratio(self) -> float:
        return self.wall_s / self.bound_s if self.bound_s > 0 else math.inf


def lower_bound(weight: float, capacity: float, window: float) -> float:
    """Earliest finish of ``weight`` under ``capacity`` per ``window`` (fixed at any phase, or sliding):
    the last request cannot be admitted before ``(ceil(weight / capacity) - 1) * window`` after the
    first window opens."""
    return max(math.ceil(weight / capacity - 1e-9) - 1, 0) * window


def pacing(market: str, capacity: float, window: float, symbols: int, margin: float = 1.0,
           latency: float = LATENCY_S, timeframes: Sequence[str] = ("1d",),
           strategies: Sequence[str] = ("test_bar",)) -> PacingResult:
    """Scan ``market`` while the fake exchange enforces ``capacity`` per ``window`` seconds.

    The default scans 1d only: it makes the same klines requests as 1d..1w (one per symbol) with a
    fifth of the client CPU, so the limit, not the scanner's CPU, sets the pace. The client is told
    the same limit through ``SCANNER_<KEY>_RATE_LIMIT`` with ``margin`` (1.0: use
    all of it, the hardest case for "zero 429s"; production keeps SAFETY_MARGIN).
    """
    from tests.fakes.exchange_markets import MARKET_CLASSES

    key = budget_keys([market])[0]
    with remote_server(symbols, [market], latency, [(market, capacity, window)]) as server, \
            environment({**server.env, limit_env(key): f"{capacity:g}/{window:g}/{margin:g}"}):
        async def run() -> tuple[list, float]:
            async with LoopLagProbe() as probe:
                _, done = await scan_timeframes(market, timeframes, strategies=list(strategies))
            return done, probe.worst

        started = time.perf_counter()
        results, lag = asyncio.run(run())
        wall = time.perf_counter() - started
        counts = server.counters()
    proto = MARKET_CLASSES[market]()
    kinds = counts["kinds"].get(market, {})
    weight = sum(n * proto.weight(kind, {}) for kind, n in kinds.items())
    failed = sum(len(r.summaries[0].failed) + bool(r.summaries[0].error) for r in results)
    return PacingResult(
        market, capacity, window, margin, counts["listed"][market], sum(kinds.values()), weight, wall,
        lower_bound(weight, capacity, window), lower_bound(weight, capacity * margin, window),
        counts["rate_limited"].get(market, 0), counts["bans"].get(market, 0), failed, 1000 * lag,
        tuple(timeframes),
    )


@dataclass(frozen=True)
class LearningCase:
    """The exchange enforces ``capacity`` per ``window`` (dropping to ``drop_to`` ``drop_after`` s into
    the scan, if set). The client starts from its built-in table, or from ``table`` (``"<limit>/<seconds>"``,
    a table scaled to the window): a guess nobody confirmed, as the table is; with ``told``, the limit
    the user set (``SCANNER_<KEY>_RATE_LIMIT``), right until the exchange lowers it."""

    name: str
    market: str
    capacity: float
    window: float
    symbols: int
    table: str | None = None
    told: bool = False
    drop_after: float | None = None
    drop_to: float | None = None
    bans: bool = True
    timeframes: tuple[str, ...] = DAILY_SET


@dataclass
class LearningResult:
    case: LearningCase
    listed: int
    klines: int
    weight: float
    wall_s: float
    bound_s: float
    over_limit: int
    over_limit_after_first_window: int
    bans: int
    failed: int
    believed: float  # the limit the client's budget believes at the end

    @property
    def ratio(self) -> float:
        return self.wall_s / self.bound_s if self.bound_s > 0 else math.inf


# The scenario at real size: a 1d..1w scan of Binance spot at a tenth of its published
# 6,000/min, client not told. Then scaled windows with 1d scans (as in ``pacing``: the limit, not
# the scanner's CPU, sets the pace), where the listing's per-minute figure does not describe the
# window, so the client learns from 429s alone: the limit lowered from the start, and a limit that
# drops mid-scan (told: the client was right until then). Those two run with the fake's ban
# escalation off (it bans any request refused while limited, so every request in flight at the
# first 429; real Binance bans repeat offenders). Last, an exchange that states no limit (MEXC: no
# published limits, no usage headers), where the documented table is trusted until a 429: right,
# and five times too high.
LEARNING_FULL: tuple[LearningCase, ...] = (
    LearningCase("published", "binance_spot", 600.0, 60.0, 300),
    LearningCase("not published", "binance_spot", 300.0, 2.0, 1000, table="3000/2", bans=False,
                 timeframes=("1d",)),
    LearningCase("drops mid-scan", "binance_spot", 3000.0, 2.0, 1000, table="3000/2", drop_after=1.0,
                 drop_to=300.0, told=True, bans=False, timeframes=("1d",)),
    LearningCase("right, unstated", "mexc_spot", 500.0, 10.0, 1000, timeframes=("1d",)),
    LearningCase("wrong, unstated", "mexc_spot", 100.0, 10.0, 300, bans=False, timeframes=("1d",)),
)
LEARNING_QUICK: tuple[LearningCase, ...] = (
    LearningCase("not published", "binance_spot", 100.0, 1.0, 300, table="1000/1", bans=False,
                 timeframes=("1d",)),
    LearningCase("drops mid-scan", "binance_spot", 1000.0, 1.0, 300, table="1000/1", drop_after=0.3,
                 drop_to=100.0, told=True, bans=False, timeframes=("1d",)),
    LearningCase("right, unstated", "mexc_spot", 500.0, 10.0, 300, timeframes=("1d",)),
)


def learning(case: LearningCase, latency: float = LATENCY_S) -> LearningResult:
    """A scan of ``case.timeframes`` while the exchange's limit is below what the client believes (issue 13).

    The bound is the lower bound of ``pacing`` for the weight spent; for a drop, the time of the
    drop plus the bound of the weight the exchange counted after it at the new limit. Over-limit
    answers are counted after the first one's window too: learning allows one window of them.
    """
    from tests.fakes.exchange_markets import MARKET_CLASSES

    cls = get_client_class(case.market)
    key = cls.budget_key or cls.name
    proto = MARKET_CLASSES[case.market]()
    limits = [(case.market, case.capacity, case.window)]
    with remote_server(case.symbols, [case.market], latency, limits, bans=case.bans) as server:
        with environment(server.env):
            if case.table:
                limit, period = (float(x) for x in case.table.split("/"))
                configure_budget(key, limit, period, confirmed=case.told)
            dropped: list[dict] = []

            async def lower() -> None:
                await asyncio.sleep(case.drop_after or 0.0)
                dropped.append(await asyncio.to_thread(server.lower_limit, case.market, case.drop_to or 0.0))

            async def run() -> list:
                dropper = asyncio.create_task(lower()) if case.drop_after is not None else None
                try:
                    return (await scan_timeframes(case.market, case.timeframes, strategies=["test_bar"]))[1]
                finally:
                    if dropper is not None:
                        dropper.cancel()

            started = time.perf_counter()
            results = asyncio.run(run())
            wall = time.perf_counter() - started
            believed = get_budget(key, cls.budget_limit, cls.budget_period).limit
        counts = server.counters()

    def weight_of(kinds: dict[str, int]) -> float:
        return sum(n * proto.weight(kind, {}) for kind, n in kinds.items())

    kinds = counts["kinds"].get(case.market, {})
    weight = weight_of(kinds)
    if dropped:
        after = weight - weight_of(dropped[0]["kinds"].get(case.market, {}))
        bound = case.drop_after + lower_bound(after, case.drop_to, case.window)
    else:
        bound = lower_bound(weight, case.capacity, case.window)
    times = sorted(counts["over_limit_at"])
    late = sum(t > times[0] + case.window for t in times) if times else 0
    failed = sum(len(r.summaries[0].failed) + bool(r.summaries[0].error) for r in results)
    return LearningResult(case, counts["listed"][case.market], kinds.get("klines", 0), weight, wall, bound,
                          len(times), late, counts["bans"].get(case.market, 0), failed, believed)


@dataclass
class ScanRun:
    symbols: int
    markets: int
    requests: int
    wall_s: float
    cpu_s: float
    loop_lag_ms: float
    detector_cpu_s: float = 0.0
    worker_cpu_s: float = 0.0  # the analysis process's share of cpu_s

    @property
    def per_symbol_ms(self) -> float:
        return 1000 * self.wall_s / (self.symbols * self.markets)


async def detector_cpu(market: str, timeframes: Sequence[str] = SIX_TIMEFRAMES) -> tuple[int, float]:
    """CPU seconds to aggregate and run every detector over one pass of ``timeframes`` on ``market``.

    The native candles are fetched into a candle cache first, untimed. The timed part is what a
    scan does with them, in one thread: each timeframe's batches (``batch_size``) packed, then
    sliced, aggregated, cleaned and analysed by the worker function the analysis process runs,
    with no volume filter (an upper bound of a real pass). Returns (symbols, CPU seconds).
    """
    strategies = [get_strategy(name) for name in STRATEGY_NAMES]
    cache = KlineCache()
    async with get_client_class(market)() as client:
        symbols = await client.get_all_spot_symbols()
        await asyncio.gather(*(cache.get(client, s, tf, plan=timeframes) for s in symbols for tf in ("1d", "4h")))
        start = time.process_time()
        for tf in timeframes:
            job = BatchJob(source_of(client, tf), tuple(strategies), market, tf, "both", 0.0)
            natives = [(s, (await cache.native(client, s, tf, plan=timeframes))[0]) for s in symbols]
            chunk = batch_size(job.source.depth)
            for i in range(0, len(natives), chunk):
                job.run(pack(natives[i : i + chunk], job.source.depth))
        return len(symbols), time.process_time() - start


def scanner_children() -> list[psutil.Process]:
    """The scanner's own helper processes (the analysis process, scanner.runtime), not the fake
    exchange server."""
    own = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any(runtime.WORKER_CODE in part for part in child.cmdline()):
                own.append(child)
        except psutil.Error:
            continue
    return own


def _children_cpu() -> float:
    total = 0.0
    for child in scanner_children():
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def measured_scan(symbols: int, markets: Sequence[str], timeframes: Sequence[str] = SIX_TIMEFRAMES,
                  with_detector_cpu: bool = False) -> ScanRun:
    """A multi-timeframe scan of ``markets`` (server in another process, budgets lifted): wall
    time, requests, CPU (this process plus the analysis process) and the worst event-loop lag."""
    start_analysis_process()  # started before timing, as the first scan of a process would anyway
    with server_process(symbols, markets) as env, environment({**env, **unlimited_budgets(markets)}):
        async def run() -> tuple[int, float]:
            async with LoopLagProbe() as probe:
                counts = await asyncio.gather(*(scan_timeframes(m, timeframes) for m in markets))
            return sum(c for c, _ in counts), probe.worst

        cpu0, worker0, wall0 = time.process_time(), _children_cpu(), time.perf_counter()
        requests, lag = asyncio.run(run())
        worker = _children_cpu() - worker0
        run_ = ScanRun(symbols, len(markets), requests, time.perf_counter() - wall0,
                       time.process_time() - cpu0 + worker, 1000 * lag, worker_cpu_s=worker)
        if with_detector_cpu:
            run_.detector_cpu_s = asyncio.run(detector_cpu(markets[0], timeframes))[1]
    return run_


def scale(sizes: Sequence[int], market: str = "binance_spot") -> list[ScanRun]:
    """``measured_scan`` of one market at each symbol count (linear growth is the target)."""
    return [measured_scan(n, [market]) for n in sizes]


def peak_rss_child(symbols: int, markets: Sequence[str] = MEMORY_MARKETS) -> dict[str, float]:
    """Peak RSS (MB) of a fresh process running a 6-timeframe scan of ``markets`` x ``symbols``."""
    code = ("import json, sys; from bench.scan import _memory_run; "
            f"print(json.dumps(_memory_run({symbols}, {list(markets)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=_repo_root(), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _memory_run(symbols: int, markets: list[str]) -> dict[str, float]:
    """Body of the memory child: sample RSS while the scan runs, this process alone and together
    with the analysis process; ru_maxrss as a cross-check of the first."""
    proc = psutil.Process()
    peak = [proc.memory_info().rss, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(RSS_SAMPLE_S):
            own = proc.memory_info().rss
            helpers = 0
            for child in scanner_children():
                try:
                    helpers += child.memory_info().rss
                except psutil.Error:
                    continue
            peak[0] = max(peak[0], own)
            peak[1] = max(peak[1], own + helpers)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    run_ = measured_scan(symbols, markets)
    done.set()
    thread.join()
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"peak_rss_mb": max(peak[0] / 2**20, maxrss_mb), "peak_with_analysis_mb": peak[1] / 2**20,
            "wall_s": run_.wall_s, "requests": run_.requests, "cpu_s": run_.cpu_s, "loop_lag_ms": run_.loop_lag_ms}


# ---------------------------------------------------------------------------------- printing


def print_requests(rows: dict[str, dict[str, float]], symbols: int) -> None:
    print(f"\n[requests] klines requests per symbol, {symbols} symbols per market "
          f"(seed: {ORIGINAL_REQUESTS_PER_SYMBOL} for 1d,2d,3d,4d,1w)")
    print(f"  {'market':<16}{'1d..1w':>8}{'+4h':>8}{'listing calls':>15}")
    for market, row in rows.items():
        print(f"  {market:<16}{row['daily_set']:>8.2f}{row['with_4h']:>8.2f}{row['daily_set_listing_calls']:>15.0f}")


def print_pacing(results: Sequence[PacingResult]) -> None:
    print("\n[pacing] 1d scan (same klines requests as 1d..1w) at a scaled rate limit, 50 ms latency")
    for r in results:
        print(f"  {r.market:<13} limit {r.capacity:g}/{r.window:g}s margin {r.margin:g}: {r.symbols} symbols, "
              f"{r.requests} requests, weight {r.weight:g}; wall {r.wall_s:.2f}s, bound {r.bound_s:.2f}s "
              f"-> wall/bound {r.ratio:.3f} (bound at the margin {r.bound_at_margin_s:.2f}s); "
              f"429s {r.rate_limited}, bans {r.bans}, failed {r.failed}; worst loop lag {r.loop_lag_ms:.0f} ms"
              + ("" if r.timeframes == ("1d",) else f" [{','.join(r.timeframes)}, all strategies]"))


def print_learning(results: Sequence[LearningResult]) -> None:
    print("\n[learning] scans with test_bar, 50 ms latency; the exchange's limit differs from what the client "
          "starts from")
    for r in results:
        c = r.case
        drop = f" -> {c.drop_to:g} at {c.drop_after:g}s" if c.drop_to else ""
        limit = f"{c.capacity:g}/{c.window:g}s{drop}"
        cls = get_client_class(c.market)
        table = f"table {c.table}" if c.table else f"table {cls.budget_limit:g}/{cls.budget_period:g}"
        told = f"client told {c.table}" if c.told else f"client not told ({table})"
        pace = (f"wall {r.wall_s:.2f}s, bound {r.bound_s:.2f}s -> wall/bound {r.ratio:.3f}" if r.bound_s > 0
                else f"wall {r.wall_s:.2f}s (the weight fits one window)")
        print(f"  {c.name:<15} {','.join(c.timeframes)} scan, exchange {limit}, {told}"
              f"{'' if c.bans else ', fake bans off'}: "
              f"{r.listed} symbols, {r.klines / r.listed:.2f} klines req/symbol, weight {r.weight:g}; {pace}; "
              f"over-limit answers {r.over_limit} "
              f"({r.over_limit_after_first_window} after the first one's window), "
              f"bans {r.bans}, failed {r.failed}; limit believed at the end {r.believed:g}")


def print_scale(runs: Sequence[ScanRun]) -> None:
    print("\n[scale] binance_spot, 6 timeframes, server in another process, budgets lifted")
    print(f"  {'symbols':>8}{'requests':>10}{'req/sym':>9}{'wall s':>9}{'ms/sym':>8}{'cpu s':>8}{'cpu ms/sym':>11}"
          f"{'lag ms':>8}")
    for r in runs:
        print(f"  {r.symbols:>8}{r.requests:>10}{r.requests / r.symbols:>9.2f}{r.wall_s:>9.2f}{r.per_symbol_ms:>8.2f}"
              f"{r.cpu_s:>8.2f}{1000 * r.cpu_s / r.symbols:>11.2f}{r.loop_lag_ms:>8.1f}")


def print_cpu(run_: ScanRun) -> None:
    print(f"\n[cpu] one 6-timeframe pass over {run_.symbols} binance_spot symbols")
    print(f"  aggregation + {len(STRATEGY_NAMES)} detectors: {run_.detector_cpu_s:.2f} CPU s "
          f"({1000 * run_.detector_cpu_s / run_.symbols:.2f} ms/symbol)")
    print(f"  whole scan: wall {run_.wall_s:.2f}s, CPU {run_.cpu_s:.2f}s ({run_.worker_cpu_s:.2f}s of it in the "
          f"analysis process), worst event-loop lag {run_.loop_lag_ms:.1f} ms (10 ms probe)")


def print_memory(row: dict[str, float], symbols: int, markets: Sequence[str]) -> None:
    print(f"\n[memory] {len(markets)} exchanges x {symbols} symbols x 6 timeframes, fresh process")
    print(f"  peak RSS {row['peak_rss_mb']:.0f} MB, {row['peak_with_analysis_mb']:.0f} MB with the analysis process; "
          f"wall {row['wall_s']:.1f}s, {row['requests']:.0f} requests, "
          f"CPU {row['cpu_s']:.1f}s, worst loop lag {row['loop_lag_ms']:.1f} ms")


SCENARIOS = ("requests", "pacing", "learning", "scale", "cpu", "memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute in all)")
    parser.add_argument("--margin", type=float, default=1.0, help="client margin in the pacing runs")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    chosen = args.scenarios or list(SCENARIOS)
    size = SIZES["quick" if args.quick else "full"]
    started = time.perf_counter()
    if "requests" in chosen:
        print_requests(requests_per_symbol(size["requests"]), size["requests"])
    if "pacing" in chosen:
        runs = PACING_QUICK if args.quick else PACING_FULL
        paced = [pacing(m, c, w, n, margin=args.margin) for m, c, w, n in runs]
        market, capacity, window, n = runs[0]
        paced.append(pacing(market, capacity, window, n, margin=args.margin, timeframes=SIX_TIMEFRAMES,
                            strategies=STRATEGY_NAMES))
        print_pacing(paced)
    if "learning" in chosen:
        print_learning([learning(case) for case in (LEARNING_QUICK if args.quick else LEARNING_FULL)])
    if "scale" in chosen:
        print_scale(scale(size["scale"]))
    if "cpu" in chosen:
        print_cpu(measured_scan(size["cpu"], ["binance_spot"], with_detector_cpu=True))
    if "memory" in chosen:
        print_memory(peak_rss_child(size["memory"]), size["memory"], MEMORY_MARKETS)
    print(f"\nall scenarios: {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "LearningCase", "LearningResult", "LoopLagProbe", "PacingResult", "ScanRun", "detector_cpu", "learning",
    "lower_bound", "measured_scan", "pacing",
    "peak_rss_child", "requests_per_symbol", "scale",
]
