"""Exchange clients: HTTP in, a normalised OHLCV frame out (see exchanges/base_client.py)."""

from exchanges.base_client import BaseExchangeClient
from exchanges.errors import (
    BadCandles,
    BadResponse,
    BadSymbol,
    ExchangeError,
    IPBanned,
    RateLimited,
    RequestTimeout,
    TemporaryError,
)
from exchanges.registry import EXCHANGE_NAMES, EXCHANGES, LIVE_EXCHANGE_NAMES, get_client, get_client_class

__all__ = [
    "EXCHANGES",
    "EXCHANGE_NAMES",
    "LIVE_EXCHANGE_NAMES",
    "BadCandles",
    "BadResponse",
    "BadSymbol",
    "BaseExchangeClient",
    "ExchangeError",
    "IPBanned",
    "RateLimited",
    "RequestTimeout",
    "TemporaryError",
    "get_client",
    "get_client_class",
]
