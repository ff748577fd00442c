"""MEXC spot (v3, Binance style) and contract (v1) clients (spec/exchanges.md mexc_spot, mexc_futures).

Spot: oldest-first 8-field rows in ms, ``1W`` for weeks, at most 500 rows in practice, ``endTime``
exclusive. Futures: symbol in the path, ``start``/``end`` in seconds, column arrays
``{time, open, close, high, low, vol, amount}`` with ``vol`` in contracts (x ``contractSize``),
errors as ``{"success": false, "code": ..., "message": ...}`` (510 = too frequent).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, ClassVar

from exchanges.base_client import BaseExchangeClient, without_leveraged
from exchanges.binance import BinanceStyleClient

MEXC_SPOT_INTERVALS = {"4h": "4h", "1d": "1d", "1w": "1W"}
MEXC_FUTURES_INTERVALS = {"4h": "Hour4", "1d": "Day1", "1w": "Week1"}
MEXC_FUTURES_COLUMNS = ("time", "open", "high", "low", "close", "vol")
MEXC_RATE_LIMIT_CODES = frozenset({"-1003", "429", "510"})
MEXC_CONTRACT_ENABLED = 0


class MexcSpotClient(BinanceStyleClient):
    """MEXC spot: USDT pairs with status "1" (enabled) and spot trading allowed."""

    name = "mexc_spot"
    default_base_url = "https://api.mexc.com"
    page_limit = 500
    intervals: ClassVar[dict[str, str]] = MEXC_SPOT_INTERVALS
    listing_path = "/api/v3/exchangeInfo"
    listing_weight = 10
    klines_path = "/api/v3/klines"
    klines_weight = 1
    end_exclusive = True
    budget_key = "mexc_spot"
    budget_limit = 500
    budget_period = 10.0
    usage_headers = None
    rate_limit_codes = MEXC_RATE_LIMIT_CODES

    def _is_selected(self, info: dict) -> bool:
        return (
            info.get("quoteAsset") == "USDT"
            and str(info.get("status")) in ("1", "ENABLED")
            and info.get("isSpotTradingAllowed", True) is not False
        )


class MexcFuturesClient(BaseExchangeClient):
    """MEXC USDT perpetual contracts (``state == 0``, quote and settle USDT)."""

    name = "mexc_futures"
    default_base_url = "https://contract.mexc.com"
    page_limit = 2000
    intervals: ClassVar[dict[str, str]] = MEXC_FUTURES_INTERVALS
    listing_path = "/api/v1/contract/detail"
    listing_weight = 1
    klines_path = "/api/v1/contract/kline/{symbol}"
    symbol_param = None
    start_param = "start"
    end_param = "end"
    limit_param = None
    request_time_unit = "s"
    row_fields = MEXC_FUTURES_COLUMNS
    row_time_unit = "s"
    contract_volume = True
    budget_key = "mexc_futures"
    budget_limit = 20
    budget_period = 2.0
    rate_limit_codes = MEXC_RATE_LIMIT_CODES
    bad_symbol_codes = frozenset({"1001"})

    def _klines_url_path(self, symbol: str) -> str:
        return self.klines_path.format(symbol=symbol)

    def _error_fields(self, body: Any) -> tuple[str | None, str | None]:
        if isinstance(body, dict):
            code, msg = body.get("code"), body.get("message") or body.get("msg")
            return (None if code is None else str(code)), (None if msg is None else str(msg))
        return None, None

    def _envelope_error(self, body: Any) -> bool:
        return not (isinstance(body, dict) and body.get("success") is True)

    def _unwrap(self, body: Any) -> Any:
        return body["data"]

    def _candle_rows(self, payload: Any) -> list[dict]:
        """Zip the column arrays into one dict per candle (checking they have one length)."""
        if not payload:
            return []
        columns = {key: payload[key] for key in MEXC_FUTURES_COLUMNS}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise TypeError(f"column arrays of different lengths {sorted(lengths)}")
        return [dict(zip(columns, values)) for values in zip(*columns.values())]

    def _selected(self, payload: Any) -> list[dict]:
        return [
            c for c in payload
            if c.get("quoteCoin") == "USDT" and c.get("settleCoin") == "USDT"
            and int(c.get("state", -1)) == MEXC_CONTRACT_ENABLED
        ]

    def parse_symbols(self, payload: Any) -> list[str]:
        selected = self._selected(payload)
        return without_leveraged(selected, symbol=itemgetter("symbol"), base=itemgetter("baseCoin"))

    def parse_contract_sizes(self, payload: Any) -> dict[str, float]:
        return {c["symbol"]: float(c["contractSize"]) for c in payload if c.get("contractSize") is not None}
