"""Per-host request budgets and the retry policy shared by every exchange client.

Why one module: the limits, the safety margin and the retry constants live in one place
(STYLE.md points 3 and 7). A ``HostBudget`` is process-wide and keyed by its budget name
(``"bybit"`` is shared by the spot and linear clients), so concurrent scans of one host never
exceed the published limit together. It combines four brakes:

- a sliding log: a request is admitted only while the weight in flight, plus the weight answered
  within the last ``period``, plus usage seen from other users of the IP, stays within
  ``SAFETY_MARGIN`` of the published limit. A request's weight counts from its admission until
  ``period`` after its answer, so whatever instant the exchange charged it at, no exchange window
  of that length (fixed at any phase, or sliding) can see more than the allowance. Full bursts are
  allowed, so a fixed-window exchange is used at its limit, not at an average rate;
- at most ``MAX_IN_FLIGHT`` requests of the budget on the wire, so admission is close to sending
  (a request admitted but queued for a connection would hold the budget for nothing);
- a pause read from the exchange's live usage headers (``X-MBX-USED-WEIGHT-1M``,
  ``gw-ratelimit-remaining``/``-reset``, ``X-Gate-RateLimit-Requests-Remain``/``-Reset-Timestamp``,
  ``X-Bapi-Limit-Status``/``-Reset-Timestamp``) or from a 429's ``Retry-After``. A used-weight
  header (no reset given) is compared with the budget's own log: the part the log cannot explain is
  other users' weight, held against the allowance for one ``period``; the exchange's window phase
  never has to be guessed;
- an IP ban (HTTP 418, Bybit's 403): every client of the budget refuses to send until it ends.

What the exchange says overrides the built-in table, downward only (issue 13): a client is not
told when several tools share its IP or the exchange lowers a limit, and Binance answers repeated
429s with IP bans. So a budget learns its limit:

- from the limits the exchange publishes (Binance's ``exchangeInfo.rateLimits``, read by every
  listing call): a lower request-weight limit over the budget's period replaces the table's for
  the rest of the process (``learn_limit``);
- from a rate-limited answer (``rate_limited``): the used weight the exchange reports with it (or
  the limit a ``remaining``-style exchange states) is the limit from then on; without such a
  number the allowance is halved, at most once per period (multiplicative decrease). The lowered
  limit holds for ``HOLD_PERIODS`` periods without a 429, then grows back by ``GROWTH_PER_PERIOD``
  per period up to the table's (or published) limit, so a limit raised again is found again.

A limit nobody confirmed is probed, not trusted (``confirmed``): the requests on the wire when
the first 429 comes are all refused too (31 of them at 32 in flight). Where the exchange states
its limit (Binance's listing publishes it), the built-in table is a guess until it has; where it
states nothing (MEXC, or a listing without limits), the documented table is all there is and is
trusted until a 429. An unconfirmed budget sends at full concurrency only up to the most weight the
exchange has accepted in one window (``proven``: its used-weight header, else the weight of the
probes it accepted); beyond that, one request at a time goes (a probe, beside the others), and its
answer raises ``proven``. A refused probe is then the only 429 of its window, and the weight accepted before it
is the limit from then on. A 429 to a request within ``proven`` means the limit changed under
us: the budget is unconfirmed from then on and ``proven`` starts again from nothing. A budget is
confirmed by a published limit for its window, a limit stated in a header, or the user's
``SCANNER_<KEY>_RATE_LIMIT``.

The published limit of a budget can be overridden with ``SCANNER_<KEY>_RATE_LIMIT`` set to
``"<capacity>/<window seconds>"`` or ``"<capacity>/<window seconds>/<margin>"`` (``<KEY>`` is the
budget key in capitals, e.g. ``SCANNER_BINANCE_SPOT_RATE_LIMIT=1200/60`` for an IP shared with
other tools), read when the budget is first used.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

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
# Added to every header or Retry-After pause: the exchange's reset instant is rounded and its clock
# is not ours.
PAUSE_SLACK_S = 0.1
# Requests of one budget on the wire at once; each client's connection pool is as large, so an
# admitted request is sent at once.
MAX_IN_FLIGHT = 32
# Simultaneous connections per client session.
CONNECTIONS_PER_CLIENT = MAX_IN_FLIGHT
# Shortest wait of a queued request (guards against spinning on clock rounding).
MIN_WAIT_S = 0.001
# Tolerance of weight comparisons (limits times a margin are not exact in binary floats).
WEIGHT_EPS = 1e-9
# Weight of the cheapest request: a full window pauses until at least this much frees.
SMALLEST_WEIGHT = 1.0
# Environment override of a budget's published limit (module docstring).
LIMIT_ENV = "SCANNER_{key}_RATE_LIMIT"
# After a 429 that reports no usable number, the limit believed is multiplied by this ...
DECREASE_FACTOR = 0.5
# ... the lowered limit holds this many periods without a 429 ...
HOLD_PERIODS = 30
# ... then grows by this share per period (compounded) back to the table's or published limit.
GROWTH_PER_PERIOD = 0.05
# Published limit intervals (Binance ``rateLimits[].interval``) in seconds.
INTERVAL_SECONDS: dict[str, float] = {"SECOND": 1.0, "MINUTE": 60.0, "HOUR": 3600.0, "DAY": 86400.0}
# The published limit type that request weight counts against.
WEIGHT_LIMIT_TYPE = "REQUEST_WEIGHT"


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

    Either ``used`` (weight used in the exchange's current window, Binance style, no reset given)
    or ``remaining`` with ``limit`` and ``reset``; ``reset_kind`` says whether the reset header is an
    epoch timestamp (``"epoch"``, seconds or ms, detected by size) or a countdown in ms
    (``"delta_ms"``, KuCoin).
    """

    used: str | None = None
    remaining: str | None = None
    limit: str | None = None
    reset: str | None = None
    reset_kind: str = "epoch"

    def stated_limit(self, values: dict[str, str]) -> float | None:
        """What an over-limit answer's headers say the limit is: the used weight the exchange
        counted (it refused more), or the limit a ``remaining``-style exchange states."""
        lookup = {k.lower(): v for k, v in values.items()}
        name = self.used or self.limit
        number = _number(lookup.get(name.lower())) if name else None
        return number if number is not None and number > 0 else None


@dataclass(frozen=True)
class Answer:
    """What one answer tells the budget once it is known to be served (``HostBudget.accept``)."""

    probe_weight: float  # the request's weight if it went as a probe, else 0
    used: float | None  # the exchange's used-weight header, if it sends one


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def weight_limits(rules: list[Any]) -> list[tuple[float, float]]:
    """``(weight, seconds)`` of the request-weight entries of a Binance-style ``rateLimits`` list.

    ``{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}``
    gives ``(6000, 60)``; other types (orders, raw requests) and unreadable entries are skipped.
    """
    found = []
    for rule in rules:
        if not isinstance(rule, dict) or rule.get("rateLimitType") != WEIGHT_LIMIT_TYPE:
            continue
        unit = INTERVAL_SECONDS.get(str(rule.get("interval", "")).upper())
        count, limit = _number(rule.get("intervalNum", 1)), _number(rule.get("limit"))
        if unit is not None and count and count > 0 and limit and limit > 0:
            found.append((limit, unit * count))
    return found


def _epoch_seconds(value: float) -> float:
    return value / 1000.0 if value > 1e11 else value


def _current_task() -> asyncio.Task | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # called outside a running loop (a test feeding headers directly)
        return None


class HostBudget:
    """The shared budget of one host (or one endpoint family): sliding log, pause and ban state.

    ``acquire(weight)`` before sending, ``observe(headers, values)`` when the answer arrives: the
    answer ends the request's flight and starts its ``period`` in the log. A request whose answer
    never comes (timeout, dropped connection) ends its flight when its task acquires again or ends.
    All times are epoch seconds (``time.time()``), like the exchanges' reset headers.
    """

    def __init__(
        self,
        key: str,
        limit: float,
        period: float,
        margin: float = SAFETY_MARGIN,
        max_in_flight: int = MAX_IN_FLIGHT,
        confirmed: bool = True,
    ) -> None:
        self.key = key
        self.confirmed = confirmed  # the limit was told or stated: no probing beyond ``proven``
        self.proven = 0.0  # most weight the exchange accepted in one window since the limit last changed
        self._used: float | None = None  # the exchange's count in its window, from the last used-weight header ...
        self._used_at = -math.inf  # ... received then
        self._probe_task: asyncio.Task | None = None  # the task whose request went as the probe
        self.ceiling = float(limit)  # the table's (or env) limit, lowered by published limits
        self.period = float(period)
        self.margin = margin
        self._cut: float | None = None  # the limit believed since the last 429 ...
        self._cut_at = -math.inf  # ... set then (epoch seconds)
        self.max_in_flight = max(int(max_in_flight), 1)
        self.request_count = 0  # requests actually sent (counted by the client when it sends)
        self.banned_until = 0.0
        self.paused_until = 0.0
        self._log: deque[tuple[float, float]] = deque()  # (answered at, weight), oldest first
        self._log_weight = 0.0
        self._flying: dict[asyncio.Task | None, float] = {}
        self._flying_weight = 0.0
        self._external = 0.0  # other users' weight seen in a used-weight header ...
        self._external_until = 0.0  # ... held against the allowance until then
        self._answered = False  # until the first answer, one request at a time
        self._header_driven = False  # the exchange reports ``remaining``: trust it over the log
        self._room: float | None = None  # weight the last ``remaining`` header leaves us ...
        self._room_until = 0.0  # ... valid until the exchange's window resets
        self._watched: weakref.WeakSet[asyncio.Task] = weakref.WeakSet()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._changed: asyncio.Event | None = None

    # ------------------------------------------------------------------ the limit believed

    def limit_at(self, now: float) -> float:
        """The limit believed at ``now``: the ceiling, or a 429's cut growing back to it."""
        if self._cut is None:
            return self.ceiling
        periods = (now - self._cut_at) / self.period - HOLD_PERIODS
        if periods <= 0:
            return min(self._cut, self.ceiling)
        grown = self._cut * (1.0 + GROWTH_PER_PERIOD) ** periods
        if grown >= self.ceiling:
            self._cut = None
            return self.ceiling
        return grown

    @property
    def limit(self) -> float:
        """The exchange's limit per ``period`` as this budget believes it now."""
        return self.limit_at(time.time())

    def capacity_at(self, now: float) -> float:
        """Weight the client allows itself per period: the believed limit times the margin."""
        return max(self.limit_at(now) * self.margin, 1.0)

    @property
    def capacity(self) -> float:
        return self.capacity_at(time.time())

    def learn_limit(self, limit: float, period: float, source: str) -> bool:
        """A limit the exchange publishes: below the ceiling (same period), it is the ceiling from now.

        Only ever lowers the limit (a published value above the table does not raise it). A limit
        over another period is not comparable with this budget's window and is ignored. Returns
        whether the limit changed.
        """
        if not (math.isfinite(limit) and limit > 0) or abs(period - self.period) > WEIGHT_EPS:
            return False
        self.confirmed = True
        if limit >= self.ceiling - WEIGHT_EPS:
            return False
        log.info("%s: rate limit lowered from %g to %g per %gs (%s)",
                 self.key, self.ceiling, limit, period, source)
        self.ceiling = float(limit)
        self._notify()
        return True

    def trust_table(self) -> None:
        """The exchange turned out to state no limit (a listing without one): the table is all
        there is, so it is trusted, as for an exchange that never states one; unless a 429 has
        already shown it wrong."""
        if self._cut is None:
            self.confirmed = True

    def rate_limited(self, stated: float | None = None) -> None:
        """An over-limit answer (429 or the exchange's own code): lower the limit believed.

        ``stated`` is the limit the answer's headers imply (``UsageHeaders.stated_limit``). Below
        the limit believed, it becomes the limit. Without it, a refused probe (module docstring)
        makes the weight accepted in one window (``proven``) the limit, unless that is below what
        halving gives (early in a process ``proven`` is small, and one stray 429 must not take the
        limit down to it); otherwise the limit is multiplied by ``DECREASE_FACTOR``, at most once
        per period: the requests in flight when the first 429 came are answered 429 too, and must
        not halve it again. Either way the lowered limit holds ``HOLD_PERIODS`` periods, then grows
        back (module docstring). A 429 to anything but a probe means the limit is not what it was:
        the budget probes again from nothing, even if the exchange had published its limit.
        """
        now = time.time()
        probe = self._probe_task is not None and self._probe_task is _current_task()
        believed = self.limit_at(now)
        if probe:
            if stated is not None:
                self.proven = min(self.proven, stated)
        else:
            self.confirmed = False
            self.proven = 0.0
        if stated is not None and stated < believed - WEIGHT_EPS:
            lowered = stated
        elif probe and stated is None and believed * DECREASE_FACTOR < self.proven < believed - WEIGHT_EPS:
            lowered = self.proven
        elif now - self._cut_at >= self.period:
            lowered = believed * DECREASE_FACTOR
        else:
            return
        log.info("%s: rate limited; limit now believed %g per %gs (was %g)",
                 self.key, lowered, self.period, believed)
        self._cut, self._cut_at = lowered, now

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # ------------------------------------------------------------------ state

    def _bind(self) -> tuple[asyncio.Lock, asyncio.Event]:
        """Loop-bound primitives for the running loop (a new loop starts with nothing in flight)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._lock is None or self._changed is None:
            self._loop, self._lock, self._changed = loop, asyncio.Lock(), asyncio.Event()
            self._flying.clear()
            self._flying_weight = 0.0
        return self._lock, self._changed

    def _expire(self, now: float) -> None:
        horizon = now - self.period
        while self._log and self._log[0][0] <= horizon:
            self._log_weight -= self._log.popleft()[1]
        if not self._log:
            self._log_weight = 0.0
        if self._external_until <= now:
            self._external = 0.0

    def in_use(self, now: float | None = None) -> float:
        """Weight held against the allowance now: in flight, answered within a period, others'."""
        now = time.time() if now is None else now
        self._expire(now)
        return self._flying_weight + self._log_weight + self._external

    def in_flight(self) -> int:
        """Requests of this budget admitted and not yet answered."""
        return len(self._flying)

    def _finish(self, task: asyncio.Task | None) -> None:
        """End the flight of ``task``'s request: its weight now leaves the log a period from now."""
        weight = self._flying.pop(task, None)
        if weight is None:
            return
        self._flying_weight = self._flying_weight - weight if self._flying else 0.0
        self._log.append((time.time(), weight))
        self._log_weight += weight
        if self._changed is not None:
            self._changed.set()

    def _wait_for_room(self, weight: float, now: float) -> float:
        """Seconds until ``weight`` more fits the allowance (``inf``: only an answer can make room)."""
        excess = self.in_use(now) + weight - self.capacity_at(now)
        if excess <= WEIGHT_EPS:
            return 0.0
        expiries = [(answered + self.period, w) for answered, w in self._log]
        if self._external > 0:
            expiries.append((self._external_until, self._external))
        expiries.sort()
        freed = 0.0
        for at, w in expiries:
            freed += w
            if freed >= excess - WEIGHT_EPS:
                return at - now
        return math.inf

    def _probing(self, now: float) -> bool:
        """True while the room left is unknown: before the first answer, and for a budget whose
        exchange reports ``remaining``, after its window reset until the next answer says more."""
        if self._room is not None and now >= self._room_until:
            self._room = None
        return not self._answered or (self._header_driven and self._room is None)

    def _exchange_count(self, now: float) -> float:
        """The most weight the exchange may count in its window now: its last used-weight header
        plus everything on the wire (a window older than a period has reset), else the budget's log."""
        if self._used is not None and now - self._used_at < self.period:
            return self._used + self._flying_weight
        return self.in_use(now)

    def _beyond_proven(self, weight: float, now: float) -> bool:
        """True when ``weight`` more would go past what the exchange has accepted in one window
        and nobody confirmed the limit: such a request is a probe, one at a time."""
        return not self.confirmed and self._exchange_count(now) + weight > self.proven + WEIGHT_EPS

    def _probe_in_flight(self) -> bool:
        return self._probe_task is not None and self._probe_task in self._flying

    def _admission_delay(self, weight: float, now: float) -> float:
        if len(self._flying) >= self.max_in_flight or (self._flying and self._probing(now)):
            return math.inf
        if self._probe_in_flight() and self._beyond_proven(weight, now):
            return math.inf
        room_wait = 0.0
        if self._room is not None and weight > self._room + WEIGHT_EPS:
            room_wait = self._room_until - now
        return max(self.paused_until - now, room_wait, self._wait_for_room(weight, now))

    # ------------------------------------------------------------------ brakes

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
        """Wait until ``weight`` fits the allowance outside any pause, then count it in flight.

        Requests are admitted in arrival order (one waiter at a time holds the queue). A weight
        above the allowance is charged as the whole allowance, so it can still be sent.
        """
        lock, changed = self._bind()
        weight = min(float(weight), self.capacity)
        task = _current_task()
        self._finish(task)  # this task's previous request never got an answer
        async with lock:
            while (delay := self._admission_delay(weight, time.time())) > 0:
                changed.clear()
                timeout = None if math.isinf(delay) else max(delay, MIN_WAIT_S)
                try:
                    await asyncio.wait_for(changed.wait(), timeout)
                except TimeoutError:
                    pass
            if self._beyond_proven(weight, time.time()):
                self._probe_task = task
            elif self._probe_task is task:
                self._probe_task = None
            self._flying[task] = weight
            self._flying_weight += weight
            if self._room is not None:
                self._room -= weight
        if task is not None and task not in self._watched:
            self._watched.add(task)
            task.add_done_callback(self._finish)

    def observe(self, headers: UsageHeaders | None, values: dict[str, str]) -> Answer:
        """An answer arrived: end its flight, and read the exchange's usage headers if it has any.

        Returns what ``accept`` needs once the answer turns out to be served (not an error, not a
        rate-limit envelope inside an HTTP 200).
        """
        now = time.time()
        self._answered = True
        task = _current_task()
        probe_weight = self._flying.get(task, 0.0) if task is self._probe_task else 0.0
        self._finish(task)
        if headers is None:
            return Answer(probe_weight, None)
        lookup = {k.lower(): v for k, v in values.items()}
        if headers.used:
            used = _number(lookup.get(headers.used.lower()))
            if used is not None:
                self._used, self._used_at = used, now
                self._note_used(used, now)
            return Answer(probe_weight, used)
        answer = Answer(probe_weight, None)
        if not headers.remaining:
            return answer
        remaining = _number(lookup.get(headers.remaining.lower()))
        limit = _number(lookup.get(headers.limit.lower())) if headers.limit else None
        if limit is not None and limit > 0:
            self.learn_limit(limit, self.period, "the exchange's usage headers")
        limit = limit or self.limit_at(now)
        if remaining is None:
            return answer
        reset = _number(lookup.get(headers.reset.lower())) if headers.reset else None
        if reset is None:
            reset_in = self.period
        elif headers.reset_kind == "delta_ms":
            reset_in = reset / 1000.0
        else:
            reset_in = _epoch_seconds(reset) - now
        reserve = limit * (1.0 - self.margin)
        # Requests still in flight may not be in ``remaining`` yet: they come off the room too.
        self._header_driven = self.confirmed = True
        self._room = remaining - reserve - self._flying_weight
        self._room_until = now + min(max(reset_in, 0.0), MAX_HEADER_PAUSE_S) + PAUSE_SLACK_S
        if remaining <= reserve + WEIGHT_EPS:
            self.pause(reset_in)
        return answer

    def accept(self, answer: Answer) -> None:
        """The answer ``observe`` returned was served: the weight the exchange counted with it (its
        used-weight header, else a probe's own weight on top) is weight it accepts in one window."""
        if answer.used is not None:
            self.proven = max(self.proven, answer.used)
        else:
            self.proven += answer.probe_weight

    def _note_used(self, used: float, now: float) -> None:
        """Weight the exchange counts in its current window (Binance's ``X-MBX-USED-WEIGHT-1M``).

        Every request the exchange counted in that window was answered within the last period or
        is still in flight, so anything above that is other users': held for one period. When the
        exchange's count is at the allowance, nothing is sent until enough of it has expired.
        """
        self._expire(now)
        others = used - (self._log_weight + self._flying_weight)
        if others > 0:
            self._external = max(self._external, others)
            self._external_until = now + self.period
        if used >= self.capacity_at(now) - WEIGHT_EPS:
            wait = min(self._wait_for_room(SMALLEST_WEIGHT, now), self.period)
            self.paused_until = max(self.paused_until, now + wait)


_BUDGETS: dict[str, HostBudget] = {}


def limit_override(key: str) -> tuple[float, float, float] | None:
    """``(limit, period, margin)`` from ``SCANNER_<KEY>_RATE_LIMIT`` (module docstring), or None.

    A malformed value raises ``ValueError`` naming the variable, rather than silently using the
    published limit.
    """
    name = LIMIT_ENV.format(key=re.sub(r"[^A-Z0-9]", "_", key.upper()))
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    parts = raw.split("/")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3) or not all(math.isfinite(n) and n > 0 for n in numbers) or (
        len(numbers) == 3 and numbers[2] > 1
    ):
        raise ValueError(f"{name}={raw!r}: expected '<capacity>/<window seconds>[/<margin 0-1>]', e.g. '1200/60'")
    limit, period = numbers[:2]
    return limit, period, numbers[2] if len(numbers) == 3 else SAFETY_MARGIN


def get_budget(key: str, limit: float, period: float, confirmed: bool = True) -> HostBudget:
    """The process-wide budget ``key``, created on first use with its published ``limit`` per ``period``.

    ``confirmed=False``: the exchange states its limit itself, so until it has, ``limit`` is a
    guess (module docstring). ``SCANNER_<KEY>_RATE_LIMIT`` replaces the published values and is
    trusted (module docstring).
    """
    budget = _BUDGETS.get(key)
    if budget is None:
        override = limit_override(key)
        limit, period, margin = override if override is not None else (limit, period, SAFETY_MARGIN)
        budget = _BUDGETS[key] = HostBudget(key, limit, period, margin, confirmed=confirmed or override is not None)
    return budget


def configure_budget(
    key: str, limit: float, period: float, margin: float = SAFETY_MARGIN, confirmed: bool = True
) -> HostBudget:
    """Replace budget ``key`` (a tighter limit for a shared IP, or a small one in tests).

    ``confirmed=False`` makes the limit a table's guess, probed beyond what the exchange accepted.
    """
    budget = _BUDGETS[key] = HostBudget(key, limit, period, margin, confirmed=confirmed)
    return budget


def reset_budgets() -> None:
    """Forget every budget, ban and pause (tests; a new process starts clean anyway)."""
    _BUDGETS.clear()


def host_request_counts() -> dict[str, int]:
    """Requests sent per budget key since start (or the last reset)."""
    return {key: budget.request_count for key, budget in _BUDGETS.items()}
