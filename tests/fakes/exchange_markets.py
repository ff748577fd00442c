"""The ten markets' REST dialects (spec/exchanges.md): paths, parameters, row layouts, envelopes, limits.

Each market is a small class of declarations plus its listing/ticker payload and candle columns; the
server (exchange_server.py) owns routing, counters, faults and rate budgets.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from tests.fakes.exchange_data import BUCKET_OFFSET_MS, INTERVAL_MS, QUOTE_DECIMALS, Bars, Summary, SymbolInfo
from tests.fakes.exchange_limits import Decision, RateRule
from tests.fakes.exchange_tokens import (
    const_tokens,
    decimal_tokens,
    int_tokens,
    join_columns,
    join_objects,
    join_rows,
)

LISTING, KLINES, TICKERS = "listing", "klines", "tickers"
BINANCE_BAN_SECONDS = 120.0  # first 418 ban is 2 minutes (BIN-LIM, MEXC-GEN)
GATE_MAX_POINTS_AGO = 10000


@dataclass
class Reply:
    """An HTTP answer: status, body text, extra headers."""

    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class BadRequest(Exception):
    """Raised while parsing a request; carries the exchange's own error reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body)
        self.reply = reply


@dataclass(frozen=True)
class KlineQuery:
    """A parsed klines request in our units (ms, our interval names)."""

    symbol: str
    interval: str
    start_ms: int | None
    end_ms: int | None
    limit: int
    anchor_start: bool  # True: the oldest ``limit`` bars from start; False: the newest up to end
    containing_start: bool = False  # the bucket containing start counts (Bybit)
    end_exclusive: bool = False  # MEXC spot

    def select(self, bars: Bars) -> Bars:
        """The bars this request returns, oldest first."""
        period = INTERVAL_MS[self.interval]
        lo = 0
        if self.start_ms is not None:
            first = self.start_ms - period + 1 if self.containing_start else self.start_ms
            lo = int(np.searchsorted(bars.open_ms, first, "left"))
        hi = len(bars)
        if self.end_ms is not None:
            hi = int(np.searchsorted(bars.open_ms, self.end_ms, "left" if self.end_exclusive else "right"))
        hi = max(hi, lo)
        if self.anchor_start and self.start_ms is not None:
            return bars.take(slice(lo, min(lo + self.limit, hi)))
        return bars.take(slice(max(hi - self.limit, lo), hi))


@dataclass(frozen=True)
class Context:
    """What payload builders need from the server."""

    now_ms: int
    summary: Callable[[SymbolInfo], Summary]
    rule: RateRule


def _int_param(query: Mapping[str, str], name: str, error: Callable[[str], Reply]) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(float(raw))
    except ValueError:
        raise BadRequest(error(f"Invalid value for parameter '{name}': {raw}")) from None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _num(value: float, decimals: int = 8) -> str:
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return text or "0"


class Market:
    """Declarations shared by every market; subclasses fill in the dialect."""

    name: ClassVar[str]
    listing_path: ClassVar[str]
    klines_path: ClassVar[str]
    tickers_path: ClassVar[str]
    intervals: ClassVar[dict[str, str]]  # exchange interval name -> our name
    page_limit: ClassVar[int]
    default_limit: ClassVar[int] = 500
    newest_first: ClassVar[bool] = False
    contract_volume: ClassVar[bool] = False
    rule: ClassVar[RateRule]
    weights: ClassVar[dict[str, int]] = {LISTING: 1, KLINES: 1, TICKERS: 1}

    def symbol_name(self, base: str, quote: str) -> str:
        return f"{base}{quote}"

    def distractors(self) -> list[tuple[str, str, str | None, dict[str, Any]]]:
        """(base, quote, symbol or None for the default format, listing attrs) of non-scanned entries."""
        return []

    def kind_of(self, path: str) -> str | None:
        if path == self.listing_path:
            return LISTING
        if path == self.klines_path:
            return KLINES
        if path == self.tickers_path:
            return TICKERS
        return None

    def weight(self, kind: str, query: Mapping[str, str]) -> int:
        return self.weights.get(kind, 1)

    def interval_of(self, raw: str | None) -> str:
        ours = self.intervals.get(raw or "")
        if ours is None:
            raise BadRequest(self.error("param", f"Invalid interval: {raw}"))
        return ours

    def clamp_limit(self, raw: int | None) -> int:
        limit = self.default_limit if raw is None else raw
        return max(1, min(limit, self.page_limit))

    # -- payloads -----------------------------------------------------------------------------------
    def parse_klines(self, path: str, query: Mapping[str, str], now_ms: int) -> KlineQuery:
        raise NotImplementedError

    def klines_symbol(self, path: str, query: Mapping[str, str]) -> str | None:
        raise NotImplementedError

    def columns(self, info: SymbolInfo, bars: Bars, interval: str, now_ms: int) -> dict[str, np.ndarray]:
        """Token columns in the exchange's field order; ``o h l c v`` keep those names for faults."""
        raise NotImplementedError

    def assemble(self, columns: dict[str, np.ndarray], query: KlineQuery, now_ms: int) -> str:
        """The klines body around the (already ordered) token columns."""
        return join_rows(list(columns.values()))

    def listing(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        raise NotImplementedError

    def tickers(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        raise NotImplementedError

    # -- errors and limits ----------------------------------------------------------------------------
    def error(self, kind: str, message: str, status: int | None = None) -> Reply:
        """The exchange's error envelope; ``kind`` is symbol | param | server | envelope."""
        raise NotImplementedError

    def over_limit(self, decision: Decision) -> Reply:
        raise NotImplementedError

    def banned(self, decision: Decision) -> Reply:
        return self.over_limit(decision)

    def usage_headers(self, decision: Decision) -> dict[str, str]:
        return {}

    def empty_klines(self, query: KlineQuery, now_ms: int) -> str:
        return self.assemble({}, query, now_ms)


def _ohlcv(info: SymbolInfo, bars: Bars, *, quoted: bool, fixed: int | None = None) -> dict[str, np.ndarray]:
    p = info.price_decimals
    return {
        "o": decimal_tokens(bars.open, p, quoted=quoted, fixed=fixed),
        "h": decimal_tokens(bars.high, p, quoted=quoted, fixed=fixed),
        "l": decimal_tokens(bars.low, p, quoted=quoted, fixed=fixed),
        "c": decimal_tokens(bars.close, p, quoted=quoted, fixed=fixed),
        "v": decimal_tokens(bars.volume, info.volume_decimals, quoted=quoted, fixed=fixed),
        "q": decimal_tokens(bars.quote, QUOTE_DECIMALS, quoted=quoted, fixed=fixed),
    }


# ------------------------------------------------------------------------------------------------
# Binance-style (binance_spot, binance_futures, mexc_spot)
# ------------------------------------------------------------------------------------------------
class BinanceLike(Market):
    fixed_decimals: ClassVar[int | None] = 8
    close_time_offset: ClassVar[int] = -1  # closeTime = next open - 1 (MEXC: next open)
    end_exclusive: ClassVar[bool] = False
    all_ticker_weight: ClassVar[int] = 80

    def klines_symbol(self, path: str, query: Mapping[str, str]) -> str | None:
        return query.get("symbol")

    def weight(self, kind: str, query: Mapping[str, str]) -> int:
        if kind == TICKERS and "symbol" not in query:
            return self.all_ticker_weight
        return super().weight(kind, query)

    def parse_klines(self, path: str, query: Mapping[str, str], now_ms: int) -> KlineQuery:
        if not query.get("symbol"):
            raise BadRequest(self.error("missing", "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."))
        if not query.get("interval"):
            raise BadRequest(self.error("missing", "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."))
        bad = lambda m: self.error("param", m)  # noqa: E731
        start = _int_param(query, "startTime", bad)
        return KlineQuery(
            symbol=query["symbol"],
            interval=self.interval_of(query.get("interval")),
            start_ms=start,
            end_ms=_int_param(query, "endTime", bad),
            limit=self.clamp_limit(_int_param(query, "limit", bad)),
            anchor_start=start is not None,
            end_exclusive=self.end_exclusive,
        )

    def columns(self, info: SymbolInfo, bars: Bars, interval: str, now_ms: int) -> dict[str, np.ndarray]:
        f = self.fixed_decimals
        tok = _ohlcv(info, bars, quoted=True, fixed=f)
        close_ms = bars.open_ms + INTERVAL_MS[interval] + self.close_time_offset
        cols = {"t": int_tokens(bars.open_ms, quoted=False), "o": tok["o"], "h": tok["h"], "l": tok["l"],
                "c": tok["c"], "v": tok["v"], "ct": int_tokens(close_ms, quoted=False), "q": tok["q"]}
        if self.fixed_decimals is not None:  # Binance's 12-field layout
            cols["n"] = int_tokens(bars.quote // 10**QUOTE_DECIMALS // 500 + 1, quoted=False)
            cols["tb"] = decimal_tokens(bars.volume // 2, info.volume_decimals, quoted=True, fixed=f)
            cols["tq"] = decimal_tokens(bars.quote // 2, QUOTE_DECIMALS, quoted=True, fixed=f)
            cols["ig"] = const_tokens('"0"', len(bars))
        return cols

    def error(self, kind: str, message: str, status: int | None = None) -> Reply:
        code = {"symbol": -1121, "param": -1120, "missing": -1102, "server": -1001, "envelope": -1000}[kind]
        if kind == "symbol":
            message = "Invalid symbol."
        default = 500 if kind == "server" else (200 if kind == "envelope" else 400)
        return Reply(status or default, _dumps({"code": code, "msg": message}))

    def over_limit(self, decision: Decision) -> Reply:
        body = {"code": -1003, "msg": "Too much request weight used; current limit is "
                f"{int(decision.capacity)} request weight per window. Please use WebSocket Streams "
                "for live updates to avoid polling the API."}
        return Reply(429, _dumps(body), {"Retry-After": str(decision.retry_after)})

    def banned(self, decision: Decision) -> Reply:
        body = {"code": -1003, "msg": "Way too much request weight used; IP banned until "
                f"{decision.retry_after} seconds from now. Please use WebSocket Streams for live updates to avoid bans."}
        return Reply(418, _dumps(body), {"Retry-After": str(decision.retry_after)})

    def usage_headers(self, decision: Decision) -> dict[str, str]:
        return {"X-MBX-USED-WEIGHT-1M": str(int(decision.used))}

    def _symbol_entry(self, info: SymbolInfo) -> dict[str, Any]:
        raise NotImplementedError

    def listing(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        body = {
            "timezone": "UTC",
            "serverTime": ctx.now_ms,
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                            "limit": int(ctx.rule.capacity)}],
            "exchangeFilters": [],
            "symbols": [{**self._symbol_entry(s), **s.attrs} for s in symbols],
        }
        return Reply(200, _dumps(body))

    def _ticker(self, info: SymbolInfo, s: Summary, now_ms: int) -> dict[str, Any]:
        change = s.last - s.open_24h
        return {
            "symbol": info.symbol, "priceChange": _num(change), "priceChangePercent": _num(100 * change / s.open_24h, 3),
            "weightedAvgPrice": _num(s.quote_volume / s.base_volume if s.base_volume else s.last),
            "lastPrice": _num(s.last), "openPrice": _num(s.open_24h), "highPrice": _num(s.high_24h),
            "lowPrice": _num(s.low_24h), "volume": _num(s.base_volume), "quoteVolume": _num(s.quote_volume),
            "openTime": now_ms - 86_400_000, "closeTime": now_ms, "count": 1000,
        }

    def tickers(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        wanted = query.get("symbol")
        if wanted:
            match = [s for s in symbols if s.symbol == wanted]
            if not match:
                return self.error("symbol", "")
            return Reply(200, _dumps(self._ticker(match[0], ctx.summary(match[0]), ctx.now_ms)))
        return Reply(200, _dumps([self._ticker(s, ctx.summary(s), ctx.now_ms) for s in symbols]))


class BinanceSpot(BinanceLike):
    name = "binance_spot"
    listing_path, klines_path, tickers_path = "/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/ticker/24hr"
    intervals = {"4h": "4h", "1d": "1d", "1w": "1w"}
    page_limit = 1000
    weights = {LISTING: 20, KLINES: 2, TICKERS: 2}
    rule = RateRule(6000, 60.0, "binance_spot", ban_seconds=BINANCE_BAN_SECONDS)


    def distractors(self):
        return [("ETH", "BTC", None, {}), ("BNB", "FDUSD", None, {}),
                ("LUNA", "USDT", None, {"status": "BREAK", "isSpotTradingAllowed": False}),
                ("BTCUP", "USDT", None, {"status": "BREAK", "isSpotTradingAllowed": False})]

    def _symbol_entry(self, info: SymbolInfo) -> dict[str, Any]:
        return {
            "symbol": info.symbol, "status": "TRADING", "baseAsset": info.base, "baseAssetPrecision": 8,
            "quoteAsset": info.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [{"filterType": "PRICE_FILTER", "tickSize": _num(info.tick)},
                        {"filterType": "LOT_SIZE", "stepSize": _num(10.0 ** -max(info.volume_decimals, 0))}],
            "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        }


class BinanceFutures(BinanceLike):
    name = "binance_futures"
    listing_path, klines_path, tickers_path = "/fapi/v1/exchangeInfo", "/fapi/v1/klines", "/fapi/v1/ticker/24hr"
    intervals = {"4h": "4h", "1d": "1d", "1w": "1w"}
    page_limit = 1500
    weights = {LISTING: 1, KLINES: 5, TICKERS: 1}
    all_ticker_weight = 40
    rule = RateRule(2400, 60.0, "binance_futures", ban_seconds=BINANCE_BAN_SECONDS)


    def weight(self, kind: str, query: Mapping[str, str]) -> int:
        """Klines weight by LIMIT: [1,100) 1, [100,500) 2, [500,1000] 5, >1000 10 (BIN-FKL)."""
        if kind != KLINES:
            return super().weight(kind, query)
        try:
            limit = int(query.get("limit", self.default_limit))
        except ValueError:
            limit = self.default_limit
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10

    def distractors(self):
        return [("BTC", "USDT", "BTCUSDT_260626", {"contractType": "CURRENT_QUARTER", "deliveryDate": 1782460800000}),
                ("ETH", "USDT", "ETHUSDT_260925", {"contractType": "NEXT_QUARTER", "deliveryDate": 1790323200000}),
                ("BTC", "USDC", None, {"marginAsset": "USDC"}),
                ("LUNA", "USDT", None, {"status": "SETTLING"})]

    def _symbol_entry(self, info: SymbolInfo) -> dict[str, Any]:
        return {
            "symbol": info.symbol, "pair": info.base + info.quote, "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": info.listed_ms, "status": "TRADING",
            "baseAsset": info.base, "quoteAsset": info.quote, "marginAsset": info.quote,
            "pricePrecision": info.price_decimals, "quantityPrecision": max(info.volume_decimals, 0),
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
            "filters": [{"filterType": "PRICE_FILTER", "tickSize": _num(info.tick)}],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET"], "timeInForce": ["GTC", "IOC", "FOK"],
        }


class MexcSpot(BinanceLike):
    name = "mexc_spot"
    listing_path, klines_path, tickers_path = "/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/ticker/24hr"
    intervals = {"4h": "4h", "1d": "1d", "1W": "1w"}
    page_limit = 500  # documented 1000, 500 in practice (CCXT-mexc)
    fixed_decimals = None
    close_time_offset = 0
    end_exclusive = True
    weights = {LISTING: 10, KLINES: 1, TICKERS: 1}
    all_ticker_weight = 40
    rule = RateRule(500, 10.0, "mexc_spot", sliding=True, per_endpoint=True, ban_seconds=BINANCE_BAN_SECONDS)

    def distractors(self):
        return [("BTC3L", "USDT", None, {}), ("ETH3S", "USDT", None, {}), ("BTC", "USDC", None, {}),
                ("OLD", "USDT", None, {"status": "2", "isSpotTradingAllowed": False})]

    def error(self, kind: str, message: str, status: int | None = None) -> Reply:
        reply = super().error(kind, message, status)
        reply.body = reply.body[:-1] + ',"_extend":null}'
        return reply

    def usage_headers(self, decision: Decision) -> dict[str, str]:
        return {}

    def _symbol_entry(self, info: SymbolInfo) -> dict[str, Any]:
        return {
            "symbol": info.symbol, "status": "1", "baseAsset": info.base, "baseAssetPrecision": max(info.volume_decimals, 0),
            "quoteAsset": info.quote, "quotePrecision": info.price_decimals, "quoteAssetPrecision": info.price_decimals,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "quoteAmountPrecision": "5",
            "baseSizePrecision": "0", "permissions": ["SPOT"], "filters": [], "maxQuoteAmount": "2000000",
            "makerCommission": "0", "takerCommission": "0.0005", "fullName": info.base,
        }

    def _ticker(self, info: SymbolInfo, s: Summary, now_ms: int) -> dict[str, Any]:
        ticker = super()._ticker(info, s, now_ms)
        ticker["count"] = None
        ticker.pop("weightedAvgPrice")
        return ticker


# ------------------------------------------------------------------------------------------------
# Bybit v5 (bybit_spot, bybit_futures): one IP budget, errors inside HTTP 200 envelopes
# ------------------------------------------------------------------------------------------------
BYBIT_RULE = RateRule(600, 5.0, "bybit", sliding=True)
BYBIT_LINEAR_PAGE = 500  # default instruments-info page; max 1000


class Bybit(Market):
    category: ClassVar[str]
    klines_path, listing_path, tickers_path = "/v5/market/kline", "/v5/market/instruments-info", "/v5/market/tickers"
    intervals = {"240": "4h", "D": "1d", "W": "1w"}
    page_limit = 1000
    default_limit = 200
    newest_first = True
    rule = BYBIT_RULE

    def _envelope(self, result: Any, code: int = 0, msg: str = "OK", now_ms: int | None = None) -> str:
        return _dumps({"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms or 0})

    def _check_category(self, query: Mapping[str, str]) -> None:
        if query.get("category") != self.category:
            raise BadRequest(self.error("param", f"Illegal category {query.get('category')!r} for this fake market"))

    def klines_symbol(self, path: str, query: Mapping[str, str]) -> str | None:
        return query.get("symbol")

    def parse_klines(self, path: str, query: Mapping[str, str], now_ms: int) -> KlineQuery:
        self._check_category(query)
        if not query.get("symbol"):
            raise BadRequest(self.error("param", "params error: symbol invalid"))
        bad = lambda m: self.error("param", m)  # noqa: E731
        start, end = _int_param(query, "start", bad), _int_param(query, "end", bad)
        return KlineQuery(query["symbol"], self.interval_of(query.get("interval")), start, end,
                          self.clamp_limit(_int_param(query, "limit", bad)),
                          anchor_start=start is not None and end is None, containing_start=True)

    def interval_of(self, raw: str | None) -> str:
        if raw not in self.intervals:
            raise BadRequest(self.error("param", "Invalid period!"))
        return self.intervals[raw]

    def columns(self, info: SymbolInfo, bars: Bars, interval: str, now_ms: int) -> dict[str, np.ndarray]:
        tok = _ohlcv(info, bars, quoted=True)
        return {"t": int_tokens(bars.open_ms, quoted=True), **tok}

    def assemble(self, columns: dict[str, np.ndarray], query: KlineQuery, now_ms: int) -> str:
        rows = join_rows(list(columns.values()))
        head = _dumps({"symbol": query.symbol, "category": self.category})[:-1]
        return (f'{{"retCode":0,"retMsg":"OK","result":{head},"list":{rows}}},'
                f'"retExtInfo":{{}},"time":{now_ms}}}')

    def error(self, kind: str, message: str, status: int | None = None) -> Reply:
        code = {"symbol": 10001, "param": 10001, "missing": 10001, "server": 10016, "envelope": 10016}[kind]
        if kind == "symbol":
            message = "Not supported symbols"
        return Reply(status or (500 if kind == "server" else 200), self._envelope({}, code, message))

    def over_limit(self, decision: Decision) -> Reply:
        reply = Reply(200, self._envelope({}, 10006, "Too many visits!"))
        reply.headers["Retry-After"] = str(decision.retry_after)
        return reply

    def _instrument(self, info: SymbolInfo, now_ms: int) -> dict[str, Any]:
        raise NotImplementedError

    def listing(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        self._check_category(query)
        items = [{**self._instrument(s, ctx.now_ms), **s.attrs} for s in symbols]
        items = [i for i in items if i["status"] == "Trading"]
        return Reply(200, self._envelope({"category": self.category, "list": items}, now_ms=ctx.now_ms))

    def tickers(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        self._check_category(query)
        wanted = query.get("symbol")
        chosen = [s for s in symbols if not wanted or s.symbol == wanted]
        if wanted and not chosen:
            return self.error("symbol", "")
        out = []
        for info in chosen:
            s = ctx.summary(info)
            out.append({"symbol": info.symbol, "lastPrice": _num(s.last), "prevPrice24h": _num(s.open_24h),
                        "price24hPcnt": _num((s.last - s.open_24h) / s.open_24h, 6),
                        "highPrice24h": _num(s.high_24h), "lowPrice24h": _num(s.low_24h),
                        "turnover24h": _num(s.quote_volume, 4), "volume24h": _num(s.base_volume, 4),
                        "bid1Price": _num(s.last), "ask1Price": _num(s.last)})
        return Reply(200, self._envelope({"category": self.category, "list": out}, now_ms=ctx.now_ms))


class BybitSpot(Bybit):
    name = "bybit_spot"
    category = "spot"

    def distractors(self):
        return [("BTC3L", "USDT", None, {}), ("ETH3S", "USDT", None, {}), ("BTC", "USDC", None, {}),
                ("ETH", "BTC", None, {})]

    def _instrument(self, info: SymbolInfo, now_ms: int) -> dict[str, Any]:
        return {"symbol": info.symbol, "baseCoin": info.base, "quoteCoin": info.quote, "innovation": "0",
                "status": "Trading", "marginTrading": "none", "stTag": "0",
                "lotSizeFilter": {"basePrecision": _num(10.0 ** -max(info.volume_decimals, 0)),
                                  "quotePrecision": "0.0000001", "minOrderQty": "0.000048",
                                  "maxOrderQty": "71.73956243", "minOrderAmt": "1", "maxOrderAmt": "2000000"},
                "priceFilter": {"tickSize": _num(info.tick)},
                "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"}, "symbolType": ""}


class BybitFutures(Bybit):
    name = "bybit_futures"
    category = "linear"

    def distractors(self):
        return [("BTC", "USDC", "BTCPERP", {"settleCoin": "USDC"}),
                ("BTC", "USDT", "BTCUSDT-26JUN26", {"contractType": "LinearFutures", "deliveryTime": "1782460800000"}),
                ("NEWCOIN", "USDT", None, {"status": "PreLaunch"})]

    def _instrument(self, info: SymbolInfo, now_ms: int) -> dict[str, Any]:
        return {"symbol": info.symbol, "contractType": "LinearPerpetual", "status": "Trading",
                "baseCoin": info.base, "quoteCoin": info.quote, "launchTime": str(info.listed_ms),
                "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": str(info.price_decimals),
                "leverageFilter": {"minLeverage": "1", "maxLeverage": "50.00", "leverageStep": "0.01"},
                "priceFilter": {"minPrice": _num(info.tick), "maxPrice": "1999999.80", "tickSize": _num(info.tick)},
                "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001",
                                  "qtyStep": _num(10.0 ** -max(info.volume_decimals, 0)), "postOnlyMaxOrderQty": "1190.000"},
                "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": info.quote,
                "copyTrading": "both", "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375",
                "isPreListing": False, "preListingInfo": None, "symbolType": ""}

    def listing(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        """Linear instruments are paged: ``limit`` (default 500, max 1000) and ``nextPageCursor``."""
        self._check_category(query)
        items = [{**self._instrument(s, ctx.now_ms), **s.attrs} for s in symbols]
        items = [i for i in items if i["status"] == "Trading"]
        try:
            limit = max(1, min(int(query.get("limit") or BYBIT_LINEAR_PAGE), 1000))
        except ValueError:
            return self.error("param", "params error: limit invalid")
        cursor = query.get("cursor") or ""
        offset = 0
        if cursor:
            try:
                offset = int(cursor.replace("%3D", "=").rsplit("=", 1)[-1])
            except ValueError:
                return self.error("param", "params error: cursor invalid")
        page = items[offset:offset + limit]
        nxt = f"next%3D{offset + limit}" if offset + limit < len(items) else ""
        result = {"category": self.category, "list": page, "nextPageCursor": nxt}
        return Reply(200, self._envelope(result, now_ms=ctx.now_ms))


# ------------------------------------------------------------------------------------------------
# Gate v4 (gateio_spot, gateio_futures)
# ------------------------------------------------------------------------------------------------
class Gate(Market):
    symbol_param: ClassVar[str]
    page_limit = 1000
    default_limit = 100

    def symbol_name(self, base: str, quote: str) -> str:
        return f"{base}_{quote}"

    def klines_symbol(self, path: str, query: Mapping[str, str]) -> str | None:
        return query.get(self.symbol_param)

    def parse_klines(self, path: str, query: Mapping[str, str], now_ms: int) -> KlineQuery:
        """``limit`` conflicts with ``from``/``to``; from/to in seconds; at most ``page_limit`` points."""
        if not query.get(self.symbol_param):
            raise BadRequest(self.error("missing", f"Missing required parameter: {self.symbol_param}"))
        interval = self.interval_of(query.get("interval", "30m"))
        bad = lambda m: self.error("param", m)  # noqa: E731
        start_s, end_s, limit = (_int_param(query, k, bad) for k in ("from", "to", "limit"))
        if limit is not None and (start_s is not None or end_s is not None):
            raise BadRequest(self.error("param", "`limit` is conflicted with `from` and `to`"))
        if limit is not None and limit > self.page_limit:
            raise BadRequest(self.error("param", f"Invalid request parameter `limit` value: {limit}"))
        if start_s is None and end_s is None:
            return KlineQuery(query[self.symbol_param], interval, None, None, limit or self.default_limit, False)
        period, offset = INTERVAL_MS[interval], BUCKET_OFFSET_MS[interval]
        end = end_s * 1000 if end_s is not None else now_ms
        start = start_s * 1000 if start_s is not None else end - self.default_limit * period
        points = math.floor((end - offset) / period) - math.ceil((start - offset) / period) + 1
        if points > self.page_limit:
            raise BadRequest(self.error(
                "param", f"Candlestick range too broad. Maximum {self.page_limit} data points are allowed per request"))
        if start < now_ms - GATE_MAX_POINTS_AGO * period:
            raise BadRequest(self.error(
                "param", f"Candlestick too long ago. Maximum {GATE_MAX_POINTS_AGO} points ago are allowed"))
        return KlineQuery(query[self.symbol_param], interval, start, end, self.page_limit, True)

    def error(self, kind: str, message: str, status: int | None = None) -> Reply:
        label = {"symbol": "INVALID_CURRENCY_PAIR", "param": "INVALID_PARAM_VALUE", "missing": "MISSING_REQUIRED_PARAM",
                 "server": "SERVER_ERROR", "envelope": "SERVER_ERROR"}[kind]
        default = 500 if kind == "server" else (200 if kind == "envelope" else 400)
        return Reply(status or default, _dumps({"label": label, "message": message}))

    def over_limit(self, decision: Decision) -> Reply:
        return Reply(429, _dumps({"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit Exceeded"}),
                     {"Retry-After": str(decision.retry_after)})

    def usage_headers(self, decision: Decision) -> dict[str, str]:
        reset_ms = int((time.time() + decision.reset_in) * 1000)
        return {"X-Gate-RateLimit-Requests-Remain": str(int(decision.remaining)),
                "X-Gate-RateLimit-Limit": str(int(decision.capacity)),
                "X-Gate-RateLimit-Reset-Timestamp": str(reset_ms)}


GATE_RULE_SPOT = RateRule(200, 10.0, "gateio_spot", per_endpoint=True)
GATE_RULE_FUTURES = RateRule(200, 10.0, "gateio_futures", per_endpoint=True)


class GateSpot(Gate):
    name = "gateio_spot"
    listing_path, klines_path, tickers_path = "/spot/currency_pairs", "/spot/candlesticks", "/spot/tickers"
    intervals = {"4h": "4h", "1d": "1d", "7d": "7d"}
    symbol_param = "currency_pair"
    rule = GATE_RULE_SPOT

    def distractors(self):
        return [("BTC3L", "USDT", None, {}), ("ETH3S", "USDT", None, {}), ("ETH", "BTC", None, {}),
                ("DEAD", "USDT", None, {"trade_status": "untradable"})]

    def columns(self, info: SymbolInfo, bars: Bars, interval: str, now_ms: int) -> dict[str, np.ndarray]:
        tok = _ohlcv(info, bars, quoted=True)
        closed = np.where(bars.open_ms + INTERVAL_MS[interval] <= now_ms, '"true"', '"false"')
        return {"t": int_tokens(bars.open_ms // 1000, quoted=True), "q": tok["q"], "c": tok["c"], "h": tok["h"],
                "l": tok["l"], "o": tok["o"], "v": tok["v"], "closed": closed.astype(tok["o"].dtype)}

    def listing(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        out = [{"id": s.symbol, "base": s.base, "base_name": s.base, "quote": s.quote, "quote_name": s.quote,
                "fee": "0.2", "min_base_amount": _num(10.0 ** -max(s.volume_decimals, 0)), "min_quote_amount": "3",
                "max_base_amount": "", "max_quote_amount": "5000000",
                "amount_precision": max(s.volume_decimals, 0), "precision": s.price_decimals,
                "trade_status": "tradable", "sell_start": s.listed_ms // 1000, "buy_start": s.listed_ms // 1000,
                "delisting_time": 0, "type": "normal", "trade_url": "", "st_tag": False, **s.attrs} for s in symbols]
        return Reply(200, _dumps(out))

    def tickers(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        wanted = query.get("currency_pair")
        chosen = [s for s in symbols if not wanted or s.symbol == wanted]
        if wanted and not chosen:
            return self.error("symbol", f"Invalid currency pair {wanted}")
        out = []
        for info in chosen:
            s = ctx.summary(info)
            lev = info.base[-2:] in ("3L", "3S")
            out.append({"currency_pair": info.symbol, "last": _num(s.last), "lowest_ask": _num(s.last),
                        "highest_bid": _num(s.last), "change_percentage": _num(100 * (s.last / s.open_24h - 1), 2),
                        "base_volume": _num(s.base_volume), "quote_volume": _num(s.quote_volume),
                        "high_24h": _num(s.high_24h), "low_24h": _num(s.low_24h),
                        "etf_net_value": "1.0" if lev else None, "etf_leverage": "3" if lev else None})
        return Reply(200, _dumps(out))


class GateFutures(Gate):
    name = "gateio_futures"
    listing_path = "/futures/usdt/contracts"
    klines_path, tickers_path = "/futures/usdt/candlesticks", "/futures/usdt/tickers"
    intervals = {"4h": "4h", "1d": "1d", "1w": "1w", "7d": "7d"}
    page_limit = 2000
    symbol_param = "contract"
    contract_volume = True
    rule = GATE_RULE_FUTURES

    def distractors(self):
        return [("OLDA", "USDT", None, {"in_delisting": True}), ("OLDB", "USDT", None, {"status": "suspend"})]

    def columns(self, info: SymbolInfo, bars: Bars, interval: str, now_ms: int) -> dict[str, np.ndarray]:
        tok = _ohlcv(info, bars, quoted=True)
        return {"t": int_tokens(bars.open_ms // 1000, quoted=False), "v": int_tokens(bars.volume, quoted=False),
                "c": tok["c"], "h": tok["h"], "l": tok["l"], "o": tok["o"], "sum": tok["q"]}

    def assemble(self, columns: dict[str, np.ndarray], query: KlineQuery, now_ms: int) -> str:
        return join_objects(columns)

    def listing(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        out = []
        for s in symbols:
            last = _num(ctx.summary(s).last)
            out.append({"name": s.symbol, "type": "direct", "quanto_multiplier": _num(s.multiplier),
                        "leverage_min": "1", "leverage_max": "100", "maintenance_rate": "0.005",
                        "mark_type": "index", "mark_price": last, "index_price": last, "last_price": last,
                        "order_price_round": _num(s.tick), "mark_price_round": _num(s.tick),
                        "funding_rate": "0.0001", "funding_interval": 28800, "order_size_min": 1,
                        "order_size_max": 1000000, "in_delisting": False, "status": "trading",
                        "create_time": s.listed_ms / 1000, "launch_time": s.listed_ms // 1000, **s.attrs})
        return Reply(200, _dumps(out))

    def tickers(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        wanted = query.get("contract")
        out = []
        for info in symbols:
            if wanted and info.symbol != wanted:
                continue
            s = ctx.summary(info)
            out.append({"contract": info.symbol, "last": _num(s.last), "change_percentage": _num(100 * (s.last / s.open_24h - 1), 2),
                        "volume_24h": str(int(round(s.base_volume / info.multiplier))),
                        "volume_24h_base": _num(s.base_volume), "volume_24h_quote": _num(s.quote_volume, 0),
                        "volume_24h_settle": _num(s.quote_volume, 0), "high_24h": _num(s.high_24h),
                        "low_24h": _num(s.low_24h), "mark_price": _num(s.last), "index_price": _num(s.last)})
        return Reply(200, _dumps(out))


# ------------------------------------------------------------------------------------------------
# KuCoin (kucoin_spot, kucoin_futures): one public pool per IP, envelope {code, data}
# ------------------------------------------------------------------------------------------------
KUCOIN_RULE = RateRule(2000, 30.0, "kucoin", aligned=False)


class KuCoin(Market):
    rule = KUCOIN_RULE

    def _ok(self, data: Any) -> str:
        return _dumps({"code": "200000", "data": data})

    def klines_symbol(self, path: str, query: Mapping[str, str]) -> str | None:
        return query.get("symbol")

    def assemble(self, columns: dict[str, np.ndarray], query: KlineQuery, now_ms: int) -> str:
        return '{"code":"200000","data":' + join_rows(list(columns.values())) + "}"

    def error(self, kind: str, message: str, status: int | None = None) -> Reply:
        code = {"symbol": "400100", "param": "400100", "missing": "400100", "server": "500000", "envelope": "400100"}[kind]
        if kind == "symbol":
            message = "This pair is not provided at present"
        return Reply(status or (500 if kind == "server" else 200), _dumps({"code": code, "msg": message}))

    def over_limit(self, decision: Decision) -> Reply:
        return Reply(429, _dumps({"code": "429000", "msg": "Too many requests in a short period of time, please retry later."}),
                     {"Retry-After": str(decision.retry_after)})

    def usage_headers(self, decision: Decision) -> dict[str, str]:
        return {"gw-ratelimit-limit": str(int(decision.capacity)),
                "gw-ratelimit-remaining": str(int(decision.remaining)),
                "gw-ratelimit-reset": str(int(decision.reset_in * 1000))}


class KuCoinSpot(KuCoin):
    name = "kucoin_spot"
    listing_path, klines_path, tickers_path = "/api/v2/symbols", "/api/v1/market/candles", "/api/v1/market/allTickers"
    intervals = {"4hour": "4h", "1day": "1d", "1week": "1w"}
    page_limit = 1500
    newest_first = True
    weights = {LISTING: 4, KLINES: 3, TICKERS: 15}

    def symbol_name(self, base: str, quote: str) -> str:
        return f"{base}-{quote}"

    def distractors(self):
        return [("BTC3L", "USDT", None, {"market": "ETF"}), ("ETH3S", "USDT", None, {"market": "ETF"}),
                ("ETH", "BTC", None, {"market": "BTC"}), ("GONE", "USDT", None, {"enableTrading": False})]

    def parse_klines(self, path: str, query: Mapping[str, str], now_ms: int) -> KlineQuery:
        """startAt/endAt seconds (0 = unbounded); newest 1500 of the window, newest first."""
        if not query.get("symbol"):
            raise BadRequest(self.error("missing", "symbol is required"))
        bad = lambda m: self.error("param", m)  # noqa: E731
        start, end = (_int_param(query, k, bad) or 0 for k in ("startAt", "endAt"))
        return KlineQuery(query["symbol"], self.interval_of(query.get("type")), start * 1000 if start else None,
                          end * 1000 if end else None, self.page_limit, anchor_start=False)

    def columns(self, info: SymbolInfo, bars: Bars, interval: str, now_ms: int) -> dict[str, np.ndarray]:
        tok = _ohlcv(info, bars, quoted=True)
        return {"t": int_tokens(bars.open_ms // 1000, quoted=True), "o": tok["o"], "c": tok["c"], "h": tok["h"],
                "l": tok["l"], "v": tok["v"], "q": tok["q"]}

    def listing(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        out = [{"symbol": s.symbol, "name": s.symbol, "baseCurrency": s.base, "quoteCurrency": s.quote,
                "feeCurrency": s.quote, "market": "USDS" if s.quote == "USDT" else "ALTS",
                "baseMinSize": _num(10.0 ** -max(s.volume_decimals, 0)), "quoteMinSize": "0.1",
                "baseMaxSize": "10000000000", "quoteMaxSize": "99999999",
                "baseIncrement": _num(10.0 ** -max(s.volume_decimals, 0)), "quoteIncrement": "0.000001",
                "priceIncrement": _num(s.tick), "priceLimitRate": "0.1", "minFunds": "0.1",
                "isMarginEnabled": False, "enableTrading": True, "feeCategory": 1, "makerFeeCoefficient": "1.00",
                "takerFeeCoefficient": "1.00", "st": False, "callauctionIsEnabled": False, **s.attrs} for s in symbols]
        return Reply(200, self._ok(out))

    def tickers(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        out = []
        for info in symbols:
            s = ctx.summary(info)
            out.append({"symbol": info.symbol, "symbolName": info.symbol, "buy": _num(s.last), "sell": _num(s.last),
                        "changeRate": _num(s.last / s.open_24h - 1, 4), "changePrice": _num(s.last - s.open_24h),
                        "high": _num(s.high_24h), "low": _num(s.low_24h), "vol": _num(s.base_volume),
                        "volValue": _num(s.quote_volume), "last": _num(s.last), "averagePrice": _num(s.last),
                        "takerFeeRate": "0.001", "makerFeeRate": "0.001", "takerCoefficient": "1",
                        "makerCoefficient": "1"})
        return Reply(200, self._ok({"time": ctx.now_ms, "ticker": out}))


class KuCoinFutures(KuCoin):
    name = "kucoin_futures"
    listing_path, klines_path, tickers_path = "/api/v1/contracts/active", "/api/v1/kline/query", "/api/v1/allTickers"
    intervals = {"240": "4h", "1440": "1d", "10080": "1w"}
    page_limit = 200
    contract_volume = True
    weights = {LISTING: 3, KLINES: 3, TICKERS: 3}

    def symbol_name(self, base: str, quote: str) -> str:
        return f"{'XBT' if base == 'BTC' else base}{quote}M"

    def distractors(self):
        return [("XBT", "USD", "XBTUSDM", {"isInverse": True, "settleCurrency": "XBT"}),
                ("XBT", "USDT", "XBTMM26", {"type": "FFICSX", "expireDate": 1782460800000}),
                ("XBT", "USDC", "XBTUSDCM", {"settleCurrency": "USDC"})]

    def parse_klines(self, path: str, query: Mapping[str, str], now_ms: int) -> KlineQuery:
        """from/to ms; a window wider than 200 buckets returns the OLDEST 200 from ``from``."""
        if not query.get("symbol"):
            raise BadRequest(self.error("missing", "symbol is required"))
        bad = lambda m: self.error("param", m)  # noqa: E731
        start, end = _int_param(query, "from", bad), _int_param(query, "to", bad)
        return KlineQuery(query["symbol"], self.interval_of(query.get("granularity")), start, end,
                          self.page_limit, anchor_start=start is not None)

    def columns(self, info: SymbolInfo, bars: Bars, interval: str, now_ms: int) -> dict[str, np.ndarray]:
        tok = _ohlcv(info, bars, quoted=False)
        return {"t": int_tokens(bars.open_ms, quoted=False), "o": tok["o"], "h": tok["h"], "l": tok["l"],
                "c": tok["c"], "v": int_tokens(bars.volume, quoted=False)}

    def listing(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        out = []
        for s in symbols:
            sm = ctx.summary(s)
            base = "XBT" if s.base == "BTC" else s.base
            out.append({"symbol": s.symbol, "rootSymbol": s.quote, "type": "FFWCSX", "firstOpenDate": s.listed_ms,
                        "expireDate": None, "settleDate": None, "baseCurrency": base, "quoteCurrency": s.quote,
                        "settleCurrency": s.quote, "maxOrderQty": 1000000, "maxPrice": 1000000.0, "lotSize": 1,
                        "tickSize": s.tick, "indexPriceTickSize": s.tick, "multiplier": s.multiplier,
                        "initialMargin": 0.008, "maintainMargin": 0.004, "maxRiskLimit": 100000,
                        "minRiskLimit": 100000, "riskStep": 50000, "makerFeeRate": 0.0002, "takerFeeRate": 0.0006,
                        "takerFixFee": 0.0, "makerFixFee": 0.0, "isDeleverage": True, "isQuanto": False,
                        "isInverse": False, "markMethod": "FairPrice", "fairMethod": "FundingRate",
                        "status": "Open", "fundingFeeRate": 0.0001, "openInterest": "1000",
                        "turnoverOf24h": round(sm.quote_volume, 4), "volumeOf24h": round(sm.base_volume, 8),
                        "markPrice": sm.last, "indexPrice": sm.last, "lastTradePrice": sm.last,
                        "maxLeverage": 125, "lowPrice": sm.low_24h, "highPrice": sm.high_24h,
                        "priceChgPct": round(sm.last / sm.open_24h - 1, 4), "priceChg": sm.last - sm.open_24h,
                        **s.attrs})
        return Reply(200, self._ok(out))

    def tickers(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        out = [{"symbol": i.symbol, "price": _num(ctx.summary(i).last), "bestBidPrice": _num(ctx.summary(i).last),
                "bestAskPrice": _num(ctx.summary(i).last), "ts": ctx.now_ms * 1_000_000} for i in symbols]
        return Reply(200, self._ok(out))


# ------------------------------------------------------------------------------------------------
# MEXC futures (contract API v1): column arrays, symbol in the path, {success, code, data}
# ------------------------------------------------------------------------------------------------
class MexcFutures(Market):
    name = "mexc_futures"
    listing_path, tickers_path = "/api/v1/contract/detail", "/api/v1/contract/ticker"
    klines_path = "/api/v1/contract/kline/"
    intervals = {"Hour4": "4h", "Day1": "1d", "Week1": "1w"}
    page_limit = 2000
    default_limit = 2000
    contract_volume = True
    rule = RateRule(20, 2.0, "mexc_futures", sliding=True)

    def symbol_name(self, base: str, quote: str) -> str:
        return f"{base}_{quote}"

    def distractors(self):
        return [("BTC", "USD", None, {"quoteCoin": "USD", "settleCoin": "BTC"}),
                ("BTC", "USDC", None, {}), ("GONE", "USDT", None, {"state": 3})]

    def kind_of(self, path: str) -> str | None:
        if path.startswith(self.klines_path) and len(path) > len(self.klines_path):
            return KLINES
        return super().kind_of(path)

    def klines_symbol(self, path: str, query: Mapping[str, str]) -> str | None:
        return path[len(self.klines_path):]

    def parse_klines(self, path: str, query: Mapping[str, str], now_ms: int) -> KlineQuery:
        bad = lambda m: self.error("param", m)  # noqa: E731
        start, end = _int_param(query, "start", bad), _int_param(query, "end", bad)
        return KlineQuery(self.klines_symbol(path, query), self.interval_of(query.get("interval", "Min1")),
                          start * 1000 if start is not None else None, end * 1000 if end is not None else None,
                          self.page_limit, anchor_start=start is not None)

    def columns(self, info: SymbolInfo, bars: Bars, interval: str, now_ms: int) -> dict[str, np.ndarray]:
        tok = _ohlcv(info, bars, quoted=False)
        return {"time": int_tokens(bars.open_ms // 1000, quoted=False), "o": tok["o"], "c": tok["c"],
                "h": tok["h"], "l": tok["l"], "v": int_tokens(bars.volume, quoted=False), "amount": tok["q"]}

    def assemble(self, columns: dict[str, np.ndarray], query: KlineQuery, now_ms: int) -> str:
        names = {"o": "open", "c": "close", "h": "high", "l": "low", "v": "vol"}
        cols = {names.get(k, k): v for k, v in columns.items()}
        if not cols:
            cols = {k: np.array([], dtype=str) for k in ("time", "open", "close", "high", "low", "vol", "amount")}
        return '{"success":true,"code":0,"data":' + join_columns(cols) + "}"

    def error(self, kind: str, message: str, status: int | None = None) -> Reply:
        code = {"symbol": 1001, "param": 600, "missing": 600, "server": 9999, "envelope": 10232}[kind]
        if kind == "symbol":
            message = "Contract does not exist!"
        return Reply(status or (500 if kind == "server" else 200),
                     _dumps({"success": False, "code": code, "message": message}))

    def over_limit(self, decision: Decision) -> Reply:
        return Reply(200, _dumps({"success": False, "code": 510, "message": "Requests are too frequent!"}),
                     {"Retry-After": str(decision.retry_after)})

    def listing(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        out = [{"symbol": s.symbol, "displayName": f"{s.base}_{s.quote} PERPETUAL", "displayNameEn": f"{s.base}_{s.quote} PERPETUAL",
                "positionOpenType": 3, "baseCoin": s.base, "quoteCoin": s.quote, "settleCoin": s.quote,
                "contractSize": s.multiplier, "minLeverage": 1, "maxLeverage": 200, "priceScale": s.price_decimals,
                "volScale": 0, "amountScale": 4, "priceUnit": s.tick, "volUnit": 1, "minVol": 1, "maxVol": 1000000,
                "state": 0, "isNew": False, "isHot": False, "isHidden": False, "openingTime": s.listed_ms // 1000,
                **s.attrs} for s in symbols]
        return Reply(200, _dumps({"success": True, "code": 0, "data": out}))

    def tickers(self, symbols: list[SymbolInfo], query: Mapping[str, str], ctx: Context) -> Reply:
        out = []
        for info in symbols:
            s = ctx.summary(info)
            out.append({"symbol": info.symbol, "lastPrice": s.last, "volume24": int(round(s.base_volume / info.multiplier)),
                        "amount24": round(s.quote_volume, 4), "riseFallRate": round(s.last / s.open_24h - 1, 4),
                        "fairPrice": s.last, "indexPrice": s.last, "high24Price": s.high_24h,
                        "lower24Price": s.low_24h, "timestamp": ctx.now_ms})
        return Reply(200, _dumps({"success": True, "code": 0, "data": out}))


MARKET_CLASSES: dict[str, type[Market]] = {
    cls.name: cls
    for cls in (BinanceSpot, BinanceFutures, BybitSpot, BybitFutures, GateSpot, GateFutures, KuCoinSpot,
                KuCoinFutures, MexcSpot, MexcFutures)
}
MARKETS: tuple[str, ...] = tuple(MARKET_CLASSES)
