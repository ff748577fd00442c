"""Tuned variants: ``[strategies.<name>]`` tables of the config file with ``base`` and overrides (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import run_parallel_scanner as rps
from scanner import main as scanner_main
from scanner.analysis import _picklable
from scanner.cache import KlineCache
from scanner.notifier import format_header
from scanner.registry import get_strategy, registry, resolve_strategies, variant_names
from utils import config


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def use_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tables: dict[str, dict[str, object]]) -> None:
    """A config file holding ``[strategies.<name>]`` tables, active for this test."""
    lines = []
    for name, table in tables.items():
        lines.append(f"[strategies.{json.dumps(name)}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    path = tmp_path / "scanner.toml"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SCANNER_CONFIG", str(path))
    config.reload()


def hit_keys(result) -> set[tuple]:
    return {(h.symbol, h.bar_time, h.current_bar, json.dumps(h.metrics, sort_keys=True)) for h in result.hits}


async def test_a_variant_equal_to_its_base_gives_exactly_the_bases_hits(monkeypatch, tmp_path) -> None:
    tuned = [name for name, s in registry().items() if s.params]
    use_config(monkeypatch, tmp_path, {
        **{f"{name}_same": {"base": name, **registry()[name].defaults()} for name in tuned},
        "pin_down_same": {"base": "pin_down"},  # no parameter to restate
    })
    cache = KlineCache()
    for name in [*tuned, "pin_down"]:
        base = await scanner_main.run_scan("1d", name, "demo", cache=cache, progress=False)
        variant = await scanner_main.run_scan("1d", f"{name}_same", "demo", cache=cache, progress=False)
        assert base.hits, name
        assert hit_keys(variant) == hit_keys(base), name
        assert {h.strategy for h in variant.hits} == {f"{name}_same"}


def demo_panel() -> tuple[np.ndarray, ...]:
    """The demo exchange's 1d markets side by side, as a scan sees them."""
    import asyncio

    from exchanges.demo import DemoClient

    async def frames():
        client, cache = DemoClient(), KlineCache()
        return [await cache.get(client, s, "1d") for s in client.symbols]

    loaded = asyncio.run(frames())
    return tuple(np.column_stack([f[col].to_numpy() for f in loaded]) for col in
                 ("open", "high", "low", "close", "volume"))


@pytest.fixture(scope="module")
def panel() -> tuple[np.ndarray, ...]:
    return demo_panel()


@pytest.mark.parametrize(
    ("base", "looser", "stricter"),
    [
        ("volume_surge", {"std_dev": 2.0}, {"std_dev": 6.0}),
        ("weak_uptrend", {"min_weaknesses": 3}, {"min_weaknesses": 5}),
        ("stop_bar", {"v2_macro_percentile": 10.0}, {"volume_std": 0.5}),  # "High" volume: v >= mean - std*sd
        ("reversal_bar", {"spread_std": 0.2}, {"spread_std": 1.0}),
        ("breakout_bar", {"volume_pct_threshold": 0.9}, {"volume_pct_threshold": 0.2}),
    ],
)
def test_a_changed_threshold_changes_hits_in_the_expected_direction(panel, base, looser, stricter) -> None:
    strategy = get_strategy(base)
    signal = strategy.panel(*panel)["signal"]
    loose = strategy.tuned("loose", looser).panel(*panel)["signal"]
    strict = strategy.tuned("strict", stricter).panel(*panel)["signal"]
    assert (signal <= loose).all() and loose.sum() > signal.sum()
    assert (strict <= signal).all() and strict.sum() < signal.sum()


async def test_a_variant_has_its_own_name_title_and_channel_in_scans_and_alerts(monkeypatch, tmp_path) -> None:
    use_config(monkeypatch, tmp_path, {
        "surge_loose": {"base": "volume_surge", "std_dev": 2.0, "title": "Loose surge", "channel": "confluence"},
        "surge_plain": {"base": "volume_surge", "lookback_period": 30},
    })
    loose = get_strategy("surge_loose")
    assert (loose.title, loose.channel, loose.kind, loose.direction) == ("Loose surge", "confluence", "custom", "up")
    assert loose.defaults() == {"lookback_period": 65, "std_dev": 2.0}
    plain = get_strategy("surge_plain")
    assert (plain.title, plain.channel) == ("Sudden Volume Surge (surge_plain)", "volume_surge")
    assert variant_names() == ("surge_loose", "surge_plain")
    assert _picklable([loose, plain, get_strategy("surge_loose+confluence")])
    cache = KlineCache()
    base = await scanner_main.run_scan("1d", "volume_surge", "demo", cache=cache, progress=False)
    result = await scanner_main.run_scan("1d", "surge_loose", "demo", cache=cache, progress=False)
    assert {h.symbol for h in base.hits} < {h.symbol for h in result.hits}
    assert format_header("surge_loose", "demo", "1d").startswith("<b>Loose surge</b>")
    assert resolve_strategies("all") == list(registry())  # variants are named explicitly


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"base": "volume_surge", "sigma": 2.0}, "'sigma' .* valid parameters: lookback_period, std_dev"),
        ({"base": "volume_surge", "std_dev": -1.0}, "'std_dev' .* -1.0 is not valid; expected a number from 0 to 20"),
        ({"base": "weak_uptrend", "min_weaknesses": 6}, "expected a whole number from 1 to 5"),
        ({"base": "breakout_bar", "close_opt": "in highs"}, "expected one of 'None', 'In Highs'"),
        ({"base": "breakout_bar", "use_volume_pct": "yes"}, "expected true or false"),
        ({"base": "pin_down", "min_weaknesses": 3}, "valid parameters: none"),
        ({"base": "nope"}, "needs base = one of: breakout_bar, .*confluence; got 'nope'"),
        ({"std_dev": 2.0}, "needs base = one of"),
        ({"base": "volume_surge", "channel": "Loud Channel"}, "invalid channel"),
    ],
)
def test_bad_variants_are_errors_naming_the_valid_choices(monkeypatch, tmp_path, table, message) -> None:
    use_config(monkeypatch, tmp_path, {"my_variant": table})
    with pytest.raises(ValueError, match=message):
        resolve_strategies("my_variant")


def test_a_variant_may_not_reuse_a_builtin_name_and_a_composite_table_takes_no_parameters(
    monkeypatch, tmp_path
) -> None:
    use_config(monkeypatch, tmp_path, {
        "volume_surge": {"base": "volume_surge", "std_dev": 2.0},
        "confluence+pin_down": {"ctx_len": 9},
    })
    with pytest.raises(ValueError, match="new name"):
        get_strategy("volume_surge")
    with pytest.raises(ValueError, match="title and channel only"):
        get_strategy("confluence+pin_down")


def test_the_cli_rejects_a_bad_variant_with_status_2_naming_the_valid_parameters(
    monkeypatch, tmp_path, capsys
) -> None:
    use_config(monkeypatch, tmp_path, {"surge_bad": {"base": "volume_surge", "lookback": 30}})
    with pytest.raises(SystemExit) as exit_info:
        rps.main(["1d", "surge_bad", "demo", "default", "false", "--no-progress"])
    assert exit_info.value.code == 2
    assert "valid parameters: lookback_period, std_dev" in capsys.readouterr().err
