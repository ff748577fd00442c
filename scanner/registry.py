"""Strategy registry: collects the strategies' own declarations and resolves every name a user gives.

Each strategy module ends with one ``STRATEGY`` object (``utils.strategy_spec.Strategy``: title,
channel, bars, first bar, direction, parameters, alert fields, panel, demo pattern). Adding a
strategy is one module plus one line here, in ``STRATEGY_MODULES`` (or one call of ``register``
from a notebook or a plug-in). Nothing else in the code lists strategy names.

A name is one of:

- a registered strategy (``volume_surge``);
- a tuned variant, a ``[strategies.<name>]`` table of the config file with ``base = "<strategy>"``,
  optional ``title`` and ``channel``, and parameter overrides (``Strategy.tuned``);
- a composite ``a+b`` of the above, firing where every part fires on the same bar (``compose``);
  its ``[strategies."a+b"]`` table may set ``title`` and ``channel`` (default: the first part's).

Unknown names, parameters or values are ``ValueError`` naming the valid ones.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

from exchanges import demo
from utils.config import file_config
from utils.strategy_spec import (
    BAR_CHOICES,
    COMPOSITE_SEPARATOR,
    AlertField,
    Bars,
    MetricKey,
    PanelFn,
    Param,
    PlantFn,
    Strategy,
    compose,
)

__all__ = [
    "ALERT_FIELDS",
    "AlertField",
    "BAR_CHOICES",
    "Bars",
    "CHANNEL_OF",
    "CUSTOM_STRATEGIES",
    "FLAG_LABELS",
    "MetricKey",
    "PanelFn",
    "Param",
    "STRATEGY_MODULES",
    "STRATEGY_NAMES",
    "Strategy",
    "TITLES",
    "VSA_STRATEGIES",
    "demo_plants",
    "get_strategy",
    "register",
    "registry",
    "resolve_strategies",
    "strategy_names",
    "unregister",
    "variant_names",
]

# One line per strategy: the module whose ``STRATEGY`` declares it. Order = the order of "all".
STRATEGY_MODULES: tuple[str, ...] = (
    "breakout_vsa.strategies.breakout_bar",
    "breakout_vsa.strategies.stop_bar",
    "breakout_vsa.strategies.reversal_bar",
    "breakout_vsa.strategies.start_bar",
    "breakout_vsa.strategies.loaded_bar",
    "breakout_vsa.strategies.test_bar",
    "custom_strategies.volume_surge",
    "custom_strategies.weak_uptrend",
    "custom_strategies.pin_down",
    "custom_strategies.confluence",
)

CONFIG_TABLE = "strategies"  # [strategies.<name>] tables of the config file
TABLE_KEYS: tuple[str, ...] = ("base", "title", "channel")  # a table's keys besides parameter overrides
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")  # strategy and channel names (env var suffixes)

_REGISTRY: dict[str, Strategy] = {}
_LOADED = False  # True once STRATEGY_MODULES are imported


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"invalid {what} {name!r}: use lower-case letters, digits and _ (e.g. my_breakout)")


def register(strategy: Strategy) -> Strategy:
    """Add a declared strategy; ``ValueError`` for a bad or already registered name."""
    registry()
    _check_name(strategy.name, "strategy name")
    if strategy.name in _REGISTRY:
        raise ValueError(f"strategy {strategy.name!r} is already registered")
    _REGISTRY[strategy.name] = strategy
    return strategy


def unregister(name: str) -> None:
    """Remove a strategy added with ``register`` (tests, notebooks)."""
    registry().pop(name, None)


def registry() -> dict[str, Strategy]:
    """Every registered strategy by name, in ``STRATEGY_MODULES`` order, then ``register`` order."""
    global _LOADED
    if not _LOADED:
        for path in STRATEGY_MODULES:
            strategy = importlib.import_module(path).STRATEGY
            _REGISTRY[strategy.name] = strategy
        _LOADED = True
    return _REGISTRY


def strategy_names() -> tuple[str, ...]:
    """The registered strategies' names: what ``all`` means."""
    return tuple(registry())


def demo_plants() -> dict[str, PlantFn]:
    """Strategy name -> its demo pattern: what the demo exchange plants (it knows no strategy)."""
    return {name: s.demo_plant for name, s in registry().items() if s.demo_plant is not None}


def _tables() -> Mapping[str, Any]:
    tables = file_config().get(CONFIG_TABLE, {})
    if not isinstance(tables, Mapping):
        raise ValueError(f"[{CONFIG_TABLE}] in the config file must be a table of tables")
    return tables


def variant_names() -> tuple[str, ...]:
    """Names of the tuned variants the config file defines."""
    return tuple(
        name for name, table in _tables().items() if COMPOSITE_SEPARATOR not in name and isinstance(table, Mapping)
    )


def _valid_names() -> str:
    names = ", ".join([*strategy_names(), *variant_names()])
    return f"valid strategies: {names}, or parts joined with '{COMPOSITE_SEPARATOR}' (e.g. confluence+volume_surge)"


def _table(name: str) -> dict[str, Any]:
    table = _tables().get(name, {})
    if not isinstance(table, Mapping):
        raise ValueError(f"[{CONFIG_TABLE}.{name}] in the config file must be a table")
    return dict(table)


def _labels(name: str, table: Mapping[str, Any]) -> dict[str, str | None]:
    """The title and channel a config table sets (None when unset), checked."""
    title, channel = table.get("title"), table.get("channel")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        raise ValueError(f"[{CONFIG_TABLE}.{name}] title must be a non-empty string, got {title!r}")
    if channel is not None:
        _check_name(channel, f"channel of {name}")
    return {"title": title, "channel": channel}


def _variant(name: str) -> Strategy:
    """The tuned variant ``[strategies.<name>]`` of the config file."""
    _check_name(name, "variant name")
    table = _table(name)
    base = table.pop("base", None)
    if base not in registry():
        raise ValueError(
            f"[{CONFIG_TABLE}.{name}] needs base = one of: {', '.join(strategy_names())}; got {base!r}"
        )
    labels = _labels(name, table)
    overrides = {key: value for key, value in table.items() if key not in TABLE_KEYS}
    return registry()[base].tuned(name, overrides, **labels)


def _composite(name: str) -> Strategy:
    """``a+b``: each part resolved by name, the title and channel from ``[strategies."a+b"]``."""
    parts = [part.strip() for part in name.split(COMPOSITE_SEPARATOR)]
    if not all(parts):
        raise ValueError(f"empty part in composite {name!r}; {_valid_names()}")
    table = _table(COMPOSITE_SEPARATOR.join(parts))
    extra = sorted(set(table) - {"title", "channel"})
    if extra:
        raise ValueError(f"[{CONFIG_TABLE}.\"{name}\"] may set title and channel only, not {extra[0]!r}")
    try:
        resolved = [_single(part) for part in parts]
    except ValueError as exc:
        raise ValueError(f"in composite {name!r}: {exc}") from None
    return compose(resolved, **_labels(name, table))


def _single(name: str) -> Strategy:
    if name in registry():
        if name in _tables():
            raise ValueError(f"[{CONFIG_TABLE}.{name}] names a built-in strategy; give the variant a new name")
        return registry()[name]
    if name in _tables():
        return _variant(name)
    raise ValueError(f"unknown strategy {name!r}; {_valid_names()}")


def get_strategy(name: str) -> Strategy:
    """The strategy, variant or composite called ``name``; ``ValueError`` naming the valid ones otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"unknown strategy {name!r}; {_valid_names()}")
    name = name.strip()
    return _composite(name) if COMPOSITE_SEPARATOR in name else _single(name)


def resolve_strategies(names: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Comma list / list / ``"all"`` -> validated names, order kept, duplicates dropped.

    ``all`` is every registered strategy; variants and composites are named explicitly, and may
    follow it (``all,confluence+volume_surge``).
    """
    if names is None:
        raise ValueError(f"no strategy given; {_valid_names()}, or 'all'")
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",")]
    items = [n.strip() for n in names if n and n.strip()]
    if not items:
        raise ValueError(f"empty strategy list; {_valid_names()}, or 'all'")
    out: list[str] = []
    for item in items:
        out.extend(strategy_names() if item == "all" else [get_strategy(item).name])
    return list(dict.fromkeys(out))


demo.use_plants(demo_plants)

# Views of the declarations for code written against the earlier tables (notebook, notifier tests).
STRATEGY_NAMES: tuple[str, ...] = strategy_names()
VSA_STRATEGIES: tuple[str, ...] = tuple(n for n, s in registry().items() if s.kind == "vsa")
CUSTOM_STRATEGIES: tuple[str, ...] = tuple(n for n, s in registry().items() if s.kind == "custom")
TITLES: dict[str, str] = {n: s.title for n, s in registry().items()}
CHANNEL_OF: dict[str, str] = {n: s.channel for n, s in registry().items()}
ALERT_FIELDS: dict[str, tuple[AlertField, ...]] = {n: s.alert_fields for n, s in registry().items()}
FLAG_LABELS: dict[str, str] = {k: v for s in registry().values() for k, v in s.flag_labels.items()}
