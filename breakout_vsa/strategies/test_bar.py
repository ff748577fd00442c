"""Test bar (spec 4): a fixed formula without parameters. Demo pattern and declaration."""

from __future__ import annotations

from breakout_vsa.core import VSA_FIELDS, test_bar_panel
from utils.demo_patterns import Arrays, draw_bar
from utils.strategy_spec import BOTH, Strategy


def get_params() -> dict:
    """An empty set: test bar's formula (spec 4) has no tunable parameter."""
    return {}


def demo_plant(a: Arrays, t: int) -> None:
    """A strong up bar on volume, then a quiet inside down bar."""
    draw_bar(a, t - 1, 0.03, 0.001, 0.003, 2.0)
    a["high"][t - 1] = max(a["high"][t - 1], a["high"][t - 2] * 1.001)
    o = a["close"][t - 1]
    a["open"][t], a["high"][t], a["close"][t] = o, o * 1.0005, o * 0.995
    a["low"][t] = a["close"][t] * 0.996
    a["volume"][t] = 0.6


STRATEGY = Strategy(
    name="test_bar",
    title="Test Bar",
    channel="weakening_trend",
    bars=BOTH,
    min_bars=4,
    panel=test_bar_panel,
    kind="vsa",
    direction="up",
    alert_fields=VSA_FIELDS,
    demo_plant=demo_plant,
)
