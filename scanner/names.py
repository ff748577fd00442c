"""Names a user gives (exchanges, timeframes, strategies, users): split, any case, validated.

Every command (scan, serve, quality) reads its positional arguments through these, so they accept
exactly the same names and say the same thing about a wrong one (a ``ValueError`` naming the valid
choices).
"""

from __future__ import annotations

from collections.abc import Iterable

from exchanges import EXCHANGE_NAMES
from scanner.registry import resolve_strategies
from utils.timeframes import TIMEFRAME_NAMES, get_timeframe

REAL_EXCHANGES: tuple[str, ...] = tuple(name for name in EXCHANGE_NAMES if name != "demo")
ALL = "all"


def _split(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def _names(value: str | Iterable[str] | None) -> list[str]:
    """Split and lower-case: names are accepted in any case (``1D``, ``Demo``, ``ALL``)."""
    return [item.lower() for item in _split(value)]


def resolve_exchanges(exchanges: str | Iterable[str] | None) -> list[str]:
    """Comma list / list / ``all`` / None (every real exchange) -> validated names.

    ``all`` means every real exchange; ``demo`` is not part of it but may be named beside it
    (``all,demo`` scans both).
    """
    if exchanges is None:
        return list(REAL_EXCHANGES)
    items = _names(exchanges)
    if not items:
        raise ValueError(f"empty exchange list; valid exchanges: {', '.join(EXCHANGE_NAMES)}, or 'all'")
    for name in items:
        if name != ALL and name not in EXCHANGE_NAMES:
            raise ValueError(f"unknown exchange {name!r}; valid exchanges: {', '.join(EXCHANGE_NAMES)}, or 'all'")
    if ALL in items:
        items = [name for name in items if name not in REAL_EXCHANGES and name != ALL] + list(REAL_EXCHANGES)
    return list(dict.fromkeys(items))


def resolve_timeframes(timeframes: str | Iterable[str]) -> list[str]:
    """Comma list / list -> validated timeframe names (any case), in the given order."""
    items = _names(timeframes)
    if not items:
        raise ValueError(f"empty timeframe list; valid timeframes: {', '.join(TIMEFRAME_NAMES)}")
    for name in items:
        get_timeframe(name)
    return list(dict.fromkeys(items))


def resolve_strategy_names(strategies: str | Iterable[str] | None) -> list[str]:
    """Comma list / list / ``all`` -> validated strategy names (any case), see ``scanner.registry``."""
    return resolve_strategies(None if strategies is None else _names(strategies))


def resolve_users(users: str | Iterable[str] | None) -> list[str]:
    items = _split(users if users is not None else ["default"])
    if not items:
        raise ValueError("empty user list; name at least one user (e.g. 'default')")
    return list(dict.fromkeys(items))
