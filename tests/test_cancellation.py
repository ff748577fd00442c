"""Cancellation mid-scan (issue 6, item 7): sessions close, nothing warns, partial results survive.

A slow fake exchange keeps one scan in flight while the offline demo exchange finishes; the run is
then cancelled (library: task.cancel; CLI: a real SIGINT to a subprocess).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psutil
import pytest

import run_parallel_scanner as rps
from scanner.cache import KlineCache
from scanner.results import ScanResult
from tests.fakes.exchange_server import FakeExchangeServer
from utils import config

REPO = Path(__file__).resolve().parents[1]
SLOW_LATENCY_S = 0.3


pytestmark = pytest.mark.usefixtures("fresh_exchange_state")


def client_connections(port: int) -> int:
    """Open TCP connections of this process to ``port`` (the client side of the fake exchange)."""
    return sum(1 for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port)


async def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_cancelling_a_run_closes_every_session_and_keeps_the_partial_results(monkeypatch, caplog):
    server = FakeExchangeServer(symbols=200, markets=["binance_spot"], rate_limits=False, latency=SLOW_LATENCY_S)
    with server.run_in_thread():  # its own loop: every task left on ours would be the scanner's
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        config.reload()
        tasks_before = len(asyncio.all_tasks())
        sink: list[ScanResult] = []
        run = asyncio.create_task(
            rps.run_parallel_multi_timeframes_all_exchanges(
                ["1d", "3d"], "all", ["demo", "binance_spot"], send_telegram=False, cache=KlineCache(),
                progress=False, sink=sink,
            )
        )
        await wait_until(lambda: server.requests_by_kind[("binance_spot", "klines")] >= 32
                         and {r.summaries[0].exchange for r in sink} == {"demo"} and len(sink) == 2)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        await asyncio.sleep(0.05)
        assert client_connections(server.port) == 0
        assert len(asyncio.all_tasks()) == tasks_before

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if "Unclosed" in str(w.message)]
    assert "Unclosed" not in caplog.text
    partial = ScanResult.combine(sink)
    done = {(s.exchange, s.timeframe): s for s in partial.summaries}
    assert done[("demo", "1d")].ok and done[("demo", "3d")].ok and partial.hits
    assert done[("binance_spot", "1d")].cancelled and done[("binance_spot", "3d")].cancelled
    assert "(cancelled)" in rps.format_report(partial)


def test_sigint_prints_the_partial_results_and_exits_130_without_a_traceback(tmp_path):
    # 1,500 symbols at 0.3 s each, 32 at a time, take 14 s at least: the scan is still running at the
    # signal however slow the machine is. The limit is told, so the client sends at full concurrency.
    server = FakeExchangeServer(symbols=1500, markets=["binance_spot"], rate_limits=False, latency=SLOW_LATENCY_S)
    with server.run_in_thread():
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SCANNER_BINANCE_SPOT_RATE_LIMIT": "1000000/60",
            "SCANNER_CONFIG": str(tmp_path / "none.toml"),
            "SCANNER_STATE_DB": str(tmp_path / "state.sqlite3"),
            "PYTHONWARNINGS": "always::ResourceWarning",
            "PYTHONDEVMODE": "1",
            **server.env(),
        }
        proc = subprocess.Popen(
            [sys.executable, "run_parallel_scanner.py", "1d", "all", "demo,binance_spot", "default", "false",
             "--no-progress"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        while server.requests_by_kind[("binance_spot", "klines")] < 64:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # the demo scan (offline, ~0.5 s) has finished by now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "unclosed" not in err.lower()  # sessions, files (ResourceWarning)
    assert "Interrupted: the results above are partial." in err
    assert "demo 1d: 300 listed" in out
    assert "binance_spot 1d:" in out and "(cancelled)" in out


def test_logging_shows_no_unclosed_session_warnings_after_a_clean_run(caplog):
    caplog.set_level(logging.DEBUG)
    assert rps.main(["1d", "pin_down", "demo", "default", "false", "--no-progress"]) == 0
    gc.collect()
    assert "Unclosed" not in caplog.text
