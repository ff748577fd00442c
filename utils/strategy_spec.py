"""What a strategy declares about itself, and the two ways to derive a new strategy from others.

Each strategy module ends with one ``Strategy`` object: name, alert title, Telegram channel, bars it
checks, first bar that can fire, expected direction, tunable parameters (defaults and ranges), alert
fields, panel function and the pattern the demo exchange plants for it. The scanner's registry
collects these objects; detectors import this module, never the scanner.

Derived strategies are built from declarations, never written by hand:

- ``Strategy.tuned`` is a tuned variant: the same panel with some parameters overridden.
- ``compose`` is a composite ``a+b``: it fires where every part fires on the same bar.

Both give panels that pickle by reference (``functools.partial`` of a module-level function, or the
``CompositePanel`` dataclass), so they run in the analysis process like any other detector.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

import numpy as np

from utils.demo_patterns import PlantFn

Bars = Literal["both", "closed", "current"]
BAR_CHOICES: tuple[str, ...] = ("both", "closed", "current")
BOTH: tuple[str, ...] = ("current", "closed")  # checked bars, the forming bar first (spec 9.1)
CLOSED_ONLY: tuple[str, ...] = ("closed",)

PanelFn = Callable[..., dict[str, np.ndarray]]
# An alert line: (label, metric key or a tuple of flag keys, format name of the alert renderer).
MetricKey = str | tuple[str, ...]
AlertField = tuple[str, MetricKey, str]

# Keys every hit carries itself (the notifier falls back to them), so a composite lists them once.
HIT_FIELDS: tuple[str, ...] = ("close", "volume_usd")
COMMON_FIELDS: tuple[AlertField, ...] = (
    ("Close", "close", "price"),
    ("Volume ratio", "volume_ratio", "ratio"),
    ("USD volume", "volume_usd", "usd"),
)
COMPOSITE_SEPARATOR = "+"
METRIC_SEPARATOR = "."  # a composite's metric "<part>.<metric>"


@dataclass(frozen=True)
class Param:
    """A tunable parameter: its default and the values it accepts.

    The default's type decides the kind: bool, int (a whole number in ``low``..``high``), float (a
    finite number in ``low``..``high``) or str (one of ``choices``).
    """

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """The accepted values in words, for error messages and the README."""
        if isinstance(self.default, bool):
            return "true or false"
        if isinstance(self.default, str):
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = "a whole number" if isinstance(self.default, int) else "a number"
        low = "" if self.low is None else f" from {self.low:g}"
        high = "" if self.high is None else f" to {self.high:g}"
        return f"{kind}{low}{high}"

    def check(self, value: Any, owner: str) -> Any:
        """``value`` as the panel takes it; ``ValueError`` naming the valid values otherwise."""
        problem = ValueError(
            f"parameter {self.name!r} of {owner}: {value!r} is not valid; expected {self.describe()}"
        )
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise problem
            return value
        if isinstance(self.default, str):
            if value not in self.choices:
                raise problem
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise problem
        if isinstance(self.default, int):
            if value != int(value):
                raise problem
            value = int(value)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise problem
        return value


@dataclass(frozen=True)
class Strategy:
    """One detector as the scanner sees it, declared by its own module.

    ``panel`` takes float64 arrays ``(o, h, l, c, v)`` of shape (bars, symbols) plus its ``params``
    as keyword arguments, and returns per-bar arrays: ``signal`` (bar evaluated as the last closed
    bar), optional ``signal_current`` (bar evaluated as the forming bar, where that differs), and
    the metrics reported on a hit (a key ``<metric>_current`` overrides ``<metric>`` for the forming
    bar). ``bars`` is the default set checked (spec 9.1), ``min_bars`` the rows a frame needs before
    the strategy can fire (9.4). ``direction`` is the move the pattern expects ("up" for a breakout,
    "down" for a weakening pattern); the signal-quality report reads it. ``alert_fields`` is what an
    alert shows (9.3), ``flag_labels`` how a true flag is named. ``demo_plant`` draws the pattern
    on the demo exchange's relative bars so that every strategy fires there.
    """

    name: str
    title: str
    channel: str
    bars: tuple[str, ...]
    min_bars: int
    panel: PanelFn
    kind: Literal["vsa", "custom", "composite"] = "custom"
    direction: Literal["up", "down"] = "up"
    alert_fields: tuple[AlertField, ...] = COMMON_FIELDS
    flag_labels: Mapping[str, str] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    demo_plant: PlantFn | None = None

    def checked_bars(self, bars: Bars = "both") -> tuple[str, ...]:
        """The default checked set intersected with the user's choice, current first."""
        wanted = {"both": BOTH, "closed": ("closed",), "current": ("current",)}[bars]
        return tuple(b for b in BOTH if b in self.bars and b in wanted)

    def defaults(self) -> dict[str, Any]:
        """Parameter name -> the value this strategy runs with."""
        return {p.name: p.default for p in self.params}

    def check_params(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Validated overrides; ``ValueError`` naming the valid parameters (or values) otherwise."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            valid = ", ".join(known) or "none (this strategy has no tunable parameter)"
            raise ValueError(f"unknown parameter {unknown[0]!r} for {self.name}; valid parameters: {valid}")
        return {name: known[name].check(value, self.name) for name, value in overrides.items()}

    def tuned(
        self, name: str, overrides: Mapping[str, Any], *, title: str | None = None, channel: str | None = None
    ) -> Strategy:
        """A variant called ``name``: this panel with ``overrides`` (validated), its own title and channel."""
        checked = self.check_params(overrides)
        params = tuple(replace(p, default=checked[p.name]) if p.name in checked else p for p in self.params)
        return replace(
            self,
            name=name,
            title=title or f"{self.title} ({name})",
            channel=channel or self.channel,
            panel=partial(self.panel, **checked) if checked else self.panel,
            params=params,
        )


@dataclass(frozen=True)
class CompositePanel:
    """The panel of a composite: every part's panel on the same arrays, signals ANDed per bar.

    Each part's metrics come back prefixed ``<part>.<metric>`` (``<part>.<metric>_current`` for the
    forming bar's value), so parts with the same metric names never collide.
    """

    parts: tuple[tuple[str, PanelFn], ...]

    def __call__(
        self, o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray
    ) -> dict[str, np.ndarray]:
        closed = np.ones(c.shape, dtype=bool)
        current = np.ones(c.shape, dtype=bool)
        out: dict[str, np.ndarray] = {}
        for name, panel in self.parts:
            part = panel(o, h, l, c, v)
            closed &= np.asarray(part["signal"], dtype=bool)
            current &= np.asarray(part.get("signal_current", part["signal"]), dtype=bool)
            for key, values in part.items():
                if not key.startswith("signal"):
                    out[f"{name}{METRIC_SEPARATOR}{key}"] = values
        return {"signal": closed, "signal_current": current, **out}


def _prefixed(name: str, key: MetricKey) -> MetricKey:
    if isinstance(key, tuple):
        return tuple(f"{name}{METRIC_SEPARATOR}{k}" for k in key)
    return f"{name}{METRIC_SEPARATOR}{key}"


def compose(parts: Sequence[Strategy], *, title: str | None = None, channel: str | None = None) -> Strategy:
    """The composite of ``parts``: fires on a market when every part fires on the same checked bar.

    It checks the bars every part checks, needs the longest history, expects the first part's
    direction and alerts to the first part's channel unless ``channel`` is given. The alert shows
    the close and USD volume once, then each part's own fields labelled with the part's title.
    """
    if len(parts) < 2:
        raise ValueError("a composite needs at least two parts, e.g. confluence+volume_surge")
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise ValueError(f"a composite lists each part once, got {COMPOSITE_SEPARATOR.join(names)!r}")
    bars = tuple(b for b in BOTH if all(b in p.bars for p in parts))
    name = COMPOSITE_SEPARATOR.join(names)
    if not bars:
        raise ValueError(f"the parts of {name!r} share no checked bar (closed or current)")
    fields: list[AlertField] = [f for f in COMMON_FIELDS if f[1] in HIT_FIELDS]
    labels: dict[str, str] = {}
    for part in parts:
        for label, key, fmt in part.alert_fields:
            if key not in HIT_FIELDS:
                fields.append((f"{label} ({part.title})", _prefixed(part.name, key), fmt))
        labels.update({f"{part.name}{METRIC_SEPARATOR}{k}": text for k, text in part.flag_labels.items()})
    return Strategy(
        name=name,
        title=title or " + ".join(p.title for p in parts),
        channel=channel or parts[0].channel,
        bars=bars,
        min_bars=max(p.min_bars for p in parts),
        panel=CompositePanel(tuple((p.name, p.panel) for p in parts)),
        kind="composite",
        direction=parts[0].direction,
        alert_fields=tuple(fields),
        flag_labels=labels,
    )
