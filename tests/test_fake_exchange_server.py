"""The fake exchange server speaks each market's dialect (spec/exchanges.md) and injects faults on demand."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from tests.fakes.exchange_data import DAY_MS, MONDAY_OFFSET_MS, WEEK_MS
from tests.fakes.exchange_server import FakeExchangeServer

SHARED = Path(os.environ.get("SCANNER_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
FIXTURES = SHARED / "fixtures" / "exchanges"
NOW = datetime(2025, 3, 5, 13, 30, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
DAY_OPEN_MS = NOW_MS // DAY_MS * DAY_MS

# market -> (klines path, params for BTC 1d, recorded fixture file or None)
KLINES = {
    "binance_spot": ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1d", "limit": "3"}, "klines_1h.json"),
    "binance_futures": ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1d", "limit": "3"}, "klines_1m.json"),
    "bybit_spot": ("/v5/market/kline", {"category": "spot", "symbol": "BTCUSDT", "interval": "D", "limit": "3"}, None),
    "bybit_futures": ("/v5/market/kline", {"category": "linear", "symbol": "BTCUSDT", "interval": "D", "limit": "3"},
                      "klines_1h.json"),
    "gateio_spot": ("/spot/candlesticks", {"currency_pair": "BTC_USDT", "interval": "1d", "limit": "3"},
                    "klines_1h.json"),
    "gateio_futures": ("/futures/usdt/candlesticks", {"contract": "BTC_USDT", "interval": "1d", "limit": "3"}, None),
    "kucoin_spot": ("/api/v1/market/candles", {"symbol": "BTC-USDT", "type": "1day",
                                               "startAt": str(DAY_OPEN_MS // 1000 - 2 * 86400)}, "klines_1h.json"),
    "kucoin_futures": ("/api/v1/kline/query", {"symbol": "XBTUSDTM", "granularity": "1440",
                                               "from": str(DAY_OPEN_MS - 2 * DAY_MS)}, "klines_1h.json"),
    "mexc_spot": ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1d", "limit": "3"}, "klines_1h.json"),
    "mexc_futures": ("/api/v1/contract/kline/BTC_USDT", {"interval": "Day1", "start": str(DAY_OPEN_MS // 1000 - 2 * 86400)},
                     None),
}


def _rows(market: str, body):
    """Candle rows from a klines body: unwrap the market's envelope."""
    if market.startswith("bybit"):
        return body["result"]["list"]
    if market.startswith("kucoin"):
        return body["data"]
    if market == "mexc_futures":
        return body["data"]
    return body


def _shape(value):
    """Type signature of a JSON value (str/int/float/bool/None; float covers ints in float columns)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    return type(value).__name__


@pytest.fixture
async def server():
    async with FakeExchangeServer(symbols=12, now=NOW, seed=1) as srv:
        yield srv


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(http, server, market, path, params=None):
    async with http.get(server.base_url(market) + path, params=params or {}) as resp:
        text = await resp.text()
        return resp.status, resp.headers, text


@pytest.mark.parametrize("market", [m for m, v in KLINES.items() if v[2]])
async def test_klines_rows_have_the_recorded_field_count_types_and_order(server, http, market):
    path, params, fixture = KLINES[market]
    recorded = _rows(market, json.loads((FIXTURES / market / fixture).read_text()))
    status, _, text = await _get(http, server, market, path, params)
    assert status == 200
    rows = _rows(market, json.loads(text))
    assert len(rows) == 3
    assert [_shape(v) for v in rows[0]] == [_shape(v) for v in recorded[0]]
    times = [int(r[0]) for r in rows]
    recorded_times = [int(r[0]) for r in recorded]
    assert (times == sorted(times)) == (recorded_times == sorted(recorded_times) or len(recorded_times) == 1)


async def test_every_market_serves_the_forming_bar_last_in_its_own_order(server, http):
    for market, (path, params, _) in KLINES.items():
        status, _, text = await _get(http, server, market, path, params)
        assert status == 200, (market, text)
        body = json.loads(text)
        if market == "mexc_futures":
            times = [t * 1000 for t in body["data"]["time"]]
        elif market == "gateio_futures":
            times = [r["t"] * 1000 for r in body]
        else:
            unit = 1000 if market in ("gateio_spot", "kucoin_spot") else 1
            times = [int(r[0]) * unit for r in _rows(market, body)]
        newest_first = market in ("bybit_spot", "bybit_futures", "kucoin_spot")
        assert times == sorted(times, reverse=newest_first), market
        assert max(times) == DAY_OPEN_MS, market
        assert np.all(np.diff(sorted(times)) == DAY_MS), market


async def test_gate_spot_marks_only_the_forming_bar_open(server, http):
    _, _, text = await _get(http, server, "gateio_spot", *KLINES["gateio_spot"][:2])
    assert [r[7] for r in json.loads(text)] == ["true", "true", "false"]


async def test_contract_volumes_times_multiplier_give_base_volume(server, http):
    _, _, text = await _get(http, server, "gateio_futures", "/futures/usdt/contracts")
    multiplier = float(next(c for c in json.loads(text) if c["name"] == "BTC_USDT")["quanto_multiplier"])
    _, _, text = await _get(http, server, "gateio_futures", *KLINES["gateio_futures"][:2])
    candle = json.loads(text)[0]
    assert isinstance(candle["v"], int)
    base = candle["v"] * multiplier
    typical = (float(candle["o"]) + float(candle["h"]) + float(candle["l"]) + float(candle["c"])) / 4
    assert base * typical == pytest.approx(float(candle["sum"]), rel=0.05)  # per-4h mids vs the daily mean


async def test_native_weekly_equals_daily_aggregated_monday_aligned(server, http):
    params = {"symbol": "ETHUSDT", "interval": "1d", "limit": "1000"}
    _, _, text = await _get(http, server, "binance_spot", "/api/v3/klines", params)
    daily = np.array([[r[0], *map(float, r[1:6])] for r in json.loads(text)])
    _, _, text = await _get(http, server, "binance_spot", "/api/v3/klines", {**params, "interval": "1w", "limit": "150"})
    weekly = np.array([[r[0], *map(float, r[1:6])] for r in json.loads(text)])
    week = (daily[:, 0].astype(np.int64) - MONDAY_OFFSET_MS) // WEEK_MS
    for row in weekly[weekly[:, 0] > daily[0, 0]]:  # whole weeks inside the 1000 daily bars
        days = daily[week == (int(row[0]) - MONDAY_OFFSET_MS) // WEEK_MS]
        assert datetime.fromtimestamp(row[0] / 1000, UTC).weekday() == 0
        expected = [days[0, 1], days[:, 2].max(), days[:, 3].min(), days[-1, 4], days[:, 5].sum()]
        np.testing.assert_allclose(row[1:], expected, rtol=1e-12)


async def test_gate_spot_7d_bars_open_on_thursday(server, http):
    params = {"currency_pair": "BTC_USDT", "interval": "7d", "limit": "5"}
    _, _, text = await _get(http, server, "gateio_spot", "/spot/candlesticks", params)
    assert {datetime.fromtimestamp(int(r[0]), UTC).weekday() for r in json.loads(text)} == {3}


async def test_binance_paging_by_start_time_returns_the_oldest_bars_from_start(server, http):
    params = {"symbol": "BTCUSDT", "interval": "4h", "limit": "1000"}
    _, _, text = await _get(http, server, "binance_spot", "/api/v3/klines", {**params, "endTime": str(NOW_MS - 30 * DAY_MS)})
    older = json.loads(text)
    _, _, text = await _get(http, server, "binance_spot", "/api/v3/klines", {**params, "startTime": str(older[-1][0] + 1)})
    newer = json.loads(text)
    assert len(older) == 1000 and older[-1][0] <= NOW_MS - 30 * DAY_MS
    assert newer[0][0] == older[-1][0] + 4 * 3600 * 1000


async def test_kucoin_futures_wide_window_returns_oldest_200_from_from(server, http):
    params = {"symbol": "XBTUSDTM", "granularity": "240", "from": str(DAY_OPEN_MS - 100 * DAY_MS), "to": str(NOW_MS)}
    _, _, text = await _get(http, server, "kucoin_futures", "/api/v1/kline/query", params)
    rows = json.loads(text)["data"]
    assert len(rows) == 200 and rows[0][0] == DAY_OPEN_MS - 100 * DAY_MS


async def test_mexc_spot_serves_at_most_500_and_end_time_is_exclusive(server, http):
    params = {"symbol": "BTCUSDT", "interval": "4h", "limit": "1000"}
    _, _, text = await _get(http, server, "mexc_spot", "/api/v3/klines", params)
    rows = json.loads(text)
    assert len(rows) == 500 and rows[0][6] == rows[0][0] + 4 * 3600 * 1000
    _, _, text = await _get(http, server, "mexc_spot", "/api/v3/klines", {**params, "endTime": str(rows[-1][0])})
    assert json.loads(text)[-1][0] == rows[-2][0]


async def test_gate_rejects_limit_with_from_and_too_broad_ranges(server, http):
    base = {"currency_pair": "BTC_USDT", "interval": "4h"}
    status, _, text = await _get(http, server, "gateio_spot", "/spot/candlesticks",
                                 {**base, "limit": "10", "from": str(NOW_MS // 1000 - 86400)})
    assert status == 400 and json.loads(text)["label"] == "INVALID_PARAM_VALUE"
    status, _, text = await _get(http, server, "gateio_spot", "/spot/candlesticks",
                                 {**base, "from": str(DAY_OPEN_MS // 1000 - 1000 * 14400), "to": str(DAY_OPEN_MS // 1000)})
    assert status == 400 and "too broad" in json.loads(text)["message"]


async def test_bybit_linear_instruments_page_with_a_cursor_and_spot_does_not(server, http):
    params = {"category": "linear", "limit": "5"}
    symbols, cursor = [], None
    for _ in range(10):
        _, _, text = await _get(http, server, "bybit_futures", "/v5/market/instruments-info",
                                {**params, **({"cursor": cursor} if cursor else {})})
        result = json.loads(text)["result"]
        symbols += [i["symbol"] for i in result["list"]]
        cursor = result["nextPageCursor"]
        if not cursor:
            break
    assert len(symbols) == len(set(symbols)) == len(server.symbols["bybit_futures"]) - 1  # PreLaunch hidden
    assert set(server.usdt_symbols("bybit_futures")) < set(symbols)


@pytest.mark.parametrize(
    ("market", "path", "field", "hidden"),
    [
        ("binance_spot", "/api/v3/exchangeInfo", "symbols", {"ETHBTC", "BNBFDUSD", "LUNAUSDT", "BTCUPUSDT"}),
        ("gateio_spot", "/spot/currency_pairs", None, {"BTC3L_USDT", "ETH3S_USDT", "ETH_BTC", "DEAD_USDT"}),
        ("kucoin_futures", "/api/v1/contracts/active", "data", {"XBTUSDM", "XBTMM26", "XBTUSDCM"}),
        ("mexc_futures", "/api/v1/contract/detail", "data", {"BTC_USD", "BTC_USDC", "GONE_USDT"}),
    ],
)
async def test_listings_hold_usdt_markets_plus_distractors(server, http, market, path, field, hidden):
    _, _, text = await _get(http, server, market, path)
    body = json.loads(text)
    items = body[field] if field else body
    names = {i.get("symbol") or i.get("id") for i in items}
    assert set(server.usdt_symbols(market)) | hidden == names


async def test_unknown_symbol_answers_in_each_exchange_envelope(server, http):
    expectations = {
        "binance_spot": (400, lambda b: b == {"code": -1121, "msg": "Invalid symbol."}),
        "bybit_spot": (200, lambda b: b["retCode"] == 10001),
        "gateio_spot": (400, lambda b: b["label"] == "INVALID_CURRENCY_PAIR"),
        "kucoin_spot": (200, lambda b: b["code"] == "400100"),
        "mexc_futures": (200, lambda b: b["success"] is False and b["code"] == 1001),
    }
    for market, (status, check) in expectations.items():
        path, params, _ = KLINES[market]
        params = {k: ("NOPE_USDT" if "BTC" in v else v) for k, v in params.items()}
        path = path.replace("BTC_USDT", "NOPE_USDT")
        got, _, text = await _get(http, server, market, path, params)
        assert got == status and check(json.loads(text)), (market, text)


async def test_binance_over_limit_answers_429_then_bans_with_418(server, http):
    server.set_rate_limit("binance_spot", capacity=4, window=60)
    path, params, _ = KLINES["binance_spot"]
    statuses, headers = [], []
    for _ in range(4):
        status, hdr, text = await _get(http, server, "binance_spot", path, params)
        statuses.append(status)
        headers.append(hdr)
    assert statuses == [200, 200, 429, 418]
    assert headers[1]["X-MBX-USED-WEIGHT-1M"] == "4"
    assert int(headers[2]["Retry-After"]) >= 1 and int(headers[3]["Retry-After"]) == 120
    assert server.status_counts["binance_spot"][429] == 1 and server.bans["binance_spot"] == 1


async def test_bybit_spot_and_linear_share_one_budget_and_answer_10006(server, http):
    server.set_rate_limit("bybit_spot", capacity=2, window=60)
    await _get(http, server, "bybit_spot", *KLINES["bybit_spot"][:2])
    await _get(http, server, "bybit_futures", *KLINES["bybit_futures"][:2])
    status, _, text = await _get(http, server, "bybit_futures", *KLINES["bybit_futures"][:2])
    assert status == 200 and json.loads(text)["retCode"] == 10006
    assert server.rate_limited["bybit_futures"] == 1


async def test_gate_and_kucoin_report_their_usage_headers(server, http):
    _, hdr, _ = await _get(http, server, "gateio_spot", *KLINES["gateio_spot"][:2])
    assert hdr["X-Gate-RateLimit-Limit"] == "200" and hdr["X-Gate-RateLimit-Requests-Remain"] == "199"
    _, hdr, _ = await _get(http, server, "kucoin_spot", *KLINES["kucoin_spot"][:2])
    assert hdr["gw-ratelimit-limit"] == "2000" and hdr["gw-ratelimit-remaining"] == "1997"
    assert 0 < int(hdr["gw-ratelimit-reset"]) <= 30000


async def test_fault_times_applies_to_the_first_n_matching_requests(server, http):
    fault = server.add_fault("503", market="mexc_spot", path="klines", times=2)
    statuses = [(await _get(http, server, "mexc_spot", *KLINES["mexc_spot"][:2]))[0] for _ in range(3)]
    assert statuses == [503, 503, 200] and fault.fired == 2


async def test_reset_fault_drops_the_connection(server, http):
    server.add_fault("reset", market="binance_spot", times=1)
    with pytest.raises(aiohttp.ClientError):
        await _get(http, server, "binance_spot", *KLINES["binance_spot"][:2])
    assert (await _get(http, server, "binance_spot", *KLINES["binance_spot"][:2]))[0] == 200


async def test_body_faults_break_candle_pages(server, http):
    path, params, _ = KLINES["binance_spot"]
    server.add_fault("truncated_json", market="binance_spot", times=1)
    _, _, text = await _get(http, server, "binance_spot", path, params)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    server.add_fault("duplicates", market="binance_spot", times=1)
    rows = json.loads((await _get(http, server, "binance_spot", path, params))[2])
    assert len(rows) > len({r[0] for r in rows}) == 3
    server.add_fault("bad_values", market="binance_spot", times=1, variant="null")
    rows = json.loads((await _get(http, server, "binance_spot", path, params))[2])
    assert sum(r[4] is None for r in rows) == 1
    server.add_fault("empty", market="binance_spot", times=1)
    assert json.loads((await _get(http, server, "binance_spot", path, params))[2]) == []


async def test_timeout_fault_outlasts_the_client_timeout(server, http):
    server.add_fault("timeout", market="gateio_spot", times=1, seconds=5)
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(server.base_url("gateio_spot") + "/spot/currency_pairs",
                            timeout=aiohttp.ClientTimeout(total=0.2)) as resp:
            await resp.read()


async def test_counters_split_by_market_kind_and_symbol(server, http):
    await _get(http, server, "kucoin_spot", "/api/v2/symbols")
    await _get(http, server, "kucoin_spot", *KLINES["kucoin_spot"][:2])
    await _get(http, server, "mexc_futures", *KLINES["mexc_futures"][:2])
    assert server.requests == 3
    assert server.requests_by_kind[("kucoin_spot", "listing")] == 1
    assert server.requests_by_symbol[("mexc_futures", "BTC_USDT")] == 1
    server.reset_counters()
    assert server.requests == 0 and not server.status_counts


def test_run_in_thread_serves_from_its_own_loop_and_env_names_every_market():
    server = FakeExchangeServer(symbols=3, now=NOW, markets=["binance_spot", "kucoin_futures"])

    async def fetch(url):
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            return resp.status

    with server.run_in_thread() as srv:
        env = srv.env()
        status = asyncio.run(fetch(env["SCANNER_BINANCE_SPOT_BASE_URL"] + "/api/v3/exchangeInfo"))
    assert status == 200 and set(env) == {"SCANNER_BINANCE_SPOT_BASE_URL", "SCANNER_KUCOIN_FUTURES_BASE_URL"}


def test_series_are_deterministic_and_some_symbols_are_thin_or_young():
    a = FakeExchangeServer(symbols=300, now=NOW, seed=7, markets=["bybit_spot"])
    b = FakeExchangeServer(symbols=300, now=NOW, seed=7, markets=["bybit_spot"])
    symbols = a.usdt_symbols("bybit_spot")
    np.testing.assert_array_equal(a.bars("bybit_spot", symbols[5], "1d").close, b.bars("bybit_spot", symbols[5], "1d").close)
    infos = [a.symbol_info("bybit_spot", s) for s in symbols]
    thin = sum(i.daily_usd < 50_000 for i in infos) / len(infos)
    young = sum(i.listed_day > NOW_MS // DAY_MS - 1200 for i in infos) / len(infos)
    assert 0.05 < thin < 0.3 and 0.05 < young < 0.3
