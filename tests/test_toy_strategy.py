"""Adding a strategy is one module plus one line (issue 11), proven end to end.

A toy strategy is written to a temporary module, registered with one line, scanned on the demo
exchange through the normal scan path (its panel runs in the analysis process, which imports the
module by name) and alerted through python-telegram-bot to the fake Bot API. Nothing else changes.
"""

from __future__ import annotations

import pytest

from scanner import registry
from scanner.analysis import _picklable
from scanner.cache import KlineCache
from scanner.main import run_scan
from tests.conftest import configure_telegram, toy_strategy_module
from tests.fakes.telegram_server import FakeBotApi, make_token

TOY_MODULE = "big_up_day"
TOY_SOURCE = '''
"""Big up day: a close at least ``min_gain`` above the open (a toy strategy)."""

import numpy as np

from utils.demo_patterns import Arrays, draw_bar
from utils.strategy_spec import BOTH, Param, Strategy

MIN_GAIN = 0.03


def big_up_day_panel(o, h, l, c, v, *, min_gain: float = MIN_GAIN) -> dict[str, np.ndarray]:
    """Every bar at once: fires where the close is at least ``min_gain`` above the open."""
    gain = c / o - 1.0
    return {"signal": gain >= min_gain, "gain_pct": 100.0 * gain}


def demo_plant(a: Arrays, t: int) -> None:
    """A 6% up day on a little more volume than usual."""
    draw_bar(a, t, 0.06, 0.002, 0.002, 1.2)


STRATEGY = Strategy(
    name="big_up_day",
    title="Big Up Day",
    channel="volume_surge",
    bars=BOTH,
    min_bars=1,
    panel=big_up_day_panel,
    direction="up",
    alert_fields=(("Close", "close", "price"), ("USD volume", "volume_usd", "usd"), ("Gain", "gain_pct", "pct")),
    params=(Param("min_gain", MIN_GAIN, 0.0, 1.0),),
    demo_plant=demo_plant,
)
'''
TOKEN = make_token(500000001, "T")
CHAT = "4242"


@pytest.fixture
def toy_module(tmp_path, monkeypatch):
    """The toy module importable here and in a fresh analysis process (not registered yet)."""
    yield from toy_strategy_module(tmp_path, monkeypatch, TOY_MODULE, TOY_SOURCE)


async def test_a_toy_strategy_registered_with_one_line_is_scanned_on_demo_and_alerted(toy_module, monkeypatch):
    registry.register(toy_module.STRATEGY)  # the one line

    async with FakeBotApi(valid_tokens=[TOKEN]) as api:
        configure_telegram(monkeypatch, api.base_url(), {"volume_surge": TOKEN}, {"alice": CHAT})
        result = await run_scan("1d", "big_up_day", "demo", send_telegram=True, user_id="alice",
                                cache=KlineCache(), progress=False)

    summary = result.summaries[0]
    assert summary.detector_errors == [] and summary.error is None
    assert _picklable([registry.get_strategy("big_up_day")])  # so it ran in the analysis process
    from exchanges.demo import DemoClient

    planted = {s for s, name in DemoClient().planted.items() if name == "big_up_day"}
    found = {h.symbol for h in result.hits}
    assert planted and planted <= found
    assert result.alerts.sent == len(result.hits) and result.alerts.failures == []
    texts = [m.text for m in api.messages_to(CHAT)]
    assert texts and all(t.startswith("<b>Big Up Day</b>\ndemo · 1d") for t in texts)
    delivered = "\n".join(texts)
    assert all(symbol in delivered for symbol in found)
    assert delivered.count("Gain: ") == len(result.hits)


def test_the_toy_joins_every_way_of_naming_strategies(toy_module):
    registry.register(toy_module.STRATEGY)
    assert registry.resolve_strategies("all")[-1] == "big_up_day"
    assert registry.get_strategy("big_up_day+volume_surge").channel == "volume_surge"
    assert registry.get_strategy("big_up_day").tuned("bigger_up_day", {"min_gain": 0.1}).defaults() == {
        "min_gain": 0.1
    }
    with pytest.raises(ValueError, match="already registered"):
        registry.register(toy_module.STRATEGY)
    registry.unregister("big_up_day")
    with pytest.raises(ValueError, match="unknown strategy 'big_up_day'"):
        registry.get_strategy("big_up_day")
