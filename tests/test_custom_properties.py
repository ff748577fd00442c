"""Property tests for the custom detectors on random OHLCV frames (spec 1.1, 1.3, D1, D4, D7)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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

MAX_ROWS = 90  # past volume surge's 65-bar band, so every detector can fire
EXAMPLES = 40
COLUMNS = ("open", "high", "low", "close", "volume")
# name -> (wrapper, whole-series function, panel core, modes checked: (check_bar, signal column))
DETECTORS = {
    "volume_surge": (
        detect_volume_surge, volume_surge_series, volume_surge_panel, ((-2, "signal"), (-1, "signal"))
    ),
    "weak_uptrend": (detect_weak_uptrend, weak_uptrend_series, weak_uptrend_panel, ((-2, "signal"),)),
    "pin_down": (detect_pin_down, pin_down_series, pin_down_panel, ((-2, "signal"),)),
    "confluence": (
        detect_confluence, confluence_series, confluence_panel, ((-2, "signal"), (-1, "signal_current"))
    ),
}
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_frame(
    n: int, seed: int, decimals: int | None, flat_share: float, zero_share: float
) -> pd.DataFrame:
    """A valid OHLCV frame: random walk, spikes, optional rounding (ties), flat bars and zero volumes."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    open_ = np.concatenate([close[:1], close[:-1]]) * (1 + rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * (1 + rng.exponential(0.01, n))
    low = np.minimum(open_, close) * (1 - rng.exponential(0.01, n))
    volume = rng.lognormal(10, 0.5, n) * np.where(rng.random(n) < 0.05, 20.0, 1.0)
    if decimals is not None:
        open_, high, low, close = (np.round(x, decimals) for x in (open_, high, low, close))
        high = np.maximum.reduce([high, open_, close])
        low = np.minimum.reduce([low, open_, close])
    flat = rng.random(n) < flat_share
    open_, high, low = (np.where(flat, close, x) for x in (open_, high, low))
    volume = np.where(rng.random(n) < zero_share, 0.0, volume)
    index = pd.date_range("2024-01-01", periods=n, freq="4h", tz="UTC", name="timestamp")
    columns = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return pd.DataFrame(columns, index=index)


frames = st.builds(
    random_frame,
    n=st.integers(0, MAX_ROWS),
    seed=st.integers(0, 2**32 - 1),
    decimals=st.sampled_from([None, 0, 1]),
    flat_share=st.sampled_from([0.0, 0.1]),
    zero_share=st.sampled_from([0.0, 0.1]),
)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.parametrize("name", list(DETECTORS))
@SETTINGS
@given(df=frames)
def test_detectors_never_raise_and_leave_the_frame_unchanged(name: str, df: pd.DataFrame) -> None:
    wrapper, series_fn, _, modes = DETECTORS[name]
    before = df.copy(deep=True)
    for check_bar, _column in modes:
        detected, result = wrapper(df, check_bar=check_bar)
        assert isinstance(detected, bool) and (result == {}) == (not detected)
    series = series_fn(df)
    assert series.index.equals(df.index) and series["signal"].dtype == bool
    pd.testing.assert_frame_equal(df, before)


@pytest.mark.parametrize("name", list(DETECTORS))
@SETTINGS
@given(df=frames, cut=st.integers(0, MAX_ROWS))
def test_truncating_after_a_bar_never_changes_that_bar(name: str, df: pd.DataFrame, cut: int) -> None:
    _, series_fn, _, _ = DETECTORS[name]
    cut = min(cut, len(df))
    full = series_fn(df).iloc[:cut]
    short = series_fn(df.iloc[:cut])
    pd.testing.assert_frame_equal(full, short)


@pytest.mark.parametrize("name", list(DETECTORS))
@SETTINGS
@given(df=frames, data=st.data())
def test_wrappers_agree_with_whole_series_function(name: str, df: pd.DataFrame, data: st.DataObject) -> None:
    wrapper, series_fn, _, modes = DETECTORS[name]
    series = series_fn(df)
    for check_bar, column in modes:
        if len(df) + check_bar < 0:
            assert wrapper(df, check_bar=check_bar) == (False, {})
            continue
        rows = len(df) + check_bar + 1  # the prefix whose row check_bar is bar t
        t = data.draw(st.integers(0, rows - 1), label="bar")
        prefix = df.iloc[: t - check_bar]
        detected, result = wrapper(prefix, check_bar=check_bar)
        assert detected == bool(series[column].iloc[t])
        for metric, value in result.items():
            if metric in ("timestamp", "date"):
                continue
            key = f"{metric}_current" if check_bar == -1 and f"{metric}_current" in series else metric
            expected = series[key].iloc[t]
            assert _same(value, expected.item() if isinstance(expected, np.generic) else expected), metric


@pytest.mark.parametrize("name", list(DETECTORS))
@settings(max_examples=15, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=4), n=st.integers(0, MAX_ROWS))
def test_panel_columns_equal_single_symbol_panels(name: str, seeds: list[int], n: int) -> None:
    panel_fn = DETECTORS[name][2]
    frames_ = [random_frame(n, seed, 1 if i % 2 else None, 0.1, 0.1) for i, seed in enumerate(seeds)]
    stacked = panel_fn(*(np.column_stack([f[c].to_numpy() for f in frames_]) for c in COLUMNS))
    for j, frame in enumerate(frames_):
        single = panel_fn(*(frame[c].to_numpy().reshape(-1, 1) for c in COLUMNS))
        assert single.keys() == stacked.keys()
        for key, values in single.items():
            assert values.shape == (n, 1)
            np.testing.assert_array_equal(stacked[key][:, j], values[:, 0], err_msg=key)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_missing_column_raises_value_error_naming_it(name: str) -> None:
    wrapper = DETECTORS[name][0]
    df = random_frame(30, 1, None, 0.0, 0.0).drop(columns="volume")
    with pytest.raises(ValueError, match="volume"):
        wrapper(df)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_empty_panel_gives_empty_arrays(name: str) -> None:
    out = DETECTORS[name][2](*(np.empty((0, 3)) for _ in COLUMNS))
    assert out["signal"].shape == (0, 3) and out["signal"].dtype == bool
