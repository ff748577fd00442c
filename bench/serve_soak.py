"""Soak of ``scanner serve``: a simulated month of closes on 3 markets x 500 symbols.

Run from the repository root::

    python -m bench.serve_soak                      # 30 days of 4h,1d,1w closes, 3 x 500 symbols
    python -m bench.serve_soak --days 3 --symbols 50 --timeframes 1d,1w

The serve loop runs on a simulated clock over the month before now; the fake exchange serves from
another process (its clock is real time, the clients' clocks are pinned to each close), so this
process holds only the scanner. After every cycle (whenever the loop goes idle and sleeps) it
prints the CPU seconds used so far (this process and the analysis process), the process RSS, the
analysis process' RSS, open file descriptors, asyncio tasks and TCP
connections, and at the end how far each drifted from its value after the start-up cycle: a leak
shows as growth that does not come back. Alerts are off (the ledger path is covered by tests).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field

import pandas as pd
import psutil

from bench.scan import environment, server_process, unlimited_budgets
from exchanges.rate_limit import reset_budgets
from scanner import schedule
from scanner.serve import ServeConfig, ServeLoop
from scanner.serve_state import ServeState
from utils import config

MARKETS: tuple[str, ...] = ("binance_spot", "bybit_spot", "gateio_spot")
TIMEFRAMES: tuple[str, ...] = ("1w", "1d", "4h")
STRATEGIES: tuple[str, ...] = ("volume_surge", "confluence", "breakout_bar", "weak_uptrend")
MB = 1024 * 1024


@dataclass
class Sample:
    """Resources after one cycle (the loop is idle: no scan in flight)."""

    cycle: int
    sim_time: pd.Timestamp
    wall_s: float
    cpu_s: float
    rss_mb: float
    child_rss_mb: float
    fds: int
    tasks: int
    connections: int


@dataclass
class Soak:
    """Collects a sample each time the simulated clock moves (the loop sleeps only when idle)."""

    clock: schedule.SimulatedClock
    samples: list[Sample] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    echo: bool = False  # print each sample as it is taken (a long soak shows its progress)

    def __post_init__(self) -> None:
        self.clock.on_advance.insert(0, self.sample)
        self._process = psutil.Process()

    def sample(self, _now: float) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = [c for c in self._process.children(recursive=True) if not _is_fake_exchange(c)]
        self.samples.append(Sample(
            cycle=len(self.samples),
            sim_time=pd.Timestamp(self.clock(), unit="s", tz="UTC"),
            wall_s=time.perf_counter() - self.started,
            cpu_s=usage.ru_utime + usage.ru_stime + sum(_cpu(c) for c in children),
            rss_mb=self._process.memory_info().rss / MB,
            child_rss_mb=sum(_rss(c) for c in children) / MB,
            fds=self._process.num_fds(),
            tasks=len(asyncio.all_tasks()),
            connections=len(self._process.net_connections(kind="tcp")),
        ))
        if self.echo:
            print(row(self.samples[-1]), flush=True)


def _peak_rss_mb() -> float:
    """This process' peak RSS (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _is_fake_exchange(process: psutil.Process) -> bool:
    """The fake exchange server is a child too; its memory is not the scanner's."""
    try:
        return any("exchange_server" in part for part in process.cmdline())
    except psutil.Error:
        return False


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0


HEADER = (
    f"{'cycle':>5} {'sim time (UTC)':>16} {'wall s':>7} {'cpu s':>7} {'RSS MB':>7} {'analysis MB':>11} "
    f"{'fds':>4} {'tasks':>5} {'tcp':>4}"
)


def row(s: Sample) -> str:
    return (
        f"{s.cycle:>5} {s.sim_time.strftime('%m-%d %H:%M'):>16} {s.wall_s:>7.1f} {s.cpu_s:>7.1f} "
        f"{s.rss_mb:>7.1f} {s.child_rss_mb:>11.1f} {s.fds:>4} {s.tasks:>5} {s.connections:>4}"
    )


async def run_soak(
    days: float, timeframes: tuple[str, ...], state_dir: str, echo: bool = False
) -> tuple[Soak, list[dict]]:
    """Serve ``days`` simulated days ending a day before now; the samples and the scanned rows."""
    end = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    start = end - pd.Timedelta(days=days)
    clock = schedule.SimulatedClock(start.timestamp())
    soak = Soak(clock, echo=echo)
    serve_config = ServeConfig(timeframes=timeframes, strategies=STRATEGIES, exchanges=MARKETS, min_volume_usd=0.0)
    with ServeState(os.path.join(state_dir, "serve.sqlite3")) as state:
        loop = ServeLoop(serve_config, state=state, clock=clock, sleep=clock.sleep)
        await loop.run(until=end.timestamp())
        rows = state.rows()
    return soak, rows


def report(soak: Soak, rows: list[dict], symbols: int, table: bool = True) -> str:
    """The per-cycle table and the drift of each resource from its value after the start-up cycle."""
    cycles = soak.samples  # sample 0: after the start-up catch-up (the latest close of each timeframe)
    lines = [f"serve soak: {len(MARKETS)} markets x {symbols} symbols, {len(rows)} exchange x timeframe closes scanned"]
    if table:
        lines += [HEADER, *(row(s) for s in cycles)]
    if len(cycles) >= 2:
        first, last = cycles[0], cycles[-1]
        steps = [b.cpu_s - a.cpu_s for a, b in zip(cycles, cycles[1:])]
        lines += [
            "",
            f"after the start-up cycle -> after the last: RSS {first.rss_mb:.1f} -> {last.rss_mb:.1f} MB "
            f"(peak {max(s.rss_mb for s in cycles):.1f}), analysis process {first.child_rss_mb:.1f} -> "
            f"{last.child_rss_mb:.1f} MB, fds {first.fds} -> {last.fds}, tasks {first.tasks} -> {last.tasks}, "
            f"tcp connections {first.connections} -> {last.connections}",
            f"RSS growth over the last half: {last.rss_mb - cycles[len(cycles) // 2].rss_mb:+.1f} MB",
            f"CPU per cycle (this process and the analysis process): mean {sum(steps) / len(steps):.2f}s, "
            f"max {max(steps):.2f}s; peak RSS of this process {_peak_rss_mb():.1f} MB; wall {last.wall_s:.0f}s in all",
        ]
    failed = [r for r in rows if r["status"] != "scanned"]
    lines.append(f"closes not scanned: {len(failed)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=30.0, help="simulated days (default 30)")
    parser.add_argument("--symbols", type=int, default=500, help="symbols per market (default 500)")
    parser.add_argument("--timeframes", default=",".join(TIMEFRAMES), help="default 1w,1d,4h")
    args = parser.parse_args(argv)
    timeframes = schedule.ordered(args.timeframes.split(","))
    with tempfile.TemporaryDirectory(prefix="serve-soak-") as state_dir, \
            server_process(args.symbols, MARKETS) as env, \
            environment(env | unlimited_budgets(MARKETS) | {
                "SCANNER_STATE_DB": os.path.join(state_dir, "alerts.sqlite3"), "DISABLE_PROGRESS": "1"}):
        config.reload()
        reset_budgets()
        print(HEADER, flush=True)
        soak, rows = asyncio.run(run_soak(args.days, timeframes, state_dir, echo=True))
    print(report(soak, rows, args.symbols, table=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
