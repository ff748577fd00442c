"""Binance spot and USDⓈ-M futures clients (spec/exchanges.md sections binance_spot, binance_futures).

Both return oldest-first 12-field rows ``[openTime ms, open, high, low, close, volume(base), ...]``
with prices as strings; errors are ``{"code": -1121, "msg": "Invalid symbol."}`` with a 4XX status,
-1003 on an exhausted weight budget; 429 then 418 (IP ban) both carry ``Retry-After``.
"""

from __future__ import annotations

from abc import abstractmethod
from operator import itemgetter
from typing import Any, ClassVar

from exchanges.base_client import BaseExchangeClient, without_leveraged
from exchanges.rate_limit import UsageHeaders

BINANCE_INTERVALS = {"4h": "4h", "1d": "1d", "1w": "1w"}
BINANCE_USAGE = UsageHeaders(used="X-MBX-USED-WEIGHT-1M")
# Futures klines weight by requested limit: [1,100) -> 1, [100,500) -> 2, [500,1000] -> 5, > 1000 -> 10.
FUTURES_KLINES_COST: tuple[tuple[int, float], ...] = ((99, 1), (499, 2), (1000, 5), (1500, 10))


class BinanceStyleClient(BaseExchangeClient):
    """Declarations shared by Binance-style APIs (Binance spot/futures, MEXC spot)."""

    intervals: ClassVar[dict[str, str]] = BINANCE_INTERVALS
    usage_headers = BINANCE_USAGE
    rate_limit_codes = frozenset({"-1003"})
    bad_symbol_codes = frozenset({"-1121"})

    def _trading_symbols(self, payload: Any) -> list[dict]:
        return [s for s in payload["symbols"] if self._is_selected(s)]

    @abstractmethod
    def _is_selected(self, info: dict) -> bool:
        """Whether a ``symbols[]`` entry is a tradable USDT market of this client."""

    def parse_symbols(self, payload: Any) -> list[str]:
        selected = self._trading_symbols(payload)
        return without_leveraged(selected, symbol=itemgetter("symbol"), base=itemgetter("baseAsset"))


class BinanceSpotClient(BinanceStyleClient):
    """Binance spot: USDT pairs with status TRADING and spot trading allowed."""

    name = "binance_spot"
    default_base_url = "https://api.binance.com"
    page_limit = 1000
    listing_path = "/api/v3/exchangeInfo"
    listing_weight = 20
    klines_path = "/api/v3/klines"
    klines_weight = 2
    states_limits = True
    budget_key = "binance_spot"
    budget_limit = 6000
    budget_period = 60.0

    def _is_selected(self, info: dict) -> bool:
        return (
            info.get("quoteAsset") == "USDT"
            and info.get("status") == "TRADING"
            and info.get("isSpotTradingAllowed", True) is not False
        )


class BinanceFuturesClient(BinanceStyleClient):
    """Binance USDⓈ-M: USDT-margined PERPETUAL contracts with status TRADING; volume is base already."""

    name = "binance_futures"
    default_base_url = "https://fapi.binance.com"
    page_limit = 1500
    listing_path = "/fapi/v1/exchangeInfo"
    listing_weight = 1
    klines_path = "/fapi/v1/klines"
    klines_cost = FUTURES_KLINES_COST
    states_limits = True
    budget_key = "binance_futures"
    budget_limit = 2400
    budget_period = 60.0

    def _is_selected(self, info: dict) -> bool:
        status = info.get("status", info.get("contractStatus"))
        return (
            info.get("contractType") == "PERPETUAL"
            and info.get("quoteAsset") == "USDT"
            and info.get("marginAsset", "USDT") == "USDT"
            and status == "TRADING"
        )
