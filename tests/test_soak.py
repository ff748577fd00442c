"""Soak (issue 6, "Load"): 3 exchanges x 1,500 symbols x 3 timeframes with 2% injected faults, twice.

Every symbol that no lasting fault hit is scanned; nothing leaks (asyncio tasks, sockets, file
descriptors); memory does not grow from the first full scan to the second. The fake exchange runs in
its own thread with latency 0, its rate limits off and the clients' budgets raised, so the test
measures the scanner, not the pacing. Marked ``soak`` (selectable with ``-m soak`` or excluded with
``-m "not soak"``); it is not skipped by default, so CI runs it (about a minute on 2 cores).
"""

from __future__ import annotations

import asyncio
import gc
import time

import psutil
import pytest

import run_parallel_scanner as rps
from exchanges import rate_limit
from exchanges.base_client import reset_contract_sizes, set_default_retry
from exchanges.rate_limit import RetryPolicy
from scanner.analysis import start_analysis_process
from scanner.cache import KlineCache
from scanner.results import ScanResult
from tests.fakes.exchange_server import FakeExchangeServer
from utils import config

pytestmark = pytest.mark.soak

MARKETS = ["binance_spot", "bybit_spot", "kucoin_spot"]
BUDGET_KEYS = {"binance_spot": "binance_spot", "bybit_spot": "bybit", "kucoin_spot": "kucoin"}
TIMEFRAMES = ["1d", "2d", "3d"]  # one daily fetch per symbol serves all three
# One VSA detector and two custom ones: the soak is about the I/O path, not detector speed (bench/).
STRATEGIES = "breakout_bar,volume_surge,pin_down"
SYMBOLS = 1500
HISTORY_DAYS = 400  # enough for 3d (the deepest daily fetch here); less generated data per symbol
RETRY = RetryPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.05, jitter=0.01, timeout=10.0)
# 2% of klines requests: half retryable (5xx), half lasting for that request (bad body, bad candles).
FAULTS = [("500", {}, 0.01), ("html", {}, 0.005), ("bad_values", {"variant": "nan"}, 0.005)]
MAX_RSS_GROWTH_MB = 40.0
YOUNG_MARKET_REASON = "only "  # the fake lists some markets too young for a timeframe: data, not a fault


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def client_connections(port: int) -> int:
    return sum(1 for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port)


def lost_symbols(result: ScanResult) -> dict[tuple[str, str], str]:
    """Symbols lost to a fault: (exchange, symbol) -> reason (young markets with too few bars are data)."""
    lost: dict[tuple[str, str], str] = {}
    for s in result.summaries:
        for symbol, why in {**s.failed, **s.skipped}.items():
            if not why.startswith(YOUNG_MARKET_REASON):
                lost[(s.exchange, symbol)] = why
    return lost


async def test_soak_three_exchanges_1500_symbols_three_timeframes_with_faults(monkeypatch, capsys):
    rate_limit.reset_budgets()
    reset_contract_sizes()
    for key in BUDGET_KEYS.values():
        rate_limit.configure_budget(key, 1e9, 1.0)
    set_default_retry(RETRY)
    server = FakeExchangeServer(symbols=SYMBOLS, markets=MARKETS, rate_limits=False, history_days=HISTORY_DAYS)
    numbers: dict[str, float] = {}
    try:
        with server.run_in_thread():
            for key, value in server.env().items():
                monkeypatch.setenv(key, value)
            config.reload()
            rules = [server.add_fault(kind, path="klines", probability=p, **kw) for kind, kw, p in FAULTS]
            pool = start_analysis_process()  # started before the baseline is taken, like a scan would
            assert pool is not None and pool.submit(int).result(timeout=120) == 0
            process = psutil.Process()
            tasks_before, fds_before = len(asyncio.all_tasks()), process.num_fds()
            rss: list[float] = []
            requests_before = server.requests

            for run in range(2):
                for rule in rules:
                    rule.fired = 0
                started = time.perf_counter()
                result = await rps.run_parallel_multi_timeframes_all_exchanges(
                    TIMEFRAMES, STRATEGIES, MARKETS, send_telegram=False, cache=KlineCache(), progress=False,
                )
                numbers[f"scan{run + 1}_s"] = time.perf_counter() - started
                numbers[f"scan{run + 1}_requests"] = server.requests - requests_before
                requests_before = server.requests
                gc.collect()
                rss.append(rss_mb())
                fired = {rule.kind: rule.fired for rule in rules}
                lost = lost_symbols(result)
                numbers[f"scan{run + 1}_faults"] = sum(fired.values())
                numbers[f"scan{run + 1}_lost"] = len(lost)

                assert not result.failures
                assert len(result.summaries) == len(MARKETS) * len(TIMEFRAMES)
                for s in result.summaries:
                    assert s.listed == SYMBOLS
                    assert s.fetched + len(s.failed) == s.listed  # every symbol scanned or failed with a reason
                # a lost symbol is one a lasting fault hit (or a 5xx that outlasted every retry)
                assert len(lost) <= fired["html"] + fired["bad_values"] + fired["500"] // RETRY.attempts
                assert all("not JSON" in why or "bad candles" in why or "HTTP 500" in why for why in lost.values())
                assert len(lost) >= (fired["html"] + fired["bad_values"]) // 2 > 0
            await asyncio.sleep(0.05)
            assert len(asyncio.all_tasks()) == tasks_before
            assert client_connections(server.port) == 0
            assert process.num_fds() <= fds_before
    finally:
        set_default_retry(None)
        rate_limit.reset_budgets()
        reset_contract_sizes()
    numbers["peak_rss_mb"] = psutil.Process().memory_info().rss / 2**20
    numbers["rss_growth_mb"] = rss[1] - rss[0]
    with capsys.disabled():
        print("\nsoak:", ", ".join(f"{k}={v:.1f}" for k, v in numbers.items()))
    assert rss[1] - rss[0] < MAX_RSS_GROWTH_MB
