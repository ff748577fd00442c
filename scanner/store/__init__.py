"""The candle store: history kept between runs, so a later scan fetches only the new bars (issue 12).

``open_store`` turns what a caller passes as ``store=`` into a store or None (no store):

- a ``CandleStore``: used as is (the caller closes it);
- a path (str or PathLike): an SQLite store in that file (``"off"`` means no store);
- None: the default: ``SCANNER_STORE`` (a path, or ``off``), else ``[store] path`` of the config
  file, else ``candles.sqlite3`` beside the alert ledger (``utils.config.state_db_path()``);
- False: no store, today's stateless behaviour (``--no-store``).
"""

from __future__ import annotations

import os
from pathlib import Path

from scanner.store.base import (
    DEFAULT_RETENTION,
    CandleStore,
    SeriesInfo,
    SeriesWrite,
    StoredSeries,
    StoreError,
    merge_candles,
    retention_setting,
)
from scanner.store.memory import MemoryCandleStore
from scanner.store.sqlite import SQLiteCandleStore
from utils.config import file_config, state_db_path

STORE_ENV = "SCANNER_STORE"
STORE_FILE_NAME = "candles.sqlite3"
OFF_WORDS = frozenset({"off", "none", "no", "false", "0"})

StoreOption = CandleStore | str | os.PathLike | bool | None


def default_store_path() -> Path | None:
    """Where the default store lives, or None when ``SCANNER_STORE=off`` (see the module docstring)."""
    env = os.environ.get(STORE_ENV, "").strip()
    if env:
        return None if env.lower() in OFF_WORDS else Path(env).expanduser()
    section = file_config().get("store", {})
    configured = section.get("path") if isinstance(section, dict) else None
    if configured:
        text = str(configured).strip()
        return None if text.lower() in OFF_WORDS else Path(text).expanduser()
    return Path(state_db_path()).parent / STORE_FILE_NAME


def open_store(store: StoreOption = None) -> CandleStore | None:
    """The store ``store`` names (module docstring); ``StoreError`` (a ValueError) for an unusable file."""
    if isinstance(store, CandleStore):
        return store
    if store is False:
        return None
    if store is None or store is True:
        path = default_store_path()
        return None if path is None else SQLiteCandleStore(path)
    if isinstance(store, (str, os.PathLike)):
        text = os.fspath(store)
        if not str(text).strip():
            raise ValueError("store path is empty; pass a file path, 'off', False or None (the default)")
        return None if str(text).strip().lower() in OFF_WORDS else SQLiteCandleStore(text)
    raise ValueError(f"store must be a CandleStore, a file path, 'off', False or None, got {store!r}")


def owned(store: StoreOption, opened: CandleStore | None) -> bool:
    """True when ``open_store(store)`` created ``opened`` (so the caller must close it)."""
    return opened is not None and not isinstance(store, CandleStore)


__all__ = [
    "DEFAULT_RETENTION",
    "CandleStore",
    "MemoryCandleStore",
    "SQLiteCandleStore",
    "SeriesInfo",
    "SeriesWrite",
    "StoreError",
    "StoredSeries",
    "default_store_path",
    "merge_candles",
    "open_store",
    "owned",
    "retention_setting",
]
