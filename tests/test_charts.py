"""Alert charts: a small candlestick PNG per hit, drawn with Agg from the candles already held."""

from __future__ import annotations

import logging
import warnings

import pandas as pd

from bench.charts import synthetic_jobs
from scanner.alerts import render_charts
from scanner.chart import CHART_BARS, _plot_args, render_many, render_png
from tests.test_notifier import make_hit
from tests.test_webhook_sink import _frame

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 200_000


def test_a_chart_is_a_small_png_drawn_without_warnings(caplog) -> None:
    frame, hit = synthetic_jobs(1)[0]
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = render_png(frame, hit)
    assert image.startswith(PNG_MAGIC) and len(image) < MAX_BYTES
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []  # no font fallbacks


def test_the_chart_shows_the_last_bars_up_to_the_signal_bar_with_a_marker_and_a_title() -> None:
    hit = make_hit(bar_time=pd.Timestamp("2025-03-20", tz="UTC"))
    frame = _frame(hit.bar_time + pd.Timedelta(days=5), bars=120)  # newer bars after the signal
    before = frame.copy()
    view, kwargs = _plot_args(frame, hit, CHART_BARS)
    assert len(view) == CHART_BARS and view.index[-1] == pd.Timestamp("2025-03-20")
    marker = kwargs["addplot"][0]["data"]
    assert marker[-1] > view["high"].iloc[-1] and pd.isna(marker[:-1]).all()
    assert kwargs["title"]["title"] == "BTCUSDT | binance_futures | 1d | Breakout Bar (closed bar)"
    assert kwargs["volume"] is True
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is untouched


def test_a_frame_that_cannot_be_drawn_costs_its_chart_only() -> None:
    good, hit = synthetic_jobs(1)[0]
    broken = good.drop(columns=["volume"])
    assert [image is not None for image in render_many([(broken, hit), (good, hit)], workers=1)] == [False, True]


def test_worker_processes_draw_the_same_charts_as_the_caller() -> None:
    jobs = synthetic_jobs(8)
    pooled = render_many(jobs, workers=2)
    assert len(pooled) == 8 and all(i is not None and i.startswith(PNG_MAGIC) for i in pooled)
    assert render_many(jobs[:1], workers=1)[0] == pooled[0]


async def test_charts_are_drawn_only_from_candles_the_caller_holds() -> None:
    held, missing = make_hit(symbol="AAAUSDT"), make_hit(symbol="BBBUSDT")
    calls = []

    def candles(exchange: str, timeframe: str, symbol: str):
        calls.append(symbol)
        return _frame(held.bar_time) if symbol == held.symbol else None

    images = await render_charts([held, missing], candles)
    assert calls == ["AAAUSDT", "BBBUSDT"]
    assert [key[1] for key in images] == ["AAAUSDT"]
