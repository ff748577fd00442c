"""The positional command line: validation (exit 2 naming valid values), demo scan, exports."""

from __future__ import annotations

import json

import pytest

import run_parallel_scanner as cli


@pytest.mark.parametrize(
    ("argv", "expected_words"),
    [
        (["1x", "all", "demo"], ["unknown timeframe", "1d", "4h"]),
        (["1d", "breakout", "demo"], ["unknown strategy", "breakout_bar", "confluence"]),
        (["1d", "all", "binance"], ["unknown exchange", "binance_spot", "demo"]),
        (["1d", "all", "demo", "default", "maybe"], ["send_telegram must be true or false"]),
        (["1d", ",", "demo"], ["empty strategy list"]),
        (["1d", "all", "demo", "default", "false", "--min-volume-usd", "-5"], ["non-negative number"]),
        (["1d", "all", "demo", "default", "false", "--min-volume-usd", "lots"], ["non-negative number"]),
        (["1d", "all", "demo", "default", "false", "--bars", "open"], ["both", "closed", "current"]),
    ],
)
def test_bad_arguments_exit_2_and_name_the_valid_choices(argv, expected_words, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for word in expected_words:
        assert word in err
    assert "Traceback" not in err


def test_send_telegram_without_configured_tokens_is_refused_before_scanning(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["1d", "breakout_bar", "demo", "default", "true"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "SCANNER_TELEGRAM" in err


def test_an_unknown_analysis_mode_is_refused_before_scanning(monkeypatch, capsys):
    monkeypatch.setenv("SCANNER_ANALYSIS", "gpu")
    with pytest.raises(SystemExit) as exc:
        cli.main(["1d", "all", "demo"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "SCANNER_ANALYSIS" in err and "process, thread" in err


def test_help_lists_timeframes_strategies_and_exchanges(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("4h", "1w", "pin_down", "confluence", "kucoin_futures", "demo"):
        assert word in out


def test_demo_scan_prints_a_table_of_hits_and_exports(tmp_path, capsys):
    csv_path, json_path = tmp_path / "hits.csv", tmp_path / "hits.json"
    status = cli.main(
        ["1d,3d", "all", "demo", "default", "false", "--csv", str(csv_path), "--json", str(json_path)]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "strategy" in out and "symbol" in out
    assert "demo 1d:" in out and "demo 3d:" in out
    data = json.loads(json_path.read_text())
    assert data["hits"] and {h["timeframe"] for h in data["hits"]} <= {"1d", "3d"}
    assert csv_path.read_text().startswith("strategy,exchange,timeframe,symbol")
