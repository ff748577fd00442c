"""Bad input gets a clear error naming the valid choices: ValueError from the library, exit 2 from
the CLI, never a traceback and never a request sent (issue 6, "Bad input")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import run_parallel_scanner as rps
from scanner import main as scanner_main
from tests.fakes.telegram_server import make_token
from utils import config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def telegram_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Token for the start_trend channel only, and one user (alice)."""
    monkeypatch.setenv("SCANNER_TELEGRAM_TOKEN_START_TREND", make_token(500000001))
    monkeypatch.setenv("SCANNER_TELEGRAM_CHAT_ALICE", "1")
    monkeypatch.setenv("SCANNER_TELEGRAM_BASE_URL", "http://127.0.0.1:9/bot")
    config.reload()


LIBRARY_CASES = [
    ({"exchange": "binanse"}, "valid names: binance_spot"),
    ({"timeframe": "5m"}, "1d"),
    ({"strategy": "breakout"}, "valid strategies: breakout_bar"),
    ({"strategy": ""}, "empty strategy list"),
    ({"strategy": []}, "empty strategy list"),
    ({"strategy": " , "}, "empty strategy list"),
    ({"min_volume_usd": -1}, "non-negative number"),
    ({"min_volume_usd": "lots"}, "non-negative number"),
    ({"min_volume_usd": float("nan")}, "non-negative number"),
    ({"min_volume_usd": True}, "non-negative number"),
    ({"bars": "open"}, "both, closed, current"),
    ({"send_telegram": "false"}, "send_telegram must be True or False"),
    ({"send_telegram": 1}, "send_telegram must be True or False"),
    ({"send_telegram": True, "user_id": "mallory"}, "unknown Telegram user 'mallory'; configured users: alice"),
    ({"send_telegram": True, "telegram_channel": "news"}, "channels: volume_surge, start_trend"),
    ({"send_telegram": True, "strategy": "volume_surge"}, "SCANNER_TELEGRAM_TOKEN_VOLUME_SURGE"),
]


@pytest.mark.parametrize("runner", ["run_scan", "run_custom_scan"])
@pytest.mark.parametrize(("override", "message"), LIBRARY_CASES, ids=[str(c[0]) for c in LIBRARY_CASES])
async def test_library_scans_raise_value_error_naming_the_valid_choices(telegram_env, runner, override, message):
    args = {"exchange": "demo", "timeframe": "1d", "strategy": "breakout_bar", "user_id": "alice", **override}
    strategy = args.pop("strategy")
    call = getattr(scanner_main, runner)
    with pytest.raises(ValueError) as caught:
        if runner == "run_scan":
            await call(args.pop("timeframe"), strategy, args.pop("exchange"), **args)
        else:
            await call(args.pop("exchange"), args.pop("timeframe"), strategy, **args)
    assert message in str(caught.value)


PARALLEL_CASES = [
    ({"exchanges": ["demo", "binanse"]}, "valid exchanges: binance_spot"),
    ({"exchanges": ""}, "empty exchange list"),
    ({"timeframe": "1h"}, "valid timeframes"),
    ({"users": []}, "empty user list"),
    ({"send_telegram": "yes"}, "send_telegram must be True or False"),
    ({"send_telegram": True, "users": ["alice", "bob"]}, "unknown Telegram user 'bob'"),
    ({"send_telegram": True, "telegram_channel": "nope"}, "unknown Telegram channel 'nope'"),
    ({"send_telegram": True, "strategies": "all"}, "no bot token for Telegram channel 'confluence'"),
]


@pytest.mark.parametrize(("override", "message"), PARALLEL_CASES, ids=[str(c[0]) for c in PARALLEL_CASES])
async def test_parallel_scans_raise_value_error_before_any_scan(telegram_env, override, message):
    args = {"timeframe": "1d", "strategies": "breakout_bar", "exchanges": ["demo"], "users": ["alice"],
            "send_telegram": False, **override}
    sink: list = []
    with pytest.raises(ValueError, match=message):
        await rps.run_parallel_exchanges(**args, sink=sink)
    assert sink == []


CLI_CASES = [
    (["1d", "all", "binance_spott"], ["unknown exchange 'binance_spott'", "binance_spot", "demo", "all"]),
    (["4x", "all", "demo"], ["unknown timeframe", "4h", "1w"]),
    (["1d", "stopbar", "demo"], ["unknown strategy 'stopbar'", "stop_bar"]),
    (["1d", "", "demo"], ["empty strategy list"]),
    (["1d", "all", "demo", "alice", "yes please"], ["send_telegram must be true or false"]),
    (["1d", "all", "demo", "alice", "false", "--min-volume-usd", "-1"], ["non-negative number"]),
    (["1d", "all", "demo", "alice", "false", "--min-volume-usd", "1e6x"], ["non-negative number"]),
    (["1d", "breakout_bar", "demo", "mallory", "true"], ["unknown Telegram user 'mallory'", "alice"]),
    (["1d", "breakout_bar", "demo", "alice", "true", "--channel", "news"], ["unknown Telegram channel", "confluence"]),
    (["1d", "pin_down", "demo", "alice", "true"], ["SCANNER_TELEGRAM_TOKEN_WEAKENING_TREND"]),
]


@pytest.mark.parametrize(("argv", "words"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_exits_2_with_the_valid_choices_and_no_traceback(telegram_env, argv, words, capsys):
    with pytest.raises(SystemExit) as caught:
        rps.main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("usage:")
    for word in words:
        assert word in err


def test_a_typo_from_a_real_shell_exits_2_without_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "run_parallel_scanner.py", "1d", "breakout_bar", "bynance_spot"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "SCANNER_CONFIG": str(tmp_path / "none.toml"), "DISABLE_PROGRESS": "1"},
    )
    assert proc.returncode == 2
    assert "unknown exchange 'bynance_spot'" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
