"""Per-host request budgets and the retry policy shared by every exchange client.

Why one module: the limits, the safety margin and the retry constants live in one place
(STYLE.md points 3 and 7). A ``HostBudget`` is process-wide and keyed by its budget name
(``"bybit"`` is shared by the spot and linear clients), so concurrent scans of one host never
exceed the published limit together. It combines three brakes:

- an ``aiolimiter.AsyncLimiter`` refilling ``SAFETY_MARGIN`` of the published limit per period,
  with bursts of a tenth of it (so no window of the exchange, fixed or sliding, sees more than
  ~99% of its limit), taken with the request's weight before sending;
- a pause read from the exchange's live usage headers (``X-MBX-USED-WEIGHT-1M``,
  ``gw-ratelimit-remaining``/``-reset``, ``X-Gate-RateLimit-Requests-Remain``/``-Reset-Timestamp``,
  ``X-Bapi-Limit-Status``/``-Reset-Timestamp``) or from a 429's ``Retry-After``;
- an IP ban (HTTP 418, Bybit's 403): every client of the budget refuses to send until it ends.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

# Share of a published limit the client allows itself (the rest absorbs other users of the IP).
SAFETY_MARGIN = 0.9
# Attempts per request (first try included) on a TemporaryError.
RETRY_ATTEMPTS = 4
# Exponential backoff with jitter: base * 2**n seconds, capped, plus up to BACKOFF_JITTER seconds.
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 20.0
BACKOFF_JITTER_S = 0.5
# A Retry-After longer than this is not slept through: the request fails with RateLimited.
MAX_RETRY_AFTER_S = 120.0
# Per-request timeout (connect + read), seconds.
REQUEST_TIMEOUT_S = 20.0
# Ban length when a 418/403 carries no Retry-After (Bybit: "wait at least 10 minutes").
DEFAULT_BAN_S = 600.0
# A usage-header pause is never longer than this (guards against a bogus reset header).
MAX_HEADER_PAUSE_S = 60.0
# The limiter refills continuously but lets only 1/BURST_SLICES of the budget through at once: a
# leaky bucket holding the whole budget could send it twice within one exchange window.
BURST_SLICES = 10
# Added to every pause: the exchange's reset instant is rounded and its clock is not ours.
PAUSE_SLACK_S = 0.1
# Simultaneous connections per client session.
CONNECTIONS_PER_CLIENT = 16


@dataclass(frozen=True)
class RetryPolicy:
    """Retry and timeout settings of one client instance (tests pass tiny delays)."""

    attempts: int = RETRY_ATTEMPTS
    backoff_base: float = BACKOFF_BASE_S
    backoff_cap: float = BACKOFF_CAP_S
    jitter: float = BACKOFF_JITTER_S
    max_retry_after: float = MAX_RETRY_AFTER_S
    timeout: float = REQUEST_TIMEOUT_S


@dataclass(frozen=True)
class UsageHeaders:
    """Where an exchange reports its live budget use.

    Either ``used`` (weight used in the current window, Binance style: windows are the budget's
    period aligned on the epoch, e.g. clock minutes) or ``remaining`` with ``limit`` and ``reset``;
    ``reset_kind`` says whether the reset header is an epoch timestamp (``"epoch"``, seconds or ms,
    detected by size) or a countdown in ms (``"delta_ms"``, KuCoin).
    """

    used: str | None = None
    remaining: str | None = None
    limit: str | None = None
    reset: str | None = None
    reset_kind: str = "epoch"


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _epoch_seconds(value: float) -> float:
    return value / 1000.0 if value > 1e11 else value


class HostBudget:
    """The shared budget of one host (or one endpoint family): limiter, pause and ban state."""

    def __init__(self, key: str, limit: float, period: float, margin: float = SAFETY_MARGIN) -> None:
        self.key = key
        self.limit = float(limit)
        self.period = float(period)
        self.capacity = max(self.limit * margin, 1.0)
        self.burst = max(self.capacity / BURST_SLICES, 1.0)
        self.margin = margin
        self.request_count = 0  # requests actually sent (counted by the client when it sends)
        self.banned_until = 0.0
        self.paused_until = 0.0
        self._limiter: AsyncLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current_limiter(self) -> AsyncLimiter:
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._loop is not loop:
            self._limiter = AsyncLimiter(self.burst, self.period / BURST_SLICES)
            self._loop = loop
        return self._limiter

    def ban_remaining(self) -> float:
        """Seconds left of an IP ban (0 when none)."""
        return max(self.banned_until - time.time(), 0.0)

    def ban(self, until: float) -> None:
        self.banned_until = max(self.banned_until, until)

    def pause(self, seconds: float) -> None:
        """Hold every request of this budget for ``seconds`` (exchange said the budget is used up)."""
        if seconds > 0:
            until = time.time() + min(seconds, MAX_HEADER_PAUSE_S) + PAUSE_SLACK_S
            self.paused_until = max(self.paused_until, until)

    async def acquire(self, weight: float) -> None:
        """Wait for ``weight`` units of the local limiter outside any pause.

        A pause may start while this request queues for the limiter; it then waits the pause out
        and queues again, so the requests held by a pause do not all leave at once when it ends.
        """
        while True:
            while (wait := self.paused_until - time.time()) > 0:
                await asyncio.sleep(wait)
            await self._current_limiter().acquire(min(float(weight), self.burst))
            if self.paused_until <= time.time():
                return

    def observe(self, headers: UsageHeaders | None, values: dict[str, str]) -> None:
        """Pause when the exchange's own usage headers say the budget is nearly used."""
        if headers is None:
            return
        lookup = {k.lower(): v for k, v in values.items()}
        if headers.used:
            used = _number(lookup.get(headers.used.lower()))
            if used is not None and used >= self.limit * self.margin:
                self.pause(self.period - (time.time() % self.period))
            return
        if not headers.remaining:
            return
        remaining = _number(lookup.get(headers.remaining.lower()))
        limit = _number(lookup.get(headers.limit.lower())) if headers.limit else None
        limit = limit or self.limit
        if remaining is None or remaining > limit * (1.0 - self.margin):
            return
        reset = _number(lookup.get(headers.reset.lower())) if headers.reset else None
        if reset is None:
            self.pause(self.period)
        elif headers.reset_kind == "delta_ms":
            self.pause(reset / 1000.0)
        else:
            self.pause(_epoch_seconds(reset) - time.time())


_BUDGETS: dict[str, HostBudget] = {}


def get_budget(key: str, limit: float, period: float) -> HostBudget:
    """The process-wide budget ``key``, created on first use with its published ``limit`` per ``period``."""
    budget = _BUDGETS.get(key)
    if budget is None:
        budget = _BUDGETS[key] = HostBudget(key, limit, period)
    return budget


def configure_budget(key: str, limit: float, period: float, margin: float = SAFETY_MARGIN) -> HostBudget:
    """Replace budget ``key`` (a tighter limit for a shared IP, or a small one in tests)."""
    budget = _BUDGETS[key] = HostBudget(key, limit, period, margin)
    return budget


def reset_budgets() -> None:
    """Forget every budget, ban and pause (tests; a new process starts clean anyway)."""
    _BUDGETS.clear()


def host_request_counts() -> dict[str, int]:
    """Requests sent per budget key since start (or the last reset)."""
    return {key: budget.request_count for key, budget in _BUDGETS.items()}
