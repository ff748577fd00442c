"""Composite strategies ``a+b``: fire where every part fires on the same checked bar (issue 11)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from scanner import main as scanner_main
from scanner.analysis import BatchJob, analyse_frames, _picklable
from scanner.cache import KlineCache
from scanner.notifier import format_block, validate_alert_targets
from scanner.registry import get_strategy, resolve_strategies
from utils import config
from utils.config import TelegramConfig
from utils.strategy_spec import BOTH, CLOSED_ONLY, Strategy, compose

LOUD = 1000.0  # volume at which the stand-in "loud" part fires


def up_bar(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray) -> dict:
    """Stand-in part: fires on every bar closing above its open; reports the close-open gap."""
    return {"signal": c > o, "gap": c - o}


def loud_bar(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray) -> dict:
    """Stand-in part: fires on bars with volume >= LOUD, with another value for the forming bar."""
    return {"signal": v >= LOUD, "signal_current": v >= 2 * LOUD, "loudness": v / LOUD}


UP = Strategy("up", "Up Bar", "start_trend", BOTH, 2, up_bar, alert_fields=(("Gap", "gap", "price"),))
LOUD_PART = Strategy("loud", "Loud Bar", "volume_surge", BOTH, 2, loud_bar,
                     alert_fields=(("Loudness", "loudness", "ratio"),))
CLOSED_PART = Strategy("closed_up", "Closed Up", "confluence", CLOSED_ONLY, 2, up_bar)


def frame(rows: list[tuple[float, float, float]], bars: int = 30) -> pd.DataFrame:
    """``bars`` quiet rows ending with ``rows`` (open, close, volume); highs and lows around them."""
    quiet = [(1.0, 1.0, 100.0)] * (bars - len(rows))
    o, c, v = (np.array(col, dtype="float64") for col in zip(*(quiet + rows)))
    index = pd.date_range("2025-01-01", periods=bars, freq="D", tz="UTC", name="timestamp").as_unit("ms")
    return pd.DataFrame({"open": o, "high": np.maximum(o, c) * 1.01, "low": np.minimum(o, c) * 0.99,
                         "close": c, "volume": v}, index=index)


def composite_hits(df: pd.DataFrame, strategy: Strategy, bars: str) -> list[tuple[bool, dict]]:
    hits, errors = analyse_frames([("AAAUSDT", df)], [strategy], "demo", "1d", bars)
    assert errors == []
    return [(h.current_bar, h.metrics) for h in hits]


@pytest.mark.parametrize(
    ("bars", "expected"), [("both", [False]), ("closed", [False]), ("current", [])]
)
def test_fires_only_on_a_bar_where_every_part_fires(bars: str, expected: list[bool]) -> None:
    # closed bar: up and loud (both parts fire); forming bar: up but quiet (only "up" fires).
    df = frame([(1.0, 1.1, LOUD), (1.1, 1.2, 10.0)])
    both = compose([UP, LOUD_PART])
    assert [current for current, _ in composite_hits(df, both, bars)] == expected


def test_parts_firing_on_different_bars_never_fire_together() -> None:
    # closed bar: loud but down; forming bar: up but quiet.
    df = frame([(1.1, 1.0, LOUD), (1.0, 1.2, 10.0)])
    both = compose([UP, LOUD_PART])
    assert analyse_frames([("A", df)], [UP], "demo", "1d", "both")[0]
    assert analyse_frames([("A", df)], [LOUD_PART], "demo", "1d", "both")[0]
    for bars in ("both", "closed", "current"):
        assert composite_hits(df, both, bars) == []


def test_the_forming_bar_uses_each_parts_current_signal_and_wins_over_the_closed_bar() -> None:
    df = frame([(1.0, 1.1, LOUD), (1.1, 1.2, 2 * LOUD)])
    [(current, metrics)] = composite_hits(df, compose([UP, LOUD_PART]), "both")
    assert current is True
    assert metrics["loud.loudness"] == pytest.approx(2.0) and metrics["up.gap"] == pytest.approx(0.1)


def test_checks_only_the_bars_every_part_checks() -> None:
    composite = compose([UP, CLOSED_PART])
    assert composite.bars == ("closed",)
    df = frame([(1.0, 1.1, 10.0), (1.1, 1.2, 10.0)])
    assert [current for current, _ in composite_hits(df, composite, "both")] == [False]
    assert composite_hits(df, composite, "current") == []


def test_a_part_without_enough_history_keeps_the_composite_silent_without_errors() -> None:
    # 40 bars: volume_surge needs 66, so it cannot fire however loud the bar is; "up" fires.
    df = frame([(1.0, 1.1, 50 * LOUD), (1.1, 1.2, 10.0)], bars=40)
    surge = get_strategy("volume_surge")
    assert composite_hits(df, UP, "both")
    assert composite_hits(df, surge, "both") == []
    assert composite_hits(df, compose([UP, surge]), "both") == []


def test_composite_panel_is_the_and_of_its_parts_on_every_bar_with_prefixed_metrics() -> None:
    rng = np.random.default_rng(7)
    c = np.exp(np.cumsum(rng.normal(0, 0.03, (300, 12)), axis=0))
    o = np.vstack([c[:1], c[:-1]])
    h, l = np.maximum(o, c) * 1.02, np.minimum(o, c) * 0.98
    v = rng.lognormal(10, 1, c.shape)
    parts = [get_strategy("confluence"), get_strategy("volume_surge")]
    outs = [p.panel(o, h, l, c, v) for p in parts]
    out = get_strategy("confluence+volume_surge").panel(o, h, l, c, v)
    np.testing.assert_array_equal(out["signal"], outs[0]["signal"] & outs[1]["signal"])
    np.testing.assert_array_equal(
        out["signal_current"], outs[0]["signal_current"] & outs[1].get("signal_current", outs[1]["signal"])
    )
    np.testing.assert_array_equal(out["volume_surge.volume_ratio_current"], outs[1]["volume_ratio_current"])
    np.testing.assert_array_equal(out["confluence.momentum_score"], outs[0]["momentum_score"])


def test_declaration_defaults_title_channel_bars_and_lists_each_parts_metrics() -> None:
    composite = get_strategy("confluence+volume_surge")
    assert composite.title == "Confluence Signal + Sudden Volume Surge"
    assert composite.channel == "confluence" and composite.kind == "composite"
    assert composite.bars == BOTH and composite.min_bars == 66 and composite.direction == "up"
    keys = [key for _, key, _ in composite.alert_fields]
    assert keys[:2] == ["close", "volume_usd"]
    assert "volume_surge.score" in keys and "confluence.momentum_score" in keys
    assert get_strategy("weak_uptrend+confluence").bars == ("closed",)
    assert get_strategy("weak_uptrend+confluence").channel == "weakening_trend"


def test_title_and_channel_come_from_the_config_table(tmp_path, monkeypatch) -> None:
    path = tmp_path / "scanner.toml"
    path.write_text('[strategies."confluence+volume_surge"]\ntitle = "Loud confluence"\nchannel = "volume_surge"\n')
    monkeypatch.setenv("SCANNER_CONFIG", str(path))
    config.reload()
    composite = get_strategy("confluence+volume_surge")
    assert (composite.title, composite.channel) == ("Loud confluence", "volume_surge")
    assert get_strategy("volume_surge+confluence").channel == "volume_surge"  # another composite


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("confluence+nope", "unknown strategy 'nope'"),
        ("confluence+", "empty part"),
        ("confluence+confluence", "each part once"),
    ],
)
def test_bad_composites_are_errors_naming_the_valid_strategies(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        resolve_strategies(name)
    if "unknown" in message:
        assert "volume_surge" in str(info.value) and "breakout_bar" in str(info.value)


def test_accepted_in_lists_with_spaces_and_checked_for_alert_channels() -> None:
    assert resolve_strategies("confluence + volume_surge, breakout_bar") == [
        "confluence+volume_surge", "breakout_bar"
    ]
    cfg = TelegramConfig(tokens={"volume_surge": "x"}, users={"default": "1"})
    with pytest.raises(ValueError, match="SCANNER_TELEGRAM_TOKEN_CONFLUENCE"):
        validate_alert_targets(["confluence+volume_surge"], ["default"], cfg)
    validate_alert_targets(["volume_surge+confluence"], ["default"], cfg)


def test_travels_to_the_analysis_process() -> None:
    composite = get_strategy("confluence+volume_surge")
    assert _picklable([composite])
    copy = pickle.loads(pickle.dumps(BatchJob(None, (composite,), "demo", "1d", "both", 0.0)))  # type: ignore[arg-type]
    assert copy.strategies[0].name == composite.name


@pytest.mark.parametrize("pair", ["confluence+volume_surge", "start_bar+confluence"])
async def test_demo_scan_hits_are_the_markets_where_both_parts_fire_on_the_same_bar(pair: str) -> None:
    cache = KlineCache()
    a, b = pair.split("+")

    async def fired(names: str, bars: str) -> dict[str, set[str]]:
        result = await scanner_main.run_scan("1d", names, "demo", bars=bars, cache=cache, progress=False)
        found: dict[str, set[str]] = {}
        for hit in result.hits:
            found.setdefault(hit.strategy, set()).add(hit.symbol)
        return found

    current, closed = await fired(f"{a},{b}", "current"), await fired(f"{a},{b}", "closed")
    on_current = current.get(a, set()) & current.get(b, set())
    on_closed = closed.get(a, set()) & closed.get(b, set())
    result = await scanner_main.run_scan("1d", pair, "demo", cache=cache, progress=False)
    assert {h.symbol for h in result.hits if h.current_bar} == on_current
    assert {h.symbol for h in result.hits if not h.current_bar} == on_closed - on_current
    assert result.hits, "the demo should have markets where both parts fire"
    assert result.summaries[0].hits_per_strategy == {pair: len(result.hits)}
    block = format_block(result.hits[0])
    part_titles = [get_strategy(p).title for p in (a, b)]
    assert all(f"({title})" in block for title in part_titles)
    assert "n/a" not in block


def test_the_cli_scans_a_composite(capsys) -> None:
    import run_parallel_scanner as rps

    assert rps.main(["1d", "confluence+volume_surge", "demo", "default", "false", "--no-progress"]) == 0
    assert "confluence+volume_surge" in capsys.readouterr().out
