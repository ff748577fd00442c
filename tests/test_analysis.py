"""Detector work off the event loop (scanner/analysis.py): the process, its fallbacks, the hand-over."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from breakout_vsa.core import test_bar_panel
from scanner import analysis, registry, runtime
from scanner.cache import KlineCache
from scanner.main import run_scan
from tests.fakes import detectors
from utils.candles import Candles

REPO = Path(__file__).resolve().parent.parent


def dying_in_the_analysis_process(o, h, l, c, v) -> dict:
    """test_bar here; kills the process it runs in when that is the analysis process."""
    if runtime.in_analysis_process():
        os._exit(3)
    return test_bar_panel(o, h, l, c, v)


def keys(result) -> list[tuple]:
    return sorted((h.strategy, h.symbol, h.current_bar, h.bar_time, h.close) for h in result.hits)


@pytest.fixture
def fresh_process():
    """Every test here starts without an analysis process and leaves none behind."""
    analysis.shutdown_analysis_process()
    yield
    analysis.shutdown_analysis_process()


async def test_the_process_and_the_thread_find_the_same_hits(monkeypatch, fresh_process) -> None:
    monkeypatch.setenv(analysis.ANALYSIS_ENV, "thread")
    in_thread = await run_scan("2d", "all", "demo", cache=KlineCache(), progress=False)
    monkeypatch.setenv(analysis.ANALYSIS_ENV, "process")
    before = analysis.batches_in_process
    in_process = await run_scan("2d", "all", "demo", cache=KlineCache(), progress=False)
    assert analysis.batches_in_process > before and runtime._broken is None  # it really ran in the process
    assert keys(in_process) == keys(in_thread) and len(in_thread.hits) > 50
    assert [h.metrics for h in sorted(in_process.hits, key=lambda h: (h.strategy, h.symbol))] == [
        h.metrics for h in sorted(in_thread.hits, key=lambda h: (h.strategy, h.symbol))
    ]


def with_panel(monkeypatch, panel) -> None:
    strategies = registry.registry()
    monkeypatch.setitem(strategies, "test_bar", dataclasses.replace(strategies["test_bar"], panel=panel))


async def test_a_detector_bug_in_the_process_costs_only_its_markets(monkeypatch, fresh_process) -> None:
    clean = await run_scan("1d", "all", "demo", cache=KlineCache(), progress=False)
    with_panel(monkeypatch, detectors.failing_on_odd_closes)
    before = analysis.batches_in_process
    result = await run_scan("1d", "all", "demo", cache=KlineCache(), progress=False)
    summary = result.summaries[0]
    assert analysis.batches_in_process > before and runtime._broken is None
    assert summary.detector_errors and {e["strategy"] for e in summary.detector_errors} == {"test_bar"}
    assert all("detector bug" in e["reason"] for e in summary.detector_errors)
    others = lambda r: [k for k in keys(r) if k[0] != "test_bar"]  # noqa: E731
    assert others(result) == others(clean)


async def test_a_dead_process_falls_back_to_the_thread_and_loses_nothing(monkeypatch, caplog, fresh_process) -> None:
    clean = await run_scan("1d", "all", "demo", cache=KlineCache(), progress=False)
    with_panel(monkeypatch, dying_in_the_analysis_process)
    result = await run_scan("1d", "all", "demo", cache=KlineCache(), progress=False)
    assert keys(result) == keys(clean)
    assert result.summaries[0].detector_errors == []
    assert runtime._broken is not None and "died" in runtime._broken and "exit code 3" in runtime._broken
    assert any("detectors run in a thread" in r.getMessage() for r in caplog.records)


def test_detectors_the_process_cannot_load_stay_in_the_thread() -> None:
    def local_panel(*arrays):  # defined in a function: not importable by another process
        raise AssertionError

    def notebook_panel(*arrays):
        raise AssertionError

    notebook_panel.__module__ = "__main__"  # as if defined in a notebook cell or the caller's script
    test_bar = registry.get_strategy("test_bar")
    assert analysis._picklable([test_bar])
    assert not analysis._picklable([dataclasses.replace(test_bar, panel=local_panel)])
    assert not analysis._picklable([dataclasses.replace(test_bar, panel=notebook_panel)])


def test_an_unknown_analysis_mode_names_the_valid_ones(monkeypatch) -> None:
    monkeypatch.setenv(analysis.ANALYSIS_ENV, "gpu")
    with pytest.raises(ValueError, match="process, thread"):
        analysis.analysis_mode()


def test_packing_keeps_every_row_and_cuts_to_the_depth() -> None:
    rng = np.random.default_rng(1)
    batch = []
    for i, n in enumerate((5, 0, 12)):
        stamps = np.arange(n, dtype=np.int64) * 86_400_000
        batch.append((f"S{i}", Candles(stamps, rng.random((n, 5)))))
    packed = analysis.pack(batch, depth=8)
    assert packed.lengths.tolist() == [5, 0, 8]
    for (symbol, original), (name, back) in zip(batch, analysis.unpack(packed)):
        assert name == symbol
        np.testing.assert_array_equal(back.stamps, original.stamps[-8:] if len(original) else original.stamps)
        np.testing.assert_array_equal(back.values, original.values[-8:] if len(original) else original.values)
    assert isinstance(analysis.unpack(packed)[2][1].frame().index, pd.DatetimeIndex)


def test_a_script_without_a_main_guard_runs_once(tmp_path) -> None:
    """The analysis process must not re-run the caller's script (it would scan and alert again)."""
    script = tmp_path / "cron_job.py"
    script.write_text(
        "import asyncio, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from scanner.cache import KlineCache\n"
        "from scanner.main import run_scan\n"
        "from scanner import analysis, runtime\n"
        "print('TOP LEVEL RAN', flush=True)\n"
        "result = asyncio.run(run_scan('1d', 'all', 'demo', cache=KlineCache(), progress=False))\n"
        "print('HITS', len(result.hits), 'PROCESS', analysis.batches_in_process > 0, runtime._broken)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("TOP LEVEL RAN") == 1
    assert "PROCESS True None" in done.stdout


async def test_a_process_shut_down_under_a_scan_falls_back_to_the_thread(monkeypatch, fresh_process) -> None:
    clean = await run_scan("1d", "all", "demo", cache=KlineCache(), progress=False)
    pool = analysis.start_analysis_process()
    assert pool is not None
    pool.shutdown(wait=True)  # as at interpreter exit: submitting now raises RuntimeError
    result = await run_scan("1d", "all", "demo", cache=KlineCache(), progress=False)
    assert keys(result) == keys(clean)
    assert runtime._broken is not None and "shut down" in runtime._broken
