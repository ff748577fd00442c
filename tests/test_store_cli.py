"""``scanner store info | prune | vacuum | export`` on real store files."""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest

from scanner import store_cli
from scanner.store import SQLiteCandleStore
from scanner.store.base import frozen

DAY_MS = 86_400_000
START_MS = 1_700_006_400_000


def fill(path, series: dict[tuple[str, str, str], int]) -> None:
    with SQLiteCandleStore(path, retention={}) as store:
        for (exchange, symbol, interval), n in series.items():
            stamps = START_MS + np.arange(n, dtype=np.int64) * DAY_MS
            values = np.column_stack([np.arange(n) + 1.0] * 4 + [np.full(n, 10.0)])
            store.append(exchange, symbol, interval, frozen(stamps, values))


def test_info_lists_series_bars_and_dates_per_exchange(tmp_path, capsys):
    path = tmp_path / "c.sqlite3"
    fill(path, {("binance_spot", "BTCUSDT", "1d"): 300, ("binance_spot", "ETHUSDT", "1d"): 200,
                ("bybit_spot", "BTCUSDT", "4h"): 50})
    assert store_cli.main(["info", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 series, 550 bars" in out
    assert re.search(r"binance_spot\s+1d\s+2\s+500\s+2023-11-15 00:00\s+2024-09-09 00:00", out)
    assert "bybit_spot" in out and "MB on disk" in out


def test_prune_trims_to_keep_and_vacuum_reports_sizes(tmp_path, capsys):
    path = tmp_path / "c.sqlite3"
    fill(path, {("x", "S", "1d"): 1500})
    assert store_cli.main(["--store", str(path), "prune", "--keep", "400"]) == 0
    assert "pruned 1,100 bars" in capsys.readouterr().out
    assert store_cli.main(["vacuum", "--store", str(path)]) == 0
    assert "vacuumed" in capsys.readouterr().out
    with SQLiteCandleStore(path) as store:
        assert len(store.load("x", "S", "1d")) == 400


def test_export_writes_one_parquet_file_per_exchange_and_interval(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "c.sqlite3"
    fill(path, {("binance_spot", "BTCUSDT", "1d"): 30, ("binance_spot", "ETHUSDT", "1d"): 20,
                ("binance_spot", "BTCUSDT", "4h"): 5})
    assert store_cli.main(["export", "--format", "parquet", str(tmp_path / "out"), "--store", str(path)]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["binance_spot_1d.parquet", "binance_spot_4h.parquet"]
    frame = pd.read_parquet(tmp_path / "out" / "binance_spot_1d.parquet")
    assert len(frame) == 50 and set(frame["symbol"].astype(str)) == {"BTCUSDT", "ETHUSDT"}
    assert str(frame["timestamp"].dt.tz) == "UTC" and frame["close"].dtype == np.float64


def test_export_without_pyarrow_is_one_clear_line_and_status_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert store_cli.main(["export", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "store export needs pyarrow: pip install pyarrow"


def test_bad_input_and_unusable_files_exit_2_naming_the_way_out(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        store_cli.main(["export", "--format", "csv", str(tmp_path)])
    assert info.value.code == 2 and "valid formats: parquet" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        store_cli.main(["compact"])
    assert info.value.code == 2
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"nope" * 1000)
    assert store_cli.main(["info", "--store", str(bad)]) == 2
    assert "--no-store" in capsys.readouterr().err


def test_info_on_a_missing_store_says_a_scan_creates_it(tmp_path, capsys):
    assert store_cli.main(["info", "--store", str(tmp_path / "none.sqlite3")]) == 0
    assert "a scan creates it" in capsys.readouterr().out
    assert not (tmp_path / "none.sqlite3").exists()
