"""Golden fixtures for the four custom detectors (spec 5-8, fixtures/golden/README.md).

Every bar of every data set is checked through the whole-series function, every firing bar and a
sample of quiet bars through the public wrapper with the README's prefix call, and the panel core
with several data sets side by side (k > 1, the scanner's batch path).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.conftest import GOLDEN_SETS, load_golden_expected, load_golden_frame
from custom_strategies import (
    confluence_panel,
    confluence_series,
    detect_confluence,
    detect_pin_down,
    detect_volume_surge,
    detect_weak_uptrend,
    pin_down_panel,
    pin_down_series,
    volume_surge_panel,
    volume_surge_series,
    weak_uptrend_panel,
    weak_uptrend_series,
)

DIMENSIONLESS = {
    "arctan_ratio", "volume_ratio", "score", "momentum_score", "close_off_low", "high_wick_ratio",
}
QUIET_SAMPLE = 12  # non-firing bars per set and mode checked through the prefix call
STACK_ROWS = 300  # common length of the data sets stacked into one panel

# mode -> (wrapper, whole-series function, panel core, evaluated as the forming bar?)
MODES = {
    "volume_surge": (detect_volume_surge, volume_surge_series, volume_surge_panel, True),
    "volume_surge@closed": (detect_volume_surge, volume_surge_series, volume_surge_panel, False),
    "weak_uptrend": (detect_weak_uptrend, weak_uptrend_series, weak_uptrend_panel, False),
    "pin_down": (detect_pin_down, pin_down_series, pin_down_panel, False),
    "confluence": (detect_confluence, confluence_series, confluence_panel, True),
    "confluence@closed": (detect_confluence, confluence_series, confluence_panel, False),
}
CASES = [(name, mode) for name in GOLDEN_SETS for mode in MODES]


def _prefix_call(mode: str, df: pd.DataFrame, t: int) -> tuple[bool, dict]:
    """The README's call deciding bar t: bar t is the last row (current) or second to last (closed)."""
    wrapper, _, _, current = MODES[mode]
    return wrapper(df.iloc[: t + 1], check_bar=-1) if current else wrapper(df.iloc[: t + 2], check_bar=-2)


def _signal_column(mode: str, arrays) -> str:  # noqa: ANN001 - DataFrame or dict of arrays
    current = MODES[mode][3]
    return "signal_current" if current and "signal_current" in arrays else "signal"


def _evaluated(mode: str, n: int) -> range:
    return range(n) if MODES[mode][3] else range(n - 1)


def _fire_positions(df: pd.DataFrame, expected: dict) -> set[int]:
    return {df.index.get_loc(pd.Timestamp(ts)) for ts in expected["fires"]}


def _assert_metric(name: str, want: object, got: object, where: str) -> None:
    if name in ("timestamp", "date"):
        assert pd.Timestamp(got) == pd.Timestamp(want), where
    elif want is None:
        assert isinstance(got, float) and math.isnan(got), where
    elif isinstance(want, (bool, str)) and want not in ("inf", "-inf"):
        assert type(got) is type(want) and got == want, where
    else:
        target = float(want)
        abs_tol = 1e-12 if name in DIMENSIONLESS else 0.0
        assert got == target or math.isclose(got, target, rel_tol=1e-9, abs_tol=abs_tol), (where, got, target)


@pytest.mark.parametrize(("dataset", "mode"), CASES)
def test_whole_series_signal_matches_golden_on_every_bar(dataset: str, mode: str) -> None:
    df = load_golden_frame(dataset)
    expected = load_golden_expected(dataset)["strategies"][mode]
    series = MODES[mode][1](df)
    signal = series[_signal_column(mode, series)].to_numpy()
    evaluated = _evaluated(mode, len(df))
    first, last = (pd.Timestamp(ts) for ts in expected["evaluated_bars"])
    assert (df.index[evaluated[0]], df.index[evaluated[-1]]) == (first, last)
    fires = _fire_positions(df, expected)
    assert {t for t in evaluated if signal[t]} == fires


@pytest.mark.parametrize(("dataset", "mode"), CASES)
def test_wrapper_prefix_calls_match_golden_fires_and_metrics(dataset: str, mode: str) -> None:
    df = load_golden_frame(dataset)
    expected = load_golden_expected(dataset)["strategies"][mode]
    fires = _fire_positions(df, expected)
    for ts, metrics in expected["metrics"].items():
        t = df.index.get_loc(pd.Timestamp(ts))
        detected, result = _prefix_call(mode, df, t)
        assert detected, f"{dataset} {mode} bar {ts} should fire"
        for name, want in metrics.items():
            assert name in result, f"{mode} misses metric {name}"
            _assert_metric(name, want, result[name], f"{dataset} {mode} {ts} {name}")
    quiet = [t for t in _evaluated(mode, len(df)) if t not in fires]
    sample = quiet[:: max(1, len(quiet) // QUIET_SAMPLE)] + quiet[-2:]
    for t in sample:
        assert _prefix_call(mode, df, t) == (False, {}), f"{dataset} {mode} bar {t} should not fire"


def _stackable_sets() -> list[str]:
    return [name for name in GOLDEN_SETS if len(load_golden_frame(name)) >= STACK_ROWS]


@pytest.mark.parametrize("mode", list(MODES))
def test_panel_core_with_data_sets_side_by_side_matches_golden(mode: str) -> None:
    names = _stackable_sets()
    assert len(names) >= 5
    frames = [load_golden_frame(name).iloc[:STACK_ROWS] for name in names]
    columns = ("open", "high", "low", "close", "volume")
    panel = [np.column_stack([f[col].to_numpy() for f in frames]) for col in columns]
    before = [a.copy() for a in panel]
    arrays = MODES[mode][2](*panel)
    for a, b in zip(panel, before):
        np.testing.assert_array_equal(a, b)
    column = _signal_column(mode, arrays)
    current = MODES[mode][3]
    for j, (name, frame) in enumerate(zip(names, frames)):
        expected = load_golden_expected(name)["strategies"][mode]
        last = STACK_ROWS - 1 if current else STACK_ROWS - 2
        fires = {t for t in _fire_positions(load_golden_frame(name), expected) if t <= last}
        assert {t for t in range(last + 1) if arrays[column][t, j]} == fires, name
        for ts, metrics in expected["metrics"].items():
            t = frame.index.get_indexer([pd.Timestamp(ts)])[0]
            if t < 0 or t > last:
                continue
            for metric, want in metrics.items():
                if metric in ("timestamp", "date"):
                    continue
                key = f"{metric}_current" if current and f"{metric}_current" in arrays else metric
                value = arrays[key][t, j]
                got = value.item() if isinstance(value, np.generic) else value
                _assert_metric(metric, want, got, f"{name} {mode} {ts} {metric}")
