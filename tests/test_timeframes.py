"""Timeframes as data and the daily -> 2d/3d/4d/1w aggregation of strategies spec section 10."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exchanges.demo import DemoClient
from utils.timeframes import (
    SCAN_BARS,
    TIMEFRAME_NAMES,
    TIMEFRAMES,
    aggregate_daily,
    bar_period,
    closed_bar_label,
    closes_between,
    daily_bars_needed,
    get_timeframe,
    last_close,
    next_close,
)

NOW = pd.Timestamp("2025-06-04 13:30", tz="UTC")


def daily(first: str, days: int, unit: str = "ms") -> pd.DataFrame:
    """Daily bars encoding their position i: open i, high 100+i, low -i, close i+0.5, volume 2^i."""
    index = pd.date_range(first, periods=days, freq="D", tz="UTC", name="timestamp").as_unit(unit)
    i = np.arange(days, dtype="float64")
    return pd.DataFrame(
        {"open": i, "high": 100 + i, "low": -i, "close": i + 0.5, "volume": 2.0**i}, index=index
    )


def bar(label: str, first: int, last: int) -> dict:
    """The expected aggregate of daily positions first..last (inclusive) of ``daily``."""
    return {
        "label": pd.Timestamp(label, tz="UTC"),
        "open": float(first),
        "high": 100.0 + last,
        "low": -float(last),
        "close": last + 0.5,
        "volume": float(sum(2.0**i for i in range(first, last + 1))),
    }


def assert_bars(frame: pd.DataFrame, expected: list[dict]) -> None:
    assert list(frame.index) == [e["label"] for e in expected]
    for col in ("open", "high", "low", "close", "volume"):
        assert frame[col].tolist() == [e[col] for e in expected], col


def test_2d_periods_start_at_the_2025_03_20_anchor() -> None:
    frame = aggregate_daily(daily("2025-03-20", 6), "2d")
    assert_bars(frame, [bar("2025-03-20", 0, 1), bar("2025-03-22", 2, 3), bar("2025-03-24", 4, 5)])


def test_3d_days_before_the_anchor_get_negative_periods_by_floor_division() -> None:
    # 2025-03-14 .. 03-19 are 6..1 days before the anchor: periods -2, -2, -2, -1, -1, -1.
    frame = aggregate_daily(daily("2025-03-14", 6), "3d")
    assert_bars(frame, [bar("2025-03-14", 0, 2), bar("2025-03-17", 3, 5)])


def test_4d_periods_start_at_the_2025_03_22_anchor() -> None:
    frame = aggregate_daily(daily("2025-03-22", 8), "4d")
    assert_bars(frame, [bar("2025-03-22", 0, 3), bar("2025-03-26", 4, 7)])


def test_1w_bars_open_on_monday() -> None:
    # 2025-03-17 is a Monday; 14 days from it are two full weeks.
    frame = aggregate_daily(daily("2025-03-17", 14), "1w")
    assert_bars(frame, [bar("2025-03-17", 0, 6), bar("2025-03-24", 7, 13)])
    assert (frame.index.day_of_week == 0).all()


def test_incomplete_leading_period_is_dropped() -> None:
    # 2025-03-21 is the second day of the 2d period starting 2025-03-20.
    frame = aggregate_daily(daily("2025-03-21", 5), "2d")
    assert_bars(frame, [bar("2025-03-22", 1, 2), bar("2025-03-24", 3, 4)])


def test_incomplete_leading_period_is_kept_when_it_is_the_only_one() -> None:
    frame = aggregate_daily(daily("2025-03-23", 2), "4d")
    assert_bars(frame, [bar("2025-03-22", 0, 1)])


def test_forming_trailing_period_is_kept_incomplete() -> None:
    frame = aggregate_daily(daily("2025-03-20", 5), "3d")
    assert_bars(frame, [bar("2025-03-20", 0, 2), bar("2025-03-23", 3, 4)])


def test_label_is_the_period_start_even_when_that_day_is_missing() -> None:
    # 03-20, 03-21: a 2-day leading period (dropped); 03-22 missing; 03-23..03-25; 03-26, 03-27.
    data = daily("2025-03-20", 8).drop(pd.Timestamp("2025-03-22", tz="UTC"))
    frame = aggregate_daily(data, "4d")
    assert list(frame.index) == [pd.Timestamp("2025-03-22", tz="UTC"), pd.Timestamp("2025-03-26", tz="UTC")]
    assert frame["open"].iloc[0] == 3.0  # the first day present in that period


@pytest.mark.parametrize("unit", ["s", "ms", "ns"])
def test_output_is_float64_utc_and_keeps_the_index_unit(unit: str) -> None:
    frame = aggregate_daily(daily("2025-03-20", 9, unit=unit), "3d")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert (frame.dtypes == "float64").all()
    assert str(frame.index.tz) == "UTC"
    assert frame.index.unit == unit
    assert frame.index.name == "timestamp"


def test_1d_is_the_daily_frame_itself_and_empty_input_gives_an_empty_frame() -> None:
    data = daily("2025-03-20", 4)
    pd.testing.assert_frame_equal(aggregate_daily(data, "1d"), data)
    empty = aggregate_daily(data.iloc[:0], "2d")
    assert empty.empty and list(empty.columns) == list(data.columns)


@pytest.mark.parametrize("name", ["2d", "3d", "4d", "1w"])
@pytest.mark.parametrize("first", ["2024-12-30", "2025-03-19", "2025-03-21", "2025-07-04"])
def test_aggregation_matches_a_straightforward_groupby_reference(name: str, first: str) -> None:
    tf = TIMEFRAMES[name]
    data = daily(first, 40)
    data["volume"] = np.random.default_rng(7).uniform(1, 5, 40)
    days = (data.index - tf.anchor).days
    period = np.floor_divide(days, tf.period_days)
    ref = data.groupby(period).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    counts = data.groupby(period).size()
    if counts.iloc[0] < tf.period_days:
        ref = ref.iloc[1:]
    ref.index = pd.DatetimeIndex(
        [tf.anchor + pd.Timedelta(days=int(p) * tf.period_days) for p in ref.index], name="timestamp"
    ).as_unit("ms")
    pd.testing.assert_frame_equal(aggregate_daily(data, name), ref, rtol=1e-12)


async def test_weeks_built_from_daily_equal_native_monday_weeks_of_the_demo_exchange() -> None:
    client = DemoClient(now=NOW)
    symbol = client.symbols[3]
    days = await client.fetch_klines(symbol, "1d", daily_bars_needed("1w"))
    derived = aggregate_daily(days, "1w")
    native = await client.fetch_klines(symbol, "1w", len(derived))
    assert len(derived) == SCAN_BARS + 1  # to a Wednesday: 100 full weeks and the forming one
    pd.testing.assert_frame_equal(derived, native, rtol=1e-12)


def test_daily_bars_needed_gives_scan_bars_periods_plus_the_forming_one() -> None:
    assert {n: daily_bars_needed(n) for n in ("1w", "4d", "3d", "2d", "1d")} == {
        "1w": 706, "4d": 403, "3d": 302, "2d": 201, "1d": 100,
    }
    with pytest.raises(ValueError, match="not built from daily"):
        daily_bars_needed("4h")


@pytest.mark.parametrize("name", ["2d", "3d", "4d", "1w"])
def test_daily_depth_gives_at_least_scan_bars_rows_whatever_the_day_in_the_period(name: str) -> None:
    k, needed = TIMEFRAMES[name].period_days, daily_bars_needed(name)
    for last_day in pd.date_range("2025-06-01", periods=k, freq="D"):
        first = last_day - pd.Timedelta(days=needed - 1)
        assert len(aggregate_daily(daily(first.strftime("%Y-%m-%d"), needed), name)) >= SCAN_BARS


def test_scan_depth_covers_the_deepest_detector_warm_up() -> None:
    assert SCAN_BARS >= 66  # volume surge's last closed bar needs 66 rows (spec 9.4)
    assert {tf.bars for tf in TIMEFRAMES.values()} == {SCAN_BARS}
    assert tuple(TIMEFRAMES) == TIMEFRAME_NAMES


def test_timeframes_declare_native_interval_and_anchors() -> None:
    assert {n: TIMEFRAMES[n].native for n in TIMEFRAME_NAMES} == {
        "1w": "1w", "4d": "1d", "3d": "1d", "2d": "1d", "1d": "1d", "4h": "4h",
    }
    assert TIMEFRAMES["2d"].anchor == TIMEFRAMES["3d"].anchor == pd.Timestamp("2025-03-20", tz="UTC")
    assert TIMEFRAMES["4d"].anchor == pd.Timestamp("2025-03-22", tz="UTC")
    assert TIMEFRAMES["1w"].anchor.day_of_week == 0
    assert not TIMEFRAMES["4h"].daily_based and not TIMEFRAMES["1d"].aggregated


def test_unknown_timeframe_raises_listing_the_valid_names() -> None:
    with pytest.raises(ValueError, match="1w, 4d, 3d, 2d, 1d, 4h"):
        get_timeframe("5d")
    assert get_timeframe("4d") is TIMEFRAMES["4d"]


# --- bar boundaries: last close, next close, the bar a close ends --------------------------------


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.mark.parametrize(
    ("timeframe", "at", "last", "following"),
    [
        ("4h", "2025-06-04 13:30", "2025-06-04 12:00", "2025-06-04 16:00"),
        ("4h", "2025-06-04 23:59:59", "2025-06-04 20:00", "2025-06-05 00:00"),
        ("1d", "2025-06-04 13:30", "2025-06-04", "2025-06-05"),
        ("2d", "2025-03-21 08:00", "2025-03-20", "2025-03-22"),
        ("2d", "2025-03-19 08:00", "2025-03-18", "2025-03-20"),
        ("3d", "2025-03-22 23:00", "2025-03-20", "2025-03-23"),
        ("3d", "2025-03-19 00:00", "2025-03-17", "2025-03-20"),
        ("4d", "2025-03-25 12:00", "2025-03-22", "2025-03-26"),
        ("1w", "2025-06-04 13:30", "2025-06-02", "2025-06-09"),  # a Wednesday: the week opened Monday
        ("1w", "2025-06-08 23:59", "2025-06-02", "2025-06-09"),
    ],
)
def test_last_and_next_close_bracket_the_instant_on_the_timeframes_own_boundaries(timeframe, at, last, following):
    assert last_close(timeframe, utc(at)) == utc(last)
    assert next_close(timeframe, utc(at)) == utc(following)


def test_an_instant_on_a_boundary_is_the_last_close_and_the_next_close_is_one_bar_later():
    monday = utc("2025-04-07")
    for name in TIMEFRAME_NAMES:
        assert last_close(name, monday) == monday
        assert next_close(name, monday) == monday + bar_period(name)


def test_a_bar_labelled_l_of_a_k_day_timeframe_closes_at_l_plus_k_days():
    for name, days in (("2d", 2), ("3d", 3), ("4d", 4), ("1w", 7), ("1d", 1)):
        label = TIMEFRAMES[name].anchor or utc("2025-03-20")
        close = label + pd.Timedelta(days=days)
        assert closed_bar_label(name, close) == label
        frame = aggregate_daily(daily(str(label.date()), days + 1), name)
        assert frame.index[0] == label and next_close(name, frame.index[0]) == close


def test_instants_may_be_epoch_seconds_naive_utc_or_another_zone():
    seconds = utc("2025-06-04 13:30").timestamp()
    berlin = pd.Timestamp("2025-06-04 15:30", tz="Europe/Berlin")
    for at in (seconds, pd.Timestamp("2025-06-04 13:30"), berlin, "2025-06-04 13:30"):
        assert last_close("4h", at) == utc("2025-06-04 12:00")


def test_closes_between_lists_the_boundaries_after_start_up_to_and_including_end():
    assert closes_between("4h", utc("2025-06-04 12:00"), utc("2025-06-04 20:00")) == [
        utc("2025-06-04 16:00"), utc("2025-06-04 20:00")
    ]
    assert closes_between("1w", utc("2025-06-03"), utc("2025-06-08")) == []


def test_bar_period_is_four_hours_or_the_period_in_days():
    assert bar_period("4h") == pd.Timedelta(hours=4)
    assert [bar_period(n).days for n in ("1d", "2d", "3d", "4d", "1w")] == [1, 2, 3, 4, 7]
