"""KuCoin spot and futures clients (spec/exchanges.md kucoin_spot, kucoin_futures).

Spot rows are 7 strings ``[time s, open, CLOSE, high, low, volume(base), turnover]``, newest first,
sized by ``startAt``/``endAt`` seconds (no ``limit``). Futures rows are numbers
``[time ms, open, high, low, close, volume(lots)]``; a window wider than 200 buckets returns the
oldest 200 from ``from``, so pages are windows of at most 200 buckets; volume x ``multiplier``.
Every answer is ``{"code": "200000", "data": ...}``; 429000 means rate limited.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, ClassVar

from exchanges.base_client import BaseExchangeClient, without_leveraged
from exchanges.rate_limit import UsageHeaders

KUCOIN_OK = "200000"
KUCOIN_USAGE = UsageHeaders(
    remaining="gw-ratelimit-remaining", limit="gw-ratelimit-limit", reset="gw-ratelimit-reset",
    reset_kind="delta_ms",
)
KUCOIN_PERPETUAL_TYPE = "FFWCSX"
# 400100 is KuCoin's generic parameter error; it means an unknown market when the text names one.
KUCOIN_PARAM_ERROR = "400100"
KUCOIN_SYMBOL_WORDS = ("pair", "symbol", "contract")


class KucoinClient(BaseExchangeClient):
    """Shared KuCoin declarations: the code/msg envelope and the public pool (2000 weight / 30 s).

    The public pool is per IP (KUC-RL), so spot and futures draw from one budget.
    """

    limit_param = None
    klines_weight = 3
    listing_weight = 4
    budget_key = "kucoin"
    budget_limit = 2000
    budget_period = 30.0
    usage_headers = KUCOIN_USAGE
    rate_limit_codes = frozenset({"429000"})

    def _error_fields(self, body: Any) -> tuple[str | None, str | None]:
        if isinstance(body, dict) and "code" in body:
            return str(body["code"]), str(body.get("msg") or body.get("message") or "")
        return None, None

    def _envelope_error(self, body: Any) -> bool:
        return not isinstance(body, dict) or str(body.get("code")) != KUCOIN_OK

    def _is_bad_symbol(self, code: str | None, message: str | None, status: int) -> bool:
        text = (message or "").lower()
        return code == KUCOIN_PARAM_ERROR and any(word in text for word in KUCOIN_SYMBOL_WORDS)

    def _unwrap(self, body: Any) -> Any:
        return body["data"] or []


class KucoinSpotClient(KucoinClient):
    """KuCoin spot: USDT pairs with trading enabled."""

    name = "kucoin_spot"
    default_base_url = "https://api.kucoin.com"
    page_limit = 1500
    intervals: ClassVar[dict[str, str]] = {"4h": "4hour", "1d": "1day", "1w": "1week"}
    listing_path = "/api/v2/symbols"
    klines_path = "/api/v1/market/candles"
    interval_param = "type"
    start_param = "startAt"
    end_param = "endAt"
    request_time_unit = "s"
    row_fields = (0, 1, 3, 4, 2, 5)
    row_time_unit = "s"

    def parse_symbols(self, payload: Any) -> list[str]:
        selected = [s for s in payload if s.get("quoteCurrency") == "USDT" and s.get("enableTrading") is True]
        return without_leveraged(selected, symbol=itemgetter("symbol"), base=itemgetter("baseCurrency"))


class KucoinFuturesClient(KucoinClient):
    """KuCoin USDT-settled linear perpetuals (type FFWCSX, status Open); volume in lots."""

    name = "kucoin_futures"
    default_base_url = "https://api-futures.kucoin.com"
    page_limit = 200
    intervals: ClassVar[dict[str, str]] = {"4h": "240", "1d": "1440", "1w": "10080"}
    listing_path = "/api/v1/contracts/active"
    listing_weight = 3
    klines_path = "/api/v1/kline/query"
    interval_param = "granularity"
    start_param = "from"
    end_param = "to"
    contract_volume = True

    def _selected(self, payload: Any) -> list[dict]:
        return [
            c for c in payload
            if c.get("type") == KUCOIN_PERPETUAL_TYPE and c.get("isInverse") is False
            and c.get("settleCurrency") == "USDT" and c.get("quoteCurrency") == "USDT"
            and c.get("status") == "Open"
        ]

    def parse_symbols(self, payload: Any) -> list[str]:
        selected = self._selected(payload)
        return without_leveraged(selected, symbol=itemgetter("symbol"), base=itemgetter("baseCurrency"))

    def parse_contract_sizes(self, payload: Any) -> dict[str, float]:
        return {c["symbol"]: float(c["multiplier"]) for c in payload if c.get("multiplier") is not None}
