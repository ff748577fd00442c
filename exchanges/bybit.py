"""Bybit v5 spot and linear clients (spec/exchanges.md bybit_spot, bybit_futures).

Rows ``[startTime ms, open, high, low, close, volume(base), turnover]`` as strings, **newest first**;
errors arrive with HTTP 200 as ``retCode != 0`` (10006/10018: rate limit); an IP over the limit gets
HTTP 403 (treated as an IP ban). Spot and linear share one IP budget of 600 requests per 5 s.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, ClassVar

from exchanges.base_client import BaseExchangeClient, without_leveraged
from exchanges.errors import BadResponse
from exchanges.rate_limit import UsageHeaders

BYBIT_INTERVALS = {"4h": "240", "1d": "D", "1w": "W"}
BYBIT_USAGE = UsageHeaders(
    remaining="X-Bapi-Limit-Status", limit="X-Bapi-Limit", reset="X-Bapi-Limit-Reset-Timestamp"
)
BYBIT_BAD_PARAMS_CODE = "10001"
LINEAR_PAGE_SIZE = "1000"
# Guard against a cursor that never ends.
MAX_LISTING_PAGES = 50


class BybitClient(BaseExchangeClient):
    """Shared Bybit v5 declarations; the ``category`` parameter selects spot or linear."""

    default_base_url = "https://api.bybit.com"
    page_limit = 1000
    intervals: ClassVar[dict[str, str]] = BYBIT_INTERVALS
    listing_path = "/v5/market/instruments-info"
    klines_path = "/v5/market/kline"
    start_param = "start"
    end_param = "end"
    budget_key = "bybit"
    budget_limit = 600
    budget_period = 5.0
    usage_headers = BYBIT_USAGE
    ban_statuses = frozenset({403, 418})
    rate_limit_codes = frozenset({"10006", "10018"})

    def _error_fields(self, body: Any) -> tuple[str | None, str | None]:
        if isinstance(body, dict) and "retCode" in body:
            return str(body["retCode"]), str(body.get("retMsg", ""))
        return super()._error_fields(body)

    def _envelope_error(self, body: Any) -> bool:
        return not isinstance(body, dict) or str(body.get("retCode")) != "0"

    def _is_bad_symbol(self, code: str | None, message: str | None, status: int) -> bool:
        return code == BYBIT_BAD_PARAMS_CODE and "symbol" in (message or "").lower()

    def _unwrap(self, body: Any) -> Any:
        return body["result"]

    def _candle_rows(self, payload: Any) -> list:
        return payload["list"]

    def _is_selected(self, info: dict) -> bool:
        return info.get("status") == "Trading" and info.get("quoteCoin") == "USDT"

    def parse_symbols(self, payload: Any) -> list[str]:
        selected = [s for s in payload["list"] if self._is_selected(s)]
        return without_leveraged(selected, symbol=itemgetter("symbol"), base=itemgetter("baseCoin"))


class BybitSpotClient(BybitClient):
    """Bybit spot: USDT pairs in status Trading (one unpaginated listing call)."""

    name = "bybit_spot"
    listing_params: ClassVar[dict[str, str]] = {"category": "spot"}
    klines_params: ClassVar[dict[str, str]] = {"category": "spot"}


class BybitFuturesClient(BybitClient):
    """Bybit linear USDT perpetuals; the listing follows ``nextPageCursor`` (over 500 symbols)."""

    name = "bybit_futures"
    listing_params: ClassVar[dict[str, str]] = {"category": "linear", "limit": LINEAR_PAGE_SIZE}
    klines_params: ClassVar[dict[str, str]] = {"category": "linear"}

    def _is_selected(self, info: dict) -> bool:
        return (
            super()._is_selected(info)
            and info.get("settleCoin", "USDT") == "USDT"
            and info.get("contractType", "LinearPerpetual") == "LinearPerpetual"
        )

    async def _fetch_listing(self) -> Any:
        rows: list[dict] = []
        params = dict(self.listing_params)
        for _ in range(MAX_LISTING_PAGES):
            page = await self._get(self.listing_path, params, weight=self.listing_weight)
            rows.extend(page["list"])
            cursor = page.get("nextPageCursor")
            if not cursor:
                return {"list": rows}
            params = {**self.listing_params, "cursor": cursor}
        raise BadResponse(self.name, f"listing cursor did not end after {MAX_LISTING_PAGES} pages")
