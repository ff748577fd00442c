"""Time the alert charts: 100 candlestick PNGs drawn as an alert run draws them (target: < 20 s on
two cores, each PNG < 200 KB).

Run from the repository root:

    python -m bench.charts --charts 100 --workers 2

Builds deterministic 100-bar daily frames, draws one chart per hit with ``scanner.chart.render_many``
(the function ``scanner.alerts.render_charts`` runs off the event loop), once in the calling process
and once with the worker pool, and prints wall seconds, ms per chart and the PNG sizes.
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charts", type=int, default=DEFAULT_CHARTS)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    jobs = synthetic_jobs(args.charts)
    print(f"{'mode':<12} {'charts':>6} {'wall s':>8} {'ms/chart':>9} {'max KB':>7} {'mean KB':>8}")
    for mode, workers in (("in-process", 1), (f"{args.workers} workers", args.workers)):
        started = time.perf_counter()
        images = render_many(jobs, workers=workers)
        wall = time.perf_counter() - started
        sizes = [len(i) for i in images if i is not None]
        print(
            f"{mode:<12} {len(sizes):>6} {wall:>8.2f} {1000 * wall / len(jobs):>9.1f} "
            f"{max(sizes) / 1000:>7.1f} {sum(sizes) / len(sizes) / 1000:>8.1f}"
        )
    print(f"target: {args.charts} charts < {TARGET_SECONDS:.0f} s on two cores, each < {TARGET_BYTES // 1000} KB")


if __name__ == "__main__":
    main()
