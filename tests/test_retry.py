"""The retry loop (exchanges/retry.py) and the client's use of it: no tenacity, no library internals.

The loop itself is tested with plain coroutines and a recording sleep; the client paths run
against the local fake exchange, one of them in a process where tenacity cannot be imported.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from exchanges.binance import BinanceSpotClient
from exchanges.errors import BadResponse, BadSymbol, RateLimited, TemporaryError
from exchanges.rate_limit import RetryPolicy
from exchanges.retry import call_with_retries
from tests.conftest import REPO
from tests.fakes.exchange_server import FakeExchangeServer

FAST_RETRY = RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.02, jitter=0.0, timeout=2.0)
MARKET = "binance_spot"

pytestmark = pytest.mark.usefixtures("fresh_exchange_state")


class Flaky:
    """A call that fails with ``errors`` in turn, then returns ``"ok"``; counts its calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _temporary(exc: Exception) -> bool:
    return isinstance(exc, TemporaryError)


async def test_temporary_errors_are_retried_with_the_waits_the_caller_chooses() -> None:
    call = Flaky(TemporaryError("x", "503"), RateLimited("x", "429", retry_after=7))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def wait(exc: Exception, attempt: int) -> float:
        return exc.retry_after if isinstance(exc, RateLimited) else attempt / 10

    assert await call_with_retries(call, 3, _temporary, wait, sleep) == "ok"
    assert call.calls == 3
    assert slept == [0.1, 7]


async def test_the_last_error_is_raised_after_the_attempts_run_out() -> None:
    last = TemporaryError("x", "third")
    call = Flaky(TemporaryError("x", "first"), TemporaryError("x", "second"), last)
    with pytest.raises(TemporaryError) as caught:
        await call_with_retries(call, 3, _temporary, lambda e, n: 0.0)
    assert caught.value is last and call.calls == 3


@pytest.mark.parametrize("error", [BadSymbol("x", "unknown"), AttributeError("a bug of ours")])
async def test_an_error_that_is_not_temporary_is_raised_at_once(error: Exception) -> None:
    call = Flaky(error)
    with pytest.raises(type(error)):
        await call_with_retries(call, 5, _temporary, lambda e, n: 0.0)
    assert call.calls == 1


async def test_cancelling_during_the_backoff_ends_the_loop_without_another_attempt() -> None:
    call = Flaky(TemporaryError("x", "503"))
    task = asyncio.create_task(call_with_retries(call, 5, _temporary, lambda e, n: 30.0))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert call.calls == 1


async def test_a_cancelled_call_is_not_retried() -> None:
    calls = 0

    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await call_with_retries(cancelled, 5, lambda e: True, lambda e, n: 0.0)
    assert calls == 1


async def test_a_retried_request_leaves_no_cyclic_garbage_behind() -> None:
    """Every object of a request, retried or not, is freed by reference counting."""
    async with FakeExchangeServer(symbols=5, markets=[MARKET], rate_limits=False) as server:
        async with BinanceSpotClient(base_url=server.base_url(MARKET), retry=FAST_RETRY) as client:
            symbol = server.usdt_symbols(MARKET)[0]
            await client.fetch_klines(symbol, "1d", 50)  # session and connection pool set up
            server.add_fault("500", market=MARKET, path="klines", times=1)
            gc.collect()
            gc.disable()
            try:
                for _ in range(3):
                    await client.fetch_klines(symbol, "1d", 50)
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                ours = [o for o in gc.garbage if type(o).__module__.startswith("exchanges")]
                frames = [o for o in gc.garbage if type(o).__name__ == "frame"
                          and o.f_code.co_filename.startswith(str(REPO / "exchanges"))]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()
    assert client.request_count == 5  # one retry
    assert ours == [] and frames == []


async def test_a_fault_of_our_own_during_the_listing_is_not_reported_as_a_bad_payload() -> None:
    """A broken transport (here: something that is not a session) raises as itself."""

    class NotASession:
        closed = False

    session: Any = NotASession()
    client = BinanceSpotClient(base_url="http://127.0.0.1:9", session=session, retry=FAST_RETRY)
    with pytest.raises(AttributeError):
        await client.get_all_spot_symbols()


async def test_a_listing_whose_entries_have_the_wrong_type_is_still_a_bad_response() -> None:
    class Listing(BinanceSpotClient):
        async def _fetch_listing(self) -> object:
            return {"symbols": ["BTCUSDT", "ETHUSDT"]}  # strings where objects belong

    with pytest.raises(BadResponse, match="unexpected shape"):
        await Listing(base_url="http://127.0.0.1:9").get_all_spot_symbols()


def test_exchange_requests_and_their_retries_work_where_tenacity_cannot_be_imported() -> None:
    """tenacity 8.2 is allowed by the requirements; the clients must not depend on it at all."""
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.modules["tenacity"] = None  # any import of tenacity now fails
        from exchanges.binance import BinanceSpotClient
        from exchanges.rate_limit import RetryPolicy
        from tests.fakes.exchange_server import FakeExchangeServer

        async def main():
            fake = FakeExchangeServer(symbols=5, markets=["{MARKET}"], rate_limits=False)
            with fake.run_in_thread() as server:
                server.add_fault("503", market="{MARKET}", path="klines", times=2)
                retry = RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.02, jitter=0.0, timeout=2.0)
                async with BinanceSpotClient(base_url=server.base_url("{MARKET}"), retry=retry) as client:
                    symbols = await client.get_all_spot_symbols()
                    frame = await client.fetch_klines(symbols[0], "1d", 20)
                    print(len(symbols), len(frame), client.request_count)

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5", "20", "4"]  # listing + three klines attempts


def test_the_client_retry_rules_come_from_the_policy() -> None:
    client = BinanceSpotClient(retry=RetryPolicy(max_retry_after=10))
    assert client._should_retry(RateLimited("x", "429", retry_after=5))
    assert not client._should_retry(RateLimited("x", "429", retry_after=60))  # longer than we sit through
    assert not client._should_retry(BadSymbol("x", "unknown"))
    assert client._wait_seconds(RateLimited("x", "429", retry_after=5), 1) == 5
