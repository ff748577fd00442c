"""Recorded exchange payloads (shared/fixtures/exchanges) through each client's own parser.

The recordings are real responses kept by CCXT (see each market's meta.json). Markets without a
recording (Gate and MEXC futures, listings) use payloads built from the field lists of
spec/exchanges.md; each such test says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exchanges.base_client import COLUMNS, is_leveraged
from exchanges.errors import BadResponse, BadSymbol, RateLimited
from exchanges.registry import LIVE_EXCHANGE_NAMES, get_client


def _shared_dir() -> Path:
    env = os.environ.get("SCANNER_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


FIXTURES = _shared_dir() / "fixtures" / "exchanges"


def _text(market: str, name: str) -> str:
    return (FIXTURES / market / name).read_text()


def _frame(market: str, name: str, contract_size: float = 1.0) -> pd.DataFrame:
    client = get_client(market, base_url="http://127.0.0.1:1")
    return client.parse_klines(client.parse_body(_text(market, name)), contract_size=contract_size)


def _ms(frame: pd.DataFrame) -> list[int]:
    return frame.index.as_unit("ms").asi8.tolist()


RECORDED = [
    ("binance_spot", "klines_1h.json", 3),
    ("binance_futures", "klines_1m.json", 3),
    ("bybit_futures", "klines_1h.json", 3),
    ("gateio_spot", "klines_1h.json", 1),
    ("kucoin_spot", "klines_1h.json", 3),
    ("kucoin_futures", "klines_1h.json", 3),
    ("mexc_spot", "klines_1h.json", 1),
]


@pytest.mark.parametrize(("market", "name", "rows"), RECORDED)
def test_recorded_klines_parse_to_normalised_frame(market: str, name: str, rows: int) -> None:
    frame = _frame(market, name)
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == rows
    assert all(frame[c].dtype == np.float64 for c in COLUMNS)
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert str(frame.index.tz) == "UTC"
    assert frame.index.name == "timestamp"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert (frame["high"] >= frame[["open", "close", "low"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()


def test_binance_spot_row_values_and_ms_times() -> None:
    frame = _frame("binance_spot", "klines_1h.json")
    assert _ms(frame) == [1706630400000, 1706634000000, 1706637600000]
    first = frame.iloc[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        43519.34, 43936.0, 43171.0, 43488.71, 20.55495
    )


def test_binance_futures_base_volume_matches_quote_volume() -> None:
    frame = _frame("binance_futures", "klines_1m.json")
    assert frame["volume"].tolist() == [0.002, 0.120, 1.542]
    quote = [142.96380, 8518.17600, 108661.55840]
    # Quote volume lies between volume x low and volume x high: the volume is in BTC.
    assert all(v * lo <= q <= v * hi for v, lo, hi, q in zip(frame.volume, frame.low, frame.high, quote))


def test_bybit_newest_first_rows_are_reversed() -> None:
    raw = json.loads(_text("bybit_futures", "klines_1h.json"))["result"]["list"]
    assert int(raw[0][0]) > int(raw[-1][0])  # the recording is newest first
    frame = _frame("bybit_futures", "klines_1h.json")
    assert _ms(frame) == [1706630400000, 1706634000000, 1706637600000]
    oldest = frame.iloc[0]
    assert (oldest.open, oldest.high, oldest.low, oldest.close, oldest.volume) == (
        43350.7, 43492.5, 43204.5, 43488.0, 1341.261
    )
    # Linear volume is base units already: volume x price ~ the turnover field.
    turnover = 58117391.4117
    assert oldest.volume * oldest.low <= turnover <= oldest.volume * oldest.high


def test_bybit_string_ret_code_zero_is_success() -> None:
    client = get_client("bybit_futures", base_url="http://127.0.0.1:1")
    assert json.loads(_text("bybit_futures", "klines_1h.json"))["retCode"] == "0"
    assert "list" in client.parse_body(_text("bybit_futures", "klines_1h.json"))


def test_gate_spot_column_order_and_seconds() -> None:
    frame = _frame("gateio_spot", "klines_1h.json")
    assert _ms(frame) == [1710327600 * 1000]
    row = frame.iloc[0]
    # [t, quote_volume, close, high, low, open, base_volume, window_closed]
    assert (row.open, row.high, row.low, row.close) == (73236.9, 73435.8, 73236.3, 73408.9)
    assert row.volume == 13.53020576
    assert row.volume * row.low <= 992134.61604178 <= row.volume * row.high


def test_kucoin_spot_column_order_seconds_and_reversal() -> None:
    frame = _frame("kucoin_spot", "klines_1h.json")
    assert _ms(frame) == [1706630400000, 1706634000000, 1706637600000]
    oldest = frame.iloc[0]
    # [time, open, CLOSE, high, low, volume, turnover]
    assert (oldest.open, oldest.high, oldest.low, oldest.close, oldest.volume) == (
        43383.7, 43521.9, 43222.8, 43501.0, 101.30420492
    )
    assert oldest.volume * oldest.low <= 4391287.808186813 <= oldest.volume * oldest.high


def test_kucoin_futures_lots_times_multiplier_give_base_volume() -> None:
    lots = _frame("kucoin_futures", "klines_1h.json")
    assert lots["volume"].tolist() == [354348.0, 282425.0, 296246.0]
    btc = _frame("kucoin_futures", "klines_1h.json", contract_size=0.001)  # XBTUSDTM multiplier
    assert btc["volume"].tolist() == pytest.approx([354.348, 282.425, 296.246])
    assert btc.iloc[0].open == 43375.2 and btc.iloc[0].close == 43492.0


def test_mexc_spot_row_values() -> None:
    frame = _frame("mexc_spot", "klines_1h.json")
    assert _ms(frame) == [1710327600000]
    row = frame.iloc[0]
    assert (row.open, row.high, row.low, row.close) == (73260.0, 73442.95, 73238.69, 73414.21)
    assert row.volume == 49.560236
    assert row.volume * row.low <= 3633995.45 <= row.volume * row.high


def test_gate_futures_contract_volume_times_quanto_multiplier() -> None:
    """Built from spec/exchanges.md (no recording): objects {t, v, c, h, l, o}, v in contracts."""
    client = get_client("gateio_futures", base_url="http://127.0.0.1:1")
    body = '[{"t":1710374400,"v":120000,"c":"73000.1","h":"73500","l":"72000","o":"72500.5","sum":"8700000"}]'
    frame = client.parse_klines(client.parse_body(body), contract_size=0.0001)
    assert _ms(frame) == [1710374400000]
    row = frame.iloc[0]
    assert (row.open, row.high, row.low, row.close) == (72500.5, 73500.0, 72000.0, 73000.1)
    assert row.volume == pytest.approx(12.0)


def test_mexc_futures_column_arrays_and_contract_size() -> None:
    """Built from spec/exchanges.md (no recording): column arrays, seconds, vol in contracts."""
    client = get_client("mexc_futures", base_url="http://127.0.0.1:1")
    body = json.dumps({"success": True, "code": 0, "data": {
        "time": [1710374400, 1710360000], "open": [10.0, 9.0], "close": [11.0, 10.0],
        "high": [12.0, 10.5], "low": [9.5, 8.5], "vol": [500, 700], "amount": [5500.0, 7000.0]}})
    frame = client.parse_klines(client.parse_body(body), contract_size=10.0)
    assert _ms(frame) == [1710360000000, 1710374400000]
    assert frame["open"].tolist() == [9.0, 10.0]
    assert frame["close"].tolist() == [10.0, 11.0]
    assert frame["volume"].tolist() == [7000.0, 5000.0]


# ---------------------------------------------------------------------------------- parser rules


def _binance_rows(*rows: list) -> str:
    return json.dumps([list(r) + [0, "0", 0, "0", "0", "0"] for r in rows])


def _parse_binance(text: str) -> pd.DataFrame:
    client = get_client("binance_spot", base_url="http://127.0.0.1:1")
    return client.parse_klines(client.parse_body(text))


def test_numbers_and_strings_are_both_accepted() -> None:
    frame = _parse_binance(_binance_rows([86_400_000, 1, "2", 0.5, "1.5", 3]))
    assert frame.iloc[0].tolist() == [1.0, 2.0, 0.5, 1.5, 3.0]


def test_duplicates_keep_last_and_out_of_order_rows_are_sorted() -> None:
    day = 86_400_000
    frame = _parse_binance(_binance_rows(
        [2 * day, 5, 6, 4, 5, 1], [day, 1, 2, 1, 2, 1], [2 * day, 7, 8, 6, 7, 9]
    ))
    assert _ms(frame) == [day, 2 * day]
    assert frame.iloc[1].close == 7.0 and frame.iloc[1].volume == 9.0


def test_zero_volume_is_kept() -> None:
    assert _parse_binance(_binance_rows([0, 1, 1, 1, 1, "0"]))["volume"].tolist() == [0.0]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ([0, "NaN", 2, 1, 1, 1], "open"),
        ([0, None, 2, 1, 1, 1], "open"),
        ([0, 1, 2, "-1", 1, 1], "low"),
        ([0, 1, 2, 1, 1, "-5"], "volume"),
        ([0, 1, "inf", 1, 1, 1], "high"),
        ([0, 1, 1, 2, 1, 1], "high < low"),
        (["abc", 1, 2, 1, 1, 1], "open time"),
        ([-86_400_000, 1, 2, 1, 1, 1], "open time out of range"),
        ([1e20, 1, 2, 1, 1, 1], "open time out of range"),
    ],
)
def test_bad_values_raise_bad_response_naming_the_problem(row: list, problem: str) -> None:
    with pytest.raises(BadResponse, match=problem):
        _parse_binance(_binance_rows(row))


def test_empty_candle_list_gives_empty_typed_frame() -> None:
    frame = _parse_binance("[]")
    assert frame.empty and list(frame.columns) == list(COLUMNS)
    assert all(frame[c].dtype == np.float64 for c in COLUMNS)
    assert str(frame.index.tz) == "UTC" and frame.index.name == "timestamp"


@pytest.mark.parametrize(
    ("market", "body", "error"),
    [
        ("bybit_spot", '{"retCode":10001,"retMsg":"Not supported symbols","result":{}}', BadSymbol),
        ("bybit_spot", '{"retCode":10006,"retMsg":"Too many visits!","result":{}}', RateLimited),
        ("bybit_spot", '{"retCode":10016,"retMsg":"Server error","result":{}}', BadResponse),
        ("kucoin_spot", '{"code":"400100","msg":"This pair is not provided at present"}', BadSymbol),
        ("kucoin_spot", '{"code":"429000","msg":"Too many requests"}', RateLimited),
        ("kucoin_futures", '{"code":"400100","msg":"Invalid interval: 7"}', BadResponse),
        ("mexc_futures", '{"success":false,"code":1001,"message":"Contract does not exist!"}', BadSymbol),
        ("mexc_futures", '{"success":false,"code":510,"message":"Requests are too frequent!"}', RateLimited),
        ("gateio_spot", '{"label":"INVALID_CURRENCY_PAIR","message":"Invalid currency pair"}', BadSymbol),
        ("binance_spot", '{"code":-1121,"msg":"Invalid symbol."}', BadSymbol),
        ("binance_spot", '[[1706630400000,"1","2"', BadResponse),
        ("mexc_spot", "<html><body>502 Bad Gateway</body></html>", BadResponse),
    ],
)
def test_error_envelopes_with_http_200_are_typed(market: str, body: str, error: type) -> None:
    client = get_client(market, base_url="http://127.0.0.1:1")
    with pytest.raises(error) as info:
        client.parse_body(body, symbol="XYZ")
    assert info.value.exchange == market and info.value.symbol == "XYZ" and info.value.status == 200


def test_error_carries_exchange_code_and_message() -> None:
    client = get_client("bybit_spot", base_url="http://127.0.0.1:1")
    with pytest.raises(BadSymbol) as info:
        client.parse_body('{"retCode":10001,"retMsg":"Not supported symbols","result":{}}', symbol="FOOUSDT")
    assert info.value.code == "10001" and info.value.message == "Not supported symbols"
    assert "FOOUSDT" in str(info.value) and "10001" in str(info.value)


# ---------------------------------------------------------------------------------- listings


@pytest.mark.parametrize(
    ("base", "listed", "expected"),
    [
        ("BTC3L", set(), True), ("ETH5S", set(), True), ("BTCUP", {"BTC"}, True), ("ETHBEAR", {"ETH"}, True),
        ("JUP", {"JUP"}, False), ("SYRUP", {"SYRUP"}, False), ("BTC", {"BTC"}, False),
        ("1000SATS", set(), False),
    ],
)
def test_leveraged_token_filter(base: str, listed: set[str], expected: bool) -> None:
    assert is_leveraged(base, listed) is expected


def test_binance_spot_listing_keeps_trading_usdt_only() -> None:
    """Built from spec/exchanges.md field list (no recorded exchangeInfo)."""
    client = get_client("binance_spot", base_url="http://127.0.0.1:1")
    entries = [("BTCUSDT", "BTC", "USDT", "TRADING"), ("ETHBTC", "ETH", "BTC", "TRADING"),
               ("LUNAUSDT", "LUNA", "USDT", "BREAK"), ("BTCUPUSDT", "BTCUP", "USDT", "TRADING")]
    payload = {"symbols": [
        {"symbol": s, "baseAsset": b, "quoteAsset": q, "status": st, "isSpotTradingAllowed": True}
        for s, b, q, st in entries
    ]}
    assert client.parse_symbols(payload) == ["BTCUSDT"]


def test_registry_names_and_unknown_name() -> None:
    from exchanges.registry import EXCHANGE_NAMES

    assert len(LIVE_EXCHANGE_NAMES) == 10 and "demo" in EXCHANGE_NAMES
    with pytest.raises(ValueError, match="binance_spot"):
        get_client("nope")
    assert get_client("gateio_spot", timeframe="1w", base_url="http://127.0.0.1:1").native_interval() == "1d"


@pytest.mark.parametrize(("market", "name", "rows"), RECORDED)
def test_parse_candles_equals_the_parsed_frame_bit_for_bit(market: str, name: str, rows: int) -> None:
    client = get_client(market, base_url="http://127.0.0.1:1")
    payload = client.parse_body(_text(market, name))
    candles = client.parse_candles(payload, contract_size=2.5)
    frame = client.parse_klines(payload, contract_size=2.5)
    assert candles.stamps.dtype == np.int64 and candles.values.dtype == np.float64
    assert not candles.stamps.flags.writeable and not candles.values.flags.writeable
    assert candles.stamps.tolist() == _ms(frame)
    assert candles.values.view(np.int64).tolist() == frame.to_numpy().view(np.int64).tolist()
    assert len(candles) == rows


def test_parse_candles_sorts_and_keeps_the_last_duplicate_without_a_frame() -> None:
    day = 86_400_000
    client = get_client("binance_spot", base_url="http://127.0.0.1:1")
    candles = client.parse_candles(client.parse_body(_binance_rows(
        [2 * day, 5, 6, 4, 5, 1], [day, 1, 2, 1, 2, 1], [2 * day, 7, 8, 6, 7, 9]
    )))
    assert candles.stamps.tolist() == [day, 2 * day]
    assert candles.values[1].tolist() == [7.0, 8.0, 6.0, 7.0, 9.0]
