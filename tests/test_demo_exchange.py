"""The offline demo exchange: deterministic, network-free, realistic, and every strategy fires on 1d.

The demo knows no strategy: importing the registry installs the strategies' own patterns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exchanges.demo import DEMO_PAGE_LIMIT, DEMO_SYMBOL_COUNT, DemoClient, planted_symbols, use_plants
from exchanges.errors import BadSymbol
from scanner.cache import KlineCache
from scanner.registry import demo_plants, registry
from utils.config import VOLUME_THRESHOLDS
from utils.timeframes import SCAN_BARS

NOW = pd.Timestamp("2025-06-04 13:30", tz="UTC")
STEP = {"4h": pd.Timedelta(hours=4), "1d": pd.Timedelta(days=1), "1w": pd.Timedelta(weeks=1)}
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


async def test_same_now_gives_the_same_symbols_and_candles() -> None:
    one, two = DemoClient(now=NOW), DemoClient(now=NOW.to_pydatetime())
    assert await one.get_all_spot_symbols() == await two.get_all_spot_symbols()
    for symbol in one.symbols[::50]:
        for interval in ("4h", "1d", "1w"):
            pd.testing.assert_frame_equal(
                await one.fetch_klines(symbol, interval, 300), await two.fetch_klines(symbol, interval, 300)
            )


async def test_a_later_hour_only_adds_4h_bars_of_the_forming_day() -> None:
    early, late = DemoClient(now=NOW.replace(hour=1)), DemoClient(now=NOW.replace(hour=22))
    symbol = early.symbols[11]
    early_1d, late_1d = await early.fetch_klines(symbol, "1d"), await late.fetch_klines(symbol, "1d")
    pd.testing.assert_frame_equal(early_1d, late_1d)
    early_4h, late_4h = await early.fetch_klines(symbol, "4h", 20), await late.fetch_klines(symbol, "4h", 20)
    assert early_4h.index[-1] == NOW.normalize()
    assert late_4h.index[-1] == NOW.normalize() + pd.Timedelta(hours=20)


async def test_lists_a_few_hundred_distinct_usdt_markets_with_planted_ones() -> None:
    client = DemoClient(now=NOW)
    symbols = await client.get_all_spot_symbols()
    assert len(symbols) == len(set(symbols)) == DEMO_SYMBOL_COUNT == 300
    assert all(s.endswith("USDT") and s[:-4].isalpha() for s in symbols)
    assert set(client.planted) <= set(symbols)
    assert sorted(set(client.planted.values())) == sorted(demo_plants()) == sorted(registry())
    assert client.page_limit == DEMO_PAGE_LIMIT >= 706


@pytest.mark.parametrize("interval", ["4h", "1d", "1w"])
async def test_frames_have_the_normalised_layout_and_the_forming_bar_last(interval: str) -> None:
    client = DemoClient(now=NOW)
    frame = await client.fetch_klines(client.symbols[0], interval, 150)
    assert len(frame) == 150
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert (frame.dtypes == "float64").all()
    assert str(frame.index.tz) == "UTC" and frame.index.unit == "ms" and frame.index.name == "timestamp"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert frame.index[-1] <= NOW < frame.index[-1] + STEP[interval]
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] > 0).all() and (frame["volume"] > 0).all()


async def test_4h_days_and_monday_weeks_aggregate_to_the_daily_bars() -> None:
    client = DemoClient(now=NOW)
    for symbol in client.symbols[::37]:
        days = await client.fetch_klines(symbol, "1d", 400)
        four = await client.fetch_klines(symbol, "4h", 400 * 6)
        weeks = await client.fetch_klines(symbol, "1w", 30)
        by_day = four.groupby(four.index.floor("D")).agg(AGG).iloc[1:]
        pd.testing.assert_frame_equal(by_day, days.loc[by_day.index], rtol=1e-12, check_freq=False)
        assert (weeks.index.day_of_week == 0).all()
        week_start = (days.index - pd.to_timedelta(days.index.day_of_week, unit="D")).as_unit("ms")
        by_week = days.groupby(week_start).agg(AGG).loc[weeks.index]
        pd.testing.assert_frame_equal(by_week, weeks, rtol=1e-12, check_names=False)


async def test_markets_range_from_thin_to_liquid() -> None:
    client = DemoClient(now=NOW)
    usd = []
    for symbol in client.symbols:
        frame = await client.fetch_klines(symbol, "1d", 5)
        usd.append(frame["volume"].iloc[-2] * frame["close"].iloc[-2])
    below = np.mean(np.array(usd) < VOLUME_THRESHOLDS["1d"])
    assert 0.05 < below < 0.5
    assert max(usd) > 100 * VOLUME_THRESHOLDS["1d"]


async def test_works_without_any_session_and_counts_simulated_requests() -> None:
    async with DemoClient(now=NOW) as client:
        await client.get_all_spot_symbols()
        await client.fetch_klines(client.symbols[0], "1d", 100)
        assert client._session is None
        assert client.request_count == 2


async def test_default_interval_and_depth_follow_the_client_timeframe() -> None:
    client = DemoClient(timeframe="4h", now=NOW)
    frame = await client.fetch_klines(client.symbols[0])
    assert frame.index[-1] == NOW.floor("4h") and len(frame) >= SCAN_BARS


async def test_unknown_symbol_and_interval_raise() -> None:
    client = DemoClient(now=NOW)
    with pytest.raises(BadSymbol):
        await client.fetch_klines("NOPEUSDT", "1d")
    with pytest.raises(ValueError, match="interval"):
        await client.fetch_klines(client.symbols[0], "3d")


@pytest.mark.parametrize("now", [NOW, pd.Timestamp("2031-02-28 23:59", tz="UTC")])
async def test_every_strategy_fires_on_1d_at_checked_bars_with_enough_usd_volume(now: pd.Timestamp) -> None:
    client = DemoClient(now=now)
    cache = KlineCache()
    frames = [await cache.get(client, s, "1d", plan=("1d", "2d", "3d", "4d", "1w")) for s in client.symbols]
    assert {len(f) for f in frames} == {SCAN_BARS}
    columns = ("open", "high", "low", "close", "volume")
    o, h, l, c, v = (np.column_stack([f[col].to_numpy() for f in frames]) for col in columns)
    liquid = v[-2] * c[-2] >= VOLUME_THRESHOLDS["1d"]
    for name, strategy in registry().items():
        out = strategy.panel(o, h, l, c, v)
        fired = np.zeros(len(frames), dtype=bool)
        if "closed" in strategy.bars:
            fired |= np.asarray(out["signal"][-2], dtype=bool)
        if "current" in strategy.bars:
            fired |= np.asarray(out.get("signal_current", out["signal"])[-1], dtype=bool)
        fired &= liquid
        planted = [i for i, s in enumerate(client.symbols) if client.planted.get(s) == name]
        assert planted and fired[planted].all(), name


def test_the_exchange_plants_nothing_without_a_pattern_source() -> None:
    try:
        use_plants(dict)
        assert planted_symbols() == {} and DemoClient(now=NOW).planted == {}
    finally:
        use_plants(demo_plants)
    assert set(planted_symbols().values()) == set(registry())


def test_exchanges_import_no_strategy_package() -> None:
    import subprocess
    import sys

    code = (
        "import sys, exchanges, exchanges.demo; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scanner', 'breakout_vsa', 'custom_strategies')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
