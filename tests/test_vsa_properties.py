"""Properties of the six VSA detectors on random frames (spec 1.1, 1.3, D4, D7).

Random OHLCV frames never make a detector raise, the caller's frame is never changed, truncating the
frame after bar t never changes bar t (no look-ahead), and the per-frame wrappers agree with the
panel cores, also when several symbols are stacked in one panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import breakout_vsa as bv
from breakout_vsa import helpers as hp
from breakout_vsa.core import frame_arrays

VSA = ("breakout_bar", "stop_bar", "reversal_bar", "start_bar", "loaded_bar", "test_bar")
WRAPPER = {name: getattr(bv, f"{name}_vsa") for name in VSA}
PANEL = {name: getattr(bv, f"{name}_panel") for name in VSA}
COLUMNS = ("open", "high", "low", "close", "volume")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_frame(seed: int, n: int, flat_share: float = 0.1, zero_volume_share: float = 0.1) -> pd.DataFrame:
    """A valid OHLCV frame of n bars with some flat bars, zero volumes and repeated prices."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(-6, 6)
    close = scale * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    open_ = np.r_[close[:1], close[:-1]] if n else close
    high = np.maximum(open_, close) * (1 + rng.exponential(0.01, n))
    low = np.minimum(open_, close) * (1 - rng.exponential(0.01, n))
    flat = rng.random(n) < flat_share
    high[flat] = low[flat] = open_[flat] = close[flat]
    volume = rng.lognormal(8, 1, n) * (rng.random(n) >= zero_volume_share)
    if n > 3:
        close[rng.integers(1, n)] = close[0]
    index = pd.date_range("2023-01-01", periods=n, freq="4h", tz="UTC")
    return pd.DataFrame({"open": open_, "high": np.maximum(high, close), "low": np.minimum(low, close),
                         "close": close, "volume": volume}, index=index)


frames = st.builds(random_frame, st.integers(0, 2**32 - 1), st.integers(0, 130),
                   st.sampled_from([0.0, 0.1, 0.5]), st.sampled_from([0.0, 0.1, 0.6]))


@SETTINGS
@given(df=frames)
def test_random_frames_never_raise_and_never_mutate_the_input(df: pd.DataFrame) -> None:
    before = df.copy(deep=True)
    for name in VSA:
        condition, result = WRAPPER[name](df)
        assert condition.dtype == bool and condition.index.equals(df.index)
        assert "arctan_ratio" in result.columns and result.index.equals(df.index)
        out = PANEL[name](*frame_arrays(df))
        assert out["signal"].dtype == bool and out["signal"].shape == (len(df), 1)
    pd.testing.assert_frame_equal(df, before)


@SETTINGS
@given(df=frames, cut=st.floats(0.0, 1.0))
def test_truncating_after_bar_t_never_changes_bar_t(df: pd.DataFrame, cut: float) -> None:
    k = int(cut * len(df))
    for name in VSA:
        full, full_result = WRAPPER[name](df)
        prefix, prefix_result = WRAPPER[name](df.iloc[:k])
        np.testing.assert_array_equal(prefix.to_numpy(), full.to_numpy()[:k])
        np.testing.assert_array_equal(prefix_result["arctan_ratio"].to_numpy(),
                                      full_result["arctan_ratio"].to_numpy()[:k])


@SETTINGS
@given(seeds=st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=4), n=st.integers(0, 120))
def test_wrappers_agree_with_the_stacked_panel(seeds: list[int], n: int) -> None:
    frames_ = [random_frame(seed, n) for seed in seeds]
    arrays = [np.column_stack([f[col].to_numpy() for f in frames_]) for col in COLUMNS]
    copies = [a.copy() for a in arrays]
    for name in VSA:
        out = PANEL[name](*arrays)
        for j, frame in enumerate(frames_):
            condition, result = WRAPPER[name](frame)
            np.testing.assert_array_equal(out["signal"][:, j], condition.to_numpy())
            ar = result["arctan_ratio"].to_numpy()
            np.testing.assert_array_equal(out["arctan_ratio"][:, j], np.where(np.isnan(ar), 0.0, ar))
    for original, copy in zip(arrays, copies):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 9])
@pytest.mark.parametrize("k", [0, 1, 3])
def test_panels_of_any_shape_never_raise_and_flat_data_never_fires(n: int, k: int) -> None:
    arrays = [np.ones((n, k)) * (i + 1) for i in range(5)]
    for name in VSA:
        out = PANEL[name](*arrays)
        assert all(values.shape == (n, k) for values in out.values())
        assert not out["signal"].any()


@pytest.mark.parametrize("name", VSA)
def test_empty_frame_gives_an_empty_signal(name: str) -> None:
    df = random_frame(0, 0)
    condition, result = WRAPPER[name](df)
    assert len(condition) == 0 and "arctan_ratio" in result.columns


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 80), window=st.sampled_from([1, 3, 7, 14, 50]),
       q=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), holes=st.booleans())
def test_panel_rolling_helpers_equal_pandas_to_the_last_bit(
    seed: int, n: int, window: int, q: float, holes: bool
) -> None:
    """Spec 1.2: MEAN/SD/Q/MAX/MIN equal pandas' rolling per column, bit for bit, also with NaN and inf."""
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0, 3, (n, 3)) * np.array([1e-8, 1.0, 1e7])
    a[rng.random((n, 3)) < 0.2] = 1.0
    if holes:
        a[rng.random((n, 3)) < 0.05] = np.nan
        a[rng.random((n, 3)) < 0.02] = np.inf
    frame = pd.DataFrame(a).rolling(window)
    pairs = [
        (hp.rolling_mean(a, window), frame.mean()),
        (hp.rolling_std(a, window), frame.std()),
        (hp.rolling_quantile(a, window, q), frame.quantile(q)),
        (hp.rolling_max(a, window), frame.max()),
        (hp.rolling_min(a, window), frame.min()),
    ]
    for ours, theirs in pairs:
        np.testing.assert_array_equal(ours, theirs.to_numpy())


@pytest.mark.parametrize("stat", ["mean", "std", "quantile", "max", "min"])
def test_rolling_kernel_path_equals_the_series_rolling_path(stat: str) -> None:
    """The direct kernel call (module docstring of helpers) and Series.rolling give the same bits."""
    rng = np.random.default_rng(7)
    a = rng.lognormal(0, 2, (300, 40))
    a[rng.random(a.shape) < 0.03] = np.nan
    a[rng.random(a.shape) < 0.01] = -np.inf
    for window in (1, 14, 50):
        np.testing.assert_array_equal(
            hp._rolling(a, window, stat, 0.3), hp._rolling(a, window, stat, 0.3, kernel=False)
        )


def test_wma_weights_the_newest_bar_most() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0])
    out = hp.wma(x, 3)
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx((1 * 1 + 2 * 2 + 3 * 4) / 6)
    assert out[3] == pytest.approx((1 * 2 + 2 * 4 + 3 * 8) / 6)


def test_v2_counts_follow_the_first_lookback_rule() -> None:
    low = np.array([5.0, 1.0, 2.0, 3.0, 0.5, 4.0])
    counts = hp.count_prior_below(low, 3)
    np.testing.assert_array_equal(counts, [0, 0, 0, 2, 0, 3])
    high = -low
    np.testing.assert_array_equal(hp.count_prior_above(high, 3), [0, 0, 0, 2, 0, 3])


@SETTINGS
@given(data=st.data())
def test_declared_parameters_accept_their_range_and_reject_what_lies_outside(data) -> None:
    from scanner.registry import registry

    strategy = data.draw(st.sampled_from([s for s in registry().values() if s.params]))
    param = data.draw(st.sampled_from(strategy.params))
    if isinstance(param.default, bool):
        inside, outside = data.draw(st.booleans()), data.draw(st.sampled_from([0, 1, "true"]))
    elif isinstance(param.default, str):
        inside, outside = data.draw(st.sampled_from(param.choices)), param.default.lower() + "?"
    elif isinstance(param.default, int):
        inside = data.draw(st.integers(int(param.low), int(param.high)))
        outside = data.draw(st.sampled_from([int(param.low) - 1, int(param.high) + 1, inside + 0.5]))
    else:
        inside = data.draw(st.floats(param.low, param.high))
        outside = data.draw(st.sampled_from([param.low - 1e-9 * (1 + abs(param.low)), param.high * 1.5 + 1,
                                             float("nan")]))
    assert strategy.check_params({param.name: inside}) == {param.name: inside}
    with pytest.raises(ValueError, match=param.name):
        strategy.check_params({param.name: outside})
