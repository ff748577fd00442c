"""Hand-built bars for the four custom detectors: one firing bar, then each condition switched off."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from custom_strategies import (
    confluence_series,
    detect_confluence,
    detect_pin_down,
    detect_volume_surge,
    detect_weak_uptrend,
    pin_down_series,
    weak_uptrend_series,
)
from custom_strategies.confluence import _bar_class, _context


def frame(rows: list[tuple[float, float, float, float, float]]) -> pd.DataFrame:
    """OHLCV rows (open, high, low, close, volume) as a daily UTC frame."""
    index = pd.date_range("2024-01-01", periods=len(rows), freq="D", tz="UTC", name="timestamp")
    columns = ["open", "high", "low", "close", "volume"]
    return pd.DataFrame(rows, columns=columns, index=index, dtype="float64")


# ---------------------------------------------------------------- volume surge (spec 5)


def surge_frame(surge_volume: float, close: float = 100.0) -> pd.DataFrame:
    """70 quiet bars (volume 1000, bar 67 at 3000); bar 68 has ``surge_volume`` and ``close``."""
    rows = [(100.0, 101.0, 99.0, 100.0, 1000.0 + (i % 2)) for i in range(70)]
    rows[67] = (100.0, 101.0, 99.0, 100.0, 3000.0)
    rows[68] = (100.0, max(101.0, close), min(99.0, close), close, surge_volume)
    return frame(rows)


def test_volume_surge_fires_on_volume_above_mean_plus_four_sd() -> None:
    detected, result = detect_volume_surge(surge_frame(10_000.0, close=100.5))
    assert detected
    assert result["timestamp"] == pd.Timestamp("2024-03-09", tz="UTC")
    assert result["volume"] == 10_000.0 and result["volume_usd"] == 10_000.0 * 100.5
    assert result["price_extreme"] == "White candle"
    # closed: mean of bars 58..67 (nine ~1000 and the 3000 one)
    before = [1000.0 + (i % 2) for i in range(58, 67)] + [3000.0]
    assert math.isclose(result["volume_ratio"], 10_000.0 / np.mean(before))


def test_volume_surge_stays_quiet_below_the_band() -> None:
    assert detect_volume_surge(surge_frame(2_000.0, close=100.5)) == (False, {})


def test_volume_surge_current_bar_ratio_skips_the_last_closed_bar() -> None:
    df = surge_frame(10_000.0, close=100.5).iloc[:69]
    detected, result = detect_volume_surge(df, check_bar=-1)
    assert detected
    expected = 10_000.0 / np.mean([1000.0 + (i % 2) for i in range(57, 67)])
    assert math.isclose(result["volume_ratio"], expected)


@pytest.mark.parametrize(
    ("close", "label"),
    [(105.0, "White candle - new high"), (95.0, "Black candle - new low"), (99.5, "Black candle")],
)
def test_volume_surge_price_extreme_against_the_previous_fifty_bars(close: float, label: str) -> None:
    assert detect_volume_surge(surge_frame(10_000.0, close=close))[1]["price_extreme"] == label


def test_volume_surge_score_formula_for_a_close_above_the_previous_high() -> None:
    result = detect_volume_surge(surge_frame(10_000.0, close=105.0))[1]
    # r[t] = 6 (105 - 99), r[p] = 2, close position (105-99)/6 = 1, rel = 1 + 1.5*(105-101)/2
    assert math.isclose(result["score"], (6 / 2) * (2 * 1 - 1) + 1 + 1.5 * 4 / 2)


def test_volume_surge_needs_sixty_five_rows() -> None:
    df = surge_frame(10_000.0).iloc[:64]
    df.iloc[63, df.columns.get_loc("volume")] = 1e9
    assert detect_volume_surge(df, check_bar=-1) == (False, {})


# ---------------------------------------------------------------- weak uptrend (spec 6)


BASELINE_ROWS = 20  # bars 0 ... 19: the W4/W5 baseline of bar 24
WEAK_CLOSES = (120.0, 121.0, 122.0, 123.0, 123.8)  # the last gain (0.8) is smaller than the one before: W3
WEAK_VOLUMES = (105.0, 300.0, 250.0, 200.0, 150.0)  # a climax (W4), then less volume on higher up bars (W1)


def weak_frame(
    closes: tuple[float, ...] = WEAK_CLOSES,
    volumes: tuple[float, ...] = WEAK_VOLUMES,
    last_range: float = 2.0,
    baseline_step: float = 1.0,
    baseline_volume: dict[int, float] | None = None,
    baseline_high: dict[int, float] | None = None,
) -> pd.DataFrame:
    """20 baseline bars rising by ``baseline_step`` (ranges 2.0/2.2, volumes 100/110), then the five
    bars 20 ... 24 with ``closes`` and ``volumes`` (range 2, the last ``last_range``, closing at 3/4 of
    it), bar 24 the last closed bar and a copy of it as the forming bar 25."""
    rows = []
    for i in range(BASELINE_ROWS):
        c = 119.0 - baseline_step * (BASELINE_ROWS - 1 - i)
        half = 1.0 + 0.1 * (i % 2)
        high = (baseline_high or {}).get(i, c + half)
        rows.append((c, high, c - half, c, (baseline_volume or {}).get(i, 100.0 + 10.0 * (i % 2))))
    for k, (c, v) in enumerate(zip(closes, volumes)):
        r = last_range if k == len(closes) - 1 else 2.0
        rows.append((c, c + r / 4, c - 3 * r / 4, c, v))
    rows.append(rows[-1])
    return frame(rows)


def test_weak_uptrend_fires_with_four_weaknesses_including_w3_in_an_uptrend() -> None:
    detected, result = detect_weak_uptrend(weak_frame())
    assert detected
    flags = tuple(result[name] for name in ("W1", "W2", "W3", "W4", "W5"))
    assert flags == (True, True, True, True, False)
    assert result["total_patterns"] == 4 and result["close"] == 123.8
    assert result["date"] == pd.Timestamp("2024-01-25", tz="UTC")
    assert math.isclose(result["volume_ratio"], 150.0 / np.mean([100.0, 110.0, 100.0, 105.0, 300.0, 250.0, 200.0, 110.0]))


def test_weak_uptrend_three_weaknesses_are_not_enough_by_default() -> None:
    quiet = weak_frame(volumes=(105.0, 108.0, 107.0, 106.0, 104.0))
    series = weak_uptrend_series(quiet)
    assert not series["W4"].iloc[24] and series["total_patterns"].iloc[24] == 3
    assert detect_weak_uptrend(quiet) == (False, {})
    assert detect_weak_uptrend(quiet, min_weaknesses=3)[0]


def test_weak_uptrend_needs_w3_whatever_the_count() -> None:
    accelerating = weak_frame(closes=(120.0, 121.0, 122.0, 123.0, 124.2))
    assert not weak_uptrend_series(accelerating)["W3"].iloc[24]
    assert detect_weak_uptrend(accelerating, min_weaknesses=1) == (False, {})


def test_weak_uptrend_needs_a_close_above_a_rising_mean() -> None:
    falling = weak_frame(baseline_step=-1.0)  # the baseline falls from 138 to 119
    series = weak_uptrend_series(falling)
    assert series["total_patterns"].iloc[24] >= 4 and series["W3"].iloc[24]
    assert detect_weak_uptrend(falling) == (False, {})


def test_weak_uptrend_needs_the_twenty_bar_high_inside_the_five_bars() -> None:
    assert detect_weak_uptrend(weak_frame(baseline_high={4: 130.0}))[0]  # bar 4 is before bars 5 ... 24
    assert detect_weak_uptrend(weak_frame(baseline_high={10: 130.0})) == (False, {})


def test_weak_uptrend_w4_is_measured_against_the_twenty_bars_before_the_window() -> None:
    loud_baseline = weak_uptrend_series(weak_frame(baseline_volume={10: 1000.0}))
    assert not loud_baseline["W4"].iloc[24]  # 300 is under mean + 2 SD of a baseline holding 1000
    assert weak_uptrend_series(weak_frame())["W4"].iloc[24]


def test_weak_uptrend_w5_needs_a_wide_bar_closing_low() -> None:
    assert weak_uptrend_series(weak_frame(last_range=4.0))["W5"].iloc[24]  # close position 3/4
    rows = weak_frame(last_range=4.0)
    rows.iloc[24, rows.columns.get_loc("close")] = 124.7  # close position 3.9/4 > 0.75
    assert not weak_uptrend_series(rows)["W5"].iloc[24]


def test_weak_uptrend_needs_twenty_six_rows() -> None:
    assert detect_weak_uptrend(weak_frame())[0]
    assert detect_weak_uptrend(weak_frame().iloc[1:]) == (False, {})


# ---------------------------------------------------------------- pin down (spec 7)

RISE = [(c - 1.0, c + 0.5, c - 1.5, c, 100.0) for c in (100.0, 101.0, 102.0, 103.0, 104.0)]
TOP = (104.0, 108.0, 103.8, 104.2, 100.0)  # long upper wick at a new high: bearish top, low 103.8
PINNED = (104.2, 104.3, 103.4, 103.5, 120.0)  # closes below 103.8, not a bearish candle
HOLDING = (104.2, 104.3, 103.85, 103.9, 100.0)  # stays above the top's low


def test_pin_down_fires_on_the_first_close_below_a_bearish_top_low() -> None:
    detected, result = detect_pin_down(frame([*RISE, TOP, PINNED, HOLDING]))
    assert detected
    assert result["bearishtop_dist"] == 1 and result["bearish_candle"] is False
    assert math.isclose(result["high_wick_ratio"], 0.1 / 0.7)
    assert math.isclose(result["volume_ratio"], 120.0 / 100.0)
    assert (result["close"], result["high"], result["low"]) == (103.5, 104.3, 103.4)


def test_pin_down_needs_the_close_below_the_top_low() -> None:
    assert detect_pin_down(frame([*RISE, TOP, HOLDING, HOLDING])) == (False, {})


def test_pin_down_excludes_an_outside_bar() -> None:
    outside = (108.4, 108.5, 103.0, 103.5, 100.0)  # wider than the top both ways, not bearish
    assert detect_pin_down(frame([*RISE, TOP, outside, HOLDING])) == (False, {})


def test_pin_down_needs_a_bearish_top() -> None:
    plain = (104.0, 104.6, 103.8, 104.5, 100.0)  # no upper wick
    assert detect_pin_down(frame([*RISE, plain, PINNED, HOLDING])) == (False, {})


@pytest.mark.parametrize(("waiting", "fires"), [(2, True), (3, False)])
def test_pin_down_counts_only_within_three_bars(waiting: int, fires: bool) -> None:
    df = frame([*RISE, TOP, *[HOLDING] * waiting, PINNED, HOLDING])
    assert detect_pin_down(df)[0] is fires


def test_pin_down_signals_a_change_of_state_only() -> None:
    series = pin_down_series(frame([*RISE, TOP, PINNED, PINNED, HOLDING]))
    assert series["signal"].tolist() == [False] * 6 + [True, False, False]


# ---------------------------------------------------------------- confluence (spec 8)

# 22 small bars whose close alternates 100 / 100.2, volume 100
QUIET = [
    (100.0 + 0.2 * odd, 100.7 + 0.2 * odd, 99.7, 100.0 + 0.2 * odd, 100.0)
    for odd in (i % 2 for i in range(22))
]
BREAKOUT = (100.0, 103.2, 99.8, 103.0, 150.0)


def test_confluence_fires_on_high_volume_wide_bar_closing_high() -> None:
    df = frame([*QUIET, BREAKOUT])
    detected, result = detect_confluence(df)
    assert detected and result["current_bar"] is True
    assert result["high_volume"] and result["spread_breakout"] and result["momentum_breakout"]
    assert math.isclose(result["bar_range"], 3.4) and math.isclose(result["close_off_low"], 100 * 3.2 / 3.4)
    assert result["date"] == "2024-01-23 00:00:00"
    closed = detect_confluence(frame([*QUIET, BREAKOUT, QUIET[0]]), check_bar=-2)
    assert closed[0] and closed[1]["current_bar"] is False


def test_confluence_extreme_volume_switches_off_high_volume() -> None:
    series = confluence_series(frame([*QUIET, (*BREAKOUT[:4], 100_000.0)]))
    assert not series["high_volume"].iloc[22] and series["spread_breakout"].iloc[22]
    assert not series["signal_current"].iloc[22]


def test_confluence_close_mid_range_switches_off_spread_breakout() -> None:
    series = confluence_series(frame([*QUIET, (100.0, 103.2, 99.8, 101.5, 150.0)]))
    assert series["high_volume"].iloc[22] and not series["spread_breakout"].iloc[22]
    assert not series["signal_current"].iloc[22]


def test_confluence_lower_close_switches_off_momentum_breakout() -> None:
    series = confluence_series(frame([*QUIET, (100.1, 100.15, 97.0, 100.1, 150.0)]))
    assert series["high_volume"].iloc[22] and series["spread_breakout"].iloc[22]
    assert not series["momentum_breakout"].iloc[22] and not series["signal_current"].iloc[22]


def test_confluence_guard_needs_23_rows_as_current_and_22_bars_before_as_closed() -> None:
    rows = [*QUIET[1:], BREAKOUT]  # the breakout is bar 21
    assert detect_confluence(frame(rows), check_bar=-1) == (False, {})
    assert detect_confluence(frame([*rows, QUIET[0]]), check_bar=-2)[0]
    series = confluence_series(frame([*rows, QUIET[0]]))
    assert series["signal"].iloc[21] and not series["signal_current"].iloc[21]


def test_bar_class_up_close_short_of_half_way_to_the_high_is_down() -> None:
    # closes: 100 -> 106 (6 % move, not doji-like); the high 120 is 20 above the previous close
    h, l, c = (np.array([[101.0], [120.0]]), np.array([[99.0], [100.0]]), np.array([[100.0], [106.0]]))
    assert _bar_class(h, l, c, 5.0)[:, 0].tolist() == [0, -1]


def test_context_widest_previous_bar_most_recent_wins_a_tie() -> None:
    n = 9
    h = np.full((n, 1), 101.0)
    l = np.full((n, 1), 100.0)
    h[5], h[7] = 103.0, 103.0  # equal widest ranges (3) at lags 3 and 1 from t = 8
    h[2], l[2] = 97.0, 95.0  # a narrower bar with a low that only the longer span sees
    h[0], l[0] = 101.0, 90.0  # widest of all, but 8 bars back: never in the span
    hi, lo = _context(h, l, 7)
    # i* = 1 -> s = t - 7 = 1: bars 1..8 (with i* = 3 the span would start at bar 3)
    assert (hi[8, 0], lo[8, 0]) == (103.0, 95.0)
    assert np.isnan(hi[6, 0])


def test_context_without_a_positive_range_spans_up_to_two_bars_back() -> None:
    h = np.array([[100.0], [104.0], [100.0], [100.0], [100.0], [100.0], [100.0], [100.0], [110.0]])
    l = np.array([[90.0], [100.0], [100.0], [100.0], [100.0], [100.0], [100.0], [100.0], [95.0]])
    h[1], l[1] = 100.0, 100.0
    h[7], l[7] = 120.0, 120.0  # zero range too, but t-1 is outside this span
    hi, lo = _context(h, l, 7)
    # t = 8: previous 7 ranges all zero -> bars max(0, 8-8) .. 6: bar 0 included, bars 7-8 excluded
    assert (hi[8, 0], lo[8, 0]) == (100.0, 90.0)


# ---------------------------------------------------------------- declarations (issue 11)


def test_tuned_custom_panels_are_the_panels_with_those_keyword_arguments() -> None:
    from custom_strategies import confluence, volume_surge, weak_uptrend

    rng = np.random.default_rng(3)
    c = np.exp(np.cumsum(rng.normal(0, 0.03, (120, 5)), axis=0))
    o = np.vstack([c[:1], c[:-1]])
    arrays = (o, np.maximum(o, c) * 1.01, np.minimum(o, c) * 0.99, c, rng.lognormal(8, 1, c.shape))
    cases = [
        (volume_surge, {"lookback_period": 30, "std_dev": 2.5}),
        (weak_uptrend, {"min_weaknesses": 3}),
        (confluence, {"ctx_len": 9, "len_slow": 34, "range_floor": 0.2}),
    ]
    for module, overrides in cases:
        name = module.STRATEGY.name
        expected = getattr(module, f"{name}_panel")(*arrays, **overrides)
        tuned = module.STRATEGY.tuned("tuned", overrides).panel(*arrays)
        for key, values in expected.items():
            np.testing.assert_array_equal(tuned[key], values)


def test_custom_declarations_carry_the_module_defaults() -> None:
    from custom_strategies import confluence, pin_down, volume_surge, weak_uptrend

    assert volume_surge.STRATEGY.defaults() == {"lookback_period": 65, "std_dev": 4.0}
    assert weak_uptrend.STRATEGY.defaults() == {"min_weaknesses": 4}
    assert confluence.STRATEGY.defaults() == {
        "doji_threshold": 5.0, "ctx_len": 7, "range_floor": 0.10, "len_fast": 7, "len_mid": 13, "len_slow": 21,
    }
    assert pin_down.STRATEGY.params == ()
    assert volume_surge.STRATEGY.min_bars == 66  # spec 9.4: 66 rows for the last closed bar
