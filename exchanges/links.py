"""Chart links: how TradingView names an exchange's market (an exchange quirk, so it lives here).

``chart_url("bybit_futures", "BTCUSDT")`` is ``https://www.tradingview.com/chart/?symbol=BYBIT:BTCUSDT.P``;
the offline ``demo`` exchange and unknown markets have no chart (None).
"""

from __future__ import annotations

import re

TRADINGVIEW_URL = "https://www.tradingview.com/chart/?symbol={prefix}:{symbol}"
# Exchange family (the part of our market name before "_spot"/"_futures") -> TradingView prefix.
TRADINGVIEW_PREFIX: dict[str, str] = {
    "binance": "BINANCE",
    "bybit": "BYBIT",
    "gateio": "GATEIO",
    "kucoin": "KUCOIN",
    "mexc": "MEXC",
}
PERPETUAL_MARKETS: tuple[str, ...] = ("futures",)
PERPETUAL_SUFFIX = ".P"
# Exchange symbol quirks undone before building a TradingView symbol: (pattern, replacement).
TRADINGVIEW_SYMBOL_FIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "kucoin_futures": ((r"^XBT", "BTC"), (r"USDTM$", "USDT")),
}


def asset_name(exchange: str, symbol: str) -> str:
    """The market's symbol without separators and exchange quirks (``BTC-USDT``, ``XBTUSDTM`` -> ``BTCUSDT``):
    the same asset on several exchanges has one name."""
    name = re.sub(r"[^A-Za-z0-9]", "", symbol).upper()
    for pattern, replacement in TRADINGVIEW_SYMBOL_FIXES.get(exchange.lower(), ()):
        name = re.sub(pattern, replacement, name)
    return name


def chart_url(exchange: str, symbol: str) -> str | None:
    """TradingView chart of ``symbol`` (``BINANCE:BTCUSDT``, ``BYBIT:BTCUSDT.P``); None for demo/unknown."""
    family, _, market = exchange.lower().partition("_")
    prefix = TRADINGVIEW_PREFIX.get(family)
    if prefix is None:
        return None
    tv_symbol = asset_name(exchange, symbol)
    if market in PERPETUAL_MARKETS:
        tv_symbol += PERPETUAL_SUFFIX
    return TRADINGVIEW_URL.format(prefix=prefix, symbol=tv_symbol)
