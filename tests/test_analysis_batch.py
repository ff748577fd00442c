"""The analysis worker's batch path on arrays (issue 12) gives exactly what the frame path gives.

``BatchJob.run`` derives, checks and filters a whole batch on its packed arrays; these tests pin it,
bit for bit, to ``prepare_and_analyse`` over the frames ``Source.derive`` builds one market at a time
(the path the golden tests pin), including every kind of market the cleaning skips or repairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exchanges.demo import DemoClient
from scanner.analysis import BatchJob, analyse_frames, clean_arrays, clean_frame, pack, prepare_and_analyse
from scanner.cache import Source, source_of
from scanner.registry import STRATEGY_NAMES, get_strategy
from scanner.store.base import merge_candles, shared_bars
from utils.candles import Candles, ohlcv_frame, ohlcv_index, ohlcv_label
from utils.timeframes import aggregate_segments, daily_bars_needed, get_timeframe

NOW = pd.Timestamp("2025-06-10 13:30", tz="UTC")
DAILY_TIMEFRAMES = ("1d", "2d", "3d", "4d", "1w")


def fingerprint(hits) -> list[tuple]:
    """Every field of every hit as exact text (float repr round-trips, NaN equals NaN), with the
    bar time's unit and zone, which ``==`` on timestamps ignores."""
    return sorted(
        repr((h.strategy, h.exchange, h.timeframe, h.symbol, h.bar_time, h.bar_time.unit, str(h.bar_time.tz),
              h.current_bar, h.close, h.volume_usd, sorted(h.metrics.items())))
        for h in hits
    )


async def demo_daily(count: int = 80) -> list[tuple[str, Candles]]:
    """Daily candles of demo markets (strategies are planted in many of them, so there are hits)."""
    client = DemoClient(now=NOW, symbol_count=count)
    return [(s, await client.fetch_candles(s, "1d", 800)) for s in client.symbols]


def spoiled(batch: list[tuple[str, Candles]]) -> list[tuple[str, Candles]]:
    """The batch with young markets and every kind of market the cleaning repairs or skips."""

    def edit(candles: Candles, change) -> Candles:
        stamps, values = candles.stamps.copy(), candles.values.copy()
        stamps, values = change(stamps, values)
        return Candles(stamps, values)

    def at(row, col, value):
        def change(stamps, values):
            values[row, col] = value
            return stamps, values
        return change

    out = list(batch)
    young = {i: n for i, n in zip(range(5, 40, 3), (3, 7, 12, 40, 99, 100, 101, 150, 203, 350, 500, 705))}
    for i, n in young.items():
        out[i] = (out[i][0], out[i][1].tail(n))
    out[1] = (out[1][0], edit(out[1][1], at(-30, 3, np.nan)))
    out[2] = (out[2][0], edit(out[2][1], at(-3, 4, -1.0)))
    out[3] = (out[3][0], edit(out[3][1], at(-5, 1, 0.0)))  # high below low
    out[4] = (out[4][0], edit(out[4][1], lambda s, v: (s[::-1].copy(), v[::-1].copy())))  # newest first
    out[6] = (out[6][0], edit(out[6][1], lambda s, v: (np.insert(s, 50, s[50]), np.insert(v, 50, v[49], axis=0))))
    out[9] = (out[9][0], edit(out[9][1], at(slice(-15, None), 4, 0.0)))  # no volume lately: filtered
    out[10] = (out[10][0], edit(out[10][1], at(0, 0, np.inf)))  # outside the 1d window, inside 1w
    out[12] = (out[12][0], Candles(np.empty(0, np.int64), np.empty((0, 5))))
    return out


@pytest.mark.parametrize("timeframe", DAILY_TIMEFRAMES)
async def test_the_batch_path_finds_what_the_frame_path_finds(timeframe) -> None:
    batch = spoiled(await demo_daily())
    tf = get_timeframe(timeframe)
    source = Source("1d", daily_bars_needed(tf), aggregate=tf.aggregated)
    strategies = tuple(get_strategy(name) for name in STRATEGY_NAMES)
    job = BatchJob(source, strategies, "demo", timeframe, "both", 50_000.0)

    fast = job.run(pack(batch, source.depth))
    frames = [(symbol, source.derive(candles, timeframe)) for symbol, candles in batch]
    slow = prepare_and_analyse(frames, strategies, "demo", timeframe, "both", 50_000.0)

    assert len(fast.hits) > 5
    assert fingerprint(fast.hits) == fingerprint(slow.hits)
    assert fast.skipped == slow.skipped and len(fast.skipped) >= 4
    assert fast.filtered_out == slow.filtered_out > 0
    assert fast.errors == slow.errors == []


async def test_a_batch_packed_deeper_than_the_source_is_cut_as_derive_cuts() -> None:
    batch = spoiled(await demo_daily(50))
    source = Source("1d", daily_bars_needed("3d"), aggregate=True)
    strategies = tuple(get_strategy(name) for name in STRATEGY_NAMES)
    job = BatchJob(source, strategies, "demo", "3d", "both", 0.0)
    deep = job.run(pack(batch))
    cut = job.run(pack(batch, source.depth))
    assert fingerprint(deep.hits) == fingerprint(cut.hits) and deep.skipped == cut.skipped


@pytest.mark.parametrize("timeframe", ("2d", "3d", "4d", "1w"))
def test_aggregating_many_markets_at_once_equals_one_at_a_time(timeframe) -> None:
    rng = np.random.default_rng(7)
    markets = []
    for n in (0, 1, 2, 5, 6, 7, 8, 13, 30, 0, 100):
        start = 1_742_000_000_000 // 86_400_000 * 86_400_000 + int(rng.integers(0, 9)) * 86_400_000
        stamps = start + np.arange(n, dtype=np.int64) * 86_400_000
        if n > 5:
            stamps[3] += 3_600_000  # an intraday open time
        markets.append((stamps, rng.random((n, 5)) * 100))
    lengths = np.array([len(s) for s, _ in markets])
    labels, values, counts = aggregate_segments(
        np.concatenate([s for s, _ in markets]), np.concatenate([v for _, v in markets]), lengths, timeframe
    )
    one = [aggregate_segments(s, v, np.array([len(s)]), timeframe) for s, v in markets]
    assert counts.tolist() == [len(o[0]) for o in one]
    np.testing.assert_array_equal(labels, np.concatenate([o[0] for o in one]))
    assert values.tobytes() == np.concatenate([o[1] for o in one]).tobytes()


def test_deriving_a_batch_equals_deriving_each_market() -> None:
    rng = np.random.default_rng(3)
    natives = []
    for n in (0, 4, 250, 706, 900):
        stamps = 1_700_006_400_000 + np.arange(n, dtype=np.int64) * 86_400_000
        natives.append(Candles(stamps, rng.random((n, 5))))
    for source in (Source("1d", 100), Source("1d", 706, aggregate=True), Source("1d", 201, aggregate=True)):
        timeframe = "1w" if source.depth == 706 else "2d" if source.aggregate else "1d"
        stamps, values, lengths = source.derive_segments(
            np.concatenate([c.stamps for c in natives]), np.concatenate([c.values for c in natives]),
            np.array([len(c) for c in natives]), timeframe,
        )
        frames = [source.derive(c, timeframe) for c in natives]
        assert lengths.tolist() == [len(f) for f in frames]
        pd.testing.assert_frame_equal(ohlcv_frame(stamps, values), pd.concat(frames), check_freq=False)


def test_a_hit_bar_label_is_the_frame_index_label() -> None:
    stamps = np.array([0, 1_749_513_600_000, 4_102_444_800_000], dtype=np.int64)
    for i, stamp in enumerate(stamps):
        label, expected = ohlcv_label(stamp), ohlcv_index(stamps)[i]
        assert (label, label.unit, label.tz) == (expected, expected.unit, expected.tz)


def test_cleaning_arrays_repairs_and_rejects_as_cleaning_frames() -> None:
    rng = np.random.default_rng(5)
    stamps = 1_700_006_400_000 + np.arange(30, dtype=np.int64) * 86_400_000
    values = rng.random((30, 5)) + 1.0
    values[:, 1] = values.max(axis=1) + 0.5
    values[:, 2] = values.min(axis=1) - 0.5
    shuffled = rng.permutation(30)
    cases = {
        "sane": (stamps, values),
        "shuffled, one repeated": (np.append(stamps[shuffled], stamps[4]), np.vstack([values[shuffled], values[:1]])),
        "too short": (stamps[:9], values[:9]),
        "negative": (stamps, np.where(np.arange(30)[:, None] == 7, -values, values)),
        "empty": (stamps[:0], values[:0]),
    }
    for name, (s, v) in cases.items():
        frame, reason = clean_frame(ohlcv_frame(s, v))
        clean_s, clean_v, why = clean_arrays(s, v)
        assert why == reason, name
        if reason is None:
            np.testing.assert_array_equal(clean_s, frame.index.asi8 // 1_000_000 if frame.index.unit == "ns" else frame.index.asi8)
            np.testing.assert_array_equal(clean_v, frame.to_numpy())


def test_frames_analysed_directly_keep_their_own_index_labels() -> None:
    client = DemoClient(now=NOW, symbol_count=40)
    frames = [(s, client._daily(s).iloc[-100:].copy()) for s in client.symbols]
    for _, frame in frames:
        frame.index = frame.index.as_unit("ns")
    hits, errors = analyse_frames(frames, [get_strategy(n) for n in STRATEGY_NAMES], "demo", "1d")
    assert hits and not errors and {h.bar_time.unit for h in hits} == {"ns"}


def test_merging_counts_the_shared_bars_the_new_candles_change() -> None:
    rng = np.random.default_rng(11)
    old_stamps = np.arange(10, dtype=np.int64) * 86_400_000
    old = Candles(old_stamps, rng.random((10, 5)))
    for since in (0, 5, 9, 10, 12):
        new_stamps = np.arange(since, since + 6, dtype=np.int64) * 86_400_000
        new_values = rng.random((6, 5))
        overlap = max(0, min(10, since + 6) - since)
        new_values[: overlap // 2] = old.values[since : since + overlap // 2]  # half of the shared bars unchanged
        new = Candles(new_stamps, new_values)
        merged, revised = merge_candles(old, new)
        assert revised == overlap - overlap // 2 == shared_bars(old, new)[1]
        assert np.array_equal(merged.stamps, np.union1d(old_stamps, new_stamps))
        assert np.array_equal(merged.values[np.isin(merged.stamps, new_stamps)], new_values)  # new wins
    assert shared_bars(old, Candles(old_stamps[:0], old.values[:0]))[1] == 0


def test_sources_are_cached_per_client_declarations() -> None:
    class Small:
        page_limit, weekly_monday_aligned = 500, True

    class Large:
        page_limit, weekly_monday_aligned = 1000, True

    assert source_of(Small(), "1w") == Source("1w", 100)
    assert source_of(Large(), "1w") == Source("1d", 706, aggregate=True)
    assert source_of(Small(), "1w", history=True) == Source("1d", 706, aggregate=True)


async def test_markets_of_every_length_in_one_panel_give_what_each_gives_alone() -> None:
    from scanner.analysis import Market, analyse_markets

    source = Source("1d", daily_bars_needed("1d"))
    strategies = tuple(get_strategy(name) for name in STRATEGY_NAMES)
    markets = []
    for i, (symbol, candles) in enumerate(await demo_daily(60)):
        frame = source.derive(candles.tail(10 + 3 * i), "1d")  # 10 .. 100 bars: one length each
        markets.append(Market(symbol, frame.to_numpy(dtype="float64"), frame.index))
    assert len({len(m.values) for m in markets}) > 20

    together, errors = analyse_markets(markets, strategies, "demo", "1d")
    alone = [hit for market in markets for hit in analyse_markets([market], strategies, "demo", "1d")[0]]

    assert errors == [] and len(together) > 10
    assert fingerprint(together) == fingerprint(alone)


async def test_every_registered_detector_is_causal() -> None:
    """Row t of every output depends on rows <= t only: the shared panel of markets of different
    lengths (``scanner.analysis._panel``) relies on it. Checked by cutting the input short."""
    from scanner.registry import registry

    cube = np.stack([c.values[-300:] for _, c in await demo_daily(40) if len(c) >= 300], axis=1)
    columns = [np.ascontiguousarray(cube[:, :, i]) for i in range(5)]
    for name, strategy in registry().items():
        full = strategy.panel(*columns)
        for rows in (2, 10, 26, 51, 66, 120, 299):
            cut = strategy.panel(*(c[:rows] for c in columns))
            for key, values in full.items():
                np.testing.assert_array_equal(np.asarray(values)[:rows], np.asarray(cut[key]), err_msg=f"{name}.{key}")
