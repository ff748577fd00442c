"""Time and memory of the signal-quality core (issue 16) on synthetic history, no network.

Run from the repository root:

    python -m bench.quality                      # 2,000 symbols x 1,000 daily bars, 10 strategies, 4 horizons
    python -m bench.quality --symbols 200 --bars 500

Builds one OHLCV frame per symbol from ``bench.detectors.synthetic_panel`` (deterministic), then
times one ``quality_table`` call over all of them with every strategy and horizons 1,3,5,10, with
no volume filter (every bar counts: the largest baseline). Prints wall and CPU seconds, peak RSS of
this process (``ru_maxrss``: the frames, the detectors' panels and the bar table together), the
signals per strategy and the verdict against the targets (30 s, 2 GB).
"""

from __future__ import annotations

import argparse
import resource
import time

import pandas as pd

from bench.detectors import synthetic_panel
from scanner.quality import HORIZONS, quality_table

DEFAULT_SYMBOLS = 2000
DEFAULT_BARS = 1000
TARGET_SECONDS = 30.0
TARGET_RSS_MB = 2048.0
COLUMNS = ("open", "high", "low", "close", "volume")


def synthetic_frames(symbols: int, bars: int) -> dict[str, pd.DataFrame]:
    """``symbols`` daily OHLCV frames of ``bars`` closed bars each (UTC index, float64)."""
    arrays = synthetic_panel(symbols, bars)
    index = pd.date_range("2022-01-01", periods=bars, freq="D", tz="UTC", name="timestamp").as_unit("ms")
    return {
        f"SYN{j:05d}USDT": pd.DataFrame({col: a[:, j] for col, a in zip(COLUMNS, arrays)}, index=index)
        for j in range(symbols)
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run(symbols: int, bars: int, horizons: tuple[int, ...] = HORIZONS) -> dict[str, object]:
    """Build the frames, time ``quality_table`` once; the measurements and the table."""
    frames = synthetic_frames(symbols, bars)
    rss_data = peak_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    table = quality_table(frames, "synthetic", "1d", "all", horizons, min_volume_usd=0, seed=0)
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "rss_data_mb": rss_data,
        "peak_rss_mb": peak_rss_mb(),
        "table": table,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=DEFAULT_SYMBOLS)
    parser.add_argument("--bars", type=int, default=DEFAULT_BARS)
    args = parser.parse_args(argv)

    result = run(args.symbols, args.bars)
    table = result["table"]
    strategies = table["strategy"].nunique()
    print(f"signal quality: {args.symbols} symbols x {args.bars} daily bars x {strategies} strategies x "
          f"{len(HORIZONS)} horizons ({args.symbols * args.bars:,} bars)")
    first = table.drop_duplicates("strategy")
    for row in first.itertuples(index=False):
        print(f"  {row.strategy:<14} {row.signals:>9,} signals  {row.firing_rate_per_100:6.2f} per 100 bars")
    wall, rss = result["wall_s"], result["peak_rss_mb"]
    print(f"  wall {wall:.1f} s, CPU {result['cpu_s']:.1f} s "
          f"({'within' if wall <= TARGET_SECONDS else 'OVER'} the {TARGET_SECONDS:.0f} s target)")
    print(f"  peak RSS {rss:.0f} MB, of which {result['rss_data_mb']:.0f} MB before the call "
          "(frames, imports) "
          f"({'within' if rss <= TARGET_RSS_MB else 'OVER'} the {TARGET_RSS_MB / 1024:.0f} GB target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
