"""Smoke run of bench/scan.py with tiny sizes: the scenarios work end to end (no timed assertions)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench import scan


pytestmark = pytest.mark.usefixtures("fresh_exchange_state")


def test_lower_bound_counts_whole_windows_after_the_first() -> None:
    assert scan.lower_bound(weight=100, capacity=100, window=2.0) == 0.0
    assert scan.lower_bound(weight=101, capacity=100, window=2.0) == 2.0
    assert scan.lower_bound(weight=700, capacity=200, window=1.0) == 3.0


async def test_loop_lag_probe_sees_a_blocked_event_loop() -> None:
    async with scan.LoopLagProbe() as probe:
        await asyncio.sleep(0.03)
        time.sleep(0.08)  # block the loop on purpose
        await asyncio.sleep(0.03)
    assert probe.worst >= 0.05


def test_a_daily_timeframe_set_costs_one_klines_request_per_symbol() -> None:
    rows = scan.requests_per_symbol(8, markets=["binance_spot", "mexc_spot"])
    assert rows["binance_spot"]["daily_set"] == 1.0
    assert rows["binance_spot"]["with_4h"] == 2.0
    assert rows["mexc_spot"]["daily_set"] == 2.0  # 500-bar pages: 1w is fetched natively


def test_pacing_run_stays_under_the_limit_and_reports_its_bound() -> None:
    result = scan.pacing("bybit_spot", capacity=10, window=0.5, symbols=20, latency=0.0, timeframes=("1d",))
    assert result.rate_limited == 0 and result.bans == 0 and result.failed == 0
    assert result.requests == result.symbols + 1  # the listing and one klines request per symbol
    assert result.bound_s == scan.lower_bound(result.weight, 10, 0.5) > 0
    assert result.wall_s >= result.bound_s


def test_measured_scan_with_the_server_in_another_process_counts_requests_and_cpu() -> None:
    run = scan.measured_scan(6, ["binance_spot"], with_detector_cpu=True)
    assert run.requests == 1 + 2 * 6  # one listing per exchange; a 1d and a 4h request per symbol
    assert run.cpu_s > 0 and run.detector_cpu_s > 0 and run.loop_lag_ms >= 0


def test_main_runs_a_named_scenario(capsys) -> None:
    assert scan.main(["requests", "--quick"]) == 0
    assert "klines requests per symbol" in capsys.readouterr().out
