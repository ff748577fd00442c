"""``scanner quality`` end to end on the offline demo exchange and the local fake exchanges: the
table, the CSV/JSON/PNG files, bad input (exit 2, one line naming the valid choices) and failures
reported without stopping the rest."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from exchanges.demo import DemoClient
from scanner.quality import COLUMN_NAMES, load_history, main, signal_quality
from scanner.quality.history import HISTORY_BARS
from tests.fakes.exchange_server import FakeExchangeServer
from utils import config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOW = pd.Timestamp("2026-01-15 13:00", tz="UTC")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["1x", "all", "demo"], ["unknown timeframe", "1d", "4h"]),
        (["1d", "breakout", "demo"], ["unknown strategy", "breakout_bar", "confluence"]),
        (["1d", "all", "binance"], ["unknown exchange", "binance_spot", "demo"]),
        (["1d", "all", "demo", "--horizons", "0,3"], ["horizons", "1,3,5,10"]),
        (["1d", "all", "demo", "--horizons", "one"], ["horizons", "1,3,5,10"]),
        (["1d", "all", "demo", "--min-volume-usd", "-5"], ["non-negative number"]),
        (["1d", "all", "demo", "--since", "soon"], ["since", "2024-01-31"]),
        (["1d", "all", "demo", "--seed", "x"], ["seed", "non-negative whole number"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_valid_choices(argv, words, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("scanner quality: error:")
    for word in words:
        assert word in err


def test_missing_arguments_are_an_argparse_usage_error(capsys) -> None:
    assert main(["1d"]) == 2
    assert "scanner quality" in capsys.readouterr().err


def test_help_names_the_choices_and_exits_0(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("scanner quality", "--horizons", "--since", "--out", "--no-store", "pin_down", "4h", "demo"):
        assert word in out


def test_demo_run_prints_a_sorted_table_and_writes_csv_json_and_charts(tmp_path, capsys) -> None:
    out = tmp_path / "report"
    status = main(["1d", "stop_bar,pin_down", "demo", "--horizons", "1,5", "--out", str(out), "--seed", "4"])
    assert status == 0
    text = capsys.readouterr().out
    assert "stop_bar" in text and "pin_down" in text and "edge 95%" in text

    table = pd.read_csv(out / "quality.csv")
    assert tuple(table.columns) == COLUMN_NAMES
    assert sorted(zip(table["strategy"], table["horizon"])) == [
        ("pin_down", 1), ("pin_down", 5), ("stop_bar", 1), ("stop_bar", 5)
    ]
    assert (table["signals"] > 0).all() and (table["signals"] <= table["bars"]).all()
    assert (table["edge_low"] <= table["edge"]).all() and (table["edge"] <= table["edge_high"]).all()
    assert set(table["direction"]) == {"up", "down"}

    exported = json.loads((out / "quality.json").read_text())
    assert exported["format"] == "signal-quality/1"
    assert set(exported["columns"]) == set(COLUMN_NAMES)
    assert len(exported["rows"]) == 4 and exported["seed"] == 4 and exported["horizons"] == [1, 5]
    assert exported["failed"] == [] and exported["errors"] == []
    for name in ("returns_demo_1d.png", "firing_rate_demo_1d.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC

    lines = [line.split() for line in text.splitlines()[1:] if line.strip()]
    horizons = [int(parts[2]) for parts in lines if parts[0] == "demo"]
    assert horizons == sorted(horizons)  # sorted by horizon, then edge


def test_without_out_nothing_is_written(tmp_path, monkeypatch, capsys) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    assert main(["1d", "test_bar", "demo", "--horizons", "1"]) == 0
    assert list(workdir.iterdir()) == []


async def test_load_history_returns_closed_bars_only_at_the_history_depth() -> None:
    client = DemoClient(timeframe="1d", now=NOW)
    symbols = client.symbols[:3]
    frames = await load_history("demo", "1d", symbols, client=client)
    assert sorted(frames) == sorted(symbols)
    for symbol, frame in frames.items():
        native = await client.fetch_klines(symbol, interval="1d", limit=HISTORY_BARS["1d"])
        pd.testing.assert_frame_equal(frame, native.iloc[:-1], check_freq=False)
        assert frame.index[-1] < NOW.floor("D")  # today's forming day is not measured


async def test_load_history_builds_multi_day_bars_like_a_scan_and_drops_the_forming_one() -> None:
    client = DemoClient(timeframe="3d", now=NOW)
    frames = await load_history("demo", "3d", client.symbols[:2], client=client)
    for frame in frames.values():
        steps = frame.index.to_series().diff().dropna().unique()
        assert list(steps) == [pd.Timedelta(days=3)]
        assert frame.index[-1] + pd.Timedelta(days=3) <= NOW  # the last period kept is closed


@pytest.fixture
async def fake_binance(monkeypatch, fresh_exchange_state):
    async with FakeExchangeServer(symbols=6, markets=["binance_spot"], rate_limits=False) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        config.reload()
        yield server


async def test_a_failing_symbol_is_reported_and_the_rest_is_measured(fake_binance) -> None:
    symbols = fake_binance.usdt_symbols("binance_spot")
    fake_binance.add_fault("403", market="binance_spot", path="klines", symbol=symbols[0])
    table = await signal_quality("1d", "stop_bar", "binance_spot", horizons=(1,), min_volume_usd=0)
    assert [f["symbol"] for f in table.attrs["failed"]] == [symbols[0]]
    assert table.iloc[0]["symbols"] == len(symbols) - 1 and table.iloc[0]["bars"] > 0


async def test_an_exchange_that_cannot_list_is_reported_and_the_next_one_still_runs(fake_binance) -> None:
    fake_binance.add_fault("403", market="binance_spot")
    table = await signal_quality("1d", "stop_bar", "binance_spot,demo", horizons=(1,), symbols=None,
                                 min_volume_usd=0)
    assert [(f["exchange"], f["symbol"]) for f in table.attrs["failed"]] == [("binance_spot", None)]
    assert set(table["exchange"]) == {"demo"}


async def test_the_library_call_rejects_bad_arguments_before_fetching(fake_binance) -> None:
    with pytest.raises(ValueError, match="horizons"):
        await signal_quality("1d", "all", "binance_spot", horizons="0")
    assert sum(fake_binance.requests_by_market.values()) == 0


def test_a_store_path_is_accepted_and_a_broken_store_file_is_one_line(tmp_path, capsys) -> None:
    store = str(tmp_path / "candles.sqlite3")
    assert main(["1d", "test_bar", "demo", "--horizons", "1", "--store", store]) == 0
    assert "test_bar" in capsys.readouterr().out
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"not a database, just text" * 100)
    assert main(["1d", "test_bar", "demo", "--horizons", "1", "--store", str(broken)]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "Traceback" not in err
    assert main(["1d", "test_bar", "demo", "--store", "x", "--no-store"]) == 2  # one or the other
