"""The registry collects each strategy module's own declaration; nothing else lists strategy names."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from scanner import registry
from utils.config import CHANNELS
from scanner.notifier import FORMATTERS
from utils.strategy_spec import BOTH, Strategy

REPO = Path(__file__).resolve().parents[1]

# Spec 9.1, 9.3 and 9.4, written out once here to check the declarations against.
SPEC = {
    "breakout_bar": ("Breakout Bar", "start_trend", BOTH, "up"),
    "stop_bar": ("Stop Bar", "start_trend", BOTH, "up"),
    "reversal_bar": ("Reversal Bar", "weakening_trend", BOTH, "down"),
    "start_bar": ("Start Bar", "start_trend", BOTH, "up"),
    "loaded_bar": ("Loaded Bar", "volume_surge", BOTH, "up"),
    "test_bar": ("Test Bar", "weakening_trend", BOTH, "up"),
    "volume_surge": ("Sudden Volume Surge", "volume_surge", BOTH, "up"),
    "weak_uptrend": ("Weak Uptrend Detection", "weakening_trend", ("closed",), "down"),
    "pin_down": ("Pin Down Detection", "weakening_trend", ("closed",), "down"),
    "confluence": ("Confluence Signal", "confluence", BOTH, "up"),
}


def test_each_module_declares_its_strategy_and_the_registry_keeps_the_module_order() -> None:
    declared = [importlib.import_module(path).STRATEGY for path in registry.STRATEGY_MODULES]
    assert [s.name for s in declared] == [path.rsplit(".", 1)[1] for path in registry.STRATEGY_MODULES]
    assert list(registry.registry().values()) == declared
    assert registry.STRATEGY_NAMES == tuple(SPEC)


@pytest.mark.parametrize("name", list(SPEC))
def test_declarations_match_the_spec_tables(name: str) -> None:
    strategy = registry.get_strategy(name)
    assert (strategy.title, strategy.channel, strategy.bars, strategy.direction) == SPEC[name]
    assert strategy.channel in CHANNELS and strategy.min_bars >= 1 and strategy.demo_plant is not None


@pytest.mark.parametrize("name", list(SPEC))
def test_alert_fields_use_known_formats_and_every_flag_has_a_label(name: str) -> None:
    strategy = registry.get_strategy(name)
    assert strategy.alert_fields
    for label, key, fmt in strategy.alert_fields:
        assert label and (fmt in FORMATTERS or fmt == "flags")
        if fmt == "flags":
            assert isinstance(key, tuple) and all(k in strategy.flag_labels for k in key)


@pytest.mark.parametrize("name", list(SPEC))
def test_declared_defaults_are_valid_and_are_what_the_panel_runs_with(name: str) -> None:
    strategy = registry.get_strategy(name)
    assert strategy.check_params(strategy.defaults()) == strategy.defaults()
    assert strategy.tuned("same", strategy.defaults()).defaults() == strategy.defaults()


def test_views_for_older_callers_are_derived_from_the_declarations() -> None:
    assert registry.TITLES == {n: spec[0] for n, spec in SPEC.items()}
    assert registry.CHANNEL_OF == {n: spec[1] for n, spec in SPEC.items()}
    assert registry.VSA_STRATEGIES == tuple(SPEC)[:6] and registry.CUSTOM_STRATEGIES == tuple(SPEC)[6:]
    assert registry.ALERT_FIELDS["weak_uptrend"] == registry.get_strategy("weak_uptrend").alert_fields
    assert registry.FLAG_LABELS["W3"] == "W3 momentum loss"


def test_checked_bars_intersect_the_declared_set_with_the_choice() -> None:
    weak = registry.get_strategy("weak_uptrend")
    assert weak.checked_bars("both") == ("closed",) and weak.checked_bars("current") == ()
    assert registry.get_strategy("confluence").checked_bars("both") == ("current", "closed")


@pytest.mark.parametrize("bad", ["nope", "", "all,nope"])
def test_unknown_names_are_errors_naming_every_valid_strategy(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        registry.resolve_strategies(bad)
    assert all(name in str(info.value) for name in SPEC)


@pytest.mark.parametrize("name", ["Big Up", "a+b", "1st", "x-y"])
def test_register_rejects_names_that_are_not_lower_case_identifiers(name: str) -> None:
    base = registry.get_strategy("test_bar")
    with pytest.raises(ValueError, match="invalid strategy name"):
        registry.register(Strategy(**{**base.__dict__, "name": name}))


def test_strategy_modules_import_neither_the_scanner_nor_an_exchange() -> None:
    code = (
        "import importlib, sys\n"
        f"for path in {registry.STRATEGY_MODULES!r}: importlib.import_module(path)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scanner', 'exchanges', 'aiohttp'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def _string_constants(path: Path) -> set[str]:
    return {
        node.value for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_no_module_outside_the_strategies_lists_or_switches_on_strategy_names() -> None:
    # Channel names that happen to equal a strategy's name (volume_surge, confluence) are not checked.
    names = set(SPEC) - set(CHANNELS)
    sources = [*(REPO / "scanner").glob("*.py"), *(REPO / "exchanges").glob("*.py"), *(REPO / "utils").glob("*.py"),
               REPO / "run_parallel_scanner.py"]
    offenders = {
        str(path.relative_to(REPO)): sorted(names & _string_constants(path))
        for path in sources
        if path.name != "registry.py" or path.parent.name != "scanner"
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_all_expands_in_place_and_keeps_named_composites() -> None:
    names = registry.resolve_strategies("pin_down, all, confluence+volume_surge, pin_down")
    assert names == ["pin_down", *[n for n in SPEC if n != "pin_down"], "confluence+volume_surge"]
