"""Time the alert charts: 100 candlestick PNGs drawn as an alert run draws them (target: < 20 s on
two cores, each PNG < 200 KB).

Run from the repository root:

    python -m bench.charts --charts 100 --workers 2

Builds deterministic 100-bar daily frames, draws one chart per hit with ``scanner.chart.render_many``
(the function ``scanner.alerts.render_charts`` runs off the event loop), once in the calling process
and once with the worker pool, and prints wall seconds, CPU seconds (this process and its workers),
ms per chart and the PNG sizes. On a shared machine the wall time says little: "idle s" estimates the
wall time on idle cores as CPU seconds / cores used (1 in-process, ``--workers`` with the pool).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from scanner.chart import render_many
from scanner.results import Hit

SEED = 20240601
DEFAULT_CHARTS = 100
BARS = 100
TARGET_SECONDS = 20.0
TARGET_BYTES = 200_000


def synthetic_jobs(count: int, seed: int = SEED) -> list[tuple[pd.DataFrame, Hit]]:
    """``count`` (frame, hit) pairs: daily log random walks, the hit on the last bar."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2025-01-01", periods=BARS, freq="D", tz="UTC")
    jobs = []
    for n in range(count):
        close = 10.0 ** rng.uniform(-3, 4) * np.exp(np.cumsum(rng.normal(0, 0.03, BARS)))
        open_ = np.concatenate([close[:1], close[:-1]])
        high = np.maximum(open_, close) * (1 + rng.exponential(0.01, BARS))
        low = np.minimum(open_, close) * (1 - rng.exponential(0.01, BARS))
        volume = rng.lognormal(10, 1, BARS)
        frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)
        hit = Hit("breakout_bar", "binance_spot", "1d", f"COIN{n:03d}USDT", index[-1], False, close[-1], 1e6)
        jobs.append((frame, hit))
    return jobs


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished workers (user + system)."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charts", type=int, default=DEFAULT_CHARTS)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    jobs = synthetic_jobs(args.charts)
    print(f"{'mode':<12} {'charts':>6} {'wall s':>8} {'cpu s':>7} {'idle s':>7} {'cpu ms/chart':>12} "
          f"{'max KB':>7} {'mean KB':>8}")
    for mode, workers in (("in-process", 1), (f"{args.workers} workers", args.workers)):
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        images = render_many(jobs, workers=workers)
        wall = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        sizes = [len(i) for i in images if i is not None]
        print(
            f"{mode:<12} {len(sizes):>6} {wall:>8.2f} {cpu:>7.2f} {cpu / workers:>7.2f} "
            f"{1000 * cpu / len(jobs):>12.1f} {max(sizes) / 1000:>7.1f} {sum(sizes) / len(sizes) / 1000:>8.1f}"
        )
    print(f"target: {args.charts} charts < {TARGET_SECONDS:.0f} s on two cores, each < {TARGET_BYTES // 1000} KB")


if __name__ == "__main__":
    main()
