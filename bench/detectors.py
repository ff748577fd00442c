"""Time the ten detectors' panel cores on a synthetic market (detector contract, performance target).

Run from the repository root:

    python -m bench.detectors --symbols 2000 --bars 250

Builds a deterministic panel of ``symbols`` x ``bars`` daily bars, calls every panel core once on
the whole panel, and prints seconds per strategy, the total, and ms per symbol. A custom detector
whose panel is missing is reported as "missing" and the rest are still timed. For
comparison it also times the per-frame VSA wrappers on a small sample of symbols.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from scanner.registry import STRATEGY_NAMES, VSA_STRATEGIES, get_strategy

SEED = 20240601
DEFAULT_SYMBOLS = 2000
DEFAULT_BARS = 250
DEFAULT_WRAPPER_SAMPLE = 50
TARGET_TOTAL_SECONDS = 5.0


def synthetic_panel(symbols: int, bars: int, seed: int = SEED) -> tuple[np.ndarray, ...]:
    """Deterministic (bars, symbols) float64 arrays o, h, l, c, v: log random walks at mixed scales."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-4, 4, symbols)
    close = scale * np.exp(np.cumsum(rng.normal(0, 0.03, (bars, symbols)), axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.exponential(0.01, (bars, symbols)))
    low = np.minimum(open_, close) * (1 - rng.exponential(0.01, (bars, symbols)))
    volume = rng.lognormal(10, 1, (bars, symbols)) * (1 + 10 * (rng.random((bars, symbols)) < 0.01))
    return open_, high, low, close, volume


def panel_function(name: str) -> Callable[..., dict] | None:
    """The panel core a strategy declares (scanner.registry)."""
    return get_strategy(name).panel


def time_panels(arrays: tuple[np.ndarray, ...]) -> dict[str, float | None]:
    """Seconds per strategy for one call of its panel core on the whole panel (None: missing)."""
    timings: dict[str, float | None] = {}
    for name in STRATEGY_NAMES:
        fn = panel_function(name)
        if fn is None:
            timings[name] = None
            continue
        start = time.perf_counter()
        fn(*arrays)
        timings[name] = time.perf_counter() - start
    return timings


def time_vsa_wrappers(arrays: tuple[np.ndarray, ...], sample: int) -> dict[str, float]:
    """Seconds per VSA strategy to run its per-frame wrapper on each of ``sample`` symbols."""
    import breakout_vsa

    bars = arrays[0].shape[0]
    index = pd.date_range("2024-01-01", periods=bars, freq="D", tz="UTC")
    frames = [
        pd.DataFrame({col: a[:, j] for col, a in zip(("open", "high", "low", "close", "volume"), arrays)},
                     index=index)
        for j in range(min(sample, arrays[0].shape[1]))
    ]
    timings = {}
    for name in VSA_STRATEGIES:
        wrapper = getattr(breakout_vsa, f"{name}_vsa")
        start = time.perf_counter()
        for frame in frames:
            wrapper(frame)
        timings[name] = time.perf_counter() - start
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=DEFAULT_SYMBOLS)
    parser.add_argument("--bars", type=int, default=DEFAULT_BARS)
    parser.add_argument("--wrapper-sample", type=int, default=DEFAULT_WRAPPER_SAMPLE)
    args = parser.parse_args(argv)

    arrays = synthetic_panel(args.symbols, args.bars)
    time_panels(tuple(a[:, :2] for a in arrays))  # import modules and warm caches outside the timing
    timings = time_panels(arrays)
    total = sum(t for t in timings.values() if t is not None)
    print(f"panel cores: {args.symbols} symbols x {args.bars} bars")
    for name, seconds in timings.items():
        if seconds is None:
            print(f"  {name:<14} missing")
        else:
            print(f"  {name:<14} {seconds:8.3f} s  {1000 * seconds / args.symbols:7.3f} ms/symbol")
    verdict = "within" if total <= TARGET_TOTAL_SECONDS else "OVER"
    print(f"  {'total':<14} {total:8.3f} s  {1000 * total / args.symbols:7.3f} ms/symbol "
          f"({verdict} the {TARGET_TOTAL_SECONDS:.0f} s target)")

    sample = min(args.wrapper_sample, args.symbols)
    wrapper_timings = time_vsa_wrappers(arrays, sample)
    print(f"per-frame VSA wrappers on {sample} symbols (for comparison)")
    for name, seconds in wrapper_timings.items():
        panel_ms = timings[name]
        per_panel = "" if panel_ms is None else f"   panel: {1000 * panel_ms / args.symbols:7.3f} ms/symbol"
        print(f"  {name:<14} {1000 * seconds / sample:7.3f} ms/symbol{per_panel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
