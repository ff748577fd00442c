"""The command line: the positional CLI (exit 2 naming valid values, demo scan, exports), the
`scanner` command with its subcommands, and where state and config live."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import run_parallel_scanner as cli
from scanner import __version__
from scanner import cli as scanner_cli
from utils import config, paths

REPO = Path(__file__).resolve().parents[1]


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


# The `scanner` command (issue 14): subcommands, --version, `python -m scanner`.


def test_scanner_scan_is_the_positional_command_line(tmp_path, capsys):
    json_path = tmp_path / "hits.json"
    status = scanner_cli.main(["scan", "1d", "pin_down", "demo", "default", "false", "--json", str(json_path)])
    out = capsys.readouterr().out
    assert status == 0 and "demo 1d:" in out
    assert {h["strategy"] for h in json.loads(json_path.read_text())["hits"]} == {"pin_down"}


def test_scanner_scan_bad_arguments_exit_2_under_its_own_name(capsys):
    assert scanner_cli.main(["scan", "1x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: scanner scan") and "unknown timeframe '1x'" in err


def test_scanner_version_prints_the_package_version(capsys):
    assert scanner_cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"scanner {__version__}"


def test_scanner_without_a_command_names_the_commands(capsys):
    assert scanner_cli.main([]) == 2
    err = capsys.readouterr().err
    assert "name a command: scan, serve, status, quality, store" in err


def test_an_unknown_command_names_the_valid_ones(capsys):
    assert scanner_cli.main(["scna"]) == 2
    assert "unknown command 'scna'; valid commands: scan, serve" in capsys.readouterr().err


def test_a_command_whose_module_is_missing_from_the_build_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setitem(scanner_cli.SUBCOMMANDS, "serve", ("scanner.no_such_module:main", "x"))
    assert scanner_cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == "`scanner serve` is not available in this build\n"


def test_python_dash_m_scanner_runs_a_scan(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SCANNER_CONFIG": str(tmp_path / "none.toml"), "HOME": str(tmp_path),
           "XDG_STATE_HOME": str(tmp_path / "state"), "DISABLE_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-m", "scanner", "scan", "1D", "pin_down", "Demo"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "demo 1d:" in proc.stdout


# Where state and config live (issue 14): the user's directories, not the checkout or the cwd.


@pytest.fixture
def user_dirs(monkeypatch, tmp_path):
    """XDG directories in tmp, no override variables, an empty working directory, no legacy ledger."""
    for name in ("SCANNER_STATE_DB", "SCANNER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setattr(paths, "LEGACY_STATE_DB", tmp_path / "checkout" / "state" / "alerts.sqlite3")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    config.reload()
    return tmp_path


def test_state_defaults_to_the_users_state_directory(user_dirs):
    assert config.state_db_path() == user_dirs / "xdg-state" / "crypto-market-scanner" / "alerts.sqlite3"


def test_the_state_db_variable_still_overrides(user_dirs, monkeypatch):
    monkeypatch.setenv("SCANNER_STATE_DB", str(user_dirs / "elsewhere" / "ledger.sqlite3"))
    assert config.state_db_path() == user_dirs / "elsewhere" / "ledger.sqlite3"


def test_an_existing_ledger_of_the_checkout_is_kept_until_the_user_state_has_one(user_dirs):
    paths.LEGACY_STATE_DB.parent.mkdir(parents=True)
    paths.LEGACY_STATE_DB.write_bytes(b"")
    assert config.state_db_path() == paths.LEGACY_STATE_DB
    new = user_dirs / "xdg-state" / "crypto-market-scanner" / "alerts.sqlite3"
    new.parent.mkdir(parents=True)
    new.write_bytes(b"")
    assert config.state_db_path() == new


def test_config_is_read_from_the_users_config_directory(user_dirs):
    user_file = user_dirs / "xdg-config" / "crypto-market-scanner" / "config.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text('[base_urls]\nbinance_spot = "http://127.0.0.1:1"\n')
    config.reload()
    assert config.config_file() == user_file
    assert config.get_base_url("binance_spot", "https://api.binance.com") == "http://127.0.0.1:1"


def test_a_local_file_in_the_working_directory_wins_over_the_users_file(user_dirs):
    user_file = user_dirs / "xdg-config" / "crypto-market-scanner" / "config.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text('[base_urls]\nbinance_spot = "http://127.0.0.1:1"\n')
    Path("scanner.local.toml").write_text('[base_urls]\nbinance_spot = "http://127.0.0.1:2"\n')
    config.reload()
    assert config.get_base_url("binance_spot", "https://api.binance.com") == "http://127.0.0.1:2"


def test_scanner_config_variable_wins_over_every_file(user_dirs, monkeypatch):
    Path("scanner.local.toml").write_text('[base_urls]\nbinance_spot = "http://127.0.0.1:2"\n')
    explicit = user_dirs / "explicit.toml"
    explicit.write_text('[base_urls]\nbinance_spot = "http://127.0.0.1:3"\n')
    monkeypatch.setenv("SCANNER_CONFIG", str(explicit))
    config.reload()
    assert config.get_base_url("binance_spot", "https://api.binance.com") == "http://127.0.0.1:3"
