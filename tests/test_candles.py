"""Candle sanity and tidying on arrays (utils.candles): the one set of rules the exchange parser
(``parse_candles``) and the worker's ``clean_frame`` both apply."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from exchanges.errors import BadCandles
from exchanges.registry import get_client
from scanner.analysis import MIN_ROWS, clean_frame
from utils.candles import (
    BAD_TIME,
    BAD_VALUE,
    INVERTED,
    TIME_OUT_OF_RANGE,
    check_candles,
    empty_candles,
    ohlcv_frame,
    tidy,
    tidy_order,
)

DAY = 86_400_000
START = 1_735_689_600_000  # 2025-01-01


def _values(rows: int = 20) -> np.ndarray:
    x = np.arange(rows, dtype=np.float64) + 10.0
    return np.column_stack([x, x + 2.0, x - 1.0, x + 1.0, x * 100.0])


def _stamps(rows: int = 20) -> np.ndarray:
    return START + DAY * np.arange(rows, dtype=np.int64)


def test_sane_candles_pass_with_zero_volume() -> None:
    values = _values()
    values[:, 4] = 0.0
    assert check_candles(values, _stamps().astype(np.float64)) is None


@pytest.mark.parametrize(
    ("spoil", "kind", "row", "column", "reason"),
    [
        (lambda v, t: v.__setitem__((3, 0), np.nan), BAD_VALUE, 3, 0, "candles with missing or non-numeric values"),
        (lambda v, t: v.__setitem__((5, 4), np.inf), BAD_VALUE, 5, 4, "candles with missing or non-numeric values"),
        (lambda v, t: v.__setitem__((2, 2), -1.0), BAD_VALUE, 2, 2, "candles with negative values"),
        (lambda v, t: v.__setitem__((7, 1), 0.5), INVERTED, 7, 1, "candles with high below low"),
        (lambda v, t: t.__setitem__(4, np.nan), BAD_TIME, 4, -1, "candles with a missing or non-numeric open time"),
        (lambda v, t: t.__setitem__(6, -DAY), TIME_OUT_OF_RANGE, 6, -1, "candles with an open time out of range"),
        (lambda v, t: t.__setitem__(6, 1e20), TIME_OUT_OF_RANGE, 6, -1, "candles with an open time out of range"),
    ],
)
def test_check_candles_names_the_first_problem(spoil, kind, row, column, reason) -> None:
    values, times = _values(), _stamps().astype(np.float64)
    spoil(values, times)
    problem = check_candles(values, times)
    assert (problem.kind, problem.row, problem.column, problem.reason) == (kind, row, column, reason)


def test_a_missing_value_outranks_an_earlier_negative_in_the_reason_but_not_the_cell() -> None:
    values = _values()
    values[1, 3] = -2.0
    values[9, 0] = np.nan
    problem = check_candles(values)
    assert (problem.row, problem.column) == (1, 3)  # the parser names the first bad cell
    assert problem.reason == "candles with missing or non-numeric values"  # clean_frame's old order


def test_tidy_sorts_oldest_first_and_keeps_the_last_row_of_a_duplicate_open_time() -> None:
    stamps = np.array([3, 1, 2, 1, 3], dtype=np.int64) * DAY
    values = np.arange(25, dtype=np.float64).reshape(5, 5)
    candles = tidy(stamps, values)
    assert candles.stamps.tolist() == [DAY, 2 * DAY, 3 * DAY]
    assert candles.values[:, 0].tolist() == [15.0, 10.0, 20.0]  # rows 3, 2, 4: the later duplicates
    assert not candles.stamps.flags.writeable and not candles.values.flags.writeable


def test_tidy_order_matches_the_pandas_rule_it_replaces() -> None:
    rng = np.random.default_rng(7)
    stamps = rng.integers(0, 40, 200).astype(np.int64) * DAY
    frame = ohlcv_frame(stamps, rng.random((200, 5)))
    expected = frame.sort_index(kind="stable")
    expected = expected[~expected.index.duplicated(keep="last")]
    pd.testing.assert_frame_equal(frame.iloc[tidy_order(stamps)], expected)
    assert tidy_order(np.sort(np.unique(stamps))) is None


def test_empty_candles_give_the_empty_typed_frame() -> None:
    frame = empty_candles().frame()
    assert frame.empty and str(frame.index.dtype) == "datetime64[ms, UTC]" and frame.index.name == "timestamp"


# What the parser and the worker each rejected before the rules moved here, for the same candles.
SPOILED = [
    ("open", lambda v: v.__setitem__((4, 0), np.nan), "has open=", "missing or non-numeric"),
    ("low", lambda v: v.__setitem__((4, 2), -1.0), "has low=", "negative"),
    ("volume", lambda v: v.__setitem__((4, 4), -5.0), "has volume=", "negative"),
    ("high", lambda v: v.__setitem__((4, 1), np.inf), "has high=", "missing or non-numeric"),
    ("inverted", lambda v: v.__setitem__((4, 1), 1.0), "has high < low", "high below low"),
]


def _binance_body(stamps: np.ndarray, values: np.ndarray) -> str:
    rows = [[int(t), *(repr(float(x)) for x in row)] for t, row in zip(stamps, values, strict=True)]
    return json.dumps(rows).replace('"nan"', "null").replace('"inf"', '"Infinity"')


@pytest.mark.parametrize(("name", "spoil", "parser_says", "worker_says"), SPOILED, ids=[s[0] for s in SPOILED])
def test_the_shared_check_rejects_in_the_parser_and_in_the_worker(name, spoil, parser_says, worker_says) -> None:
    stamps, values = _stamps(), _values()
    spoil(values)
    client = get_client("binance_spot", base_url="http://127.0.0.1:1")
    with pytest.raises(BadCandles, match=f"candle {stamps[4]} {parser_says}"):
        client.parse_candles(client.parse_body(_binance_body(stamps, values)))
    frame, reason = clean_frame(ohlcv_frame(stamps, values))
    assert frame is None and worker_says in reason


def test_clean_frame_tidies_like_the_parser_and_still_counts_bars() -> None:
    stamps, values = _stamps(), _values()
    shuffled = np.r_[np.arange(19, -1, -1), 5]
    frame, reason = clean_frame(ohlcv_frame(stamps[shuffled], values[shuffled]))
    assert reason is None
    assert frame.index.as_unit("ms").asi8.tolist() == stamps.tolist()
    assert clean_frame(ohlcv_frame(stamps[: MIN_ROWS - 1], values[: MIN_ROWS - 1]))[1] == "only 9 bars (needs 10)"
