"""Where the scanner keeps its state and finds its config, independent of the checkout and the
current directory.

Defaults follow the platform's conventions through platformdirs (on Linux the XDG variables):

- state directory: ``$XDG_STATE_HOME/crypto-market-scanner`` (``~/.local/state/...``), holding
  the alert ledger ``alerts.sqlite3`` and, beside it, the candle store;
- config file: ``$XDG_CONFIG_HOME/crypto-market-scanner/config.toml`` (``~/.config/...``).

``utils.config`` layers the overrides on top (``SCANNER_STATE_DB``, ``SCANNER_CONFIG``, the
``[state] db`` entry and ``./scanner.local.toml``); nothing here creates a directory.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "crypto-market-scanner"
STATE_DB_NAME = "alerts.sqlite3"
USER_CONFIG_NAME = "config.toml"
# The file the seed read from the current directory; still read there, before the user's file.
LOCAL_CONFIG_NAME = "scanner.local.toml"
# The seed's ledger inside the checkout, read when it exists and the user's state has none yet.
LEGACY_STATE_DB = Path(__file__).resolve().parent.parent / "state" / STATE_DB_NAME


def user_state_dir() -> Path:
    """The user's state directory for the scanner (not created here)."""
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def user_config_file() -> Path:
    """The user's config file for the scanner (it may not exist)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / USER_CONFIG_NAME


def default_state_db() -> Path:
    """The alert ledger when nothing overrides it: the user's state directory, or the seed's
    ``state/alerts.sqlite3`` of this checkout when only that one exists (so an upgrade does not
    forget what was already sent)."""
    default = user_state_dir() / STATE_DB_NAME
    if not default.exists() and LEGACY_STATE_DB.is_file():
        return LEGACY_STATE_DB
    return default
