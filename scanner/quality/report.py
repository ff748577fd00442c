"""Signal quality outputs: the terminal table, CSV and JSON files, and PNG charts (matplotlib, Agg).

Charts are drawn on ``matplotlib.figure.Figure`` objects without pyplot, so no GUI backend is ever
chosen and nothing is left open between calls.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scanner.quality.core import COLUMNS

JSON_FORMAT = "signal-quality/1"
CSV_NAME = "quality.csv"
JSON_NAME = "quality.json"
CHART_COLUMNS = 3  # strategies per row of the forward-return chart
PERCENT_COLUMNS = ("mean_return", "baseline_mean_return", "edge", "edge_low", "edge_high", "median_return",
                   "mean_mfe", "mean_mae")


def sort_for_display(table: pd.DataFrame) -> pd.DataFrame:
    """Exchange, timeframe and horizon, then the largest edge first (no edge last)."""
    return table.sort_values(
        ["exchange", "timeframe", "horizon", "edge", "strategy"],
        ascending=[True, True, True, False, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)


def _pct(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:+.2f}%"


def format_table(table: pd.DataFrame) -> str:
    """The quality table as text: returns and edge in percent, in the strategy's favour."""
    if table.empty:
        return "No rows: nothing was measured."
    view = sort_for_display(table)
    shown = pd.DataFrame({
        "exchange": view["exchange"],
        "tf": view["timeframe"],
        "h": view["horizon"],
        "strategy": view["strategy"],
        "dir": view["direction"],
        "signals": view["signals"],
        "per100": view["firing_rate_per_100"].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}"),
        "measured": view["measured"],
        "mean": view["mean_return"].map(_pct),
        "median": view["median_return"].map(_pct),
        "pos": view["positive_share"].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.0f}%"),
        "mfe": view["mean_mfe"].map(_pct),
        "mae": view["mean_mae"].map(_pct),
        "base": view["baseline_mean_return"].map(_pct),
        "edge": view["edge"].map(_pct),
        "edge 95%": [f"[{_pct(lo)}, {_pct(hi)}]" for lo, hi in zip(view["edge_low"], view["edge_high"])],
    })
    return shown.to_string(index=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json_dict(table: pd.DataFrame) -> dict[str, Any]:
    """The JSON export: rows (one per strategy x timeframe x exchange x horizon), the column
    meanings, and what was left out (failed fetches, skipped symbols, detector errors)."""
    return _jsonable({
        "format": JSON_FORMAT,
        "columns": COLUMNS,
        "rows": table.to_dict(orient="records"),
        **{key: table.attrs.get(key, []) for key in ("failed", "skipped", "errors")},
        **{key: table.attrs[key] for key in ("horizons", "seed") if key in table.attrs},
    })


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def returns_chart(table: pd.DataFrame, exchange: str, timeframe: str) -> Any:
    """Mean forward return by horizon per strategy (its 95% band) against the baseline."""
    from matplotlib.figure import Figure

    part = table[(table["exchange"] == exchange) & (table["timeframe"] == timeframe)]
    names = list(dict.fromkeys(part["strategy"]))
    rows = max(1, math.ceil(len(names) / CHART_COLUMNS))
    fig = Figure(figsize=(4.2 * CHART_COLUMNS, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, CHART_COLUMNS, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        cells = part[part["strategy"] == name].sort_values("horizon")
        h = cells["horizon"].to_numpy()
        base = 100 * cells["baseline_mean_return"].to_numpy(dtype=float)
        ax.plot(h, 100 * cells["mean_return"].to_numpy(dtype=float), marker="o", label="after signal")
        ax.fill_between(h, base + 100 * cells["edge_low"].to_numpy(dtype=float),
                        base + 100 * cells["edge_high"].to_numpy(dtype=float),
                        alpha=0.25, label="95% interval")
        ax.plot(h, base, linestyle="--", color="grey", label="baseline")
        ax.axhline(0.0, color="black", linewidth=0.5)
        direction = cells["direction"].iloc[0]
        ax.set_title(f"{name} ({direction}, {int(cells['signals'].iloc[0])} signals)", fontsize=9)
        ax.set_xlabel("bars after the signal")
        ax.set_ylabel("mean return in its favour, %")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    if names:
        axes[0].legend(fontsize=7)
    fig.suptitle(f"Forward return after each strategy's signals: {exchange} {timeframe}")
    return fig


def firing_rate_chart(table: pd.DataFrame, exchange: str, timeframe: str) -> Any:
    """Signals per 100 bars per strategy."""
    from matplotlib.figure import Figure

    part = table[(table["exchange"] == exchange) & (table["timeframe"] == timeframe)]
    rates = part.drop_duplicates("strategy").set_index("strategy")["firing_rate_per_100"].astype(float)
    fig = Figure(figsize=(7, 0.4 * max(len(rates), 3) + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(list(rates.index), rates.fillna(0.0).to_numpy())
    ax.invert_yaxis()
    ax.set_xlabel("signals per 100 bars")
    ax.set_title(f"Firing rate: {exchange} {timeframe}")
    return fig


def write_outputs(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """CSV, JSON and two PNG charts per exchange x timeframe into ``out_dir``; the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / CSV_NAME, out / JSON_NAME]
    table.to_csv(written[0], index=False)
    written[1].write_text(json.dumps(to_json_dict(table), indent=2))
    pairs = table[["exchange", "timeframe"]].drop_duplicates().itertuples(index=False)
    for exchange, timeframe in pairs:
        for kind, draw in (("returns", returns_chart), ("firing_rate", firing_rate_chart)):
            path = out / f"{kind}_{_slug(exchange)}_{_slug(timeframe)}.png"
            draw(table, exchange, timeframe).savefig(path, dpi=100)
            written.append(path)
    return written
