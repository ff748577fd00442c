"""Exchange registry: market name -> client class, loaded lazily from a ``"module:Class"`` path.

Lazy entries keep ``import exchanges`` cheap and let a module (such as the offline demo client)
register itself without the registry importing it up front.
"""

from __future__ import annotations

import importlib
from typing import Any

from exchanges.base_client import BaseExchangeClient

EXCHANGES: dict[str, type[BaseExchangeClient] | str] = {
    "binance_spot": "exchanges.binance:BinanceSpotClient",
    "binance_futures": "exchanges.binance:BinanceFuturesClient",
    "bybit_spot": "exchanges.bybit:BybitSpotClient",
    "bybit_futures": "exchanges.bybit:BybitFuturesClient",
    "gateio_spot": "exchanges.gateio:GateSpotClient",
    "gateio_futures": "exchanges.gateio:GateFuturesClient",
    "kucoin_spot": "exchanges.kucoin:KucoinSpotClient",
    "kucoin_futures": "exchanges.kucoin:KucoinFuturesClient",
    "mexc_spot": "exchanges.mexc:MexcSpotClient",
    "mexc_futures": "exchanges.mexc:MexcFuturesClient",
    "demo": "exchanges.demo:DemoClient",
}
EXCHANGE_NAMES: tuple[str, ...] = tuple(EXCHANGES)
LIVE_EXCHANGE_NAMES: tuple[str, ...] = tuple(n for n in EXCHANGES if n != "demo")


def get_client_class(name: str) -> type[BaseExchangeClient]:
    """The client class registered as ``name`` (imported on first use); ValueError names the valid ones."""
    entry = EXCHANGES.get(name)
    if entry is None:
        raise ValueError(f"unknown exchange {name!r}; valid names: {', '.join(EXCHANGE_NAMES)}")
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        entry = getattr(importlib.import_module(module_name), class_name)
        EXCHANGES[name] = entry
    return entry


def get_client(name: str, timeframe: str = "1d", **kw: Any) -> BaseExchangeClient:
    """A new client of market ``name`` for ``timeframe`` (``base_url``, ``session``... passed on)."""
    return get_client_class(name)(timeframe=timeframe, **kw)
