"""Hand-built bars for the six VSA detectors, and parameter validation of the engine.

For every strategy one frame fires on its last bar; each variation switches one condition off and
must stop the signal. The test also names every condition that the change breaks, so a variation
that silently breaks something else (or nothing) fails loudly. Some conditions are coupled by the
spec (e.g. breakout bar's high breakout implies an up close), and then the expected set has more
than one name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import breakout_vsa as bv
from breakout_vsa import core
from breakout_vsa.strategies import breakout_bar, loaded_bar, reversal_bar, start_bar, stop_bar, test_bar
from tests.conftest import load_golden_frame

N_BARS = 70
LAST = N_BARS - 1


def calm_frame(drift: float = 0.0) -> pd.DataFrame:
    """A quiet, deterministic market: small ranges, volumes cycling through 1000..1300."""
    j = np.arange(N_BARS)
    close = 100 + drift * j + 0.3 * np.sin(j * 0.7)
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + 0.2 + 0.15 * ((j * 7) % 5) / 4
    low = np.minimum(open_, close) - 0.2 - 0.15 * ((j * 3) % 5) / 4
    volume = 1000 + 300 * ((j * 5) % 7) / 6
    index = pd.date_range("2024-01-01", periods=N_BARS, freq="D", tz="UTC")
    columns = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return pd.DataFrame(columns, index=index)


def with_bar(df: pd.DataFrame, t: int, **values: float) -> pd.DataFrame:
    """A copy of ``df`` with some fields of bar ``t`` replaced (t counted from the start)."""
    out = df.copy()
    for column, value in values.items():
        out.iloc[t, out.columns.get_loc(column)] = value
    return out


def shifted(df: pd.DataFrame, rows: slice, column: str, delta: float) -> pd.DataFrame:
    out = df.copy()
    out.iloc[rows, out.columns.get_loc(column)] += delta
    return out


def failing_conditions(result: pd.DataFrame, t: int) -> set[str]:
    """Names of the boolean condition columns that are false at bar t."""
    return {name for name in result.columns if result[name].dtype == bool and name != "pattern"
            and not result[name].iloc[t]}


def _breakout() -> pd.DataFrame:
    return with_bar(calm_frame(), LAST, open=99.5, high=101.5, low=99.2, close=101.4, volume=1120)


def _stop() -> pd.DataFrame:
    return with_bar(calm_frame(), LAST, open=99.3, high=100.6, low=98.8, close=100.5, volume=1150)


def _reversal() -> pd.DataFrame:
    df = calm_frame(drift=1.0)
    prev = df.iloc[LAST - 1]
    return with_bar(df, LAST, open=prev.close, high=prev.high + 1.5, low=prev.low - 0.3,
                    close=prev.low + 0.2, volume=1150)


def _loaded() -> pd.DataFrame:
    return with_bar(calm_frame(), LAST, open=99.97, high=100.1, low=99.95, close=100.08, volume=20000)


def _start() -> pd.DataFrame:
    return with_bar(calm_frame(), LAST, open=99.8, high=100.6, low=99.75, close=100.55, volume=1250)


def _test() -> pd.DataFrame:
    df = with_bar(calm_frame(), LAST - 1, open=99.9, high=101.0, low=99.8, close=100.95, volume=3000)
    return with_bar(df, LAST, open=100.8, high=100.9, low=100.0, close=100.5, volume=500)


Mutation = Callable[[pd.DataFrame], pd.DataFrame]

CASES: dict[str, tuple[Callable, Callable[[], pd.DataFrame], list[tuple[str, Mutation, set[str]]]]] = {
    "breakout_bar": (bv.breakout_bar_vsa, _breakout, [
        ("spread not wide", lambda d: shifted(d, slice(LAST - 12, LAST - 3), "high", 2.0), {"spread_filter"}),
        ("momentum not wide", lambda d: with_bar(d, LAST - 8, open=94.1, high=94.3, low=93.9, close=94.0),
         {"momentum_filter"}),
        ("volume below the High band", lambda d: with_bar(d, LAST, volume=1020), {"volume_filter"}),
        ("volume above the 14-bar median", lambda d: with_bar(d, LAST, volume=1180), {"volume_pct_filter"}),
        ("close not in highs", lambda d: with_bar(d, LAST, high=103.0), {"close_filter"}),
        ("down close", lambda d: with_bar(d, LAST, close=99.8),
         {"direction_filter", "close_filter", "momentum_filter", "breakout_close_filter",
          "high_breakout_filter"}),
        ("neither new high nor outside", lambda d: with_bar(d, LAST, high=100.2, close=100.1),
         {"bar_type_filter", "breakout_close_filter", "high_breakout_filter"}),
        ("V1 low too far above the 50-bar low", lambda d: with_bar(d, LAST - 30, low=85.0), {"macro_filter"}),
        ("V2: three of the last 8 lows below", lambda d: with_bar(
            with_bar(with_bar(d, LAST - 2, low=99.0), LAST - 3, low=99.0), LAST - 4, low=99.0),
         {"macro_filter"}),
        ("close not above the high two bars back", lambda d: with_bar(d, LAST - 2, high=101.45),
         {"high_breakout_filter"}),
    ]),
    "stop_bar": (bv.stop_bar_vsa, _stop, [
        ("close not above the previous close", lambda d: with_bar(d, LAST - 1, close=100.55, high=100.56),
         {"direction_filter"}),
        ("new high bar instead of new low / outside", lambda d: with_bar(d, LAST - 1, low=98.8),
         {"bar_type_filter"}),
        ("abnormal volume", lambda d: with_bar(d, LAST, volume=1e6), {"volume_filter"}),
        ("close not in highs (D2)", lambda d: with_bar(d, LAST, close=99.9), {"close_filter"}),
        ("a lower low in the previous 20 bars", lambda d: with_bar(d, LAST - 10, low=98.7), {"macro_filter"}),
    ]),
    "reversal_bar": (bv.reversal_bar_vsa, _reversal, [
        ("not new high nor outside", lambda d: with_bar(d, LAST, high=d.high.iloc[LAST - 1] - 0.01),
         {"bar_type_filter"}),
        ("spread not wide", lambda d: with_bar(
            d, LAST, high=d.high.iloc[LAST - 1] + 0.05, low=d.low.iloc[LAST - 1] + 0.3,
            close=d.low.iloc[LAST - 1] + 0.35), {"spread_filter"}),
        ("volume below the High band", lambda d: with_bar(d, LAST, volume=10.0), {"volume_filter"}),
        ("close not in lows", lambda d: with_bar(d, LAST, close=d.high.iloc[LAST] - 0.1), {"close_filter"}),
        ("low within 5 % of the 14-bar low", lambda d: with_bar(d, LAST, low=160.0, close=160.5),
         {"macro_filter"}),
    ]),
    "loaded_bar": (bv.loaded_bar_vsa, _loaded, [
        ("spread not narrow", lambda d: with_bar(d, LAST, high=100.6, close=100.4), {"spread_filter"}),
        ("volume not abnormal", lambda d: with_bar(d, LAST, volume=1200.0), {"volume_filter"}),
        ("close below the middle", lambda d: with_bar(d, LAST, close=99.96), {"close_filter"}),
    ]),
    "start_bar": (bv.start_bar_vsa, _start, [
        ("volume not above the previous bar", lambda d: with_bar(d, LAST, volume=1190.0), {"high_volume"}),
        ("no higher high", lambda d: with_bar(with_bar(d, LAST - 1, low=99.8), LAST, high=100.3, low=99.5,
                                              close=100.25), {"higher_high"}),
        ("range not in the top of 5 bars", lambda d: with_bar(
            with_bar(d, LAST - 2, high=101.0, low=99.2), LAST - 3, high=101.0, low=99.2), {"not_narrow"}),
        ("close in the lower half", lambda d: with_bar(d, LAST, close=100.1),
         {"close_off_lows", "far_from_prev_close"}),
        ("close near the previous close", lambda d: with_bar(d, LAST - 1, close=100.5, high=100.55),
         {"far_from_prev_close"}),
        ("excess range", lambda d: with_bar(d, LAST, high=110.0, close=109.9), {"no_excess_range"}),
        ("excess volume", lambda d: with_bar(d, LAST, volume=1e5), {"no_excess_volume"}),
        ("high far below the 5-bar high", lambda d: with_bar(d, LAST - 3, high=200.0), {"near_new_highs"}),
        ("not in the lows", lambda d: with_bar(d, LAST, open=103.0, low=102.9, high=103.7, close=103.65),
         {"in_the_lows"}),
    ]),
    "test_bar": (bv.test_bar_vsa, _test, [
        ("not an inside bar", lambda d: with_bar(d, LAST, high=101.1), {"inside_bar"}),
        ("up candle", lambda d: with_bar(d, LAST, open=100.4), {"down_candle"}),
        ("close in the lows", lambda d: with_bar(d, LAST, close=100.2), {"close_off_lows"}),
        ("volume not much lower",
         lambda d: with_bar(with_bar(d, LAST, volume=1250.0), LAST - 2, volume=1400.0),
         {"much_lower_volume"}),
        ("not the lowest volume of 3 bars", lambda d: with_bar(d, LAST - 2, volume=400.0),
         {"lowest_volume_3"}),
        ("previous bar closes low", lambda d: with_bar(d, LAST - 1, close=100.3), {"prev_up_close_high"}),
        ("previous volume below its 3-bar mean", lambda d: with_bar(
            with_bar(d, LAST - 2, volume=5000.0), LAST - 3, volume=5000.0), {"prev_volume_above_mean"}),
        ("previous bar is inside", lambda d: with_bar(d, LAST - 2, high=101.5, low=99.5),
         {"prev_not_inside"}),
    ]),
}


@pytest.mark.parametrize("strategy", sorted(CASES))
def test_hand_built_bar_fires_with_every_condition_met(strategy: str) -> None:
    detector, build, _ = CASES[strategy]
    condition, result = detector(build())
    assert bool(condition.iloc[LAST])
    assert failing_conditions(result, LAST) == set()


@pytest.mark.parametrize(
    ("strategy", "variation"),
    [(name, variation[0]) for name, (_, _, variations) in CASES.items() for variation in variations],
)
def test_switching_one_condition_off_stops_the_signal(strategy: str, variation: str) -> None:
    detector, build, variations = CASES[strategy]
    mutate, expected = next((m, e) for name, m, e in variations if name == variation)
    condition, result = detector(mutate(build()))
    assert not bool(condition.iloc[LAST])
    assert failing_conditions(result, LAST) == expected


def test_start_bar_signals_only_the_first_bar_of_a_run() -> None:
    """Spec 3 new-occurrence rule: a pattern bar right after a pattern bar does not signal.

    pub_rw_regimes has such a run at bars 345-346 (found by scanning the golden sets).
    """
    condition, result = bv.start_bar_vsa(load_golden_frame("pub_rw_regimes"))
    assert result["pattern"].iloc[345] and result["pattern"].iloc[346]
    assert bool(condition.iloc[345]) and not bool(condition.iloc[346])


def test_stop_bar_close_filter_is_in_highs() -> None:
    """D2: stop bar's close option is "In Highs" (the original's misspelling is not kept)."""
    assert stop_bar.get_params()["close_opt"] == "In Highs"


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (breakout_bar, {"lookback": 14, "volume_pct_threshold": 0.50, "macro_method": "Combined (Strict)",
                        "use_high_breakout": True, "v2_macro_long_lookback": 48}),
        (stop_bar, {"lookback": 50, "volume_abnormal_std": 6.0, "v2_macro_percentile": 4.0,
                    "breakout_close_percent": 80.0}),
        (reversal_bar, {"lookback": 14, "macro_opt": "Macro High", "v1_macro_percentile": 5.0,
                        "close_opt": "In Lows"}),
        (loaded_bar, {"lookback": 50, "spread_opt": "Narrow", "volume_opt": "Abnormal", "macro_opt": "None"}),
        (start_bar, {"lookback": 5, "volume_lookback": 30, "prev_close_range": 75}),
    ],
)
def test_parameter_sets_match_the_spec_tables(module, expected: dict) -> None:
    params = module.get_params()
    assert {key: params[key] for key in expected} == expected


def test_test_bar_has_no_parameters() -> None:
    assert test_bar.get_params() == {}


def test_engine_parameter_sets_are_valid() -> None:
    for module in (breakout_bar, stop_bar, reversal_bar, loaded_bar):
        core.validate_params(module.get_params())


@pytest.mark.parametrize("option", sorted(core.VALID_OPTIONS))
def test_unknown_option_raises_naming_the_valid_values(option: str) -> None:
    params = {**breakout_bar.get_params(), option: "Bogus"}
    with pytest.raises(ValueError) as excinfo:
        bv.vsa_detector(calm_frame(), params)
    message = str(excinfo.value)
    assert option in message
    assert all(repr(value) in message for value in core.VALID_OPTIONS[option])


def test_option_matching_is_case_sensitive() -> None:
    with pytest.raises(ValueError, match="close_opt"):
        bv.vsa_detector(calm_frame(), {**breakout_bar.get_params(), "close_opt": "in highs"})


def test_macro_method_is_validated_even_when_macro_is_off() -> None:
    params = {**loaded_bar.get_params(), "macro_method": "Count based"}
    assert params["macro_opt"] == "None"
    with pytest.raises(ValueError, match="macro_method"):
        bv.vsa_detector(calm_frame(), params)


@pytest.mark.parametrize("missing", core.REQUIRED_NUMERIC)
def test_missing_numeric_parameter_raises_naming_it(missing: str) -> None:
    params = {key: value for key, value in breakout_bar.get_params().items() if key != missing}
    with pytest.raises(ValueError, match=missing):
        bv.vsa_detector(calm_frame(), params)


def test_optional_parameters_default_as_the_spec_says() -> None:
    params = {key: value for key, value in stop_bar.get_params().items() if key not in core.OPTIONAL_DEFAULTS}
    full = core.validate_params(params)
    assert full["volume_pct_threshold"] == 0.10 and full["spread_pct_threshold"] == 0.10
    assert full["high_breakout_lookback"] == 10 and full["high_breakout_count_percent"] == 10
    assert full["arctangent_ratio_threshold"] == 0.0
    assert not (full["use_volume_pct"] or full["use_spread_pct"] or full["use_arctangent_ratio"]
                or full["use_high_breakout"])


@pytest.mark.parametrize("column", core.OHLCV_COLUMNS)
@pytest.mark.parametrize("detector", [bv.breakout_bar_vsa, bv.start_bar_vsa, bv.test_bar_vsa])
def test_missing_ohlcv_column_raises_naming_it(detector, column: str) -> None:
    with pytest.raises(ValueError, match=column):
        detector(calm_frame().drop(columns=[column]))


def test_filter_set_to_none_contributes_nothing() -> None:
    """With every option "None" and every switch off, the engine fires on every bar (spec 2)."""
    params = {**loaded_bar.get_params(), "spread_opt": "None", "volume_opt": "None", "close_opt": "None"}
    condition, result = bv.vsa_detector(calm_frame(), params)
    assert condition.all()
    assert not [name for name in result.columns if name.endswith("_filter")]


def test_arctangent_filter_uses_the_raw_ratio() -> None:
    df = calm_frame()
    params = {**loaded_bar.get_params(), "spread_opt": "None", "volume_opt": "None", "close_opt": "None",
              "use_arctangent_ratio": True, "arctangent_ratio_threshold": 0.0}
    condition, result = bv.vsa_detector(df, params)
    ar = result["arctan_ratio"]
    assert np.isnan(ar.iloc[0]) and not condition.iloc[0]
    assert (condition.iloc[1:] == (ar.iloc[1:] >= 0.0)).all()
    h, l = df.high.to_numpy(), df.low.to_numpy()
    expected = np.degrees(np.arctan(h[5] - h[4])) / np.degrees(np.arctan(h[4] - l[5]))
    assert ar.iloc[5] == pytest.approx(expected, rel=1e-12)


def test_arctan_ratio_is_undefined_on_a_zero_denominator() -> None:
    df = calm_frame()
    df = with_bar(df, 10, low=df.high.iloc[9])
    _, result = bv.loaded_bar_vsa(df)
    assert np.isnan(result["arctan_ratio"].iloc[10])
    assert bv.loaded_bar_panel(*core.frame_arrays(df))["arctan_ratio"][10, 0] == 0.0


def test_reported_metrics_follow_spec_9_2() -> None:
    df = with_bar(calm_frame(), 20, high=101.0, low=101.0, close=101.0)
    out = bv.breakout_bar_panel(*core.frame_arrays(df))
    v = df.volume
    assert out["volume_ratio"][20, 0] == pytest.approx(v.iloc[20] / v.iloc[14:21].mean(), rel=1e-12)
    assert out["volume_ratio"][5, 0] == 0.0  # MEAN_7 undefined before bar 6
    assert out["close_off_low"][20, 0] == 0.0  # zero range
    c, h, l = df.close.iloc[30], df.high.iloc[30], df.low.iloc[30]
    assert out["close_off_low"][30, 0] == pytest.approx(100 * (c - l) / (h - l), rel=1e-12)
    for panel in (bv.start_bar_panel, bv.test_bar_panel):
        assert (panel(*core.frame_arrays(df))["arctan_ratio"] == 0.0).all()


# ---------------------------------------------------------------- declarations (issue 11)


@pytest.mark.parametrize("module", [breakout_bar, stop_bar, reversal_bar, loaded_bar])
def test_engine_strategy_overrides_are_the_engine_with_the_merged_set(module) -> None:
    df = with_bar(calm_frame(0.002), LAST, open=99.5, high=101.5, low=99.2, close=101.4, volume=1120)
    arrays = core.frame_arrays(df)
    overrides = {"volume_std": 0.25, "close_opt": "Off Lows"}
    panel = getattr(module, f"{module.STRATEGY.name}_panel")
    expected = core.engine_report(*arrays, {**module.get_params(), **overrides})
    tuned = module.STRATEGY.tuned("tuned", overrides).panel(*arrays)
    for key, values in expected.items():
        np.testing.assert_array_equal(panel(*arrays, **overrides)[key], values)
        np.testing.assert_array_equal(tuned[key], values)


def test_engine_strategies_declare_every_engine_parameter_with_its_spec_default() -> None:
    for module in (breakout_bar, stop_bar, reversal_bar, loaded_bar):
        declared = module.STRATEGY.defaults()
        assert declared == core.validate_params(module.get_params())
        choices = {p.name: p.choices for p in module.STRATEGY.params if p.choices}
        assert choices == core.VALID_OPTIONS


def test_start_bar_declares_its_table_and_test_bar_declares_nothing() -> None:
    assert start_bar.STRATEGY.defaults() == start_bar.get_params()
    assert test_bar.STRATEGY.params == ()
    with pytest.raises(ValueError, match="valid parameters: none"):
        test_bar.STRATEGY.tuned("t", {"lookback": 3})


def test_start_bar_override_changes_only_its_own_threshold() -> None:
    df = load_golden_frame("pub_rw_regimes")
    arrays = core.frame_arrays(df)
    base = start_bar.start_bar_panel(*arrays)["signal"]
    looser = start_bar.STRATEGY.tuned("s", {"range_percentile": 0.0}).panel(*arrays)["signal"]
    same = start_bar.STRATEGY.tuned("s", {"range_percentile": 75.0}).panel(*arrays)["signal"]
    np.testing.assert_array_equal(same, base)
    assert looser.sum() != base.sum()
