"""The six VSA detectors against every golden data set (fixtures/golden/README.md).

Each strategy is checked through its public wrapper exactly as the README maps it (one call on the
whole frame, prefix-equivalent), and again through its panel core with several data sets stacked side
by side (k > 1), which is the scanner's batch path.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import breakout_vsa as bv
from tests.conftest import GOLDEN_SETS, load_golden_expected, load_golden_frame

VSA = ("breakout_bar", "stop_bar", "reversal_bar", "start_bar", "loaded_bar", "test_bar")
WRAPPER = {name: getattr(bv, f"{name}_vsa") for name in VSA}
PANEL = {name: getattr(bv, f"{name}_panel") for name in VSA}
DIMENSIONLESS = {"arctan_ratio", "volume_ratio", "close_off_low"}
STACK_ROWS = 300


def _iso(index: pd.DatetimeIndex) -> list[str]:
    return list(index.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _same(got: float, want: object, metric: str) -> bool:
    if want is None:
        return math.isnan(got)
    if isinstance(want, str):
        want = float(want)
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12 if metric in DIMENSIONLESS else 0.0)


def _expected_fires(expected: dict, iso: list[str]) -> np.ndarray:
    first, last = expected["evaluated_bars"]
    fires = set(expected["fires"])
    return np.array([first <= ts <= last and ts in fires for ts in iso])


@pytest.mark.parametrize("strategy", VSA)
@pytest.mark.parametrize("dataset", GOLDEN_SETS)
def test_wrapper_matches_golden_fires_and_metrics(dataset: str, strategy: str) -> None:
    df = load_golden_frame(dataset)
    expected = load_golden_expected(dataset)["strategies"][strategy]
    condition, result = WRAPPER[strategy](df)
    iso = _iso(df.index)
    first, last = expected["evaluated_bars"]
    evaluated = np.array([first <= ts <= last for ts in iso])
    fires = condition.to_numpy()
    assert condition.dtype == bool and len(condition) == len(df)
    mismatches = [iso[t] for t in np.flatnonzero(evaluated & (fires != _expected_fires(expected, iso)))]
    assert mismatches == []
    for ts, metrics in expected["metrics"].items():
        t = iso.index(ts)
        for metric, want in metrics.items():
            assert _same(result[metric].iloc[t], want, metric), (ts, metric, result[metric].iloc[t], want)
    if strategy in ("start_bar", "test_bar"):
        assert result["arctan_ratio"].isna().all()


def _stackable_sets() -> list[str]:
    return [name for name in GOLDEN_SETS if load_golden_expected(name)["rows"] >= STACK_ROWS]


@pytest.mark.parametrize("strategy", VSA)
def test_panel_core_on_stacked_golden_sets_matches_golden(strategy: str) -> None:
    """k > 1: several data sets cut to STACK_ROWS bars side by side give each set's golden answer."""
    names = _stackable_sets()
    assert len(names) >= 5
    frames = [load_golden_frame(name).iloc[:STACK_ROWS] for name in names]
    columns = ("open", "high", "low", "close", "volume")
    arrays = [np.column_stack([f[col].to_numpy() for f in frames]) for col in columns]
    out = PANEL[strategy](*arrays)
    assert set(out) == {"signal", "volume_ratio", "close_off_low", "arctan_ratio"}
    for j, (name, frame) in enumerate(zip(names, frames)):
        expected = load_golden_expected(name)["strategies"][strategy]
        iso = _iso(frame.index)
        assert (out["signal"][:, j] == _expected_fires(expected, iso)).all(), name
        for ts, metrics in expected["metrics"].items():
            if ts not in iso:
                continue
            want = metrics.get("arctan_ratio")
            got = out["arctan_ratio"][iso.index(ts), j]
            assert _same(got, 0.0 if want is None else want, "arctan_ratio"), (name, ts)
        single = PANEL[strategy](*(a[:, j : j + 1] for a in arrays))
        for key, values in single.items():
            np.testing.assert_array_equal(values[:, 0], out[key][:, j])


@pytest.mark.parametrize("strategy", ("breakout_bar", "stop_bar", "reversal_bar", "loaded_bar"))
def test_reported_arctan_is_raw_ratio_or_zero(strategy: str) -> None:
    df = load_golden_frame("pub_flat_zero")
    _, result = WRAPPER[strategy](df)
    out = PANEL[strategy](*(df[c].to_numpy()[:, None] for c in ("open", "high", "low", "close", "volume")))
    raw = result["arctan_ratio"].to_numpy()
    assert np.isnan(raw).any()
    np.testing.assert_array_equal(out["arctan_ratio"][:, 0], np.where(np.isnan(raw), 0.0, raw))
