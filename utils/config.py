"""Configuration: thresholds, hosts, Telegram channels and users.

Secrets (bot tokens, chat ids) come only from environment variables or a local TOML file that
``.gitignore`` covers (``scanner.local.toml`` in the working directory or the repo root, or the
path in ``SCANNER_CONFIG``). ``scanner.example.toml`` documents the layout with placeholders.

Environment variables win over the file:

- ``SCANNER_<MARKET>_BASE_URL``: host of an exchange market (``SCANNER_BINANCE_SPOT_BASE_URL``).
- ``SCANNER_TELEGRAM_BASE_URL``: Bot API base in python-telegram-bot's ``base_url`` form.
- ``SCANNER_TELEGRAM_TOKEN_<CHANNEL>``: the bot token of a channel (``..._VOLUME_SURGE``).
- ``SCANNER_TELEGRAM_CHAT_<USER>``: the chat id of a user (``SCANNER_TELEGRAM_CHAT_DEFAULT``).
- ``SCANNER_STATE_DB``: path of the alert ledger (SQLite).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_CONFIG_NAME = "scanner.local.toml"
DEFAULT_TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_STATE_DB = REPO_ROOT / "state" / "alerts.sqlite3"

# Spec section 11: USD volume of the last closed bar needed per timeframe.
VOLUME_THRESHOLDS: dict[str, float] = {
    "1w": 300_000.0,
    "4d": 200_000.0,
    "3d": 150_000.0,
    "2d": 100_000.0,
    "1d": 50_000.0,
    "4h": 20_000.0,
}

# Spec section 9.3: the Telegram channels (one bot each).
CHANNELS: tuple[str, ...] = ("volume_surge", "start_trend", "weakening_trend", "confluence")


@dataclass(frozen=True)
class TelegramConfig:
    """Bot token per channel and chat id per user; tokens are never printed (see ``__repr__``)."""

    base_url: str = DEFAULT_TELEGRAM_BASE_URL
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"TelegramConfig(base_url={self.base_url!r}, channels_with_token={sorted(self.tokens)}, "
            f"users={sorted(self.users)})"
        )


def _config_paths() -> list[Path]:
    explicit = os.environ.get("SCANNER_CONFIG")
    if explicit:
        return [Path(explicit)]
    return [Path.cwd() / LOCAL_CONFIG_NAME, REPO_ROOT / LOCAL_CONFIG_NAME]


@lru_cache(maxsize=1)
def _file_config_cached(paths: tuple[str, ...]) -> dict[str, Any]:
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            with path.open("rb") as fh:
                try:
                    return tomllib.load(fh)
                except tomllib.TOMLDecodeError as exc:
                    raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
    return {}


def file_config() -> dict[str, Any]:
    """The parsed local config file, or ``{}`` when there is none."""
    return _file_config_cached(tuple(str(p) for p in _config_paths()))


def reload() -> None:
    """Forget the parsed config file (after editing it, or in tests)."""
    _file_config_cached.cache_clear()


def get_base_url(market: str, default: str) -> str:
    """Host for ``market`` (e.g. ``binance_spot``): env, then ``[base_urls]`` in the file, then default."""
    env = os.environ.get(f"SCANNER_{market.upper()}_BASE_URL")
    if env:
        return env.rstrip("/")
    configured = file_config().get("base_urls", {}).get(market)
    return (configured or default).rstrip("/")


def telegram_config() -> TelegramConfig:
    """Channels' tokens and users' chat ids from the environment and the local file."""
    data = file_config().get("telegram", {})
    base_url = (
        os.environ.get("SCANNER_TELEGRAM_BASE_URL")
        or file_config().get("base_urls", {}).get("telegram")
        or data.get("base_url")
        or DEFAULT_TELEGRAM_BASE_URL
    )
    tokens = {name: str(tok) for name, tok in data.get("tokens", {}).items() if tok}
    users = {name: str(chat) for name, chat in data.get("users", {}).items() if chat}
    for key, value in os.environ.items():
        if not value:
            continue
        if key.startswith("SCANNER_TELEGRAM_TOKEN_"):
            tokens[key.removeprefix("SCANNER_TELEGRAM_TOKEN_").lower()] = value
        elif key.startswith("SCANNER_TELEGRAM_CHAT_"):
            users[key.removeprefix("SCANNER_TELEGRAM_CHAT_").lower()] = value
    return TelegramConfig(base_url=base_url, tokens=tokens, users=users)


def state_db_path() -> Path:
    """Where the alert ledger lives (``SCANNER_STATE_DB``, ``[state] db`` in the file, or ./state)."""
    env = os.environ.get("SCANNER_STATE_DB") or file_config().get("state", {}).get("db")
    return Path(env) if env else DEFAULT_STATE_DB


def volume_threshold(timeframe: str, min_volume_usd: float | None = None) -> float:
    """USD threshold for the volume filter; ``min_volume_usd`` replaces the table value."""
    if min_volume_usd is not None:
        return float(min_volume_usd)
    return VOLUME_THRESHOLDS[timeframe]
