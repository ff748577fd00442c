"""Candlestick chart of one hit with its signal bar marked (mplfinance on matplotlib)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scanner.results import Hit

CHART_BARS = 60


def plot_hit(frame: pd.DataFrame, hit: Hit, bars: int = CHART_BARS, savefig: str | None = None) -> Any:
    """Plot the last ``bars`` candles of ``frame`` with a marker above ``hit``'s bar; returns the figure."""
    import matplotlib

    if savefig is not None:
        matplotlib.use("Agg")
    import mplfinance as mpf

    view = frame.iloc[-bars:].copy()
    view.index = view.index.tz_convert(None)
    marker = np.full(len(view), np.nan)
    bar_time = hit.bar_time.tz_convert(None)
    if bar_time in view.index:
        pos = view.index.get_loc(bar_time)
        marker[pos] = view["high"].iloc[pos] * 1.02
    state = "forming" if hit.current_bar else "closed"
    kwargs: dict[str, Any] = {
        "type": "candle",
        "volume": True,
        "style": "yahoo",
        "title": f"{hit.symbol} {hit.exchange} {hit.timeframe}: {hit.strategy} ({state} bar)",
        "addplot": [mpf.make_addplot(marker, type="scatter", marker="v", markersize=120, color="tab:blue")],
        "returnfig": True,
    }
    fig, _ = mpf.plot(view, **kwargs)
    if savefig is not None:
        fig.savefig(savefig)
    return fig
