"""Shared test fixtures: where shared/ lives, golden data loading, and a no-internet guard."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCANNER_SHARED_DIR", REPO.parent / "shared"))
GOLDEN = SHARED / "fixtures" / "golden"
EXCHANGE_FIXTURES = SHARED / "fixtures" / "exchanges"
REALDATA = SHARED / "fixtures" / "realdata"

GOLDEN_SETS = sorted(p.stem for p in (GOLDEN / "data").glob("*.csv"))


def load_golden_frame(name: str) -> pd.DataFrame:
    """A golden data set as the detectors take it: UTC index, float64 OHLCV (fixture README)."""
    raw = pd.read_csv(GOLDEN / "data" / f"{name}.csv")  # pandas 3 parses round-trip exactly
    index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True), name="timestamp")
    frame = raw[["open", "high", "low", "close", "volume"]].astype("float64")
    frame.index = index
    return frame


def load_golden_expected(name: str) -> dict:
    return json.loads((GOLDEN / "expected" / f"{name}.json").read_text())


def load_realdata_frame(filename: str) -> pd.DataFrame:
    raw = pd.read_csv(REALDATA / filename)
    frame = raw[["open", "high", "low", "close", "volume"]].astype("float64")
    frame.index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True), name="timestamp")
    return frame


_real_connect = socket.socket.connect


def _guarded_connect(self, address):  # type: ignore[no-untyped-def]
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise RuntimeError(f"test tried to reach the internet: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never leave this machine: any non-loopback connect fails loudly."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's local config, env tokens or state file leaks into a test."""
    from utils import config

    for key in list(os.environ):
        if key.startswith("SCANNER_") and key != "SCANNER_SHARED_DIR":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SCANNER_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("SCANNER_STATE_DB", str(tmp_path / "alerts.sqlite3"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("DISABLE_PROGRESS", "1")
    config.reload()
    yield
    config.reload()


@pytest.fixture
def fresh_exchange_state() -> None:
    """Rate budgets, bans and contract sizes are process-wide: the test starts and ends with none."""
    from exchanges import rate_limit
    from exchanges.base_client import reset_contract_sizes

    rate_limit.reset_budgets()
    reset_contract_sizes()
    yield
    rate_limit.reset_budgets()
    reset_contract_sizes()


def configure_telegram(
    monkeypatch: pytest.MonkeyPatch, base_url: str, tokens: dict[str, str], chats: dict[str, str]
) -> None:
    """Point the scanner's Telegram config at a (fake) Bot API: a token per channel, a chat per user."""
    from utils import config

    monkeypatch.setenv("SCANNER_TELEGRAM_BASE_URL", base_url)
    for channel, token in tokens.items():
        monkeypatch.setenv(f"SCANNER_TELEGRAM_TOKEN_{channel.upper()}", token)
    for user, chat in chats.items():
        monkeypatch.setenv(f"SCANNER_TELEGRAM_CHAT_{user.upper()}", chat)
    config.reload()


def toy_strategy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> Iterator[Any]:
    """Generator for a fixture: the strategy module ``name`` written from ``source``, importable here
    and in a fresh analysis process (which copies ``sys.path``); yields the module, then forgets it
    (and the strategy it registered, if any) and stops that process."""
    import importlib
    import sys
    import textwrap

    from scanner import registry
    from scanner.analysis import shutdown_analysis_process

    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    shutdown_analysis_process()
    module = importlib.import_module(name)
    yield module
    registry.unregister(module.STRATEGY.name)
    sys.modules.pop(name, None)
    shutdown_analysis_process()
