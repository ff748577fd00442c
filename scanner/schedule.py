"""When the serve loop scans: each timeframe's closes, grouped by instant, and what is due now.

Pure functions of the clock over ``utils.timeframes`` bar boundaries (nothing here sleeps or
reads state), plus :class:`SimulatedClock`, the jumping clock that tests, the soak benchmark and
rehearsals inject to run weeks of closes in seconds.

A close at ``T`` is *ready* at ``T + settle``: the exchanges have had ``settle`` seconds to open the
next bar, so the bar that closed at ``T`` is the last closed one in what they return.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from utils.timeframes import TIMEFRAME_NAMES, closes_between, last_close, next_close

# A timeframe whose last scanned close is older than this many closes is caught up from here:
# four hours of 4h bars, six days of daily bars, six weeks of weekly ones.
CATCH_UP_BARS = 6
DURATION_UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")

Group = tuple[pd.Timestamp, tuple[str, ...]]  # a close instant and the timeframes closing at it
Work = tuple[pd.Timestamp, dict[str, tuple[str, ...]]]  # a close instant, exchange -> timeframes


def ordered(timeframes: Iterable[str]) -> tuple[str, ...]:
    """``timeframes`` without repeats, longest first (the order of ``TIMEFRAME_NAMES``)."""
    wanted = set(timeframes)
    return tuple(name for name in TIMEFRAME_NAMES if name in wanted)


def ready_close(timeframe: str, now: pd.Timestamp, settle: float) -> pd.Timestamp:
    """The latest close of ``timeframe`` that is ready at ``now`` (closed at least ``settle`` s ago)."""
    return last_close(timeframe, now - pd.Timedelta(seconds=settle))


def next_ready(timeframes: Iterable[str], now: pd.Timestamp, settle: float) -> pd.Timestamp:
    """The first instant after ``now`` at which another close of ``timeframes`` becomes ready."""
    shift = pd.Timedelta(seconds=settle)
    return min(next_close(tf, now - shift) for tf in timeframes) + shift


def next_closes(timeframes: Iterable[str], now: pd.Timestamp) -> dict[str, pd.Timestamp]:
    """The next close of each timeframe after ``now`` (what ``--dry-run`` and the status show)."""
    return {tf: next_close(tf, now) for tf in ordered(timeframes)}


def closes_in(timeframes: Iterable[str], start: pd.Timestamp, end: pd.Timestamp) -> list[Group]:
    """Every close instant in ``(start, end]`` with the timeframes closing at it, oldest first.

    Timeframes in one entry close together and are scanned in one call (one daily fetch per symbol).
    """
    groups: dict[pd.Timestamp, list[str]] = {}
    for tf in ordered(timeframes):
        for close in closes_between(tf, start, end):
            groups.setdefault(close, []).append(tf)
    return [(close, tuple(groups[close])) for close in sorted(groups)]


def catch_up_closes(
    timeframe: str,
    now: pd.Timestamp,
    settle: float,
    recorded: Iterable[pd.Timestamp],
    first_recorded: pd.Timestamp | None,
    limit: int = CATCH_UP_BARS,
) -> list[pd.Timestamp]:
    """Ready closes of ``timeframe`` not recorded yet, oldest first.

    Looks back ``limit`` closes, never before the first close ever recorded (a first start scans
    only the latest close, it does not backfill history). ``recorded`` holds the closes already
    scanned or given up.
    """
    latest = ready_close(timeframe, now, settle)
    if first_recorded is None:
        window = [latest]
    else:
        window = closes_between(timeframe, first_recorded - pd.Timedelta(milliseconds=1), latest)[-limit:]
    done = set(recorded)
    return [close for close in window if close not in done]


def group_work(items: Iterable[tuple[str, str, pd.Timestamp]]) -> list[Work]:
    """(exchange, timeframe, close) items -> per close instant (oldest first), exchange -> timeframes."""
    by_close: dict[pd.Timestamp, dict[str, list[str]]] = {}
    for exchange, timeframe, close in items:
        by_close.setdefault(close, {}).setdefault(exchange, []).append(timeframe)
    return [
        (close, {ex: ordered(tfs) for ex, tfs in by_close[close].items()}) for close in sorted(by_close)
    ]


def retry_deadline(timeframes: Sequence[str], close: pd.Timestamp) -> pd.Timestamp:
    """When retrying a failed scan of ``close`` stops: the earliest next close of its timeframes."""
    return min(next_close(tf, close) for tf in timeframes)


def parse_duration(text: str) -> float:
    """Seconds in ``"90s"``, ``"30m"``, ``"1h"``, ``"1h30m"`` or ``"1d"``; ``ValueError`` otherwise."""
    value = str(text).strip().lower()
    parts = _DURATION_PART.findall(value)
    seconds = sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)
    if not value or "".join(n + u for n, u in parts) != value or not seconds > 0:
        raise ValueError(
            f"invalid duration {text!r}; use a positive number with a unit, e.g. 90s, 30m, 1h, 1d"
        )
    return seconds


@dataclass
class SimulatedClock:
    """A clock that jumps instead of waiting: ``clock()`` reads it, ``await clock.sleep(s)`` moves it.

    Every move calls the ``on_advance`` callbacks with the new time (a fake exchange server follows
    it with ``set_now``). The serve loop only sleeps while none of its work is in flight, so a
    simulated week passes in as many steps as it has closes.
    """

    now: float
    on_advance: list[Callable[[float], None]] = field(default_factory=list)
    sleeps: int = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if seconds > 0:
            self.advance(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Jump ``seconds`` ahead (a suspended laptop waking up, or a clock step)."""
        self.now += seconds
        for callback in self.on_advance:
            callback(self.now)
