"""Injected faults of the fake exchange server: which requests they hit and how candle pages break."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATUS_KINDS = ("403", "418", "429", "500", "502", "503", "504")
REPLY_KINDS = ("html", "envelope_error", "down", "reset") + STATUS_KINDS  # answered before the handler
BODY_KINDS = ("empty", "duplicates", "unsorted", "bad_values", "short", "truncated_json")  # change a good reply
DELAY_KINDS = ("timeout",)
FAULT_KINDS = REPLY_KINDS + BODY_KINDS + DELAY_KINDS
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_SHORT_BARS = 5
BAD_VALUE_VARIANTS = ("null", "nan", "negative", "high_low")


@dataclass
class Fault:
    """One fault rule; ``times`` = the first N matching requests, ``probability`` = seeded coin."""

    kind: str
    market: str | None = None
    path: str | None = None  # a path kind ("listing"/"klines"/"tickers") or a substring of the path
    symbol: str | None = None
    times: int | None = None
    probability: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def matches(self, market: str, path: str, kind: str | None, symbol: str | None) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.market is not None and self.market != market:
            return False
        if self.path is not None and self.path != kind and self.path not in path:
            return False
        return self.symbol is None or self.symbol == symbol


class FaultBook:
    """Ordered fault rules; the first matching rule that fires applies to a request."""

    def __init__(self, seed: int) -> None:
        self._rules: list[Fault] = []
        self._rng = random.Random(seed)

    def add(self, fault: Fault) -> Fault:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; known: {FAULT_KINDS}")
        self._rules.append(fault)
        return fault

    def clear(self) -> None:
        self._rules.clear()

    def pick(self, market: str, path: str, kind: str | None, symbol: str | None) -> Fault | None:
        for rule in list(self._rules):
            if not rule.matches(market, path, kind, symbol):
                continue
            if rule.probability is not None and self._rng.random() >= rule.probability:
                continue
            rule.fired += 1
            return rule
        return None

    def row_order(self, fault: Fault | None, n: int) -> np.ndarray | None:
        """Row permutation for "duplicates"/"unsorted" faults (None: keep the order)."""
        if fault is None or n == 0:
            return None
        if fault.kind == "duplicates":
            dup = np.unique(np.array([0, n // 2, n - 1]))
            return np.sort(np.concatenate([np.arange(n), dup]))
        if fault.kind == "unsorted" and n > 1:
            order = np.array(self._rng.sample(range(n), n))
            if np.all(np.diff(order) > 0) or np.all(np.diff(order) < 0):
                order[[0, 1]] = order[[1, 0]]
            return order
        return None


def spoil_values(columns: dict[str, np.ndarray], variant: str, row: int | None = None) -> None:
    """Put one bad value into one row: null close, "NaN" close, negative low, or high below low."""
    n = len(columns["c"])
    if n == 0:
        return
    r = n // 2 if row is None else row % n
    variants = BAD_VALUE_VARIANTS if variant == "all" else (variant,)
    for offset, name in enumerate(variants):
        i = (r + offset) % n
        quoted = str(columns["c"][i]).startswith('"')
        if name == "null":
            columns["c"][i] = "null"
        elif name == "nan":
            columns["c"][i] = '"NaN"' if quoted else "NaN"
        elif name == "negative":
            columns["l"][i] = '"-1.5"' if quoted else "-1.5"
        elif name == "high_low":
            columns["h"][i], columns["l"][i] = columns["l"][i], columns["h"][i]
            if columns["h"][i] == columns["l"][i]:
                columns["l"][i] = '"999999999"' if quoted else "999999999"
        else:
            raise ValueError(f"unknown bad_values variant {name!r}; known: {BAD_VALUE_VARIANTS}")
