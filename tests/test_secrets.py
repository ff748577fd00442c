"""Secrets (issue 6): no token in the repository, in any log line, in errors or in the summary.

Tokens come only from the environment or the git-ignored local config; the log check records every
line of a whole scan plus send at DEBUG (our loggers, aiohttp, httpx, httpcore, telegram, asyncio).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

import run_parallel_scanner as rps
from exchanges import rate_limit
from exchanges.base_client import reset_contract_sizes, set_default_retry
from exchanges.rate_limit import RetryPolicy
from scanner.cache import KlineCache
from scanner.ledger import AlertLedger
from tests.conftest import configure_telegram
from tests.fakes.exchange_server import FakeExchangeServer
from tests.fakes.telegram_server import FakeBotApi, make_token
from utils import config
from utils.logging import REDACTED

REPO = Path(__file__).resolve().parents[1]
TELEGRAM_TOKEN_SHAPES = (
    re.compile(r"[0-9]{8,10}:AA[A-Za-z0-9_-]{30,}"),
    re.compile(r"\d{6,12}:[A-Za-z0-9_-]{30,}"),
)
LOGGERS = ("", "scanner", "exchanges", "aiohttp", "httpx", "httpcore", "telegram", "asyncio")


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_contains_a_bot_token_shaped_string():
    offenders = []
    for path in tracked_files():
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for shape in TELEGRAM_TOKEN_SHAPES:
            offenders += [f"{path.relative_to(REPO)}: {m.group()[:12]}..." for m in shape.finditer(text)]
    assert offenders == []


def test_the_local_config_the_state_store_and_build_output_are_git_ignored():
    tracked_files()
    for name in ("scanner.local.toml", "state/alerts.sqlite3", "my.local.toml", ".env", "build/lib/x.py",
                 "dist/x.whl", "crypto_market_scanner.egg-info/PKG-INFO"):
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO)
        assert ignored.returncode == 0, f"{name} is not ignored"


class _Collect(logging.Handler):
    """Every record, formatted with its traceback, as a handler would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs_at_debug():
    collector = _Collect()
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(collector)
    yield collector
    logging.getLogger().removeHandler(collector)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def leaks(text: str, tokens: list[str]) -> list[str]:
    found = [t for t in tokens if t in text or quote(t, safe="") in text or t.split(":")[1] in text]
    return found + [m.group() for shape in TELEGRAM_TOKEN_SHAPES for m in shape.finditer(text)]


async def test_no_token_in_any_log_line_error_or_summary_of_a_scan_and_send(monkeypatch, all_logs_at_debug, capsys):
    rate_limit.reset_budgets()
    reset_contract_sizes()
    set_default_retry(RetryPolicy(attempts=2, backoff_base=0.01, backoff_cap=0.01, jitter=0.0, timeout=0.5))
    good = {ch: make_token(600000000 + i, fill=chr(ord("P") + i)) for i, ch in enumerate(config.CHANNELS)}
    invalid = make_token(699999999, "Z")  # rejected by the API: InvalidToken quotes it in full
    tokens = {**good, "volume_surge": invalid}
    try:
        async with FakeExchangeServer(symbols=20, markets=["binance_spot"], rate_limits=False) as server, \
                FakeBotApi(valid_tokens=list(good.values())) as api:
            server.add_fault("500", market="binance_spot", path="klines", probability=0.3)
            server.add_fault("html", market="binance_spot", symbol=server.usdt_symbols("binance_spot")[0])
            for key, value in server.env().items():
                monkeypatch.setenv(key, value)
            configure_telegram(monkeypatch, api.base_url(), tokens, {"alice": "2001", "bob": "2002"})
            api.add_fault("2002", "forbidden", times=100)
            api.add_fault("2001", "server_error", times=1)
            result = await rps.run_parallel_exchanges(
                "1d", "all", ["binance_spot", "demo"], users=["alice", "bob"], send_telegram=True,
                min_volume_usd=0, cache=KlineCache(), progress=False,
            )
    finally:
        set_default_retry(None)
        rate_limit.reset_budgets()
    every_token = list(tokens.values())
    assert any("InvalidToken" in f.reason or "Unauthorized" in f.reason for f in result.alerts.failures)
    assert any("Forbidden" in f.reason for f in result.alerts.failures)
    assert len(all_logs_at_debug.lines) > 20 and any("DEBUG" in line for line in all_logs_at_debug.lines)
    assert leaks("\n".join(all_logs_at_debug.lines), every_token) == []
    assert any(REDACTED in line for line in all_logs_at_debug.lines)  # a token was there to hide
    assert leaks(result.to_json(), every_token) == []
    assert leaks(rps.format_report(result), every_token) == []
    assert leaks(repr(config.telegram_config()), every_token) == []
    with AlertLedger() as ledger:
        assert leaks("\n".join(str(e) for e in ledger.entries()), every_token) == []
    captured = capsys.readouterr()
    assert leaks(captured.out + captured.err, every_token) == []
