"""Errors a user makes on the command line (issue 14): each is one line naming the fix, exit status 2,
no traceback, and nothing scanned or written. Names in another case are simply accepted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import run_parallel_scanner as rps
from scanner import cli
from tests.fakes.telegram_server import make_token
from utils import config


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``scanner <argv>`` in this process: exit status, stdout, stderr."""
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def assert_refused(status: int, out: str, err: str, *words: str) -> None:
    assert status == 2
    assert "Traceback" not in err
    assert "Summary:" not in out, "the scan must not start"
    for word in words:
        assert word in err


def write_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scanner.toml"
    path.write_text(text)
    monkeypatch.setenv("SCANNER_CONFIG", str(path))
    config.reload()
    return path


def test_a_malformed_config_file_is_refused_even_when_sending_is_off(monkeypatch, tmp_path, capsys):
    path = write_config(monkeypatch, tmp_path, "[telegram.tokens\nstart_trend = 1\n")
    status, out, err = run_cli(["scan", "1d", "pin_down", "demo", "default", "false"], capsys)
    assert_refused(status, out, err, f"config file {path} is not valid TOML", "SCANNER_CONFIG")


def test_an_unknown_log_level_names_the_valid_levels(capsys):
    status, out, err = run_cli(["scan", "1d", "all", "demo", "--log-level", "LOUD"], capsys)
    assert_refused(status, out, err, "--log-level", "'LOUD'", "DEBUG", "WARNING")


def test_a_log_level_in_lower_case_is_accepted(capsys):
    status, out, _ = run_cli(["scan", "1d", "pin_down", "demo", "--log-level", "info"], capsys)
    assert status == 0 and "demo 1d:" in out


@pytest.mark.parametrize("option", ["--csv", "--json"])
def test_an_export_into_a_missing_directory_is_refused_before_the_scan(option, tmp_path, capsys):
    target = tmp_path / "no-such-dir" / "hits.out"
    status, out, err = run_cli(["scan", "1d", "pin_down", "demo", option, str(target)], capsys)
    assert_refused(status, out, err, option, f"directory {target.parent} does not exist", "create it")
    assert not target.parent.exists()


def test_an_export_into_an_unwritable_directory_is_refused_before_the_scan(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes into any ordinary directory; sysfs refuses it too
        if not Path("/sys").is_dir():
            pytest.skip("no unwritable directory available to root")
        target = Path("/sys/scanner-test-hits.csv")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "hits.csv"
    status, out, err = run_cli(["scan", "1d", "pin_down", "demo", "--csv", str(target)], capsys)
    assert_refused(status, out, err, f"--csv {target}: cannot write there", "choose another path")
    assert not target.exists()


def test_an_export_path_that_is_a_directory_is_refused(tmp_path, capsys):
    status, out, err = run_cli(["scan", "1d", "pin_down", "demo", "--json", str(tmp_path)], capsys)
    assert_refused(status, out, err, "is a directory", "give a file name")


def test_a_checked_export_path_leaves_no_empty_file_behind_when_the_arguments_fail(tmp_path, capsys):
    target = tmp_path / "hits.csv"
    status, out, err = run_cli(["scan", "1d", "nope", "demo", "--csv", str(target)], capsys)
    assert_refused(status, out, err, "unknown strategy 'nope'")
    assert not target.exists()


def test_a_bot_token_without_a_token_shape_is_refused_before_the_scan_and_not_printed(monkeypatch, capsys):
    secret = "my-bot-password-123"
    monkeypatch.setenv("SCANNER_TELEGRAM_TOKEN_WEAKENING_TREND", secret)
    monkeypatch.setenv("SCANNER_TELEGRAM_CHAT_DEFAULT", "1")
    config.reload()
    status, out, err = run_cli(["scan", "1d", "pin_down", "demo", "default", "true"], capsys)
    assert_refused(status, out, err, "bot token of Telegram channel 'weakening_trend' is not a token",
                   "SCANNER_TELEGRAM_TOKEN_WEAKENING_TREND")
    assert secret not in err and secret not in out


def test_a_token_shaped_bot_token_passes_the_shape_check(monkeypatch):
    monkeypatch.setenv("SCANNER_TELEGRAM_TOKEN_WEAKENING_TREND", make_token(500000001))
    config.reload()
    config.check_config(sending=True)


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "https://"])
@pytest.mark.parametrize("variable", ["SCANNER_BINANCE_SPOT_BASE_URL", "SCANNER_TELEGRAM_BASE_URL"])
def test_a_base_url_that_is_not_http_is_refused_from_the_environment(variable, url, monkeypatch, capsys):
    monkeypatch.setenv(variable, url)
    config.reload()
    status, out, err = run_cli(["scan", "1d", "pin_down", "demo"], capsys)
    assert_refused(status, out, err, variable, "must be an http:// or https:// URL", repr(url))


def test_a_base_url_that_is_not_http_is_refused_from_the_config_file(monkeypatch, tmp_path, capsys):
    write_config(monkeypatch, tmp_path, '[base_urls]\nbybit_spot = "ftp://x"\n')
    status, out, err = run_cli(["scan", "1d", "pin_down", "demo"], capsys)
    assert_refused(status, out, err, "[base_urls] bybit_spot in the config file", "'ftp://x'")


@pytest.mark.parametrize(
    "argv",
    [
        ["scan", "1D", "pin_down", "demo"],
        ["scan", "1d", "Pin_Down", "Demo"],
        ["scan", "1d", "pin_down", "DEMO", "default", "FALSE", "--bars", "Closed"],
    ],
    ids=["1D", "Pin_Down Demo", "DEMO FALSE Closed"],
)
def test_names_in_another_case_are_accepted(argv, capsys):
    status, out, err = run_cli(argv, capsys)
    assert status == 0, err
    assert "demo 1d:" in out


def test_all_with_demo_scans_every_real_exchange_and_demo():
    assert rps.resolve_exchanges("All,demo") == ["demo", *rps.REAL_EXCHANGES]
    assert rps.resolve_exchanges("all") == list(rps.REAL_EXCHANGES)
    assert "demo" not in rps.resolve_exchanges("all")


def test_a_typo_beside_all_is_still_refused(capsys):
    status, out, err = run_cli(["scan", "1d", "all", "all,binanse"], capsys)
    assert_refused(status, out, err, "unknown exchange 'binanse'")
    status, out, err = run_cli(["scan", "1d", "all,brekout", "demo"], capsys)
    assert_refused(status, out, err, "unknown strategy 'brekout'")


def test_a_channel_given_with_sending_off_warns_and_scans(capsys):
    status, out, err = run_cli(["scan", "1d", "pin_down", "demo", "default", "false", "--channel", "confluence"],
                               capsys)
    assert status == 0
    assert "warning: --channel has no effect: sending is off" in err
    assert "demo 1d:" in out


def test_help_lists_exit_codes_environment_variables_and_the_config_file(capsys):
    for argv in (["--help"], ["scan", "--help"]):
        status, out, _ = run_cli(argv, capsys)
        assert status == 0
        for words in ("exit codes:", "130", "SCANNER_CONFIG", "SCANNER_STATE_DB", "SCANNER_TELEGRAM_TOKEN_<CHANNEL>",
                      "SCANNER_<MARKET>_BASE_URL", "scanner.local.toml", "config.toml", "state"):
            assert words in out, (argv, words)


def test_a_network_failure_names_the_exchange_once_with_a_short_reason(monkeypatch, capsys):
    import socket

    with socket.socket() as sock:  # a local port nobody listens on: connection refused, no DNS, no internet
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SCANNER_BINANCE_SPOT_BASE_URL", f"http://127.0.0.1:{port}")
    status, out, err = run_cli(["scan", "1d", "test_bar", "binance_spot", "--no-progress"], capsys)
    assert status == 1
    assert f"connection failed: cannot connect to 127.0.0.1:{port}" in out
    assert "ConnectionKey" not in out + err and "Traceback" not in err
    assert out.count("binance_spot") == 1


def test_store_and_no_store_together_are_refused(capsys):
    status, out, err = run_cli(["scan", "1d", "test_bar", "demo", "--store", "x.sqlite3", "--no-store"], capsys)
    assert_refused(status, out, err, "choose one of --store PATH and --no-store")


def test_a_corrupt_store_file_is_named_with_the_way_out_before_the_scan(tmp_path, capsys):
    broken = tmp_path / "candles.sqlite3"
    broken.write_bytes(b"this is not a database" * 200)
    status, out, err = run_cli(["scan", "1d", "test_bar", "demo", "--store", str(broken)], capsys)
    assert_refused(status, out, err, str(broken), "--no-store")


@pytest.mark.parametrize("option", [["--charts"], ["--summary", "admin"]])
def test_alert_options_with_sending_off_warn_and_scan(option, capsys):
    status, out, err = run_cli(["scan", "1d", "test_bar", "demo", *option], capsys)
    assert status == 0 and "Summary:" in out
    assert f"warning: {option[0]} has no effect: sending is off" in err
