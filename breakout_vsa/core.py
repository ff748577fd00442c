"""The VSA maths: the generic engine (spec 2), start bar (3), test bar (4) and their reports.

Every detector is computed for all bars and all symbols of a panel at once: ``o, h, l, c, v`` are
float64 arrays of shape (n bars, k symbols), oldest bar first. ``engine_report`` and the
``*_panel`` functions are the scanner's batch entry points (detector contract: ``signal`` plus the
spec 9.2 metrics); ``vsa_detector(df, params)`` and the ``*_vsa(df)`` wrappers are the seed's
per-frame call shapes, thin layers over the same math with k = 1. Each strategy's parameter set,
panel and declaration live in its own module under ``breakout_vsa/strategies``; the seed's names
are re-exported at the end of this module.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from breakout_vsa import helpers as hp
from breakout_vsa.helpers import OHLCV_COLUMNS, frame_arrays  # noqa: F401 (re-exported for callers of core)
from utils.strategy_spec import COMMON_FIELDS, AlertField, Param


# Spec 2.1: option -> valid values (exact, case-sensitive).
VALID_OPTIONS: dict[str, tuple[str, ...]] = {
    "spread_opt": ("None", "Wide", "Narrow", "Abnormal"),
    "momentum_opt": ("None", "Wide", "Narrow"),
    "volume_opt": ("None", "High", "Low", "Abnormal", "Not Low"),
    "close_opt": ("None", "In Highs", "Off Highs", "In Middle", "In Lows", "Off Lows"),
    "direction_opt": ("None", "Up", "Down"),
    "bar_type_opt": (
        "None",
        "New High",
        "New Low",
        "Outside Bar",
        "Not Outside Bar",
        "Inside Bar",
        "New High or Outside Bar",
        "New Low or Outside Bar",
    ),
    "macro_opt": ("None", "Macro Low", "Macro High"),
    "macro_method": ("Price Based (V1)", "Count Based (V2)", "Combined (Strict)"),
}
REQUIRED_NUMERIC: tuple[str, ...] = (
    "lookback",
    "spread_std",
    "spread_abnormal_std",
    "momentum_std",
    "volume_std",
    "volume_abnormal_std",
    "v1_macro_short_lookback",
    "v1_macro_medium_lookback",
    "v1_macro_long_lookback",
    "v1_macro_percentile",
    "v2_macro_short_lookback",
    "v2_macro_medium_lookback",
    "v2_macro_long_lookback",
    "v2_macro_percentile",
    "use_breakout_close",
    "breakout_close_percent",
)
OPTIONAL_DEFAULTS: dict[str, float | bool] = {
    "use_volume_pct": False,
    "volume_pct_threshold": 0.10,
    "use_spread_pct": False,
    "spread_pct_threshold": 0.10,
    "use_arctangent_ratio": False,
    "arctangent_ratio_threshold": 0.0,
    "use_high_breakout": False,
    "high_breakout_lookback": 10,
    "high_breakout_count_percent": 10,
}
WINDOW_PARAMS: tuple[str, ...] = (
    "lookback",
    "v1_macro_short_lookback",
    "v1_macro_medium_lookback",
    "v1_macro_long_lookback",
    "v2_macro_short_lookback",
    "v2_macro_medium_lookback",
    "v2_macro_long_lookback",
    "high_breakout_lookback",
)

# Ranges of the engine's numeric parameters when a tuned variant overrides them.
MAX_WINDOW = 1000
MAX_STD = 20.0
PERCENT_PARAMS: tuple[str, ...] = (
    "v1_macro_percentile", "v2_macro_percentile", "breakout_close_percent", "high_breakout_count_percent",
)
QUANTILE_PARAMS: tuple[str, ...] = ("volume_pct_threshold", "spread_pct_threshold")
MAX_ARCTAN_THRESHOLD = 100.0

# Spec 9.3: what a VSA alert shows.
VSA_FIELDS: tuple[AlertField, ...] = COMMON_FIELDS + (
    ("Close off low", "close_off_low", "pct"),
    ("Arctan ratio", "arctan_ratio", "ratio"),
)

# Spec 2.4: close-position bands.
CP_IN_HIGHS = 0.65
CP_MIDDLE_TOP = 0.5
CP_IN_LOWS = 0.35

# Spec 3: start bar's fixed factors.
START_VOLUME_FACTOR = 0.75
START_NEAR_HIGH_FACTOR = 0.75
START_EXCESS_STD = 3.0

# Spec 4: test bar's fixed thresholds.
TEST_MIN_CLOSE_POSITION = 0.35
TEST_VOLUME_DROP = 0.4
TEST_PREV_CLOSE_POSITION = 0.75
TEST_PREV_VOLUME_WINDOW = 3

# Spec 9.2: reported metrics.
VOLUME_RATIO_WINDOW = 7
ARCTAN_REPORTED_WHEN_UNDEFINED = 0.0

PanelDict = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


def validate_params(params: Mapping[str, object]) -> dict:
    """A full parameter set: options checked (spec 2.1), numerics present, defaults filled in.

    Raises ``ValueError`` naming the valid values of a bad option (``macro_method`` is checked even
    when ``macro_opt`` is "None"), or naming a missing / non-numeric parameter.
    """
    merged = {**OPTIONAL_DEFAULTS, **dict(params)}
    for option, valid in VALID_OPTIONS.items():
        value = merged.get(option)
        if value not in valid:
            raise ValueError(f"invalid {option} {value!r}; valid values: {', '.join(map(repr, valid))}")
    for name in REQUIRED_NUMERIC + tuple(OPTIONAL_DEFAULTS):
        if name not in merged:
            raise ValueError(f"missing numeric parameter {name!r}")
        value = merged[name]
        if not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"parameter {name!r} must be numeric, got {value!r}")
    for name in WINDOW_PARAMS:
        if int(merged[name]) != merged[name] or merged[name] < 1:
            raise ValueError(f"parameter {name!r} must be a whole number >= 1, got {merged[name]!r}")
        merged[name] = int(merged[name])
    return merged


def _engine_param(name: str, default: object) -> Param:
    """One engine parameter with the range ``validate_params`` and the spec allow."""
    if name in VALID_OPTIONS:
        return Param(name, default, choices=VALID_OPTIONS[name])
    if isinstance(default, bool):
        return Param(name, default)
    if name in WINDOW_PARAMS:
        return Param(name, int(default), 1, MAX_WINDOW)
    if name in PERCENT_PARAMS:
        return Param(name, float(default), 0.0, 100.0)
    if name in QUANTILE_PARAMS:
        return Param(name, float(default), 0.0, 1.0)
    if name == "arctangent_ratio_threshold":
        return Param(name, float(default), 0.0, MAX_ARCTAN_THRESHOLD)
    return Param(name, float(default), 0.0, MAX_STD)


def engine_params(params: Mapping[str, object]) -> tuple[Param, ...]:
    """The tunable parameters of an engine strategy: its full parameter set, defaults filled in."""
    return tuple(_engine_param(name, value) for name, value in validate_params(params).items())


# ---------------------------------------------------------------------------------------------
# The generic engine (spec 2)
# ---------------------------------------------------------------------------------------------


def _band_filter(x: np.ndarray, window: int, option: str, std: float, abnormal_std: float) -> np.ndarray:
    """Spread (2.2) band options: Narrow / Wide (capped at abnormal) / Abnormal."""
    mean, sd = hp.rolling_mean(x, window), hp.rolling_std(x, window)
    if option == "Narrow":
        return x < mean - std * sd
    if option == "Wide":
        return (x > mean + std * sd) & (x <= mean + abnormal_std * sd)
    return x > mean + abnormal_std * sd


def _momentum_filter(c: np.ndarray, window: int, option: str, std: float) -> np.ndarray:
    """Momentum (2.2): |c - c[t-1]| against its mean +- std sigma; Wide has no upper cap."""
    m = hp.momentum(c)
    mean, sd = hp.rolling_mean(m, window), hp.rolling_std(m, window)
    if option == "Narrow":
        return m < mean - std * sd
    return m > mean + std * sd


def _volume_filter(v: np.ndarray, window: int, option: str, std: float, abnormal_std: float) -> np.ndarray:
    """Volume (2.2). "High" is "neither low nor abnormal" and "Not Low" is true in warm-up (kept as is)."""
    mean, sd = hp.rolling_mean(v, window), hp.rolling_std(v, window)
    low = v < mean - std * sd
    if option == "Low":
        return low
    if option == "Not Low":
        return ~low
    if option == "High":
        return (v >= mean - std * sd) & (v <= mean + abnormal_std * sd)
    return v > mean + abnormal_std * sd


def _close_filter(cp: np.ndarray, option: str) -> np.ndarray:
    """Close-position bands (2.4)."""
    if option == "In Highs":
        return cp > CP_IN_HIGHS
    if option == "Off Highs":
        return cp <= CP_MIDDLE_TOP
    if option == "In Middle":
        return (cp > CP_IN_LOWS) & (cp < CP_MIDDLE_TOP)
    if option == "In Lows":
        return cp < CP_IN_LOWS
    return cp >= CP_MIDDLE_TOP


def _bar_type_filter(h: np.ndarray, l: np.ndarray, option: str) -> np.ndarray:
    """Bar-type options (2.4, 1.4); "Not Outside Bar" is true at t = 0."""
    if option == "New High":
        return hp.new_high_bar(h, l)
    if option == "New Low":
        return hp.new_low_bar(h, l)
    if option == "Outside Bar":
        return hp.outside_bar(h, l)
    if option == "Not Outside Bar":
        return ~hp.outside_bar(h, l)
    if option == "Inside Bar":
        return hp.inside_bar(h, l)
    if option == "New High or Outside Bar":
        return hp.new_high_bar(h, l) | hp.outside_bar(h, l)
    return hp.new_low_bar(h, l) | hp.outside_bar(h, l)


def _macro_filter(h: np.ndarray, l: np.ndarray, p: Mapping) -> np.ndarray:
    """Macro low / macro high under the chosen method (2.5).

    "Macro High" also needs ``not low_S1`` (the V1 short low test), whatever the method.
    """
    v1 = (p["v1_macro_short_lookback"], p["v1_macro_medium_lookback"], p["v1_macro_long_lookback"])
    v2 = (p["v2_macro_short_lookback"], p["v2_macro_medium_lookback"], p["v2_macro_long_lookback"])
    p1, p2 = p["v1_macro_percentile"], p["v2_macro_percentile"]
    method = p["macro_method"]
    use_v1 = method in ("Price Based (V1)", "Combined (Strict)")
    use_v2 = method in ("Count Based (V2)", "Combined (Strict)")
    ok = np.ones(h.shape, dtype=bool)
    if p["macro_opt"] == "Macro Low":
        if use_v1:
            ok &= hp.v1_macro_low(l, v1, p1)
        if use_v2:
            ok &= hp.v2_macro_low(l, v2, p2)
        return ok
    if use_v1:
        ok &= hp.v1_macro_high(h, v1, p1)
    if use_v2:
        ok &= hp.v2_macro_high(h, v2, p2)
    return ok & ~hp.v1_low(l, v1[0], p1)


def vsa_panel(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, params: Mapping[str, object]
) -> PanelDict:
    """The engine's math on (n, k) arrays (spec 2).

    Returns ``condition`` (AND of every filter switched on), ``arctan_ratio`` (raw AR, NaN where
    undefined), ``spread``, ``close_position``, and one ``<name>_filter`` bool array per active
    filter. Raises ``ValueError`` for an invalid parameter set (``validate_params``).
    """
    p = validate_params(params)
    h, l, c, v = (hp.as_panel(x) for x in (h, l, c, v))
    window = p["lookback"]
    r = hp.spread(h, l)
    cp = hp.close_position(h, l, c)
    out: PanelDict = {"spread": r, "close_position": cp, "arctan_ratio": hp.arctan_ratio(h, l)}
    filters: dict[str, np.ndarray] = {}
    if p["spread_opt"] != "None":
        filters["spread"] = _band_filter(
            r, window, p["spread_opt"], p["spread_std"], p["spread_abnormal_std"])
    if p["momentum_opt"] != "None":
        filters["momentum"] = _momentum_filter(c, window, p["momentum_opt"], p["momentum_std"])
    if p["volume_opt"] != "None":
        filters["volume"] = _volume_filter(
            v, window, p["volume_opt"], p["volume_std"], p["volume_abnormal_std"])
    if p["use_spread_pct"]:
        filters["spread_pct"] = r <= hp.rolling_quantile(r, window, p["spread_pct_threshold"])
    if p["use_volume_pct"]:
        filters["volume_pct"] = v <= hp.rolling_quantile(v, window, p["volume_pct_threshold"])
    if p["close_opt"] != "None":
        filters["close"] = _close_filter(cp, p["close_opt"])
    if p["direction_opt"] != "None":
        filters["direction"] = hp.up_bar(c) if p["direction_opt"] == "Up" else hp.down_bar(c)
    if p["bar_type_opt"] != "None":
        filters["bar_type"] = _bar_type_filter(h, l, p["bar_type_opt"])
    if p["macro_opt"] != "None":
        filters["macro"] = _macro_filter(h, l, p)
    if p["use_breakout_close"]:
        filters["breakout_close"] = hp.breakout_close(
            c, p["v1_macro_short_lookback"], p["breakout_close_percent"])
    if p["use_arctangent_ratio"]:
        filters["arctan"] = out["arctan_ratio"] >= p["arctangent_ratio_threshold"]
    if p["use_high_breakout"]:
        filters["high_breakout"] = hp.high_breakout(
            c, h, p["high_breakout_lookback"], p["high_breakout_count_percent"])
    condition = np.ones(h.shape, dtype=bool)
    for name, mask in filters.items():
        out[f"{name}_filter"] = mask
        condition &= mask
    out["condition"] = condition
    return out


# ---------------------------------------------------------------------------------------------
# Start bar (spec 3) and test bar (spec 4)
# ---------------------------------------------------------------------------------------------


def start_bar_math(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, p: Mapping[str, float]
) -> PanelDict:
    """Start bar's nine conditions, ``pattern`` and ``condition`` (new occurrences only), spec 3.

    ``p`` is start bar's full parameter set (``breakout_vsa.strategies.start_bar.get_params``).
    """
    h, l, c, v = (hp.as_panel(x) for x in (h, l, c, v))
    short, wide = int(p["lookback"]), int(p["volume_lookback"])
    r = hp.spread(h, l)
    mean_v = hp.rolling_mean(v, wide)
    mean_r = hp.rolling_mean(r, wide)
    with np.errstate(divide="ignore", invalid="ignore"):
        off_lows = (c - l) / r >= p["close_off_lows_percent"] / 100
    conditions = {
        "high_volume": (v > START_VOLUME_FACTOR * mean_v) & (v > hp.shift(v, 1)),
        "higher_high": h > hp.shift(h, 1),
        "not_narrow": hp.percentile_rank(r, short) >= p["range_percentile"],
        "close_off_lows": off_lows & (r != 0),
        "far_from_prev_close": np.abs(c - hp.shift(c, 1)) >= hp.shift(r, 1) * p["prev_close_range"] / 100,
        "no_excess_range": ~(r > mean_r + START_EXCESS_STD * hp.rolling_std(r, wide)),
        "no_excess_volume": ~(v > mean_v + START_EXCESS_STD * hp.rolling_std(v, wide)),
        "near_new_highs": h >= START_NEAR_HIGH_FACTOR * hp.rolling_max(h, short),
        "in_the_lows": (np.abs(l - hp.rolling_min(l, wide)) < r)
        | (hp.percentile_rank(l, wide) <= p["low_percentile"]),
    }
    pattern = np.ones(h.shape, dtype=bool)
    for mask in conditions.values():
        pattern &= mask
    return {**conditions, "pattern": pattern, "condition": hp.new_occurrence(pattern),
            "arctan_ratio": np.full(h.shape, np.nan)}


def test_bar_math(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray
) -> PanelDict:
    """Test bar's eight conditions, ``pattern`` and ``condition`` (new occurrences only), spec 4."""
    o, h, l, c, v = (hp.as_panel(x) for x in (o, h, l, c, v))
    cp = hp.close_position(h, l, c)
    v1 = hp.shift(v, 1)
    inside = hp.inside_bar(h, l)
    conditions = {
        "inside_bar": inside,
        "down_candle": c < o,
        "close_off_lows": cp >= TEST_MIN_CLOSE_POSITION,
        "much_lower_volume": v < TEST_VOLUME_DROP * v1,
        "lowest_volume_3": (v < v1) & (v < hp.shift(v, 2)),
        "prev_up_close_high": (hp.shift(c, 1) > hp.shift(o, 1))
        & (hp.shift(cp, 1) > TEST_PREV_CLOSE_POSITION),
        "prev_volume_above_mean": v1 > hp.shift(hp.rolling_mean(v, TEST_PREV_VOLUME_WINDOW), 1),
        "prev_not_inside": ~hp.shift(inside, 1, fill=False),
    }
    pattern = np.ones(h.shape, dtype=bool)
    for mask in conditions.values():
        pattern &= mask
    return {**conditions, "pattern": pattern, "condition": hp.new_occurrence(pattern),
            "arctan_ratio": np.full(h.shape, np.nan)}


# ---------------------------------------------------------------------------------------------
# Panel cores (detector contract; metrics of spec 9.2)
# ---------------------------------------------------------------------------------------------


def math_report(h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, math: PanelDict) -> PanelDict:
    """``signal`` plus the spec 9.2 VSA metrics; AR reported as 0.0 where undefined."""
    h, l, c, v = (hp.as_panel(x) for x in (h, l, c, v))
    ar = math["arctan_ratio"]
    return {
        "signal": math["condition"],
        "volume_ratio": hp.mean_ratio(v, VOLUME_RATIO_WINDOW),
        "close_off_low": hp.close_off_low(h, l, c),
        "arctan_ratio": np.where(np.isnan(ar), ARCTAN_REPORTED_WHEN_UNDEFINED, ar),
    }


def engine_report(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray, params: Mapping[str, object]
) -> PanelDict:
    """An engine strategy on an (n, k) panel: ``signal`` and the spec 9.2 metrics for ``params``."""
    return math_report(h, l, c, v, vsa_panel(o, h, l, c, v, params))


def test_bar_panel(
    o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray
) -> PanelDict:
    """Test bar on an (n, k) panel (spec 4); arctan_ratio is reported as 0.0 (spec 9.2)."""
    return math_report(h, l, c, v, test_bar_math(o, h, l, c, v))


test_bar_panel.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name
test_bar_math.__test__ = False  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Per-frame call shapes (the seed's API)
# ---------------------------------------------------------------------------------------------


def frame_result(index: pd.Index, math: PanelDict) -> tuple[pd.Series, pd.DataFrame]:
    """The seed's ``(condition, result)`` pair from the math of a one-symbol panel."""
    condition = pd.Series(math["condition"][:, 0], index=index, name="condition")
    columns = {name: values[:, 0] for name, values in math.items() if name != "condition"}
    return condition, pd.DataFrame(columns, index=index)


def vsa_detector(df: pd.DataFrame, params: Mapping[str, object]) -> tuple[pd.Series, pd.DataFrame]:
    """Run the generic VSA engine (spec 2) on one frame.

    Returns ``(condition, result)``: a bool Series per bar, and a DataFrame on the same index with
    ``arctan_ratio`` (raw AR, NaN where undefined) and the intermediate quantities. Parameters are
    validated before the frame is read. The frame is never modified.
    """
    validate_params(params)
    return frame_result(df.index, vsa_panel(*frame_arrays(df), params))


def test_bar_vsa(df: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Test bar over a frame (spec 4); ``result["arctan_ratio"]`` is NaN on every bar."""
    return frame_result(df.index, test_bar_math(*frame_arrays(df)))


test_bar_vsa.__test__ = False  # type: ignore[attr-defined]

# The seed's per-strategy names, defined next to each parameter set (those modules import this one,
# so they are imported last; ``breakout_vsa/__init__`` imports this module first).
from breakout_vsa.strategies.breakout_bar import breakout_bar_panel, breakout_bar_vsa  # noqa: E402, F401
from breakout_vsa.strategies.loaded_bar import loaded_bar_panel, loaded_bar_vsa  # noqa: E402, F401
from breakout_vsa.strategies.reversal_bar import reversal_bar_panel, reversal_bar_vsa  # noqa: E402, F401
from breakout_vsa.strategies.start_bar import start_bar_panel, start_bar_vsa  # noqa: E402, F401
from breakout_vsa.strategies.stop_bar import stop_bar_panel, stop_bar_vsa  # noqa: E402, F401
