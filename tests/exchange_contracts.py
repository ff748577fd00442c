"""Reusable failure-contract assertions for any exchange client against the fake exchange server.

Each helper injects one fault into ``tests/fakes/exchange_server.py`` for the klines endpoint,
runs ``fetch_klines`` and checks the contract: what is raised, and how many requests reached the
server (retried exactly N times on a temporary error, once on a permanent one, none while banned).
STYLE.md point 6 (freqtrade's ``ccxt_exceptionhandlers``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from exchanges.base_client import COLUMNS, BaseExchangeClient
from exchanges.errors import ExchangeError, IPBanned
from tests.fakes.exchange_server import FakeExchangeServer

CONTRACT_INTERVAL = "1d"
CONTRACT_LIMIT = 30
BAN_RETRY_AFTER = 120


def klines_sent(server: FakeExchangeServer, market: str) -> int:
    """Klines requests the server has received for ``market``."""
    return server.requests_by_kind[(market, "klines")]


def assert_frame_matches_server(
    frame: pd.DataFrame, server: FakeExchangeServer, market: str, symbol: str, interval: str, limit: int
) -> None:
    """``frame`` holds exactly the server's last ``limit`` bars, in base units, forming bar last."""
    bars = server.bars(market, symbol, interval)
    info = server.symbol_info(market, symbol)
    n = min(limit, len(bars))
    assert len(frame) == n
    assert list(frame.columns) == list(COLUMNS)
    assert all(frame[c].dtype == np.float64 for c in COLUMNS)
    assert str(frame.index.tz) == "UTC" and frame.index.name == "timestamp"
    assert frame.index.as_unit("ms").asi8.tolist() == bars.open_ms[-n:].tolist()
    for column in ("open", "high", "low", "close"):
        expected = getattr(bars, column)[-n:] * info.tick
        np.testing.assert_allclose(frame[column].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(frame["volume"].to_numpy(), bars.volume[-n:] * info.multiplier, rtol=1e-12)
    assert int(frame.index.as_unit("ms").asi8[-1]) <= server.now_ms  # the forming bar is last


async def assert_retried_then_succeeds(
    server: FakeExchangeServer, client: BaseExchangeClient, market: str, symbol: str, fault: str,
    *, min_elapsed: float = 0.0, **params: object,
) -> pd.DataFrame:
    """One ``fault`` on the klines call, then success: two requests sent, the right frame back."""
    server.add_fault(fault, market=market, path="klines", times=1, **params)
    before, sent_before = klines_sent(server, market), client.request_count
    started = time.monotonic()
    frame = await client.fetch_klines(symbol, CONTRACT_INTERVAL, CONTRACT_LIMIT)
    assert time.monotonic() - started >= min_elapsed
    assert klines_sent(server, market) - before == 2
    assert client.request_count - sent_before == 2
    assert_frame_matches_server(frame, server, market, symbol, CONTRACT_INTERVAL, CONTRACT_LIMIT)
    return frame


async def assert_fails_without_retry(
    server: FakeExchangeServer, client: BaseExchangeClient, market: str, symbol: str, fault: str | None,
    error: type[ExchangeError], **params: object,
) -> ExchangeError:
    """A permanent failure (``fault`` on every call; None: an unknown symbol): ``error``, one request."""
    if fault is not None:
        server.add_fault(fault, market=market, path="klines", **params)
    before = klines_sent(server, market)
    with pytest.raises(error) as info:
        await client.fetch_klines(symbol, CONTRACT_INTERVAL, CONTRACT_LIMIT)
    assert klines_sent(server, market) - before <= 1
    assert info.value.exchange == market and info.value.symbol == symbol
    return info.value


async def assert_retries_exhausted(
    server: FakeExchangeServer, client: BaseExchangeClient, market: str, symbol: str, fault: str,
    error: type[ExchangeError], **params: object,
) -> ExchangeError:
    """A temporary failure on every call: exactly ``client.retry.attempts`` requests, then ``error``."""
    server.add_fault(fault, market=market, path="klines", **params)
    before = klines_sent(server, market)
    with pytest.raises(error) as info:
        await client.fetch_klines(symbol, CONTRACT_INTERVAL, CONTRACT_LIMIT)
    assert klines_sent(server, market) - before == client.retry.attempts
    assert info.value.exchange == market
    return info.value


async def assert_ban_blocks_budget(
    server: FakeExchangeServer, client: BaseExchangeClient, sibling: BaseExchangeClient, market: str,
    symbol: str, status: str,
) -> IPBanned:
    """An IP ban (418, or Bybit's 403): not retried, and every client of the budget stops sending."""
    server.add_fault(status, market=market, path="klines", times=1, retry_after=BAN_RETRY_AFTER)
    before = server.requests
    with pytest.raises(IPBanned) as first:
        await client.fetch_klines(symbol, CONTRACT_INTERVAL, CONTRACT_LIMIT)
    assert server.requests - before == 1
    assert first.value.until > time.time() + 60
    assert first.value.status == int(status) and first.value.exchange == market
    for blocked in (client, sibling):
        sent = blocked.request_count
        with pytest.raises(IPBanned):
            await blocked.fetch_klines(symbol, CONTRACT_INTERVAL, CONTRACT_LIMIT)
        assert blocked.request_count == sent
    assert server.requests - before == 1
    return first.value


async def assert_reordered_rows_are_normalised(
    server: FakeExchangeServer, client: BaseExchangeClient, market: str, symbol: str, fault: str
) -> None:
    """Duplicated or shuffled candle rows still give the server's bars, unique and oldest first."""
    server.add_fault(fault, market=market, path="klines", times=1)
    frame = await client.fetch_klines(symbol, CONTRACT_INTERVAL, CONTRACT_LIMIT)
    assert frame.index.is_unique and frame.index.is_monotonic_increasing
    assert_frame_matches_server(frame, server, market, symbol, CONTRACT_INTERVAL, CONTRACT_LIMIT)


async def assert_empty_candles_give_empty_frame(
    server: FakeExchangeServer, client: BaseExchangeClient, market: str, symbol: str
) -> None:
    """An empty candle list is an empty, correctly typed frame (the scanner says "no candles")."""
    server.add_fault("empty", market=market, path="klines", times=1)
    frame = await client.fetch_klines(symbol, CONTRACT_INTERVAL, CONTRACT_LIMIT)
    assert frame.empty and list(frame.columns) == list(COLUMNS)
    assert all(frame[c].dtype == np.float64 for c in COLUMNS)
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
