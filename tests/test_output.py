"""Output a trader reads (issue 14): prices with significant digits, a chart link per hit in the table,
CSV and JSON, no duplicate close column, firing rates, requests counted once, progress bars only
on a terminal, and library calls that send nothing unless asked."""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import run_parallel_scanner as rps
from exchanges.links import chart_url
from scanner.cache import KlineCache
from scanner.results import Hit, ScanResult, ScanSummary, count_requests_once, format_price
from tests.fakes.exchange_server import FakeExchangeServer
from utils import config

REPO = Path(__file__).resolve().parents[1]
BAR = pd.Timestamp("2025-03-05", tz="UTC")


def make_hit(exchange: str = "binance_futures", symbol: str = "BTCUSDT", close: float = 1043.0241883876613) -> Hit:
    return Hit("volume_surge", exchange, "1d", symbol, BAR, False, close, 2_500_000.0,
               {"close_price": close, "score": 4.2, "volume_ratio": 3.1})


@pytest.mark.parametrize(
    ("price", "text"),
    [(0.00002431, "0.00002431"), (1043.0241883876613, "1,043.02"), (33305.26784922642, "33,305.27"),
     (0.052746541, "0.05275"), (7.592544, "7.593"), (0.0, "0")],
)
def test_prices_show_significant_digits_never_scientific(price, text):
    assert format_price(price) == text


@pytest.mark.parametrize(
    ("exchange", "symbol", "url"),
    [
        ("binance_spot", "BTCUSDT", "https://www.tradingview.com/chart/?symbol=BINANCE:BTCUSDT"),
        ("bybit_futures", "BTCUSDT", "https://www.tradingview.com/chart/?symbol=BYBIT:BTCUSDT.P"),
        ("gateio_spot", "BTC_USDT", "https://www.tradingview.com/chart/?symbol=GATEIO:BTCUSDT"),
        ("kucoin_spot", "BTC-USDT", "https://www.tradingview.com/chart/?symbol=KUCOIN:BTCUSDT"),
        ("kucoin_futures", "XBTUSDTM", "https://www.tradingview.com/chart/?symbol=KUCOIN:BTCUSDT.P"),
        ("mexc_futures", "BTC_USDT", "https://www.tradingview.com/chart/?symbol=MEXC:BTCUSDT.P"),
        ("demo", "BTCUSDT", None),
    ],
)
def test_chart_link_names_the_market_the_way_tradingview_does(exchange, symbol, url):
    assert chart_url(exchange, symbol) == url


def test_a_hit_row_has_its_link_and_no_duplicate_close_column(tmp_path):
    result = ScanResult(hits=[make_hit()])
    frame = result.to_frame()
    assert frame.loc[0, "link"] == "https://www.tradingview.com/chart/?symbol=BINANCE:BTCUSDT.P"
    assert "close_price" not in frame.columns and "close" in frame.columns
    result.to_csv(tmp_path / "hits.csv")
    header = (tmp_path / "hits.csv").read_text().splitlines()[0].split(",")
    assert "link" in header and "close_price" not in header
    row = json.loads(result.to_json())["hits"][0]
    assert row["link"].endswith("BINANCE:BTCUSDT.P") and "close_price" not in row
    assert make_hit().metrics["close_price"] == make_hit().close  # the alert formatter still has it


def test_the_report_table_shows_readable_prices_and_the_link_column():
    report = rps.format_report(ScanResult(hits=[make_hit(), make_hit("bybit_spot", "PEPEUSDT", 0.00002431)]))
    assert "1,043.02" in report and "0.00002431" in report
    assert "link" in report.splitlines()[0]
    assert "BYBIT:PEPEUSDT" in report
    assert "1043.024188" not in report


def test_the_report_leaves_out_an_empty_link_column_for_the_demo_exchange():
    report = rps.format_report(ScanResult(hits=[make_hit("demo")]))
    assert "link" not in report.splitlines()[0]


def test_failed_symbols_are_grouped_by_reason_with_the_exchange_named_once():
    summary = ScanSummary("binance_spot", "1d", ["pin_down"], listed=4)
    reason = "connection failed: DNS lookup of api.binance.com failed"
    summary.failed = {s: f"binance_spot {s}: {reason}" for s in ("AUSDT", "BUSDT", "CUSDT")}
    summary.failed["DUSDT"] = "binance_spot DUSDT HTTP 400 code -1121: Invalid symbol."
    report = rps.format_report(ScanResult(summaries=[summary]))
    assert f"3 symbols failed on binance_spot (AUSDT, BUSDT, CUSDT): {reason}" in report
    assert "failed binance_spot DUSDT: HTTP 400 code -1121: Invalid symbol." in report
    assert report.count("binance_spot AUSDT") == 0


def test_an_exchange_failure_names_the_exchange_once():
    summary = ScanSummary("binance_spot", "1d", ["pin_down"],
                          error="symbol listing failed: binance_spot: connection failed: DNS lookup of api.binance.com failed")
    assert summary.line() == (
        "binance_spot 1d: FAILED - symbol listing failed: connection failed: DNS lookup of api.binance.com failed"
    )


def test_the_summary_gives_each_strategys_firing_rate_over_the_scanned_markets():
    summary = ScanSummary("demo", "1d", ["pin_down", "confluence"], listed=100, fetched=100, filtered_out=10,
                          skipped={"XUSDT": "too few bars", "YUSDT": "bad candles"})
    summary.hits_per_strategy = {"pin_down": 4, "confluence": 0}
    assert summary.scanned == 88
    assert summary.firing_rate == {"pin_down": 4 / 88, "confluence": 0.0}
    assert "88 scanned" in summary.line() and "pin_down=4 (4.5%)" in summary.line()
    result = ScanResult(summaries=[summary])
    rates = result.firing_rate_frame()
    assert rates.set_index("strategy").loc["pin_down", "firing_rate"] == pytest.approx(4 / 88)
    assert result.summary_frame().loc[0, "scanned"] == 88
    assert json.loads(result.to_json())["summaries"][0]["firing_rate"]["pin_down"] == pytest.approx(4 / 88)


def test_counting_requests_once_keeps_the_total_and_names_the_timeframes_served():
    summaries = [ScanSummary("demo", tf, ["pin_down"], requests=300) for tf in ("1d", "3d", "1w")]
    count_requests_once(summaries, 301)
    assert [s.requests for s in summaries] == [301, 0, 0]
    assert summaries[0].requests_served == ["1d", "3d", "1w"]
    assert "301 requests (served 1d, 3d, 1w)" in summaries[0].line()
    assert "requests counted with 1d" in summaries[2].line()


async def test_a_multi_timeframe_scan_sums_to_the_requests_the_exchange_received(monkeypatch):
    async with FakeExchangeServer(symbols=8, markets=["binance_spot"], rate_limits=False) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        config.reload()
        result = await rps.run_parallel_multi_timeframes_all_exchanges(
            ["1d", "3d", "1w", "4h"], "pin_down", ["binance_spot"], cache=KlineCache(), progress=False,
        )
    assert not result.failures
    assert sum(s.requests for s in result.summaries) == server.requests_by_market["binance_spot"]
    assert result.summary_frame()["requests"].sum() == server.requests_by_market["binance_spot"]


async def test_the_parallel_functions_send_nothing_unless_asked():
    for function in (rps.run_parallel_exchanges, rps.run_parallel_multi_timeframes_all_exchanges):
        assert inspect.signature(function).parameters["send_telegram"].default is False
    # No token is configured: asking to send would be refused, the default just scans.
    result = await rps.run_parallel_exchanges("1d", "pin_down", ["demo"], cache=KlineCache(), progress=False)
    assert result.summaries[0].ok and result.alerts.messages == 0


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_bars_only_when_stderr_is_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    assert rps.progress_wanted(no_progress=False) is False
    monkeypatch.setattr(sys, "stderr", _Stream(tty=True))
    assert rps.progress_wanted(no_progress=False) is None  # DISABLE_PROGRESS still has the last word
    assert rps.progress_wanted(no_progress=True) is False


def test_a_scan_into_a_log_file_has_no_progress_bars_without_no_progress(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SCANNER_CONFIG": str(tmp_path / "none.toml"),
           "SCANNER_STATE_DB": str(tmp_path / "alerts.sqlite3"), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "run_parallel_scanner.py", "1d", "pin_down", "demo"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "demo 1d:" in proc.stdout
    assert "\r" not in proc.stderr and "sym/s" not in proc.stderr
