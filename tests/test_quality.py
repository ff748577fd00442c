"""Signal quality core (issue 16): known signals give known forward returns, excursions and baseline;
golden detector signals are found bar for bar; no look-ahead; order and grouping never matter."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scanner.quality import COLUMN_NAMES, bootstrap_interval, quality_table, validate_horizons
from scanner.quality.core import BOOTSTRAP_MAX_DRAW, cell_rng, first_bar
from scanner.registry import get_strategy
from tests.conftest import load_golden_expected, load_golden_frame

CLOSES = [100.0, 110.0, 99.0, 121.0, 88.0, 132.0]
HIGHS = [101.0, 112.0, 100.0, 125.0, 90.0, 135.0]
LOWS = [99.0, 105.0, 95.0, 118.0, 80.0, 130.0]
ROWS = 12


def hand_frame(closes=CLOSES, highs=HIGHS, lows=LOWS, volume=1000.0, start="2024-01-01") -> pd.DataFrame:
    """A clean daily frame: ``ROWS`` flat bars at 100, then the given bars (so cleaning keeps it)."""
    pad = ROWS - len(closes)
    close = [100.0] * pad + list(closes)
    high = [100.0] * pad + list(highs)
    low = [100.0] * pad + list(lows)
    vol = np.full(len(close), volume) if np.isscalar(volume) else np.asarray(volume, dtype=float)
    index = pd.date_range(start, periods=len(close), freq="D", tz="UTC", name="timestamp").as_unit("ms")
    return pd.DataFrame({"open": close, "high": high, "low": low, "close": close, "volume": vol}, index=index)


def fires_at(*rows: int, n: int = ROWS) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(rows)] = True
    return out


def run(frames, strategy="test_bar", signals=None, horizons=(1, 2), **kw) -> pd.DataFrame:
    given = {strategy: signals} if signals is not None else None
    return quality_table(frames, "demo", "1d", strategy, horizons, min_volume_usd=kw.pop("min_volume_usd", 0),
                         signals=given, **kw)


def cell(table: pd.DataFrame, horizon: int) -> pd.Series:
    return table.set_index("horizon").loc[horizon]


# --- hand-built signals: exact arithmetic --------------------------------------------------------

def test_forward_return_and_excursions_of_known_signals_are_exact() -> None:
    pad = ROWS - len(CLOSES)
    table = run({"AAA": hand_frame()}, signals={"AAA": fires_at(pad + 1, pad + 2)})  # closes 110 and 99
    one, two = cell(table, 1), cell(table, 2)
    assert one["signals"] == 2 and one["measured"] == 2
    r1 = [99 / 110 - 1, 121 / 99 - 1]
    assert one["mean_return"] == pytest.approx(np.mean(r1), rel=1e-12)
    assert one["median_return"] == pytest.approx(np.median(r1), rel=1e-12)
    assert one["positive_share"] == 0.5
    assert one["mean_mfe"] == pytest.approx(np.mean([100 / 110 - 1, 125 / 99 - 1]), rel=1e-12)
    assert one["mean_mae"] == pytest.approx(np.mean([95 / 110 - 1, 118 / 99 - 1]), rel=1e-12)
    assert two["mean_return"] == pytest.approx(np.mean([121 / 110 - 1, 88 / 99 - 1]), rel=1e-12)
    assert two["mean_mfe"] == pytest.approx(np.mean([125 / 110 - 1, 125 / 99 - 1]), rel=1e-12)
    assert two["mean_mae"] == pytest.approx(np.mean([95 / 110 - 1, 80 / 99 - 1]), rel=1e-12)


def test_a_down_strategy_reads_returns_and_excursions_in_its_favour() -> None:
    pad = ROWS - len(CLOSES)
    signals = {"AAA": fires_at(pad + 1)}  # close 110, next close 99, next high 100, next low 95
    up = cell(run({"AAA": hand_frame()}, "test_bar", signals), 1)
    down = cell(run({"AAA": hand_frame()}, "pin_down", signals), 1)
    assert get_strategy("pin_down").direction == "down" and down["direction"] == "down"
    assert down["mean_return"] == pytest.approx(-(99 / 110 - 1)) == pytest.approx(-up["mean_return"])
    assert down["mean_mfe"] == pytest.approx(1 - 95 / 110)  # the fall to the low is in its favour
    assert down["mean_mae"] == pytest.approx(1 - 100 / 110)  # the rise to the high is against it
    assert down["positive_share"] == 1.0 and up["positive_share"] == 0.0


def test_a_signal_at_the_last_closed_bar_counts_but_has_no_forward_return() -> None:
    last = ROWS - 1
    table = run({"AAA": hand_frame()}, signals={"AAA": fires_at(last - 1, last)})
    one, two = cell(table, 1), cell(table, 2)
    assert one["signals"] == two["signals"] == 2
    assert one["measured"] == 1 and one["mean_return"] == pytest.approx(132 / 88 - 1)
    assert two["measured"] == 0 and math.isnan(two["mean_return"]) and math.isnan(two["edge_low"])
    assert two["baseline_bars"] == one["baseline_bars"] - 1 == two["bars"] - 2


def test_the_volume_filter_is_applied_at_the_signal_bar() -> None:
    pad = ROWS - len(CLOSES)
    volume = np.full(ROWS, 1000.0)
    volume[pad + 1] = 1.0  # 110 USD at the first signal bar, 99,000 at the second
    volume[pad + 3] = 1.0  # the bar after the second signal is thin: must not matter
    table = run({"AAA": hand_frame(volume=volume)}, signals={"AAA": fires_at(pad + 1, pad + 2)},
                min_volume_usd=50_000)
    one = cell(table, 1)
    assert one["signals"] == 1 and one["mean_return"] == pytest.approx(121 / 99 - 1)
    usd = volume * hand_frame()["close"].to_numpy()
    assert one["bars"] == int((usd[first_bar(get_strategy("test_bar")):] >= 50_000).sum())


def test_the_baseline_is_every_eligible_bar_and_equals_the_signals_when_all_fire() -> None:
    frames = {"AAA": hand_frame(), "BBB": hand_frame(start="2023-06-01")}
    start = first_bar(get_strategy("test_bar"))
    every = {s: np.arange(ROWS) >= start for s in frames}
    table = run(frames, signals=every)
    for _, row in table.iterrows():
        assert row["signals"] == row["bars"] == 2 * (ROWS - start)
        assert row["measured"] == row["baseline_bars"]
        for name in ("mean_return", "median_return", "positive_share", "mean_mfe", "mean_mae"):
            assert row[name] == row[f"baseline_{name}"]
        assert row["edge"] == 0.0 and row["firing_rate_per_100"] == 100.0
    expected = [c1 / c0 - 1 for frame in frames.values() for c0, c1 in
                zip(frame["close"].to_numpy()[start:-1], frame["close"].to_numpy()[start + 1:])]
    assert cell(table, 1)["baseline_mean_return"] == pytest.approx(np.mean(expected), rel=1e-12)


def test_since_restricts_signals_and_baseline_to_later_bars() -> None:
    pad = ROWS - len(CLOSES)
    frame = hand_frame()
    table = run({"AAA": frame}, signals={"AAA": fires_at(pad + 1, pad + 2)}, since=frame.index[pad + 2])
    one = cell(table, 1)
    assert one["signals"] == 1 and one["mean_return"] == pytest.approx(121 / 99 - 1)
    assert one["bars"] == ROWS - (pad + 2)


def test_signals_on_a_thin_or_unusable_symbol_are_reported_not_counted() -> None:
    frames = {"AAA": hand_frame(), "SHORT": hand_frame().iloc[:5]}
    table = run(frames, signals={"AAA": fires_at(8), "SHORT": fires_at(2, n=5)})
    assert cell(table, 1)["signals"] == 1 and cell(table, 1)["symbols"] == 1
    assert "SHORT" in table.attrs["skipped"] and "needs" in table.attrs["skipped"]["SHORT"]


def test_table_has_the_documented_columns_one_row_per_strategy_and_horizon() -> None:
    table = quality_table({"AAA": hand_frame()}, "demo", "1d", "test_bar,pin_down", (1, 3, 5),
                          min_volume_usd=0)
    assert tuple(table.columns) == COLUMN_NAMES
    assert list(zip(table["strategy"], table["horizon"])) == [
        (s, h) for s in ("test_bar", "pin_down") for h in (1, 3, 5)
    ]


# --- real detectors: golden signals, grouping, order, truncation ---------------------------------

GOLDEN_CASES = [
    ("pub_planted_vsa", "breakout_bar", "breakout_bar"),
    ("pub_planted_vsa", "reversal_bar", "reversal_bar"),
    ("pub_planted_custom", "volume_surge", "volume_surge@closed"),
    ("pub_planted_custom", "weak_uptrend", "weak_uptrend"),
    ("pub_planted_custom", "pin_down", "pin_down"),
    ("pub_planted_custom", "confluence", "confluence@closed"),
    ("pub_real_xrp_eth_5m", "pin_down", "pin_down"),
    ("pub_rw_regimes", "stop_bar", "stop_bar"),
]


def golden_fires(dataset: str, key: str, closed_rows: int) -> list[int]:
    frame = load_golden_frame(dataset)
    stamps = set(pd.to_datetime(load_golden_expected(dataset)["strategies"][key]["fires"], utc=True))
    return [t for t, stamp in enumerate(frame.index[:closed_rows]) if stamp in stamps]


@pytest.mark.parametrize(("dataset", "strategy", "key"), GOLDEN_CASES)
def test_detector_signals_are_the_golden_fires_and_their_returns_are_measured(dataset, strategy, key) -> None:
    frame = load_golden_frame(dataset).iloc[:-1]  # every row a closed bar
    fires = [t for t in golden_fires(dataset, key, len(frame)) if t >= first_bar(get_strategy(strategy))]
    assert fires, "the case must have signals"
    table = quality_table({"X": frame}, "demo", "1d", strategy, (1, 4), min_volume_usd=0)
    close = frame["close"].to_numpy()
    sign = -1.0 if get_strategy(strategy).direction == "down" else 1.0
    for k in (1, 4):
        row = cell(table, k)
        measured = [t for t in fires if t + k < len(frame)]
        assert row["signals"] == len(fires) and row["measured"] == len(measured)
        expected = np.mean([sign * (close[t + k] / close[t] - 1) for t in measured])
        assert row["mean_return"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("cut", [150, 260, 399])
def test_truncating_the_history_after_a_bar_never_changes_what_is_measured_before_it(cut: int) -> None:
    full = load_golden_frame("pub_planted_custom").iloc[:-1]
    short = full.iloc[:cut]
    names = "volume_surge,weak_uptrend,pin_down,confluence,stop_bar"
    table = quality_table({"X": short}, "demo", "1d", names, (1, 3), min_volume_usd=0)
    close = full["close"].to_numpy()
    keys = {"volume_surge": "volume_surge@closed", "confluence": "confluence@closed"}
    for name in names.split(","):
        fires = [t for t in golden_fires("pub_planted_custom", keys.get(name, name), len(full))
                 if first_bar(get_strategy(name)) <= t < cut]
        row = table[(table["strategy"] == name) & (table["horizon"] == 3)].iloc[0]
        assert row["signals"] == len(fires)
        measured = [t for t in fires if t + 3 < cut]
        assert row["measured"] == len(measured)
        if measured:
            sign = -1.0 if row["direction"] == "down" else 1.0
            expected = np.mean([sign * (close[t + 3] / close[t] - 1) for t in measured])
            assert row["mean_return"] == pytest.approx(expected)


def test_symbols_of_different_lengths_give_what_each_gives_alone() -> None:
    names = ("pub_planted_custom", "pub_planted_vsa", "pub_real_xrp_eth_5m", "pub_trend_runs")
    frames = {name: load_golden_frame(name).iloc[:-1] for name in names}
    strategies = "pin_down,confluence,volume_surge,breakout_bar"
    together = quality_table(frames, "demo", "1d", strategies, (1,), min_volume_usd=0)
    alone = [quality_table({n: f}, "demo", "1d", strategies, (1,), min_volume_usd=0)
             for n, f in frames.items()]
    for name in strategies.split(","):
        parts = [t[t["strategy"] == name].iloc[0] for t in alone]
        row = together[together["strategy"] == name].iloc[0]
        assert row["signals"] == sum(p["signals"] for p in parts)
        assert row["bars"] == sum(p["bars"] for p in parts)
        total = sum(p["mean_return"] * p["measured"] for p in parts if p["measured"])
        assert row["mean_return"] == pytest.approx(total / row["measured"], rel=1e-9)


def test_the_order_of_symbols_does_not_change_the_result() -> None:
    names = ["pub_planted_custom", "pub_planted_vsa", "pub_rw_regimes", "pub_trend_runs", "pub_crash"]
    frames = {name: load_golden_frame(name).iloc[:-1] for name in names}
    forward = quality_table(frames, "demo", "1d", "all", (1, 5), min_volume_usd=0, seed=3)
    backward = quality_table(dict(reversed(list(frames.items()))), "demo", "1d", "all", (1, 5),
                             min_volume_usd=0, seed=3)
    pd.testing.assert_frame_equal(forward, backward)


def test_the_input_frames_are_left_unchanged() -> None:
    frame = load_golden_frame("pub_planted_custom")
    before = frame.copy(deep=True)
    quality_table({"X": frame}, "demo", "1d", "all", (1,), min_volume_usd=0)
    pd.testing.assert_frame_equal(frame, before)


# --- bootstrap ------------------------------------------------------------------------------------

def test_the_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    values = np.random.default_rng(1).normal(0.01, 0.05, 400)
    first = bootstrap_interval(values, cell_rng(7, "x"))
    assert first == bootstrap_interval(values, cell_rng(7, "x"))
    assert first != bootstrap_interval(values, cell_rng(8, "x"))
    low, high = first
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * values.std() / math.sqrt(len(values)), rel=0.15)
    assert all(math.isnan(x) for x in bootstrap_interval(np.empty(0), cell_rng(7, "x")))


def test_many_signals_draw_a_subsample_and_keep_the_full_interval_width() -> None:
    n = 3 * BOOTSTRAP_MAX_DRAW
    values = np.random.default_rng(2).standard_t(5, n) * 0.03
    low, high = bootstrap_interval(values, cell_rng(0, "big"))
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * values.std() / math.sqrt(n), rel=0.12)


def test_edge_interval_is_the_signal_mean_interval_minus_the_baseline_mean() -> None:
    frame = load_golden_frame("pub_rw_regimes").iloc[:-1]
    table = quality_table({"X": frame}, "demo", "1d", "stop_bar", (1,), min_volume_usd=0, seed=5)
    row = table.iloc[0]
    assert row["edge_low"] < row["edge"] < row["edge_high"]
    again = quality_table({"X": frame}, "demo", "1d", "stop_bar", (1,), min_volume_usd=0, seed=5)
    pd.testing.assert_frame_equal(table, again)


# --- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"timeframe": "2h"}, ["unknown timeframe", "1d", "4h"]),
        ({"strategies": "breakout"}, ["unknown strategy", "breakout_bar"]),
        ({"horizons": "0"}, ["horizons", "1,3,5,10"]),
        ({"horizons": "1,x"}, ["horizons", "1,3,5,10"]),
        ({"horizons": [1.5]}, ["horizons"]),
        ({"min_volume_usd": -1}, ["non-negative number"]),
        ({"since": "yesterdayish"}, ["since", "2024-01-31"]),
        ({"seed": -1}, ["seed"]),
    ],
)
def test_bad_arguments_raise_a_value_error_naming_the_valid_choices(kwargs, words) -> None:
    args = {"frames": {"AAA": hand_frame()}, "exchange": "demo", "timeframe": "1d", "strategies": "test_bar",
            "horizons": (1,), **kwargs}
    with pytest.raises(ValueError) as exc:
        quality_table(**args)
    for word in words:
        assert word in str(exc.value)


def test_horizons_accept_a_comma_list_and_sort_it() -> None:
    assert validate_horizons("10, 1,5,5") == (1, 5, 10)
    assert validate_horizons([3, 2.0]) == (2, 3)


def test_the_benchmark_runs_end_to_end_on_a_small_size(capsys) -> None:
    from bench import quality as bench_quality

    assert bench_quality.main(["--symbols", "12", "--bars", "150"]) == 0
    out = capsys.readouterr().out
    assert "12 symbols x 150 daily bars x 10 strategies x 4 horizons" in out
    assert "wall" in out and "peak RSS" in out
