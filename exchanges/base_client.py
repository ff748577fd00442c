"""Shared base of every exchange client (SKELETON: the exchange-layer work fills this in).

Contract used by the rest of the project (keep these names and signatures):

- ``BaseExchangeClient(timeframe="1d", base_url=None, session=None)``; async context manager;
  ``await client.close()``.
- class attributes: ``name`` (registry name), ``default_base_url``, ``page_limit`` (max candles per
  request), ``weekly_monday_aligned`` (native 1w bars open Monday 00:00 UTC).
- ``await client.get_all_spot_symbols() -> list[str]``: tradable USDT markets.
- ``await client.fetch_klines(symbol, interval=None, limit=None) -> pd.DataFrame``: ``interval`` is
  one of our native names ``"4h" | "1d" | "1w"`` (default: the native interval of ``timeframe``),
  ``limit`` the number of most recent bars wanted (paginated when above ``page_limit``). Returns a
  UTC DatetimeIndex of bar opens, oldest first, unique; float64 ``open high low close volume``.
- ``client.request_count``: HTTP requests sent by this client (for summaries and benchmarks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import aiohttp
import pandas as pd


class BaseExchangeClient(ABC):
    name: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    page_limit: ClassVar[int] = 1000
    weekly_monday_aligned: ClassVar[bool] = True

    def __init__(
        self,
        timeframe: str = "1d",
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.timeframe = timeframe
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self._session = session
        self._owns_session = session is None
        self.request_count = 0

    async def __aenter__(self) -> BaseExchangeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @abstractmethod
    def _get_interval_map(self) -> dict[str, str]:
        """Our native interval names (``4h``, ``1d``, ``1w``) -> the exchange's names."""

    @abstractmethod
    def _get_fetch_limit(self) -> int:
        """Default number of bars fetched for ``self.timeframe``."""

    @abstractmethod
    async def get_all_spot_symbols(self) -> list[str]:
        """Tradable USDT-quoted markets of this client (perpetuals for futures clients)."""

    @abstractmethod
    async def fetch_klines(
        self, symbol: str, interval: str | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        """Normalised OHLCV frame of ``symbol``; see the module docstring."""
