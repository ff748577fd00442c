"""Rate budgets of the fake exchanges: fixed or sliding windows, weights, 429 then 418 ban escalation."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class RateRule:
    """One exchange's published budget (spec/exchanges.md "rate limit" rows)."""

    capacity: float  # weight (or requests) per window
    window: float  # seconds
    budget: str  # budget key; markets sharing one IP budget use the same key (Bybit, KuCoin)
    sliding: bool = False
    aligned: bool = True  # fixed windows cut at multiples of ``window`` (Binance minute); else from first use
    per_endpoint: bool = False  # Gate, MEXC spot: each endpoint has its own budget
    ban_seconds: float | None = None  # Binance/MEXC: another request while limited -> 418 for this long
    enabled: bool = True

    def scaled(self, factor: float) -> RateRule:
        return replace(self, capacity=max(1.0, self.capacity * factor))


@dataclass(frozen=True)
class Decision:
    """Outcome of one request against a budget; ``used``/``remaining`` after the request."""

    allowed: bool
    banned: bool
    used: float
    remaining: float
    capacity: float
    reset_in: float  # seconds until the window frees room
    retry_after: int  # whole seconds (Retry-After header)


@dataclass
class _Bucket:
    start: float = 0.0
    used: float = 0.0
    events: deque = field(default_factory=deque)
    limited_until: float = 0.0
    banned_until: float = 0.0


class RateLimiter:
    """Budgets keyed by (budget, endpoint); thread-safe enough for one server loop."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def check(self, rule: RateRule, endpoint: str, weight: float) -> Decision:
        """Charge ``weight`` if the budget allows it; otherwise say when to retry (or that we ban)."""
        now = self._clock()
        key = (rule.budget, endpoint if rule.per_endpoint else "")
        bucket = self._buckets.setdefault(key, _Bucket())
        if now < bucket.banned_until:
            wait = bucket.banned_until - now
            return Decision(False, True, bucket.used, 0.0, rule.capacity, wait, math.ceil(wait))
        used, reset_in = self._refresh(rule, bucket, now)
        if used + weight <= rule.capacity:
            self._charge(rule, bucket, now, weight)
            used += weight
            reset_in = self._reset_in(rule, bucket, now)
            return Decision(True, False, used, rule.capacity - used, rule.capacity, reset_in, math.ceil(reset_in))
        if rule.ban_seconds is not None and now < bucket.limited_until:
            bucket.banned_until = now + rule.ban_seconds
            return Decision(False, True, used, 0.0, rule.capacity, rule.ban_seconds, math.ceil(rule.ban_seconds))
        wait = max(reset_in, 0.001)
        bucket.limited_until = now + wait
        return Decision(False, False, used, max(rule.capacity - used, 0.0), rule.capacity, wait, math.ceil(wait))

    def _refresh(self, rule: RateRule, bucket: _Bucket, now: float) -> tuple[float, float]:
        if rule.sliding:
            while bucket.events and bucket.events[0][0] <= now - rule.window:
                bucket.used -= bucket.events.popleft()[1]
            reset_in = bucket.events[0][0] + rule.window - now if bucket.events else 0.0
            return bucket.used, reset_in
        start = math.floor(now / rule.window) * rule.window if rule.aligned else bucket.start
        if rule.aligned and start != bucket.start or not rule.aligned and now >= bucket.start + rule.window:
            bucket.start = start if rule.aligned else now
            bucket.used = 0.0
        return bucket.used, bucket.start + rule.window - now

    def _charge(self, rule: RateRule, bucket: _Bucket, now: float, weight: float) -> None:
        bucket.used += weight
        if rule.sliding:
            bucket.events.append((now, weight))

    def _reset_in(self, rule: RateRule, bucket: _Bucket, now: float) -> float:
        if rule.sliding:
            return bucket.events[0][0] + rule.window - now if bucket.events else 0.0
        return bucket.start + rule.window - now
