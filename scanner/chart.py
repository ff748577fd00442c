"""Candlestick chart of one hit with its signal bar marked (mplfinance on matplotlib).

``plot_hit`` draws into the current backend (the notebook shows it); ``render_png`` gives the PNG
bytes an alert carries, drawn with the Agg backend, ASCII-only text (no missing-glyph warnings) and
a small size (well under 200 KB). ``render_many`` draws a batch in worker processes when it is
large enough to pay for them (the machine's cores, at most ``CHART_WORKERS``), else in the caller.
"""

from __future__ import annotations

import functools
import io
import logging
import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from scanner.results import Hit

log = logging.getLogger(__name__)

CHART_BARS = 60
CHART_SIZE_IN = (8.0, 5.0)
CHART_DPI = 80
CHART_STYLE = "yahoo"
# The style's "semibold" has no DejaVu face: matplotlib would warn at every chart; bold exists.
STYLE_RC = {"figure.titleweight": "bold", "axes.labelweight": "bold", "axes.titleweight": "bold"}
TITLE_Y = 0.96  # inside the figure: mplfinance's default places a long title above the top edge
TITLE_FONT_SIZE = 11
MARKER_OFFSET = 1.02  # the marker sits 2% above the signal bar's high
MARKER_SIZE = 120
MARKER_COLOR = "tab:blue"
CHART_WORKERS = 2
# Below this many charts a worker pool costs more (start-up, imports) than it saves.
POOL_MIN_CHARTS = 8


def _title(hit: Hit) -> str:
    from scanner.registry import get_strategy

    state = "forming" if hit.current_bar else "closed"
    title = get_strategy(hit.strategy).title
    return f"{hit.symbol} | {hit.exchange} | {hit.timeframe} | {title} ({state} bar)"


@functools.cache
def _style() -> dict[str, Any]:
    import mplfinance as mpf

    return mpf.make_mpf_style(base_mpf_style=CHART_STYLE, rc=STYLE_RC)


def _plot_args(frame: pd.DataFrame, hit: Hit, bars: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The last ``bars`` candles up to the hit's bar (naive UTC index) and mplfinance's arguments."""
    import mplfinance as mpf

    index = frame.index.tz_convert(None) if frame.index.tz is not None else frame.index
    view = frame.set_axis(index, axis=0)
    bar_time = pd.Timestamp(hit.bar_time)
    bar_time = bar_time.tz_convert(None) if bar_time.tzinfo is not None else bar_time
    view = view.loc[:bar_time].iloc[-bars:] if bar_time in view.index else view.iloc[-bars:]
    kwargs: dict[str, Any] = {
        "type": "candle",
        "volume": True,
        "style": _style(),
        "title": {"title": _title(hit), "y": TITLE_Y, "fontsize": TITLE_FONT_SIZE},
        "figsize": CHART_SIZE_IN,
    }
    if bar_time in view.index:
        marker = np.full(len(view), np.nan)
        pos = view.index.get_loc(bar_time)
        marker[pos] = view["high"].iloc[pos] * MARKER_OFFSET
        kwargs["addplot"] = [
            mpf.make_addplot(marker, type="scatter", marker="v", markersize=MARKER_SIZE, color=MARKER_COLOR)
        ]
    return view, kwargs


def plot_hit(frame: pd.DataFrame, hit: Hit, bars: int = CHART_BARS, savefig: str | None = None) -> Any:
    """Plot the last ``bars`` candles of ``frame`` with a marker above ``hit``'s bar; returns the figure."""
    import matplotlib

    if savefig is not None:
        matplotlib.use("Agg")
    import mplfinance as mpf

    view, kwargs = _plot_args(frame, hit, bars)
    fig, _ = mpf.plot(view, returnfig=True, **kwargs)
    if savefig is not None:
        fig.savefig(savefig)
    return fig


def render_png(frame: pd.DataFrame, hit: Hit, bars: int = CHART_BARS) -> bytes:
    """The chart of ``hit`` as PNG bytes (Agg backend; the figure is closed afterwards)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import mplfinance as mpf

    view, kwargs = _plot_args(frame, hit, bars)
    buffer = io.BytesIO()
    mpf.plot(view, savefig={"fname": buffer, "format": "png", "dpi": CHART_DPI}, **kwargs)
    return buffer.getvalue()


def _render_or_none(job: tuple[pd.DataFrame, Hit]) -> bytes | None:
    frame, hit = job
    try:
        return render_png(frame, hit)
    except Exception:  # one bad frame costs its chart, never the alert
        log.exception("chart of %s %s %s failed", hit.exchange, hit.timeframe, hit.symbol)
        return None


def render_many(jobs: Sequence[tuple[pd.DataFrame, Hit]], workers: int | None = None) -> list[bytes | None]:
    """PNG bytes per (frame, hit), None where drawing failed; a process pool for large batches."""
    workers = workers if workers is not None else min(CHART_WORKERS, os.cpu_count() or 1)
    small = [(frame.iloc[-CHART_BARS * 2 :], hit) for frame, hit in jobs]  # ship only what is drawn
    if workers < 2 or len(small) < POOL_MIN_CHARTS:
        return [_render_or_none(job) for job in small]
    context = multiprocessing.get_context("spawn")  # no fork of a process running an event loop
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_render_or_none, small, chunksize=max(1, len(small) // (workers * 4))))
