"""Gate.io v4 spot and USDT futures clients (spec/exchanges.md gateio_spot, gateio_futures).

Both page with ``from``/``to`` in seconds (``limit`` conflicts with them, so it is not sent).
Spot rows are 8 strings ``[t, quote_volume, close, high, low, open, base_volume, window_closed]``;
spot has no ``1w``, only ``7d`` buckets aligned on Thursday, so weekly bars are built from daily
ones. Futures rows are objects ``{t, v(contracts), c, h, l, o}``; volume x ``quanto_multiplier``.
Errors: ``{"label": "INVALID_CURRENCY_PAIR", "message": ...}``; 429 ``TOO_MANY_REQUESTS``.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, ClassVar

from exchanges.base_client import BaseExchangeClient, without_leveraged
from exchanges.rate_limit import UsageHeaders

GATE_USAGE = UsageHeaders(
    remaining="X-Gate-RateLimit-Requests-Remain",
    limit="X-Gate-RateLimit-Limit",
    reset="X-Gate-RateLimit-Reset-Timestamp",
)
GATE_BAD_SYMBOL_LABELS = frozenset({"INVALID_CURRENCY_PAIR", "INVALID_CONTRACT", "CONTRACT_NOT_FOUND"})
GATE_ETF_FIELDS = ("etf_leverage", "etf_net_value")


class GateClient(BaseExchangeClient):
    """Shared Gate v4 declarations: seconds windows, label/message errors, 200 requests per 10 s."""

    default_base_url = "https://api.gateio.ws/api/v4"
    start_param = "from"
    end_param = "to"
    limit_param = None
    request_time_unit = "s"
    row_time_unit = "s"
    budget_limit = 200
    budget_period = 10.0
    usage_headers = GATE_USAGE
    rate_limit_codes = frozenset({"TOO_MANY_REQUESTS"})
    bad_symbol_codes = GATE_BAD_SYMBOL_LABELS

    def _error_fields(self, body: Any) -> tuple[str | None, str | None]:
        if isinstance(body, dict) and "label" in body:
            return str(body["label"]), str(body.get("message") or body.get("detail") or "")
        return None, None

    def _envelope_error(self, body: Any) -> bool:
        return isinstance(body, dict) and "label" in body


class GateSpotClient(GateClient):
    """Gate spot: tradable USDT pairs; the native week is Thursday aligned (not used for 1w)."""

    name = "gateio_spot"
    page_limit = 1000
    weekly_monday_aligned = False
    intervals: ClassVar[dict[str, str]] = {"4h": "4h", "1d": "1d", "1w": "7d"}
    listing_path = "/spot/currency_pairs"
    klines_path = "/spot/candlesticks"
    symbol_param = "currency_pair"
    row_fields = (0, 5, 3, 4, 2, 6)
    budget_key = "gateio_spot"

    def parse_symbols(self, payload: Any) -> list[str]:
        selected = [
            p for p in payload
            if p.get("quote") == "USDT" and p.get("trade_status") == "tradable"
            and all(p.get(f) in (None, "", 0, "0") for f in GATE_ETF_FIELDS)
        ]
        return without_leveraged(selected, symbol=itemgetter("id"), base=itemgetter("base"))


class GateFuturesClient(GateClient):
    """Gate USDT perpetuals: status trading, not being delisted; volume in contracts."""

    name = "gateio_futures"
    page_limit = 2000
    intervals: ClassVar[dict[str, str]] = {"4h": "4h", "1d": "1d", "1w": "1w"}
    listing_path = "/futures/usdt/contracts"
    klines_path = "/futures/usdt/candlesticks"
    symbol_param = "contract"
    row_fields = ("t", "o", "h", "l", "c", "v")
    contract_volume = True
    budget_key = "gateio_futures"

    def parse_symbols(self, payload: Any) -> list[str]:
        selected = [
            c for c in payload
            if c["name"].endswith("_USDT") and c.get("status", "trading") == "trading"
            and not c.get("in_delisting", False)
        ]
        return without_leveraged(
            selected, symbol=itemgetter("name"), base=lambda c: c["name"].rsplit("_", 1)[0]
        )

    def parse_contract_sizes(self, payload: Any) -> dict[str, float]:
        return {c["name"]: float(c["quanto_multiplier"]) for c in payload if c.get("quanto_multiplier")}
