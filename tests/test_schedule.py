"""The serve schedule: close times of every timeframe over a year, grouping, catch-up and retries.

The expected closes are computed by hand, independently of utils.timeframes: with Python dates and
the rules of strategies spec section 10 (4h every four hours UTC, 1d at midnight, 2d/3d from
2025-03-20, 4d from 2025-03-22, 1w on Mondays), walking the year day by day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from scanner import schedule
from utils.timeframes import TIMEFRAME_NAMES

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)
ANCHORS = {"2d": (date(2025, 3, 20), 2), "3d": (date(2025, 3, 20), 3), "4d": (date(2025, 3, 22), 4)}


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def hand_closes(timeframe: str) -> list[datetime]:
    """Every close of ``timeframe`` in (YEAR_START, YEAR_END], by walking the calendar."""
    out = []
    day = YEAR_START.date()
    while day <= YEAR_END.date():
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if timeframe == "4h":
            out += [midnight + timedelta(hours=h) for h in range(0, 24, 4)]
        elif timeframe == "1d":
            out.append(midnight)
        elif timeframe == "1w":
            if day.weekday() == 0:
                out.append(midnight)
        else:
            anchor, k = ANCHORS[timeframe]
            if (day - anchor).days % k == 0:
                out.append(midnight)
        day += timedelta(days=1)
    return [t for t in out if YEAR_START < t <= YEAR_END]


@pytest.mark.parametrize("timeframe", TIMEFRAME_NAMES)
def test_every_close_of_a_year_matches_the_hand_computed_calendar(timeframe):
    expected = [pd.Timestamp(t) for t in hand_closes(timeframe)]
    got = [close for close, tfs in schedule.closes_in([timeframe], utc("2026-01-01"), utc("2027-01-01"))]
    assert got == expected
    counts = {"4h": 365 * 6, "1d": 365, "1w": 52}  # 2026 has 52 Mondays after Jan 1 (Jan 5 .. Dec 28)
    if timeframe in counts:
        assert len(got) == counts[timeframe]


@pytest.mark.parametrize("timeframe", TIMEFRAME_NAMES)
def test_next_close_from_any_hour_of_the_year_is_the_first_hand_computed_close_after_it(timeframe):
    closes = [pd.Timestamp(t) for t in hand_closes(timeframe)]
    at = utc("2026-01-01 00:30")
    index = 0
    while at < utc("2026-12-20"):
        while closes[index] <= at:
            index += 1
        assert schedule.next_closes([timeframe], at)[timeframe] == closes[index]
        at += pd.Timedelta(hours=7, minutes=13)  # visits every hour of the day and every weekday


def test_hand_computed_closes_of_the_multi_day_timeframes_in_early_2026():
    assert [c for c, _ in schedule.closes_in(["2d"], utc("2026-01-01"), utc("2026-01-06"))] == [
        utc("2026-01-02"), utc("2026-01-04"), utc("2026-01-06")
    ]
    # 2026-01-02 is 288 days after 2025-03-20 (a multiple of 2 and 3) and 286 after 2025-03-22.
    assert [c for c, _ in schedule.closes_in(["3d"], utc("2026-01-01"), utc("2026-01-08"))] == [
        utc("2026-01-02"), utc("2026-01-05"), utc("2026-01-08")
    ]
    assert [c for c, _ in schedule.closes_in(["4d"], utc("2026-01-01"), utc("2026-01-09"))] == [
        utc("2026-01-04"), utc("2026-01-08")
    ]


def test_a_monday_midnight_closes_4h_1d_2d_3d_4d_and_1w_together_in_one_group():
    # 2025-04-07 is a Monday 18 days after the 2d/3d anchor (2025-03-20) and 16 after the 4d one.
    groups = dict(schedule.closes_in(TIMEFRAME_NAMES, utc("2025-04-06 22:00"), utc("2025-04-07 02:00")))
    assert groups == {utc("2025-04-07"): ("1w", "4d", "3d", "2d", "1d", "4h")}
    week = schedule.closes_in(TIMEFRAME_NAMES, utc("2025-04-07"), utc("2025-04-14"))
    assert week[-1] == (utc("2025-04-14"), ("1w", "1d", "4h"))
    assert (utc("2025-04-09"), ("2d", "1d", "4h")) in week


def test_a_close_is_ready_only_after_the_settle_time():
    assert schedule.ready_close("1d", utc("2025-04-07 00:00:10"), settle=15) == utc("2025-04-06")
    assert schedule.ready_close("1d", utc("2025-04-07 00:00:15"), settle=15) == utc("2025-04-07")
    assert schedule.next_ready(["1d", "4h"], utc("2025-04-07 00:00:10"), settle=15) == utc("2025-04-07 00:00:15")
    assert schedule.next_ready(["1d", "1w"], utc("2025-04-07 00:00:20"), settle=15) == utc("2025-04-08 00:00:15")


def test_a_first_start_scans_only_the_latest_close_and_does_not_backfill():
    due = schedule.catch_up_closes("4h", utc("2025-04-07 09:00"), 15, recorded=set(), first_recorded=None)
    assert due == [utc("2025-04-07 08:00")]


def test_a_restart_catches_up_every_close_missed_while_down_oldest_first():
    recorded = {utc("2025-04-07 00:00"), utc("2025-04-07 04:00")}
    due = schedule.catch_up_closes("4h", utc("2025-04-07 17:00"), 15, recorded, utc("2025-04-07 00:00"))
    assert due == [utc("2025-04-07 08:00"), utc("2025-04-07 12:00"), utc("2025-04-07 16:00")]


def test_a_close_left_unrecorded_inside_the_catch_up_window_is_scanned_too():
    # 04-06 20:00 was never recorded (the process stopped while it was being retried).
    recorded = {utc("2025-04-07 00:00"), utc("2025-04-07 04:00")}
    due = schedule.catch_up_closes("4h", utc("2025-04-07 17:00"), 15, recorded, utc("2025-04-01"))
    assert due == [utc(t) for t in ("2025-04-06 20:00", "2025-04-07 08:00", "2025-04-07 12:00", "2025-04-07 16:00")]


def test_catch_up_looks_back_a_bounded_number_of_closes():
    due = schedule.catch_up_closes("1d", utc("2025-05-01 12:00"), 15, set(), utc("2025-01-01"))
    assert len(due) == schedule.CATCH_UP_BARS and due[-1] == utc("2025-05-01")


def test_catch_up_never_reaches_before_the_first_recorded_close():
    due = schedule.catch_up_closes("1d", utc("2025-04-07 12:00"), 15, {utc("2025-04-06")}, utc("2025-04-06"))
    assert due == [utc("2025-04-07")]


def test_work_is_grouped_per_close_instant_with_each_exchanges_timeframes_in_order():
    monday, later = utc("2025-04-07"), utc("2025-04-07 04:00")
    items = [("b", "4h", later), ("a", "4h", monday), ("a", "1w", monday), ("a", "1d", monday), ("b", "1d", monday)]
    assert schedule.group_work(items) == [
        (monday, {"a": ("1w", "1d", "4h"), "b": ("1d",)}),
        (later, {"b": ("4h",)}),
    ]


def test_a_failed_scan_is_retried_until_the_next_close_of_its_timeframes():
    assert schedule.retry_deadline(["4h"], utc("2025-04-07")) == utc("2025-04-07 04:00")
    assert schedule.retry_deadline(["1w", "1d"], utc("2025-04-07")) == utc("2025-04-08")


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("1d", 86400)])
def test_durations_take_a_unit(text, seconds):
    assert schedule.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1", "", "soon", "-1h", "0s", "1h 30m", "h"])
def test_a_bad_duration_names_the_accepted_form(text):
    with pytest.raises(ValueError, match="e.g. 90s, 30m, 1h"):
        schedule.parse_duration(text)


async def test_the_simulated_clock_jumps_on_sleep_and_tells_its_followers():
    seen = []
    clock = schedule.SimulatedClock(1000.0, on_advance=[seen.append])
    await clock.sleep(60)
    clock.advance(5)
    assert clock() == 1065.0 and seen == [1060.0, 1065.0]
