"""Strategy registry: name -> detector, alert title, Telegram channel, bars checked, minimum bars.

The scanner and the notebook read this table and never switch on strategy names; adding a
strategy is one detector module plus one entry here (spec sections 9.1, 9.3 and 9.4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Bars = Literal["both", "closed", "current"]
BAR_CHOICES: tuple[str, ...] = ("both", "closed", "current")

PanelFn = Callable[..., dict[str, np.ndarray]]
# An alert line: (label, metric key or a tuple of flag keys, format name of the alert renderer).
MetricKey = str | tuple[str, ...]
AlertField = tuple[str, MetricKey, str]

COMMON_FIELDS: tuple[AlertField, ...] = (
    ("Close", "close", "price"),
    ("Volume ratio", "volume_ratio", "ratio"),
    ("USD volume", "volume_usd", "usd"),
)
VSA_FIELDS: tuple[AlertField, ...] = COMMON_FIELDS + (
    ("Close off low", "close_off_low", "pct"),
    ("Arctan ratio", "arctan_ratio", "ratio"),
)


@dataclass(frozen=True)
class Strategy:
    """One detector as the scanner sees it.

    ``panel`` takes float64 arrays ``(o, h, l, c, v)`` of shape (bars, symbols) and returns per-bar
    arrays: ``signal`` (bar evaluated as the last closed bar), optional ``signal_current`` (bar
    evaluated as the forming bar, where that differs), and the metrics reported on a hit (a key
    ``<metric>_current`` overrides ``<metric>`` for the forming bar).
    ``bars`` is the default set checked (9.1); ``prefer_current`` means one hit per market, the
    forming bar winning over the last closed one. ``direction`` is the move the pattern expects
    ("up" for a breakout, "down" for a weakening pattern); the signal-quality report reads it.
    ``alert_fields`` is what an alert shows (spec 9.3), ``flag_labels`` how a true flag is named.
    """

    name: str
    title: str
    channel: str
    bars: tuple[str, ...]
    min_bars: int
    panel: PanelFn
    kind: Literal["vsa", "custom"] = "vsa"
    direction: Literal["up", "down"] = "up"
    alert_fields: tuple[AlertField, ...] = COMMON_FIELDS
    flag_labels: Mapping[str, str] = field(default_factory=dict)

    def checked_bars(self, bars: Bars = "both") -> tuple[str, ...]:
        """The default checked set intersected with the user's choice, current first."""
        wanted = {"both": ("current", "closed"), "closed": ("closed",), "current": ("current",)}[bars]
        return tuple(b for b in ("current", "closed") if b in self.bars and b in wanted)


def _build() -> dict[str, Strategy]:
    from breakout_vsa.core import (
        breakout_bar_panel,
        loaded_bar_panel,
        reversal_bar_panel,
        start_bar_panel,
        stop_bar_panel,
        test_bar_panel,
    )
    from custom_strategies.confluence import confluence_panel
    from custom_strategies.pin_down import pin_down_panel
    from custom_strategies.volume_surge import volume_surge_panel
    from custom_strategies.weak_uptrend import weak_uptrend_panel

    both = ("current", "closed")
    # name -> (bars checked, minimum bars, panel core, kind); titles and channels come from the
    # spec 9.3 tables below, so each fact is written once.
    cores = {
        "breakout_bar": (both, 50, breakout_bar_panel, "vsa"),
        "stop_bar": (both, 50, stop_bar_panel, "vsa"),
        "reversal_bar": (both, 14, reversal_bar_panel, "vsa"),
        "start_bar": (both, 30, start_bar_panel, "vsa"),
        "loaded_bar": (both, 50, loaded_bar_panel, "vsa"),
        "test_bar": (both, 4, test_bar_panel, "vsa"),
        "volume_surge": (both, 66, volume_surge_panel, "custom"),
        "weak_uptrend": (("closed",), 26, weak_uptrend_panel, "custom"),
        "pin_down": (("closed",), 5, pin_down_panel, "custom"),
        "confluence": (both, 23, confluence_panel, "custom"),
    }
    down = {"reversal_bar", "weak_uptrend", "pin_down"}
    entries = [
        Strategy(
            name, TITLES[name], CHANNEL_OF[name], bars, min_bars, panel, kind, "down" if name in down else "up",
            ALERT_FIELDS[name], FLAG_LABELS,
        )
        for name, (bars, min_bars, panel, kind) in cores.items()
    ]
    return {s.name: s for s in entries}


STRATEGY_NAMES: tuple[str, ...] = (
    "breakout_bar",
    "stop_bar",
    "reversal_bar",
    "start_bar",
    "loaded_bar",
    "test_bar",
    "volume_surge",
    "weak_uptrend",
    "pin_down",
    "confluence",
)
VSA_STRATEGIES: tuple[str, ...] = STRATEGY_NAMES[:6]
CUSTOM_STRATEGIES: tuple[str, ...] = STRATEGY_NAMES[6:]

# Spec 9.3, readable without importing any detector (the notifier and config use it).
TITLES: dict[str, str] = {
    "breakout_bar": "Breakout Bar",
    "stop_bar": "Stop Bar",
    "start_bar": "Start Bar",
    "reversal_bar": "Reversal Bar",
    "test_bar": "Test Bar",
    "weak_uptrend": "Weak Uptrend Detection",
    "pin_down": "Pin Down Detection",
    "volume_surge": "Sudden Volume Surge",
    "loaded_bar": "Loaded Bar",
    "confluence": "Confluence Signal",
}
CHANNEL_OF: dict[str, str] = {
    "breakout_bar": "start_trend",
    "stop_bar": "start_trend",
    "start_bar": "start_trend",
    "reversal_bar": "weakening_trend",
    "test_bar": "weakening_trend",
    "weak_uptrend": "weakening_trend",
    "pin_down": "weakening_trend",
    "volume_surge": "volume_surge",
    "loaded_bar": "volume_surge",
    "confluence": "confluence",
}

WEAKNESS_KEYS: tuple[str, ...] = ("W1", "W2", "W3", "W4", "W5")
CONFLUENCE_COMPONENTS: tuple[str, ...] = ("high_volume", "spread_breakout", "momentum_breakout")

# Spec 9.3 "Alert content per hit" (and section 12 for weak uptrend).
ALERT_FIELDS: dict[str, tuple[AlertField, ...]] = {
    "breakout_bar": VSA_FIELDS,
    "stop_bar": VSA_FIELDS,
    "start_bar": VSA_FIELDS,
    "reversal_bar": VSA_FIELDS,
    "test_bar": VSA_FIELDS,
    "loaded_bar": VSA_FIELDS,
    "volume_surge": COMMON_FIELDS + (("Score", "score", "ratio"), ("Price extreme", "price_extreme", "text")),
    "confluence": COMMON_FIELDS
    + (
        ("Close off low", "close_off_low", "pct"),
        ("Momentum score", "momentum_score", "ratio"),
        ("Components", CONFLUENCE_COMPONENTS, "flags"),
    ),
    "pin_down": COMMON_FIELDS + (("Bearish-top distance", "bearishtop_dist", "bars"),),
    "weak_uptrend": (
        ("Close", "close", "price"),
        ("USD volume", "volume_usd", "usd"),
        ("Weakness count", "total_patterns", "int"),
        ("Weaknesses", WEAKNESS_KEYS, "flags"),
    ),
}

# How a true flag is named in an alert (spec 6 for W1-W5, 8.7 for the confluence components).
FLAG_LABELS: dict[str, str] = {
    "W1": "W1 lower volume on a higher up bar",
    "W2": "W2 no spread expansion",
    "W3": "W3 momentum loss",
    "W4": "W4 climactic volume",
    "W5": "W5 wide bar closing low",
    "high_volume": "high volume",
    "spread_breakout": "spread breakout",
    "momentum_breakout": "momentum breakout",
}

_REGISTRY: dict[str, Strategy] | None = None


def registry() -> dict[str, Strategy]:
    """All strategies by name (detectors imported on first use)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _build()
    return _REGISTRY


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; ``ValueError`` naming the valid ones otherwise."""
    if name not in STRATEGY_NAMES:
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGY_NAMES)}")
    return registry()[name]


def resolve_strategies(names: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Comma list / list / ``"all"`` -> validated strategy names, order kept, duplicates dropped."""
    if names is None:
        raise ValueError(f"no strategy given; valid strategies: {', '.join(STRATEGY_NAMES)}, or 'all'")
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",")]
    items = [n.strip() for n in names if n and n.strip()]
    if not items:
        raise ValueError(f"empty strategy list; valid strategies: {', '.join(STRATEGY_NAMES)}, or 'all'")
    if "all" in items:
        return list(STRATEGY_NAMES)
    out: list[str] = []
    for name in items:
        if name not in STRATEGY_NAMES:
            raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGY_NAMES)}, or 'all'")
        if name not in out:
            out.append(name)
    return out
