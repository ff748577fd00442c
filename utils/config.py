"""Configuration: thresholds, hosts, Telegram channels and users.

Secrets (bot tokens, chat ids) come only from environment variables or a TOML config file, the
first of: the path in ``SCANNER_CONFIG``; ``scanner.local.toml`` in the current directory (git
ignores it); the user's config file (``~/.config/crypto-market-scanner/config.toml``, see
``utils.paths``). ``scanner.example.toml`` documents the layout with placeholders.

Environment variables win over the file:

- ``SCANNER_<MARKET>_BASE_URL``: host of an exchange market (``SCANNER_BINANCE_SPOT_BASE_URL``).
- ``SCANNER_TELEGRAM_BASE_URL``: Bot API base in python-telegram-bot's ``base_url`` form.
- ``SCANNER_TELEGRAM_TOKEN_<CHANNEL>``: the bot token of a channel (``..._VOLUME_SURGE``).
- ``SCANNER_TELEGRAM_CHAT_<USER>``: the chat id of a user (``SCANNER_TELEGRAM_CHAT_DEFAULT``).
- ``SCANNER_STATE_DB``: path of the alert ledger (SQLite); its directory is the state directory
  (default ``~/.local/state/crypto-market-scanner``, see ``utils.paths``).

:func:`check_config` reads and checks all of it up front, so a bad file, URL or token is one clear
``ValueError`` before anything is scanned.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from utils.paths import LOCAL_CONFIG_NAME, default_state_db, user_config_file

DEFAULT_TELEGRAM_BASE_URL = "https://api.telegram.org/bot"
URL_SCHEMES: tuple[str, ...] = ("http", "https")
# A Bot API token as @BotFather issues it: the bot id, a colon, a secret of letters, digits, _ and -.
TOKEN_SHAPE = re.compile(r"\d{6,12}:[A-Za-z0-9_-]{30,}")
BASE_URL_ENV = re.compile(r"SCANNER_([A-Z0-9_]+)_BASE_URL")

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


def config_paths() -> list[Path]:
    """Where the config file is looked for, first match wins (module docstring)."""
    explicit = os.environ.get("SCANNER_CONFIG")
    if explicit:
        return [Path(explicit).expanduser()]
    return [Path.cwd() / LOCAL_CONFIG_NAME, user_config_file()]


def config_file() -> Path | None:
    """The config file in use, or None when there is none."""
    return next((path for path in config_paths() if path.is_file()), None)


@lru_cache(maxsize=1)
def _file_config_cached(paths: tuple[str, ...]) -> dict[str, Any]:
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            with path.open("rb") as fh:
                try:
                    return tomllib.load(fh)
                except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                    raise ValueError(
                        f"config file {path} is not valid TOML ({exc}); fix it (see scanner.example.toml) "
                        "or point SCANNER_CONFIG at another file"
                    ) from None
    return {}


def file_config() -> dict[str, Any]:
    """The parsed local config file, or ``{}`` when there is none."""
    return _file_config_cached(tuple(str(p) for p in config_paths()))


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
    """Where the alert ledger lives; its directory is the state directory (the candle store sits beside).

    ``SCANNER_STATE_DB``, then ``[state] db`` in the config file, then the user's state directory.
    """
    env = os.environ.get("SCANNER_STATE_DB") or file_config().get("state", {}).get("db")
    return Path(env).expanduser() if env else default_state_db()


def check_url(url: str, where: str) -> str:
    """``url`` when it is an http(s) URL with a host; ``ValueError`` naming ``where`` it came from."""
    parts = urlsplit(str(url).strip())
    if parts.scheme.lower() not in URL_SCHEMES or not parts.netloc:
        raise ValueError(f"{where} must be an http:// or https:// URL, got {url!r}")
    return url


def check_token(channel: str, token: str) -> None:
    """``ValueError`` when a bot token does not have a token's shape (the message never quotes it)."""
    if not TOKEN_SHAPE.fullmatch(token.strip()):
        raise ValueError(
            f"the bot token of Telegram channel {channel!r} is not a token (expected <bot id>:<secret> "
            f"from @BotFather); fix SCANNER_TELEGRAM_TOKEN_{channel.upper()} or [telegram.tokens] {channel}"
        )


def _base_url_sources() -> list[tuple[str, str]]:
    """Every configured host as (where it was set, URL): environment variables, then the file."""
    found = [(key, value) for key, value in os.environ.items() if value and BASE_URL_ENV.fullmatch(key)]
    data = file_config()
    for name, url in data.get("base_urls", {}).items():
        found.append((f"[base_urls] {name} in the config file", str(url)))
    if data.get("telegram", {}).get("base_url"):
        found.append(("[telegram] base_url in the config file", str(data["telegram"]["base_url"])))
    return found


def check_config(sending: bool = False) -> None:
    """Read and check the configuration before a scan; ``ValueError`` with the fix otherwise.

    Always: the config file parses and every base URL is http(s). When ``sending``: every
    configured bot token has a token's shape.
    """
    file_config()
    for where, url in _base_url_sources():
        check_url(url, where)
    if sending:
        for channel, token in telegram_config().tokens.items():
            check_token(channel, token)


def volume_threshold(timeframe: str, min_volume_usd: float | None = None) -> float:
    """USD threshold for the volume filter; ``min_volume_usd`` replaces the table value."""
    if min_volume_usd is not None:
        return float(min_volume_usd)
    return VOLUME_THRESHOLDS[timeframe]
